"""affectjax.bench runs end to end on a tiny model (no timing assertions)."""

import json
import math

import jax
import pytest

from affectjax import bench
from affectjax.bench import torch_reference as bench_torch


pytestmark = pytest.mark.usefixtures("fast_compiled")


def _check_summary(summary):
    assert summary["images_per_s"] > 0 and math.isfinite(summary["images_per_s"])
    assert 0 < summary["min_step_s"] <= summary["median_step_s"]


def test_bench_cli_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main([  # the settings of test_cct.py's single network: its programs are compiled once
        "--model", "efficientnet_tiny", "--batch-size", "4", "--image-size", "32",
        "--rounds", "2", "--steps-per-round", "1", "--warmup", "1", "--repeat", "2",
        "--optimizer", "adam", "--json", str(out),
    ])
    printed = capsys.readouterr().out
    assert "| forward |" in printed and "| train_step |" in printed
    assert "| train_step, repeat 2 |" in printed and "repeats' intervals overlap:" in printed
    assert "efficientnet_tiny" in printed and ("device cpu" in printed or "device gpu" in printed)
    record = json.loads(out.read_text())
    assert record["config"]["model"] == "efficientnet_tiny"
    for side in ("affectjax", "torch"):
        for phase in ("forward", "train_step"):
            _check_summary(record[side][phase])
            assert record[side][phase]["peak_memory_mb"] > 0
            for rep in record["repeats"]:
                _check_summary(rep[side][phase])
                rounds = rep[side][phase]["rounds_s"]
                assert len(rounds) == 2 and all(len(r) == 1 and r[0] > 0 for r in rounds)
    assert record["affectjax"]["train_step"]["compile_s"] > 0
    lo, hi = record["ratio_interval"]["train_step"]
    assert 0 < lo <= hi and record["ratio"]["train_step"] > 0


def test_record_keeps_every_round_and_interleaves_the_frameworks(fake_steps):
    record = bench.run("efficientnet_tiny", rounds=3, steps_per_round=2, warmup=1, repeat=2)
    assert record == json.loads(json.dumps(record))
    assert record["config"] == {
        "model": "efficientnet_tiny", "batch_size": 32, "image_size": 224, "dtype": "float32",
        "warmup": 1, "optimizer": "sgd", "rounds": 3, "steps_per_round": 2, "repeat": 2,
        "bootstrap": {"resamples": 2000, "seed": 0, "level": 0.95}, "impls": {}, "variant": {}}
    assert set(record) == {
        "config", "device", "cpu_count", "load_average_before", "load_average_after",
        "versions", "torch_threads", "torch_memory_format", "affectjax", "torch", "ratio",
        "ratio_interval", "intervals_overlap", "repeats"}
    assert record["cpu_count"] >= 1 and len(record["load_average_after"]) == 3
    assert record["affectjax"]["train_step"]["compile_s"] == 1.0
    assert record["torch"]["forward"]["compile_s"] is None
    assert set(record["ratio"]) == set(record["intervals_overlap"]) == {"forward", "train_step"}
    assert len(record["repeats"]) == 2
    for rep in record["repeats"]:
        assert set(rep) == {"load_average_before", "load_average_after", "affectjax", "torch",
                            "ratio", "ratio_interval"}
        for side in ("affectjax", "torch"):
            assert [len(r) for r in rep[side]["train_step"]["rounds_s"]] == [2, 2, 2]
    # Warm-up of each framework's steps, then per repeat and phase: A A B B, B B A A, A A B B.
    warm = ["affectjax/forward", "affectjax/train_step", "torch/forward", "torch/train_step"]
    timed = []
    for phase in ("forward", "train_step"):
        a, b = f"affectjax/{phase}", f"torch/{phase}"
        timed += [a, a, b, b, b, b, a, a, a, a, b, b]
    assert fake_steps == warm + timed * 2


def test_variant_is_timed_in_the_same_rounds_and_reported(fake_steps):
    record = bench.run("resnet18", rounds=2, steps_per_round=1, warmup=0,
                       impls={"conv_impl": "cpu"}, variant={"pool_impl": "xla"})
    assert record["config"]["impls"] == {"conv_impl": "cpu"}
    assert record["config"]["variant"] == {"pool_impl": "xla"}
    assert set(record["ratio"]) == {"forward", "train_step", "forward_over_variant",
                                    "train_step_over_variant"}
    built, variant = "affectjax[conv_impl=cpu]/train_step", "affectjax[conv_impl=cpu,pool_impl=xla]/train_step"
    assert fake_steps[-6:] == [built, variant, "torch/train_step", "torch/train_step", variant, built]
    table = bench.format_table(record)
    assert "against the variant (conv_impl=cpu, pool_impl=xla), same rounds" in table
    assert "| train_step | " in table.split("against the variant")[1]


