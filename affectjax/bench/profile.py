"""Per-op profile of an affectjax train step on the CPU, read from JAX's own trace.

    python -m affectjax.bench.profile --model efficientnet_b0 --batch-size 32 \\
        --image-size 224 [--steps 3] [--impl depthwise_impl=auto|xla|cpu ...] \\
        [--dtype float32|bfloat16] [--optimizer sgd|adam] [--json out.json]

Compiles the train step of `python -m affectjax.bench` (`bench.make_affectjax_train_step`:
train-mode forward, softmax cross-entropy, gradient, optax update), runs two untimed steps,
records `--steps` steps with `jax.profiler.trace`, and reads the trace back with
`jax.profiler.ProfileData`: XLA's CPU runtime emits one event per executed HLO instruction
(thunk). Each instruction is attributed, through the `op_name` metadata of the optimized
HLO, to a layer kind (stem conv, depthwise conv, 1x1 conv, BatchNorm, squeeze-excite, head,
optimizer, ...) and to forward or backward (`transpose(jvp(...))` in its name). Prints time
per step by layer kind, by HLO opcode and for the slowest instructions. Thunks of
independent instructions may overlap on different threads, so the shares are of summed
instruction time, which can exceed the step's wall time. XLA merges identical forward and
backward slices, so a copy made for the backward pass can carry the forward op_name (and
count as forward here). The layer kinds follow EfficientNet's and ResNet's module names;
other models land mostly in the "other" rows.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import tempfile
import time
from typing import Any

import jax

from affectjax import models
from affectjax.bench import core as bench

_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*?\b([a-z][\w\-]*)\(")
_KIND = re.compile(r"kind=(k\w+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
# First match wins: `conv_pwl` must precede `conv_pw`.
_LAYER_KINDS = (
    ("conv_stem", "stem conv 3x3/2"),
    ("conv_dw", "depthwise conv"),
    ("conv_pwl", "1x1 conv (project)"),
    ("conv_pw", "1x1 conv (expand / ds)"),
    ("conv_head", "1x1 conv (head)"),
    ("/se/", "squeeze-excite"),
    ("ResNet)/conv1/", "stem conv 7x7/2"),  # ResNet: the stem (forward, backward), then the
    ("ResNet))/conv1/", "stem conv 7x7/2"),  # blocks' convolutions
    ("/downsample_0/", "shortcut conv 1x1"),
    ("/conv1/", "block conv"),
    ("/conv2/", "block conv"),
    ("/conv3/", "block conv"),
    ("/bn", "BatchNorm + SiLU/ReLU"),
    ("/downsample_1/", "BatchNorm + SiLU/ReLU"),
    ("classifier", "classifier + loss"),
    ("/fc/", "classifier + loss"),
    ("Dropout", "dropout / drop path"),
    ("DropPath", "dropout / drop path"),
)
OPTIMIZER_KIND = "optimizer / other"
TOP_INSTRUCTIONS = 25


def layer_kind(op_name: str) -> str:
    """The layer kind of an HLO instruction from its `op_name` metadata.

    Args:
        op_name: the JAX name stack of the instruction, e.g.
            `"jit(train_step)/transpose(jvp(EfficientNet))/blocks_1_0/conv_dw/conv"`.

    Returns:
        A kind of `_LAYER_KINDS` (first substring match; a convolution inside a `while`
        loop is the chunked kernel gradient of `kernels.conv_cpu`: ", kernel gradient
        (scan)" is appended); `"optimizer / other"` outside
        the model (no `EfficientNet` or `ResNet` scope); else
        `"other (residual adds, pooling, loss)"`.
    """
    for key, kind in _LAYER_KINDS:
        if key in op_name:
            if "conv" in kind and "/while/" in op_name:  # `kernels.conv_cpu`'s scan
                return kind + ", kernel gradient (scan)"
            return kind
    if "EfficientNet" not in op_name and "ResNet" not in op_name:
        return OPTIMIZER_KIND
    return "other (residual adds, pooling, loss)"


def hlo_index(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Indexes the instructions of an HLO module's text, over all its computations.

    Args:
        hlo_text: `compiled.as_text()` of a `jax.jit(...).lower(...).compile()`.

    Returns:
        Instruction name -> (opcode, or `"fusion:kLoop"` etc. for fusions with a `kind=`,
        op_name metadata or `""`).
    """
    index = {}
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        name, opcode = match.groups()
        kind = _KIND.search(line)
        op_name = _OP_NAME.search(line)
        opcode = f"{opcode}:{kind.group(1)}" if kind else opcode
        index[name] = (opcode, op_name.group(1) if op_name else "")
    return index


def _descending(table: dict[str, float], limit: int | None = None) -> dict[str, float]:
    return dict(sorted(table.items(), key=lambda kv: -kv[1])[:limit])


def profile(
    model_name: str,
    batch_size: int = 32,
    image_size: int = 224,
    steps: int = 3,
    impls: dict[str, str] | None = None,
    *,
    dtype: str = "float32",
    optimizer: str = "sgd",
) -> dict[str, Any]:
    """Profiles `steps` train steps of `bench.make_affectjax_train_step` op by op.

    Args:
        model_name: a key of `affectjax.models.MODELS`.
        batch_size: images per step.
        image_size: height and width of the square images.
        steps: profiled steps (after two untimed ones); times are per step.
        impls: model attributes choosing the kernels (`bench.parse_impls`), e.g.
            ``{"depthwise_impl": "xla"}``; `None` keeps the model's defaults.
        dtype: `"float32"` or `"bfloat16"` computation.
        optimizer: `"sgd"` or `"adam"`.

    Returns:
        The configuration plus `wall_ms_per_step` (host wall time), `op_ms_per_step`
        (summed instruction time), and `by_layer_kind_ms` (keys `"kind [fwd|bwd|-]"`),
        `by_opcode_ms` and `top_instructions_ms` (the 25 slowest), each sorted by
        decreasing ms per step and each summing (but the last) to `op_ms_per_step`.

    Raises:
        ValueError: `steps` below 1.
    """
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    setup = bench.make_affectjax_train_step(
        model_name,
        batch_size=batch_size,
        image_size=image_size,
        dtype=dtype,
        optimizer=optimizer,
        model_kwargs=impls,
    )
    state, images, labels, key = setup.state, setup.images, setup.labels, setup.key
    compiled = setup.step.lower(state, images, labels, key).compile()
    index = hlo_index(compiled.as_text())
    for _ in range(2):
        state, loss = compiled(state, images, labels, key)
    loss.block_until_ready()
    by_kind: dict[str, float] = collections.defaultdict(float)
    by_op: dict[str, float] = collections.defaultdict(float)
    by_opcode: dict[str, float] = collections.defaultdict(float)
    with tempfile.TemporaryDirectory() as logdir:
        with jax.profiler.trace(logdir):
            start = time.perf_counter()
            for _ in range(steps):
                state, loss = compiled(state, images, labels, key)
                loss.block_until_ready()
            wall = (time.perf_counter() - start) / steps
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        data = jax.profiler.ProfileData.from_file(path)
        for plane in data.planes:
            for line in plane.lines:
                for event in line.events:
                    if event.name not in index:
                        continue
                    opcode, op_name = index[event.name]
                    kind = layer_kind(op_name)
                    if kind == OPTIMIZER_KIND:
                        direction = "-"
                    else:
                        direction = "bwd" if "transpose(" in op_name else "fwd"
                    ms = event.duration_ns / 1e6 / steps
                    by_kind[f"{kind} [{direction}]"] += ms
                    by_op[f"{event.name} ({opcode}) {op_name[-90:]}"] += ms
                    by_opcode[opcode] += ms
    return {
        "model": model_name,
        "batch_size": batch_size,
        "image_size": image_size,
        "dtype": dtype,
        "optimizer": optimizer,
        "impls": dict(impls or {}),
        "wall_ms_per_step": wall * 1e3,
        "op_ms_per_step": sum(by_kind.values()),
        "by_layer_kind_ms": _descending(by_kind),
        "by_opcode_ms": _descending(by_opcode),
        "top_instructions_ms": _descending(by_op, TOP_INSTRUCTIONS),
    }


def format_profile(result: dict[str, Any]) -> str:
    """Renders a `profile` result as a summary line and three Markdown tables.

    Args:
        result: the dict returned by `profile`.

    Returns:
        The text, with ms per step and share of `op_ms_per_step` per row.
    """
    total = result["op_ms_per_step"]
    lines = [
        f"{result['model']} batch {result['batch_size']} {result['image_size']}px "
        f"{result['dtype']}: step {result['wall_ms_per_step']:.1f} ms wall, "
        f"{total:.1f} ms summed over instructions"
    ]
    tables = (
        ("layer kind", "by_layer_kind_ms"),
        ("HLO opcode", "by_opcode_ms"),
        ("instruction", "top_instructions_ms"),
    )
    for title, table in tables:
        lines += ["", f"| {title} | ms/step | share |", "|---|---|---|"]
        for name, ms in result[table].items():
            share = 100 * ms / total if total > 0 else 0.0
            lines.append(f"| {name} | {ms:.1f} | {share:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: profiles, prints the tables, optionally writes the JSON.

    Args:
        argv: the arguments (default `sys.argv[1:]`).

    Returns:
        The `profile` result.
    """
    parser = argparse.ArgumentParser(
        prog="python -m affectjax.bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", default="efficientnet_b0", choices=sorted(models.MODELS))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--impl", action="append", default=[], metavar="ATTR=VALUE",
                        help="a model attribute choosing a kernel, as in python -m affectjax.bench")
    parser.add_argument("--dtype", default="float32", choices=sorted(bench.DTYPES))
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    parser.add_argument("--json", default=None, help="write the result to this file")
    args = parser.parse_args(argv)
    try:
        impls = bench.parse_impls(args.model, args.impl)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    result = profile(
        args.model,
        args.batch_size,
        args.image_size,
        args.steps,
        impls,
        dtype=args.dtype,
        optimizer=args.optimizer,
    )
    print(format_profile(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
