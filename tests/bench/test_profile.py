"""affectjax.bench.profile: op attribution on a tiny model, HLO parsing, the CLI."""

import json

import pytest

from affectjax.bench import profile as bench_profile


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, fast_compile):
    """One profiled step of efficientnet_tiny through the command line, with its JSON.

    Compiled fast: XLA still fuses, and the step has the same HLO opcodes (fusions
    included) and layer kinds to attribute as with every optimisation on.
    """
    out = tmp_path_factory.mktemp("profile") / "profile.json"
    with fast_compile():
        result = bench_profile.main([
            "--model", "efficientnet_tiny", "--batch-size", "4", "--image-size", "32",
            "--steps", "1", "--json", str(out),
        ])
    return result, out


def test_cli_writes_json(cli_run):
    result, out = cli_run
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(result))
    assert written["model"] == "efficientnet_tiny" and written["batch_size"] == 4
    assert written["impls"] == {} and written["dtype"] == "float32"


def test_times_positive_and_tables_sum(cli_run):
    result, _ = cli_run
    total = result["op_ms_per_step"]
    assert result["wall_ms_per_step"] > 0 and total > 0
    assert sum(result["by_layer_kind_ms"].values()) == pytest.approx(total, rel=1e-9)
    assert sum(result["by_opcode_ms"].values()) == pytest.approx(total, rel=1e-9)
    top = list(result["top_instructions_ms"].values())
    assert 0 < len(top) <= bench_profile.TOP_INSTRUCTIONS
    assert top == sorted(top, reverse=True) and sum(top) <= total * (1 + 1e-9)


def test_efficientnet_layer_kinds_appear(cli_run):
    kinds = {name.rsplit(" [", 1)[0] for name in cli_run[0]["by_layer_kind_ms"]}
    for kind in ("depthwise conv", "BatchNorm + SiLU/ReLU", "1x1 conv (project)",
                 "1x1 conv (expand / ds)", "stem conv 3x3/2", bench_profile.OPTIMIZER_KIND):
        assert kind in kinds, sorted(kinds)
    directions = {name.rsplit(" [", 1)[1] for name in cli_run[0]["by_layer_kind_ms"]}
    assert {"fwd]", "bwd]", "-]"} <= directions


def test_format_profile_tables(cli_run):
    printed = bench_profile.format_profile(cli_run[0])
    assert printed.startswith("efficientnet_tiny batch 4 32px float32: step ")
    for header in ("| layer kind |", "| HLO opcode |", "| instruction |"):
        assert header in printed
    assert "| depthwise conv [bwd] |" in printed


