"""Throughput of affectjax models against their PyTorch reference, in the same process.

    python -m affectjax.bench --model efficientnet_b0 --batch-size 32 --image-size 224 \\
        --dtype float32 --steps 20 --warmup 3 [--optimizer sgd|adam] [--json out.json] [--no-torch]

For the model, batch size, image size and dtype it times

* `forward`: eval-mode inference (`jax.jit`; PyTorch `eval()` under `torch.no_grad()`);
* `train_step`: forward in train mode + softmax cross-entropy + gradient + optax update
  (SGD with momentum 0.9 or Adam), one `jax.jit` with the state donated; PyTorch the same
  with `backward()` and `torch.optim`;

of affectjax and of the PyTorch reference (`affectjax.bench.torch_reference`: timm's model of the same
name; torchvision's ResNet-18; for `efficientnet_tiny` and `emotieffnet` timm's
`EfficientNet` class built from the same block strings) with the same dropout and drop-path
rates. Each is timed after
`--warmup` untimed steps, `--steps` times, with `block_until_ready` / `cuda.synchronize`;
the table gives images/s from the median step time, the ratio affectjax / PyTorch, the
affectjax compile time, and peak memory (GPU: device peak bytes; CPU: the process's peak
resident set size during that measurement, reset before each one through
`/proc/self/clear_refs`). PyTorch runs in `channels_last` memory format (`--torch-contiguous`
for NCHW) with denormals flushed to zero, as XLA does. `--dtype bfloat16` runs affectjax with
bfloat16 computation (float32 parameters) and PyTorch under `torch.autocast(bfloat16)` on its
device (on CPU that is oneDNN's bf16 autocast). Numbers are a benchmark, never a unit-test
assertion. The affectjax train step is `make_affectjax_train_step`, which
`python -m affectjax.bench.profile` also profiles op by op. `--method cct [--num-networks M]`
times the M-network CCT ensemble step instead (`affectjax.bench.cct`).
"""

from __future__ import annotations

import functools
import os
import platform
import time
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from affectjax.bench import timing
from affectjax.bench import torch_reference as torch_bench
from affectjax import models
from affectjax import registry


def _optimizer(name: str, lr: float = 1e-3) -> optax.GradientTransformation:
    if name == "sgd":
        return optax.sgd(lr, momentum=0.9)
    if name == "adam":
        return optax.adam(lr)
    raise registry.unknown_name_error("optimizer", name, ("adam", "sgd"))


def _jax_peak_mb(device: jax.Device) -> float | None:
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "peak_bytes_in_use" in stats:
        return stats["peak_bytes_in_use"] / 2**20
    return None


DTYPES: dict[str, Any] = {"float32": None, "bfloat16": jnp.bfloat16}


class TrainStepSetup(NamedTuple):
    """The affectjax train step of the benchmark and its inputs (`make_affectjax_train_step`).

    Attributes:
        step: `jax.jit(train_step, donate_argnums=(0,))`, with the pure
            `train_step(state, images, labels, key) -> (state, loss)`; lower and compile
            it with `step.lower(state, images, labels, key).compile()`.
        state: `{"params", "batch_stats", "opt_state"}`, the model initialised with
            `jax.random.key(0)` and the optimizer state. Donated by `step`: use the
            returned state after each call.
        images: (batch, size, size, 3) float32 standard-normal images (seed 0).
        labels: (batch,) int32 class labels in `[0, model.num_classes)` (seed 0).
        key: the dropout / drop-path key, `jax.random.key(1)`.
        model: the `flax.linen` module, for the eval-mode forward.
    """

    step: Callable[..., tuple[dict[str, Any], jax.Array]]
    state: dict[str, Any]
    images: jax.Array
    labels: jax.Array
    key: jax.Array
    model: nn.Module


