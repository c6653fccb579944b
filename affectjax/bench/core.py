"""Throughput of affectjax models against their PyTorch reference, in the same process.

    python -m affectjax.bench --model efficientnet_b0 --batch-size 32 --image-size 224 \\
        --dtype float32 [--rounds 7 --steps-per-round 3 --warmup 3] [--repeat 2] \\
        [--optimizer sgd|adam] [--json out.json] [--no-torch]

For the model, batch size, image size and dtype it times

* `forward`: eval-mode inference (`jax.jit`; PyTorch `eval()` under `torch.no_grad()`);
* `train_step`: forward in train mode + softmax cross-entropy + gradient + optax update
  (SGD with momentum 0.9 or Adam), one `jax.jit` with the state donated; PyTorch the same
  with `backward()` and `torch.optim`;

of affectjax and of the PyTorch reference (`affectjax.bench.torch_reference`: timm's model of
the same name; torchvision's ResNet-18; for `efficientnet_tiny` and `emotieffnet` timm's
`EfficientNet` class built from the same block strings) with the same dropout and drop-path
rates. Each step is compiled (affectjax; the compile time is reported apart) and warmed up
`--warmup` times; then each phase runs `--rounds` interleaved rounds of `--steps-per-round`
steps per framework, the order alternating from round to round (`timing.interleave`), with
`block_until_ready` / `cuda.synchronize`; `--repeat N` reruns the rounds N times. The table
(`report.format_table`) gives per framework images/s from the median step time, the median
and minimum step, the ratio affectjax / PyTorch with a paired bootstrap 95 % interval over
rounds (`timing.ratio_interval`), the affectjax compile time, peak memory (GPU: device peak
bytes; CPU: the process's peak resident set size over compilation and warm-up, reset before
each through `/proc/self/clear_refs`) and the load average before and after. PyTorch runs in
`channels_last` memory format (`--torch-contiguous` for NCHW) with denormals flushed to zero,
as XLA does. `--dtype bfloat16` runs affectjax with bfloat16 computation (float32 parameters)
and PyTorch under `torch.autocast(bfloat16)` on its device (on CPU oneDNN's bf16 autocast).
Numbers are a benchmark, never a unit-test assertion. The affectjax train step is
`make_affectjax_train_step`, which `python -m affectjax.bench.profile` also profiles op by op.
`--method cct [--num-networks M]` times the M-network CCT ensemble step (`affectjax.bench.cct`).

`--impl ATTR=VALUE` builds the affectjax model with a kernel choice of
`affectjax.models.kernels` (`IMPL_ATTRIBUTES`: `depthwise_impl`, `pool_impl`, `conv_impl`;
values `auto`, `xla`, `cpu`). `--variant ATTR=VALUE` also builds affectjax with that choice
changed and times it in the same rounds: the ratio affectjax/variant, with its interval, says
whether the default choice pays on this machine. `--compile-only` lowers and compiles the
train step and prints the seconds (`compile_train_step`), e.g. at batch 256 on a CPU.
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
from affectjax.models import kernels
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
    """Builds the train step timed by `affectjax_steps` and profiled by `affectjax.bench.profile`.

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
            `{"depthwise_impl": "cpu"}` (`IMPL_ATTRIBUTES`).

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


IMPL_ATTRIBUTES = ("depthwise_impl", "pool_impl", "conv_impl")
"""The model attributes that choose between XLA's operations and `affectjax.models.kernels`."""