@pytest.mark.parametrize("op_name, kind", [
    ("jit(train_step)/jvp(EfficientNet)/conv_stem/conv_general_dilated", "stem conv 3x3/2"),
    ("jit(train_step)/transpose(jvp(EfficientNet))/blocks_1_0/conv_dw/mul", "depthwise conv"),
    ("jit(train_step)/jvp(EfficientNet)/blocks_2_0/conv_pwl/dot_general", "1x1 conv (project)"),
    ("jit(train_step)/jvp(EfficientNet)/blocks_2_0/conv_pw/dot_general",
     "1x1 conv (expand / ds)"),
    ("jit(train_step)/jvp(EfficientNet)/conv_head/dot_general", "1x1 conv (head)"),
    ("jit(train_step)/jvp(EfficientNet)/blocks_1_0/se/conv_reduce/dot_general",
     "squeeze-excite"),
    ("jit(train_step)/transpose(jvp(EfficientNet))/blocks_0_0/bn1/mul", "BatchNorm + SiLU/ReLU"),
    ("jit(train_step)/jvp(EfficientNet)/classifier/dot_general", "classifier + loss"),
    ("jit(train_step)/jvp(EfficientNet)/blocks_1_0/DropPath_0/mul", "dropout / drop path"),
    ("jit(train_step)/jvp(EfficientNet)/add", "other (residual adds, pooling, loss)"),
    ("jit(train_step)/jvp(ResNet)/reduce_mean", "other (residual adds, pooling, loss)"),
    ("jit(train_step)/jvp(ResNet)/conv1/cond/branch_0_fun/conv_general_dilated", "stem conv 7x7/2"),
    ("jit(train_step)/transpose(jvp(ResNet))/conv1/cond/branch_0_fun/transpose(jvp())/conv_general_dilated",
     "stem conv 7x7/2"),
    ("jit(train_step)/jvp(ResNet)/layer1_0/conv2/cond/branch_0_fun/conv_general_dilated", "block conv"),
    ("jit(train_step)/transpose(jvp(ResNet))/layer1_0/conv1/cond/branch_0_fun/while/body/closed_call/"
     "conv_general_dilated", "block conv, kernel gradient (scan)"),
    ("jit(train_step)/jvp(ResNet)/layer2_0/downsample_0/conv_general_dilated", "shortcut conv 1x1"),
    ("jit(train_step)/jvp(ResNet)/layer2_0/downsample_1/mul", "BatchNorm + SiLU/ReLU"),
    ("jit(train_step)/jvp(ResNet)/layer2_0/bn1/mul", "BatchNorm + SiLU/ReLU"),
    ("jit(train_step)/jvp(ResNet)/fc/dot_general", "classifier + loss"),
    ("jit(train_step)/mul", "optimizer / other"),
    ("", "optimizer / other"),
])
def test_layer_kind(op_name, kind):
    assert bench_profile.layer_kind(op_name) == kind


_BN = 'metadata={op_name="jit(f)/jvp(EfficientNet)/bn1/mul" stack_frame_id=2}'
_PWL = 'metadata={op_name="jit(f)/transpose(jvp(EfficientNet))/conv_pwl/dot_general"}'
_HLO = f"""\
HloModule jit_train_step, is_scheduled=true

%fused_computation (param_0.2: f32[4,8]) -> f32[4,8] {{
  %param_0.2 = f32[4,8]{{1,0}} parameter(0)
  ROOT %mul.2 = f32[4,8]{{1,0}} multiply(%param_0.2, %param_0.2), {_BN}
}}

ENTRY %main.9 (Arg_0.1: f32[4,8], Arg_1.2: f32[8,3]) -> (f32[4,3], f32[4,8]) {{
  %Arg_0.1 = f32[4,8]{{1,0}} parameter(0), metadata={{op_name="x"}}
  %Arg_1.2 = f32[8,3]{{1,0}} parameter(1)
  %mul_fusion = f32[4,8]{{1,0}} fusion(%Arg_0.1), kind=kLoop, calls=%fused_computation, {_BN}
  %dot.3 = f32[4,3]{{1,0}} dot(%mul_fusion, %Arg_1.2), lhs_contracting_dims={{1}}, {_PWL}
  ROOT %tuple.4 = (f32[4,3]{{1,0}}, f32[4,8]{{1,0}}) tuple(%dot.3, %mul_fusion)
}}
"""


def test_hlo_index_parses_snippet():
    index = bench_profile.hlo_index(_HLO)
    assert index == {
        "param_0.2": ("parameter", ""),
        "mul.2": ("multiply", "jit(f)/jvp(EfficientNet)/bn1/mul"),
        "Arg_0.1": ("parameter", "x"),
        "Arg_1.2": ("parameter", ""),
        "mul_fusion": ("fusion:kLoop", "jit(f)/jvp(EfficientNet)/bn1/mul"),
        "dot.3": ("dot", "jit(f)/transpose(jvp(EfficientNet))/conv_pwl/dot_general"),
        "tuple.4": ("tuple", ""),
    }


def test_bad_steps_is_clear():
    with pytest.raises(ValueError, match="--steps"):
        bench_profile.profile("efficientnet_tiny", 2, 32, steps=0)