def make_affectjax_train_step(
    model_name: str,
    *,
    batch_size: int,
    image_size: int,
    dtype: str = "float32",
    optimizer: str = "sgd",
    model_kwargs: dict[str, Any] | None = None,
) -> TrainStepSetup:
    """Builds the train step timed by `bench_affectjax` and profiled by `affectjax.bench.profile`.

    The step is train-mode forward (dropout and drop path on, BatchNorm batch statistics
    updated) + mean softmax cross-entropy + gradient + optax update, as one pure function
    of `(state, images, labels, key)`, jitted with the state donated.

    Args:
        model_name: a key of `affectjax.models.MODELS`.
        batch_size: images per step.
        image_size: height and width of the square NHWC images.
        dtype: `"float32"`, or `"bfloat16"` for bfloat16 computation with float32
            parameters (the model's `dtype` attribute).
        optimizer: `"sgd"` (momentum 0.9) or `"adam"`, learning rate 1e-3.
        model_kwargs: further module attributes for `models.create`, e.g.
            `{"depthwise_impl": "shift"}`.

    Returns:
        A `TrainStepSetup` (step, state, images, labels, key, model).

    Raises:
        KeyError: unknown model, dtype or optimizer, listing the choices.
    """
    compute_dtype = registry.lookup(DTYPES, dtype, "dtype")
    tx = _optimizer(optimizer)
    model = models.create(model_name, dtype=compute_dtype, **(model_kwargs or {}))
    rng = np.random.default_rng(0)
    shape = (batch_size, image_size, image_size, 3)
    images = jnp.asarray(rng.standard_normal(shape, dtype=np.float32))
    labels = jnp.asarray(rng.integers(0, model.num_classes, batch_size), dtype=jnp.int32)
    init = jax.jit(functools.partial(model.init, train=False))
    variables = init(jax.random.key(0), images)
    state = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    state["opt_state"] = tx.init(state["params"])

    def train_step(
        state: dict[str, Any], images: jax.Array, labels: jax.Array, key: jax.Array
    ) -> tuple[dict[str, Any], jax.Array]:
        def loss_fn(params):
            (outputs, _), new_model_state = model.apply(
                {"params": params, "batch_stats": state["batch_stats"]},
                images,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": key},
            )
            logits = outputs["logits"]
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return loss, new_model_state["batch_stats"]

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, batch_stats), grads = grad_fn(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "batch_stats": batch_stats, "opt_state": opt_state}, loss

    step = jax.jit(train_step, donate_argnums=(0,))
    return TrainStepSetup(step, state, images, labels, jax.random.key(1), model)


def bench_affectjax(
    name: str,
    *,
    batch_size: int,
    image_size: int,
    dtype: str,
    steps: int,
    warmup: int,
    optimizer: str = "sgd",
) -> dict[str, dict[str, Any]]:
    """Times forward and train step of `affectjax.models.create(name)`.

    Args:
        name: a key of `affectjax.models.MODELS`.
        batch_size, image_size, dtype, optimizer: as `make_affectjax_train_step`.
        steps: timed steps (the median is reported).
        warmup: untimed steps before them.

    Returns:
        `{"forward": summary, "train_step": summary}`, each with `images_per_s`,
        `median_step_s`, `min_step_s`, `compile_s`, `peak_memory_mb`.
    """
    setup = make_affectjax_train_step(
        name, batch_size=batch_size, image_size=image_size, dtype=dtype, optimizer=optimizer
    )
    model, images, labels, key = setup.model, setup.images, setup.labels, setup.key
    variables = {"params": setup.state["params"], "batch_stats": setup.state["batch_stats"]}
    device = jax.devices()[0]
    results = {}

    @jax.jit
    def forward(variables, images):
        return model.apply(variables, images, train=False)[0]["logits"]

    def peak_mb() -> float:
        return _jax_peak_mb(device) or timing.peak_rss_mb()

    timing.reset_peak_rss()
    start = time.perf_counter()
    compiled_fwd = forward.lower(variables, images).compile()
    compile_fwd = time.perf_counter() - start
    times = timing.time_steps(lambda: compiled_fwd(variables, images).block_until_ready(), steps, warmup)
    results["forward"] = timing.summary(times, batch_size, compile_fwd, peak_mb())

    timing.reset_peak_rss()
    start = time.perf_counter()
    compiled_step = setup.step.lower(setup.state, images, labels, key).compile()
    compile_step = time.perf_counter() - start
    holder = {"state": setup.state}

    def run_step():
        holder["state"], loss = compiled_step(holder["state"], images, labels, key)
        loss.block_until_ready()

    times = timing.time_steps(run_step, steps, warmup)
    results["train_step"] = timing.summary(times, batch_size, compile_step, peak_mb())
    return results