def parse_impls(model: str, items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["pool_impl=xla", ...]`` (``--impl`` / ``--variant``) as model attributes.

    Raises:
        ValueError: one line naming the item: not ``ATTR=VALUE``, an attribute that is not
            one of `IMPL_ATTRIBUTES` or that `model` lacks, or a value not in
            `kernels.IMPLS`.
    """
    out: dict[str, str] = {}
    fields = models.create(model).__dataclass_fields__  # a module, not yet initialised
    for item in items:
        attr, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--impl/--variant {item!r}: expected ATTR=VALUE, e.g. pool_impl=xla")
        if attr not in IMPL_ATTRIBUTES:
            raise ValueError(f"--impl/--variant {item!r}: ATTR must be one of "
                             f"{', '.join(IMPL_ATTRIBUTES)}")
        if attr not in fields:
            raise ValueError(f"--impl/--variant {item!r}: model {model} has no {attr}")
        if value not in kernels.IMPLS:
            raise ValueError(f"--impl/--variant {item!r}: VALUE must be one of "
                             f"{', '.join(kernels.IMPLS)}")
        out[attr] = value
    return out


def affectjax_steps(name: str, *, batch_size: int, image_size: int, dtype: str, warmup: int,
                    optimizer: str = "sgd",
                    model_kwargs: dict[str, Any] | None = None) -> dict[str, timing.Prepared]:
    """Compiles and warms up the forward and the train step of `affectjax.models.create(name)`.

    Args:
        name: a key of `affectjax.models.MODELS`.
        batch_size, image_size, dtype, optimizer, model_kwargs: as
            `make_affectjax_train_step`.
        warmup: untimed steps after the compilation.

    Returns:
        `{"forward": prepared, "train_step": prepared}` (`timing.Prepared`): each step blocks
        on its result; the train step carries its donated state from call to call.
    """
    setup = make_affectjax_train_step(
        name, batch_size=batch_size, image_size=image_size, dtype=dtype, optimizer=optimizer,
        model_kwargs=model_kwargs,
    )
    model, images, labels, key = setup.model, setup.images, setup.labels, setup.key
    # A copy: the train step donates `setup.state`, and the two steps alternate.
    variables = jax.tree.map(jnp.array, {"params": setup.state["params"],
                                         "batch_stats": setup.state["batch_stats"]})
    device = jax.devices()[0]

    @jax.jit
    def forward(variables, images):
        return model.apply(variables, images, train=False)[0]["logits"]

    def peak_mb() -> float:
        return _jax_peak_mb(device) or timing.peak_rss_mb()

    timing.reset_peak_rss()
    compiled_fwd, compile_fwd = timing.compile_timed(forward, variables, images)
    steps = {"forward": timing.warm_up(
        lambda: compiled_fwd(variables, images).block_until_ready(), warmup, peak_mb, compile_fwd)}

    timing.reset_peak_rss()
    compiled_step, compile_step = timing.compile_timed(
        setup.step, setup.state, images, labels, key)
    holder = {"state": setup.state}

    def run_step():
        holder["state"], loss = compiled_step(holder["state"], images, labels, key)
        loss.block_until_ready()

    steps["train_step"] = timing.warm_up(run_step, warmup, peak_mb, compile_step)
    return steps


def compile_train_step(model: str, *, batch_size: int, image_size: int, dtype: str = "float32",
                       optimizer: str = "sgd", impls: dict[str, str] | None = None) -> dict[str, Any]:
    """Lowers and compiles the affectjax train step (`make_affectjax_train_step`) once.

    Returns the JSON-able record: `config`, `device`, `versions`, `lower_s` (tracing and
    lowering to StableHLO) and `compile_s` (XLA's compilation), in seconds.
    """
    setup = make_affectjax_train_step(model, batch_size=batch_size, image_size=image_size,
                                      dtype=dtype, optimizer=optimizer, model_kwargs=impls)
    start = time.perf_counter()
    lowered = setup.step.lower(setup.state, setup.images, setup.labels, setup.key)
    lowered_at = time.perf_counter()
    lowered.compile()
    return {"config": {"model": model, "batch_size": batch_size, "image_size": image_size,
                       "dtype": dtype, "optimizer": optimizer, "impls": dict(impls or {})},
            "device": device_description(), "versions": {"jax": jax.__version__},
            "lower_s": lowered_at - start, "compile_s": time.perf_counter() - lowered_at}


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


PHASES = ("forward", "train_step")
FRAMEWORKS = ("affectjax", "torch", "variant")
VARIANT_RATIO = "{phase}_over_variant"
"""The ratio name of affectjax (as built) over `variant` (`run(variant=...)`) for a phase."""


def run(
    model: str,
    *,
    batch_size: int = 32,
    image_size: int = 224,
    dtype: str = "float32",
    rounds: int = 7,
    steps_per_round: int = 3,
    warmup: int = 3,
    repeat: int = 1,
    optimizer: str = "sgd",
    torch_reference_too: bool = True,
    torch_channels_last: bool = True,
    impls: dict[str, str] | None = None,
    variant: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Benchmarks affectjax (and the PyTorch reference) and returns the JSON-able record.

    Both frameworks' steps are built and warmed up, then each phase is timed in interleaved
    rounds (`timing.repeat_rounds`), `repeat` times. The record holds `config`, `device`,
    `cpu_count`, `versions`, the load averages before and after, per framework and phase
    the summary over all repeats (`affectjax`, `torch`, `variant`), `ratio`,
    `ratio_interval`, `intervals_overlap`, and `repeats` with every round's step seconds
    (`timing.results`).

    `impls` sets model attributes of `IMPL_ATTRIBUTES` (e.g. ``{"pool_impl": "xla"}``);
    `variant` builds a second affectjax model with these attributes changed on top of
    `impls` and times it in the same rounds: ratio ``<phase>_over_variant`` is affectjax
    as built over the variant, > 1 where the build's choice pays.
    """
    if model not in models.MODELS:
        raise registry.unknown_name_error("model", model, models.MODELS)
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    timing.check_settings(rounds=rounds, steps_per_round=steps_per_round, warmup=warmup,
                          repeat=repeat)
    build = dict(batch_size=batch_size, image_size=image_size, dtype=dtype, warmup=warmup,
                 optimizer=optimizer)
    record: dict[str, Any] = {
        "config": {"model": model, **build, "rounds": rounds, "steps_per_round": steps_per_round,
                   "repeat": repeat, "bootstrap": dict(timing.BOOTSTRAP),
                   "impls": dict(impls or {}), "variant": dict(variant or {})},
        "device": device_description(),
        "cpu_count": os.cpu_count(),
        "load_average_before": timing.load_average(),
        "versions": {"jax": jax.__version__},
    }
    prepared = {"affectjax": affectjax_steps(model, model_kwargs=impls, **build)}
    if variant:
        prepared["variant"] = affectjax_steps(model, model_kwargs={**(impls or {}), **variant},
                                              **build)
    if torch_reference_too:
        import torch

        record["versions"]["torch"] = torch.__version__
        record["torch_threads"] = torch.get_num_threads()
        fmt = "channels_last" if torch_channels_last else "contiguous (NCHW)"
        record["torch_memory_format"] = fmt
        prepared["torch"] = torch_bench.torch_steps(model, channels_last=torch_channels_last,
                                                    **build)
    by_phase = {p: {fw: steps[p] for fw, steps in prepared.items()} for p in PHASES}
    pairs = {p: {p: ("affectjax", "torch"), VARIANT_RATIO.format(phase=p): ("affectjax", "variant")}
             for p in PHASES}
    res = timing.measure(by_phase, batch=batch_size, pairs=pairs,
                         rounds=rounds, steps_per_round=steps_per_round, repeat=repeat)
    record.update(_by_framework(res))
    record["repeats"] = [_by_framework(rep) for rep in res["repeats"]]
    record["load_average_after"] = timing.load_average()
    return record


def _by_framework(part: dict[str, Any]) -> dict[str, Any]:
    """A `timing.results` part with its `summary` (phase -> framework -> x) turned into
    framework -> phase -> x at the top; its other keys but `repeats` kept."""
    by_phase = part["summary"]
    out = {k: v for k, v in part.items() if k not in ("summary", "repeats")}
    out.update({fw: {p: by_fw[fw] for p, by_fw in by_phase.items()}
                for fw in FRAMEWORKS if fw in by_phase[PHASES[0]]})
    return out
