"""Per-op profile of an affectjax train step on the CPU, read from JAX's own trace.

    python -m docs.bench.profile_train_step --model efficientnet_b0 --batch-size 32 \\
        --image-size 224 [--steps 3] [--depthwise-impl auto|conv|shift] [--json out.json]

Compiles the same train step as `python -m affectjax.bench` (train-mode forward, softmax
cross-entropy, gradient, SGD update), records `--steps` steps with `jax.profiler.trace`,
and reads the trace back with `jax.profiler.ProfileData`: XLA's CPU runtime emits one event
per executed HLO instruction (thunk). Each instruction is attributed, through the
`op_name` metadata of the optimized HLO, to a layer kind (stem conv, depthwise conv, 1x1
conv, BatchNorm, squeeze-excite, head, optimizer, ...) and to forward or backward
(`transpose(jvp(...))` in its name). Prints time per step by layer kind and the slowest
instructions. Thunks of independent instructions may overlap on different threads, so the
shares are of summed instruction time, which can exceed the step's wall time. XLA merges
identical forward and backward slices, so a copy made for the backward pass can carry
the forward op_name (and count as forward here).
"""

from __future__ import annotations

import argparse
import collections
import functools
import glob
import json
import re
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from affectjax import models

_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = .*?\b([a-z][\w\-]*)\(")
_KIND = re.compile(r"kind=(k\w+)")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_LAYER_KINDS = (
    ("conv_stem", "stem conv 3x3/2"),
    ("conv_dw", "depthwise conv"),
    ("conv_pwl", "1x1 conv (project)"),
    ("conv_pw", "1x1 conv (expand / ds)"),
    ("conv_head", "1x1 conv (head)"),
    ("/se/", "squeeze-excite"),
    ("/bn", "BatchNorm + SiLU"),
    ("classifier", "classifier + loss"),
    ("Dropout", "dropout / drop path"),
    ("DropPath", "dropout / drop path"),
)


def layer_kind(op_name: str) -> str:
    """The layer kind of an HLO instruction from its `op_name` metadata."""
    for key, kind in _LAYER_KINDS:
        if key in op_name:
            return kind
    if "EfficientNet" not in op_name and "ResNet" not in op_name:
        return "optimizer / other"
    return "other (residual adds, pooling, loss)"


def hlo_index(hlo_text: str) -> dict[str, tuple[str, str]]:
    """Maps instruction name -> (opcode or fusion kind, op_name) over all computations."""
    index = {}
    for line in hlo_text.splitlines():
        m = _INSTRUCTION.match(line)
        if not m:
            continue
        name, opcode = m.groups()
        kind = _KIND.search(line)
        op_name = _OP_NAME.search(line)
        index[name] = (f"{opcode}:{kind.group(1)}" if kind else opcode, op_name.group(1) if op_name else "")
    return index


def profile(model_name: str, batch_size: int, image_size: int, steps: int, depthwise_impl: str | None) -> dict:
    kwargs = {} if depthwise_impl is None else {"depthwise_impl": depthwise_impl}
    model = models.create(model_name, **kwargs)
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.standard_normal((batch_size, image_size, image_size, 3), dtype=np.float32))
    labels = jnp.asarray(rng.integers(0, model.num_classes, batch_size), dtype=jnp.int32)
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), images)
    tx = optax.sgd(1e-3, momentum=0.9)
    state = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    state["opt_state"] = tx.init(state["params"])

    def train_step(state, images, labels, key):
        def loss_fn(params):
            (outputs, _), new = model.apply(
                {"params": params, "batch_stats": state["batch_stats"]},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": key},
            )
            return optax.softmax_cross_entropy_with_integer_labels(outputs["logits"], labels).mean(), new["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        return {"params": optax.apply_updates(state["params"], updates), "batch_stats": batch_stats, "opt_state": opt_state}, loss

    key = jax.random.key(1)
    compiled = jax.jit(train_step, donate_argnums=(0,)).lower(state, images, labels, key).compile()
    index = hlo_index(compiled.as_text())
    for _ in range(2):
        state, loss = compiled(state, images, labels, key)
    loss.block_until_ready()
    with tempfile.TemporaryDirectory() as logdir:
        with jax.profiler.trace(logdir):
            start = time.perf_counter()
            for _ in range(steps):
                state, loss = compiled(state, images, labels, key)
                loss.block_until_ready()
            wall = (time.perf_counter() - start) / steps
        (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
        data = jax.profiler.ProfileData.from_file(path)
        by_kind: dict[str, float] = collections.defaultdict(float)
        by_op: dict[str, float] = collections.defaultdict(float)
        by_opcode: dict[str, float] = collections.defaultdict(float)
        for plane in data.planes:
            for line in plane.lines:
                for event in line.events:
                    if event.name not in index:
                        continue
                    opcode, op_name = index[event.name]
                    direction = "bwd" if "transpose(" in op_name else "fwd"
                    kind = layer_kind(op_name)
                    if kind == "optimizer / other":
                        direction = "-"
                    ms = event.duration_ns / 1e6 / steps
                    by_kind[f"{kind} [{direction}]"] += ms
                    by_op[f"{event.name} ({opcode}) {op_name[-90:]}"] += ms
                    by_opcode[opcode] += ms
    return {
        "model": model_name,
        "batch_size": batch_size,
        "image_size": image_size,
        "depthwise_impl": depthwise_impl or "auto",
        "wall_ms_per_step": wall * 1e3,
        "op_ms_per_step": sum(by_kind.values()),
        "by_layer_kind_ms": dict(sorted(by_kind.items(), key=lambda kv: -kv[1])),
        "by_opcode_ms": dict(sorted(by_opcode.items(), key=lambda kv: -kv[1])),
        "top_instructions_ms": dict(sorted(by_op.items(), key=lambda kv: -kv[1])[:25]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="efficientnet_b0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--depthwise-impl", default=None, choices=("auto", "conv", "shift"))
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = profile(args.model, args.batch_size, args.image_size, args.steps, args.depthwise_impl)
    total = result["op_ms_per_step"]
    print(f"{result['model']} batch {args.batch_size} {args.image_size}px: step {result['wall_ms_per_step']:.0f} ms wall, "
          f"{total:.0f} ms summed over instructions")
    for title, table in (("layer kind", "by_layer_kind_ms"), ("HLO opcode", "by_opcode_ms"), ("instruction", "top_instructions_ms")):
        print(f"\n| {title} | ms/step | share |\n|---|---|---|")
        for name, ms in table if isinstance(table, list) else result[table].items():
            print(f"| {name} | {ms:.1f} | {100 * ms / total:.1f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