def device_description() -> str:
    """JAX's device kind plus, on CPU, the processor model and core count."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        return f"{device.platform}: {device.device_kind}"
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            names = (line.split(":", 1)[1] for line in f if line.startswith("model name"))
            model = next(names).strip()
    except (OSError, StopIteration):
        pass
    return f"cpu: {model}, {os.cpu_count()} cores"


def format_table(record: dict[str, Any]) -> str:
    """Renders a `run` record as a Markdown table."""
    cfg, versions = record["config"], record["versions"]
    size = cfg["image_size"]
    lines = [
        f"model {cfg['model']}, batch {cfg['batch_size']}, {size}x{size}, {cfg['dtype']}, "
        f"optimizer {cfg['optimizer']}, median of {cfg['steps']} steps after {cfg['warmup']} "
        f"warm-up; device {record['device']}; jax {versions['jax']}, "
        f"torch {versions.get('torch', '-')} ({record.get('torch_memory_format', '-')}, "
        f"{record.get('torch_threads', '-')} threads); 1-min load average "
        f"{record['load_average_before'][0]:.1f} before, "
        f"{record['load_average_after'][0]:.1f} after",
        "",
        "| phase | affectjax img/s | PyTorch img/s | ratio affectjax/PyTorch | "
        "affectjax compile s | affectjax peak MB | PyTorch peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in ("forward", "train_step"):
        ours = record["affectjax"][phase]
        ref = record.get("torch", {}).get(phase)
        cells = [phase, f"{ours['images_per_s']:.1f}", "-", "-", f"{ours['compile_s']:.1f}"]
        cells += [f"{ours['peak_memory_mb']:.0f}", "-"]
        if ref:
            cells[2] = f"{ref['images_per_s']:.1f}"
            cells[3] = f"{ours['images_per_s'] / ref['images_per_s']:.2f}"
            cells[6] = f"{ref['peak_memory_mb']:.0f}"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(
    model: str,
    *,
    batch_size: int = 32,
    image_size: int = 224,
    dtype: str = "float32",
    steps: int = 20,
    warmup: int = 3,
    optimizer: str = "sgd",
    torch_reference_too: bool = True,
    torch_channels_last: bool = True,
) -> dict[str, Any]:
    """Benchmarks affectjax (and the PyTorch reference) and returns the JSON-able record."""
    if model not in models.MODELS:
        raise registry.unknown_name_error("model", model, models.MODELS)
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"--steps must be >= 1 and --warmup >= 0, got {steps} and {warmup}")
    kwargs = dict(
        batch_size=batch_size,
        image_size=image_size,
        dtype=dtype,
        steps=steps,
        warmup=warmup,
        optimizer=optimizer,
    )
    record: dict[str, Any] = {
        "config": {"model": model, **kwargs},
        "device": device_description(),
        "load_average_before": list(os.getloadavg()),
        "versions": {"jax": jax.__version__},
        "affectjax": bench_affectjax(model, **kwargs),
    }
    record["load_average_after"] = list(os.getloadavg())
    if torch_reference_too:
        import torch

        record["versions"]["torch"] = torch.__version__
        record["torch_threads"] = torch.get_num_threads()
        fmt = "channels_last" if torch_channels_last else "contiguous (NCHW)"
        record["torch_memory_format"] = fmt
        record["torch"] = torch_bench.bench_torch(model, channels_last=torch_channels_last, **kwargs)
        record["ratio"] = {
            p: record["affectjax"][p]["images_per_s"] / record["torch"][p]["images_per_s"]
            for p in ("forward", "train_step")
        }
    record["load_average_after"] = list(os.getloadavg())
    return record