def test_impl_flags_are_checked_by_name():
    assert bench.parse_impls("resnet18", ["pool_impl=xla", "conv_impl=cpu"]) == {
        "pool_impl": "xla", "conv_impl": "cpu"}
    for item, match in [("pool_impl", "ATTR=VALUE"), ("stem_impl=xla", "ATTR must be one of"),
                        ("depthwise_impl=xla", "resnet18 has no depthwise_impl"),
                        ("pool_impl=shift", "VALUE must be one of auto, xla, cpu")]:
        with pytest.raises(ValueError, match=match):
            bench.parse_impls("resnet18", [item])
    with pytest.raises(SystemExit, match="apply to --method single only"):
        bench.main(["--method", "cct", "--model", "efficientnet_tiny", "--impl", "depthwise_impl=xla"])


def test_compile_only_prints_one_line_and_writes_json(tmp_path, capsys):
    out = tmp_path / "compile.json"
    record = bench.main(["--model", "efficientnet_tiny", "--batch-size", "2", "--image-size", "32",
                         "--compile-only", "--impl", "depthwise_impl=xla", "--json", str(out)])
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "kernels depthwise_impl=xla" in printed[0]
    assert record["lower_s"] > 0 and record["compile_s"] > 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    with pytest.raises(SystemExit, match="--compile-only applies to --method single without --variant"):
        bench.main(["--method", "cct", "--compile-only"])
    with pytest.raises(SystemExit, match="--compile-only applies to --method single without --variant"):
        bench.main(["--model", "resnet18", "--compile-only", "--variant", "pool_impl=xla"])


def test_bench_without_torch_and_bfloat16():
    record = bench.run("efficientnet_tiny", batch_size=2, image_size=32, dtype="bfloat16",
                       rounds=1, steps_per_round=1, warmup=0, torch_reference_too=False)
    assert "torch" not in record and record["ratio"] == {}
    _check_summary(record["affectjax"]["train_step"])
    assert "| - |" in bench.format_table(record)


def test_torch_reference_matches_tiny_architecture():
    """The PyTorch reference built from affectjax's block strings has the same parameter count."""
    from affectjax import models

    module = models.create("efficientnet_tiny")
    reference = bench_torch.torch_reference("efficientnet_tiny", module)
    shapes = jax.eval_shape(module.init, jax.random.key(0), jax.numpy.zeros((1, 32, 32, 3)))
    ours = sum(x.size for x in jax.tree.leaves(shapes["params"]))
    assert sum(p.numel() for p in reference.parameters()) == ours


def test_bad_arguments_are_clear():
    with pytest.raises(KeyError, match="efficientnet_b0"):
        bench.run("vit", rounds=1)
    with pytest.raises(ValueError, match="--dtype"):
        bench.run("efficientnet_tiny", dtype="float16", rounds=1)
    with pytest.raises(ValueError, match="--steps-per-round"):
        bench.run("efficientnet_tiny", steps_per_round=0)
    with pytest.raises(SystemExit, match="--repeat must be an integer >= 1, got 0"):
        bench.main(["--model", "efficientnet_tiny", "--repeat", "0"])
    with pytest.raises(SystemExit):  # no abbreviation: `--steps` is not `--steps-per-round`
        bench.main(["--model", "efficientnet_tiny", "--steps", "2"])


def test_make_affectjax_train_step_matches_reference_loss():
    """The shared train step's loss is float64 cross-entropy of the train-mode logits."""
    import numpy as np
    from scipy.special import log_softmax

    setup = bench.make_affectjax_train_step(
        "efficientnet_tiny", batch_size=3, image_size=32, optimizer="sgd",
        model_kwargs={"depthwise_impl": "cpu"},
    )
    assert setup.model.depthwise_impl == "cpu"
    assert setup.images.shape == (3, 32, 32, 3) and setup.labels.shape == (3,)
    assert 0 <= int(setup.labels.min()) and int(setup.labels.max()) < setup.model.num_classes
    variables = {"params": setup.state["params"], "batch_stats": setup.state["batch_stats"]}
    apply = jax.jit(lambda v, x, key: setup.model.apply(  # jitted: one compile, not op by op
        v, x, train=True, mutable=["batch_stats"], rngs={"dropout": key}))
    (outputs, _), _ = apply(variables, setup.images, setup.key)
    logits = np.asarray(outputs["logits"], dtype=np.float64)
    expected = -log_softmax(logits, axis=-1)[np.arange(3), np.asarray(setup.labels)].mean()
    old_params = jax.tree.map(np.asarray, setup.state["params"])
    old_stats = jax.tree.map(np.asarray, setup.state["batch_stats"])
    state, loss = setup.step(setup.state, setup.images, setup.labels, setup.key)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4)
    assert jax.tree.structure(state["params"]) == jax.tree.structure(old_params)
    # Every parameter gets an update and every BatchNorm running statistic moves.
    for old, new in ((old_params, state["params"]), (old_stats, state["batch_stats"])):
        changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), old, new)
        assert all(jax.tree.leaves(changed))


def test_make_affectjax_train_step_bad_names():
    with pytest.raises(KeyError, match="bfloat16"):
        bench.make_affectjax_train_step("efficientnet_tiny", batch_size=1, image_size=32,
                                        dtype="float16")
    with pytest.raises(KeyError, match="sgd"):
        bench.make_affectjax_train_step("efficientnet_tiny", batch_size=1, image_size=32,
                                        optimizer="lamb")
