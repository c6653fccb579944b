"""Throughput of one CCT ensemble train step: stacked `jax.vmap` vs one network at a time.

    python -m affectjax.bench --method cct --num-networks 3 --model resnet18 --batch-size 32 \\
        --image-size 224 [--dtype bfloat16] [--rounds 7 --steps-per-round 3 --warmup 3] \\
        [--repeat 2] [--no-torch] [--json out.json]

Consensual collaborative training (CCT; Gera & Balasubramanian, "Consensual Collaborative
Training and Knowledge Distillation Based Facial Expression Recognition Under Noisy
Annotations") trains M networks on one batch with cross-entropy plus a pairwise KL consensus
term. For the model, batch, image size and dtype this times ONE optimizer step (Adam, lr
1e-3, unless `--optimizer` says otherwise) of each variant, in the same process:

* `single`: one network (one member), cross-entropy: `core.make_affectjax_train_step`;
* `vmapped`: M networks as one stacked pytree (`ensemble.init`, `ensemble.apply`,
  `ensemble.per_member`), loss `losses.cct_loss(logits (M, B, C), labels, lam=0.5)`, one
  `jax.jit` with the state donated;
* `unrolled`: the same stacked step with ``ensemble.apply(..., strategy="unroll")``: the
  members run one after another inside the one jitted program (M plain convolutions per
  layer instead of one grouped convolution, which XLA's CPU backend runs slowly);
* `sequential_jax`: the same M networks (same init) as M variable sets. A step runs the
  jitted train-mode forward of every member, then M calls of one jitted single-network step
  whose loss is (1 - lam) CE_j + lam sum_{k != j} KL(p_k || p_j) with the other members'
  logits as constants (stop-gradient): the authors' PyTorch scheme. JAX keeps no autograd
  graph between calls, so each member's step recomputes its own forward; that extra forward
  is the price of the scheme. The members' losses sum to `cct_loss` in value (the gradients
  differ: `cct_loss` also differentiates the target side of each KL). Member j's dropout
  key is `jax.random.split(key, M)[j]`, as in `ensemble.apply`;
* `torch`: the authors' way (`torch_reference.make_torch_cct_step`): M reference models and
  M optimizers, forward all M, each member's loss as above with the others detached, M
  `backward()` calls and M optimizer steps (`--no-torch` skips it).

Each step blocks on all its results (losses and states; `cuda.synchronize` for PyTorch).
After compilation and `--warmup` untimed steps each, the variants run `--rounds`
interleaved rounds of `--steps-per-round` steps, the order reversed every other round
(`timing.interleave`), `--repeat` times; images/s is batch size / median step time. Ratios
(`RATIOS`, each with a paired bootstrap 95 % interval over rounds, `timing.ratio_interval`):
`vmapped_cost_over_single` (vmapped step time / single step time; the goal is <= 2.4 for
M = 3 on a GPU), `unrolled_cost_over_single`, `vmapped_speedup_over_unrolled`,
`vmapped_speedup_over_sequential_jax` and `vmapped_speedup_over_torch` (their step time /
vmapped's; > 1 means vmapped is faster). `first_loss` is the loss of the first step, the
same for vmapped and sequential_jax up to rounding. Peak memory (over compilation and
warm-up) uses `core`'s helpers; on a GPU JAX's peak counts from the process start, so each
of single, vmapped and sequential_jax (built in this order) includes the earlier ones.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from affectjax import ensemble
from affectjax import losses
from affectjax import models
from affectjax import registry
from affectjax.bench import core
from affectjax.bench import timing
from affectjax.bench import torch_reference as torch_bench

LAM = 0.5
MAX_NETWORKS = 4


def check_num_networks(num_networks: Any) -> int:
    """Returns `num_networks` if it is an int in 1..4; else a one-line ValueError."""
    if type(num_networks) is not int or not 1 <= num_networks <= MAX_NETWORKS:
        raise ValueError(f"--num-networks must be an integer from 1 to {MAX_NETWORKS}, "
                         f"got {num_networks!r}")
    return num_networks


def _warm(step_once: Callable[[], Any], compile_s: float | None, cfg: dict[str, Any],
          peak_mb: Callable[[], float], first_loss: dict[str, float],
          name: str) -> timing.Prepared:
    """Warms `step_once` up (it blocks and returns the loss or the members' losses);
    `first_loss[name]` gets the summed loss of its first call."""

    def call():
        loss = step_once()
        if name not in first_loss:
            first_loss[name] = sum(float(x) for x in jax.tree.leaves(loss))

    return timing.warm_up(call, cfg["warmup"], peak_mb, compile_s)


def _jitted(step: Any, state: Any, args: tuple, cfg: dict[str, Any],
            peak_mb: Callable[[], float], first_loss: dict[str, float],
            name: str) -> timing.Prepared:
    """Compiles and warms up `step(state, *args) -> (state, loss)`, state donated."""
    timing.reset_peak_rss()
    compiled, compile_s = timing.compile_timed(step, state, *args)
    holder = [state]

    def once():
        holder[0], loss = compiled(holder[0], *args)
        return jax.block_until_ready((holder[0], loss))[1]

    return _warm(once, compile_s, cfg, peak_mb, first_loss, name)


def _optimize(tx: optax.GradientTransformation, loss_fn: Callable[..., Any],
              state: dict[str, Any]) -> tuple[dict[str, Any], jax.Array]:
    """One update of `state` ({params, batch_stats, opt_state}) by `loss_fn(params)`."""
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "batch_stats": stats, "opt_state": opt_state}, loss


def jax_steps(model_name: str, num_networks: int, cfg: dict[str, Any],
              first_loss: dict[str, float]) -> dict[str, timing.Prepared]:
    """The `single`, `vmapped`, `unrolled` and `sequential_jax` steps (module docstring),
    compiled and warmed up; `first_loss` gets each one's first loss."""
    m = num_networks
    setup = core.make_affectjax_train_step(
        model_name, batch_size=cfg["batch_size"], image_size=cfg["image_size"],
        dtype=cfg["dtype"], optimizer=cfg["optimizer"])
    model, images, labels, key = setup.model, setup.images, setup.labels, setup.key

    def peak_mb() -> float:
        return core._jax_peak_mb(jax.devices()[0]) or timing.peak_rss_mb()

    results = {"single": _jitted(setup.step, setup.state, (images, labels, key), cfg,
                                 peak_mb, first_loss, "single")}
    tx = ensemble.per_member(core._optimizer(cfg["optimizer"]))
    single_tx = core._optimizer(cfg["optimizer"])

    @functools.partial(jax.jit, static_argnums=2)
    def init(key, images, sequential):  # the same M members for vmapped and sequential_jax
        stacked = ensemble.init(model, key, m, images, train=False)
        if not sequential:
            return {**stacked, "opt_state": tx.init(stacked["params"])}
        members = [ensemble.member(stacked, j) for j in range(m)]
        return [{**v, "opt_state": single_tx.init(v["params"])} for v in members]

    # vmapped (and unrolled): one stacked pytree, one jitted step.
    def stacked_step(strategy):
        forward_all = ensemble.apply(model, mutable=["batch_stats"], strategy=strategy)

        def step(state, images, labels, key):
            def loss_fn(params):
                (outputs, _), new = forward_all(
                    {"params": params, "batch_stats": state["batch_stats"]}, images,
                    train=True, rngs={"dropout": key})
                logits = outputs["logits"].astype(jnp.float32)
                return losses.cct_loss(logits, labels, lam=LAM), new["batch_stats"]

            return _optimize(tx, loss_fn, state)

        return jax.jit(step, donate_argnums=(0,))

    for name, strategy in (("vmapped", "vmap"), ("unrolled", "unroll")):
        results[name] = _jitted(stacked_step(strategy), init(jax.random.key(0), images, False),
                                (images, labels, key), cfg, peak_mb, first_loss, name)

    # sequential_jax: M variable sets, M forwards, then M calls of one jitted step.
    keys = list(jax.random.split(key, m))  # member j's dropout key, as in ensemble.apply
    indices = [jnp.asarray(j, jnp.int32) for j in range(m)]

    def apply_train(params, batch_stats, images, key):
        (outputs, _), new = model.apply({"params": params, "batch_stats": batch_stats}, images,
                                        train=True, mutable=["batch_stats"],
                                        rngs={"dropout": key})
        return outputs["logits"].astype(jnp.float32), new["batch_stats"]

    @jax.jit
    def forward(state, images, key):
        return apply_train(state["params"], state["batch_stats"], images, key)[0]

    def member_step(state, images, labels, all_logits, j, key):
        targets = jax.lax.stop_gradient(jnp.stack(all_logits))  # (M, B, C), constants

        def loss_fn(params):
            logits, stats = apply_train(params, state["batch_stats"], images, key)
            ce = losses.softmax_cross_entropy(logits, labels).mean()
            kl = losses.kl_div(targets, jnp.broadcast_to(logits, targets.shape)).mean(-1)
            return (1 - LAM) * ce + LAM * jnp.where(jnp.arange(m) != j, kl, 0.0).sum(), stats

        return _optimize(single_tx, loss_fn, state)

    holder = init(jax.random.key(0), images, True)
    timing.reset_peak_rss()
    fwd, compile_fwd = timing.compile_timed(forward, holder[0], images, keys[0])
    logits0 = tuple(fwd(s, images, k) for s, k in zip(holder, keys))
    step, compile_step = timing.compile_timed(jax.jit(member_step, donate_argnums=(0,)),
                                              holder[0], images, labels, logits0, indices[0],
                                              keys[0])

    def sequential_once():
        all_logits = tuple(fwd(s, images, k) for s, k in zip(holder, keys))
        outs = [step(s, images, labels, all_logits, j, k)
                for s, j, k in zip(holder, indices, keys)]
        holder[:] = [s for s, _ in outs]
        return [loss for _, loss in jax.block_until_ready(outs)]

    results["sequential_jax"] = _warm(sequential_once, compile_fwd + compile_step, cfg, peak_mb,
                                      first_loss, "sequential_jax")
    return results


def torch_step(model_name: str, num_networks: int, cfg: dict[str, Any],
               first_loss: dict[str, float], channels_last: bool = True) -> timing.Prepared:
    """The authors' PyTorch scheme (`torch_reference.make_torch_cct_step`), warmed up."""
    step_once, peak_mb = torch_bench.make_torch_cct_step(
        model_name, num_networks=num_networks, lam=LAM, batch_size=cfg["batch_size"],
        image_size=cfg["image_size"], dtype=cfg["dtype"], optimizer=cfg["optimizer"],
        channels_last=channels_last)
    timing.reset_peak_rss()
    return _warm(step_once, None, cfg, peak_mb, first_loss, "torch")


RATIOS = {
    "vmapped_cost_over_single": ("single", "vmapped"),
    "unrolled_cost_over_single": ("single", "unrolled"),
    "vmapped_speedup_over_unrolled": ("vmapped", "unrolled"),
    "vmapped_speedup_over_sequential_jax": ("vmapped", "sequential_jax"),
    "vmapped_speedup_over_torch": ("vmapped", "torch"),
}
"""Ratio name -> (A, B) for `timing.ratio_interval` (B's step time over A's)."""


def run(model: str, *, num_networks: int = 3, batch_size: int = 32, image_size: int = 224,
        dtype: str = "float32", rounds: int = 7, steps_per_round: int = 3, warmup: int = 3,
        repeat: int = 1, optimizer: str = "adam", torch_reference_too: bool = True,
        torch_channels_last: bool = True) -> dict[str, Any]:
    """Benchmarks the CCT ensemble step and returns the JSON-able record.

    The variants are timed in interleaved rounds (`timing.measure`), the record laid out as
    `core.run`'s with `cct` (variant -> summary over all repeats, with `first_loss`) in
    place of the frameworks, and `RATIOS` as its ratios.
    """
    num_networks = check_num_networks(num_networks)
    if model not in models.MODELS:
        raise registry.unknown_name_error("model", model, models.MODELS)
    if dtype not in core.DTYPES:
        raise ValueError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    timing.check_settings(rounds=rounds, steps_per_round=steps_per_round, warmup=warmup,
                          repeat=repeat)
    cfg = dict(batch_size=batch_size, image_size=image_size, dtype=dtype, warmup=warmup,
               optimizer=optimizer)
    record: dict[str, Any] = {
        "config": {"model": model, "method": "cct", "num_networks": num_networks, "lam": LAM,
                   **cfg, "rounds": rounds, "steps_per_round": steps_per_round,
                   "repeat": repeat, "bootstrap": dict(timing.BOOTSTRAP)},
        "device": core.device_description(),
        "cpu_count": os.cpu_count(),
        "load_average_before": timing.load_average(),
        "versions": {"jax": jax.__version__},
    }
    first_loss: dict[str, float] = {}
    prepared = jax_steps(model, num_networks, cfg, first_loss)
    if torch_reference_too:
        import torch

        record["versions"]["torch"] = torch.__version__
        record["torch_threads"] = torch.get_num_threads()
        prepared["torch"] = torch_step(model, num_networks, cfg, first_loss, torch_channels_last)
    res = timing.measure({"train_step": prepared}, batch=batch_size,
                         pairs={"train_step": RATIOS}, rounds=rounds,
                         steps_per_round=steps_per_round, repeat=repeat)
    record.update(_variants(res))
    for name, summary in record["cct"].items():
        summary["first_loss"] = first_loss[name]
    record["repeats"] = [_variants(rep) for rep in res["repeats"]]
    record["load_average_after"] = timing.load_average()
    return record


def _variants(part: dict[str, Any]) -> dict[str, Any]:
    """A `timing.results` part with its `summary` as `cct` (variant -> summary); its other
    keys but `repeats` kept."""
    out = {k: v for k, v in part.items() if k not in ("summary", "repeats")}
    out["cct"] = part["summary"]["train_step"]
    return out
