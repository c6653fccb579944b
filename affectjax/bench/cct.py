"""Throughput of one CCT ensemble train step: stacked `jax.vmap` vs one network at a time.

    python -m affectjax.bench --method cct --num-networks 3 --model resnet18 --batch-size 32 \\
        --image-size 224 [--dtype bfloat16] [--steps 20] [--warmup 3] [--no-torch] [--json out.json]

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

Each step blocks on all its results (losses and states; `cuda.synchronize` for PyTorch);
images/s is batch size / median step time. Ratios: `vmapped_cost_over_single` (vmapped
step time / single step time; the goal is <= 2.4 for M = 3 on a GPU),
`unrolled_cost_over_single`, `vmapped_speedup_over_unrolled`,
`vmapped_speedup_over_sequential_jax` and `vmapped_speedup_over_torch` (their step time /
vmapped's; > 1 means vmapped is faster). `first_loss` is the loss of the first step, the
same for vmapped and sequential_jax up to rounding. Peak memory uses `core`'s helpers; on a
GPU JAX's peak counts from the process start, so each of single, vmapped and sequential_jax
(run in this order) includes the earlier ones.
"""

from __future__ import annotations

import functools
import os
import time
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


def _measure(step_once: Callable[[], Any], compile_s: float | None, cfg: dict[str, Any],
             peak_mb: Callable[[], float]) -> dict[str, Any]:
    """Times `step_once` as `core` does; it blocks and returns the loss (or members' losses)."""
    first: list[Any] = []

    def call():
        loss = step_once()
        if not first:
            first.append(loss)

    timing.reset_peak_rss()
    times = timing.time_steps(call, cfg["steps"], cfg["warmup"])
    result = timing.summary(times, cfg["batch_size"], compile_s, peak_mb())
    result["first_loss"] = sum(float(x) for x in jax.tree.leaves(first[0]))
    return result


def _compile(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = fn.lower(*args).compile()
    return compiled, time.perf_counter() - start


def _time_jitted(step: Any, state: Any, args: tuple, cfg: dict[str, Any],
                 peak_mb: Callable[[], float]) -> dict[str, Any]:
    """Compiles and times `step(state, *args) -> (state, loss)`, state donated."""
    compiled, compile_s = _compile(step, state, *args)
    holder = [state]

    def once():
        holder[0], loss = compiled(holder[0], *args)
        return jax.block_until_ready((holder[0], loss))[1]

    return _measure(once, compile_s, cfg, peak_mb)


def _optimize(tx: optax.GradientTransformation, loss_fn: Callable[..., Any],
              state: dict[str, Any]) -> tuple[dict[str, Any], jax.Array]:
    """One update of `state` ({params, batch_stats, opt_state}) by `loss_fn(params)`."""
    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    return {"params": params, "batch_stats": stats, "opt_state": opt_state}, loss


def bench_jax(model_name: str, num_networks: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Times the `single`, `vmapped`, `unrolled` and `sequential_jax` steps (module docstring)."""
    m = num_networks
    setup = core.make_affectjax_train_step(
        model_name, batch_size=cfg["batch_size"], image_size=cfg["image_size"],
        dtype=cfg["dtype"], optimizer=cfg["optimizer"])
    model, images, labels, key = setup.model, setup.images, setup.labels, setup.key

    def peak_mb() -> float:
        return core._jax_peak_mb(jax.devices()[0]) or timing.peak_rss_mb()

    results = {"single": _time_jitted(setup.step, setup.state, (images, labels, key), cfg,
                                      peak_mb)}
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
        results[name] = _time_jitted(stacked_step(strategy),
                                     init(jax.random.key(0), images, False),
                                     (images, labels, key), cfg, peak_mb)

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
    fwd, compile_fwd = _compile(forward, holder[0], images, keys[0])
    logits0 = tuple(fwd(s, images, k) for s, k in zip(holder, keys))
    step, compile_step = _compile(jax.jit(member_step, donate_argnums=(0,)), holder[0],
                                  images, labels, logits0, indices[0], keys[0])

    def sequential_once():
        all_logits = tuple(fwd(s, images, k) for s, k in zip(holder, keys))
        outs = [step(s, images, labels, all_logits, j, k)
                for s, j, k in zip(holder, indices, keys)]
        holder[:] = [s for s, _ in outs]
        return [loss for _, loss in jax.block_until_ready(outs)]

    results["sequential_jax"] = _measure(sequential_once, compile_fwd + compile_step, cfg,
                                         peak_mb)
    return results


def bench_torch(model_name: str, num_networks: int, cfg: dict[str, Any],
                channels_last: bool = True) -> dict[str, Any]:
    """Times the authors' PyTorch scheme (`torch_reference.make_torch_cct_step`)."""
    step_once, peak_mb = torch_bench.make_torch_cct_step(
        model_name, num_networks=num_networks, lam=LAM, batch_size=cfg["batch_size"],
        image_size=cfg["image_size"], dtype=cfg["dtype"], optimizer=cfg["optimizer"],
        channels_last=channels_last)
    return _measure(step_once, None, cfg, peak_mb)


def run(model: str, *, num_networks: int = 3, batch_size: int = 32, image_size: int = 224,
        dtype: str = "float32", steps: int = 20, warmup: int = 3, optimizer: str = "adam",
        torch_reference_too: bool = True, torch_channels_last: bool = True) -> dict[str, Any]:
    """Benchmarks the CCT ensemble step and returns the JSON-able record."""
    num_networks = check_num_networks(num_networks)
    if model not in models.MODELS:
        raise registry.unknown_name_error("model", model, models.MODELS)
    if dtype not in core.DTYPES:
        raise ValueError(f"--dtype must be float32 or bfloat16, got {dtype!r}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"--steps must be >= 1 and --warmup >= 0, got {steps} and {warmup}")
    cfg = dict(batch_size=batch_size, image_size=image_size, dtype=dtype, steps=steps,
               warmup=warmup, optimizer=optimizer)
    record: dict[str, Any] = {
        "config": {"model": model, "method": "cct", "num_networks": num_networks, "lam": LAM,
                   **cfg},
        "device": core.device_description(),
        "load_average_before": list(os.getloadavg()),
        "versions": {"jax": jax.__version__},
        "cct": bench_jax(model, num_networks, cfg),
    }
    if torch_reference_too:
        import torch

        record["versions"]["torch"] = torch.__version__
        record["torch_threads"] = torch.get_num_threads()
        record["cct"]["torch"] = bench_torch(model, num_networks, cfg, torch_channels_last)
    t = {name: r["median_step_s"] for name, r in record["cct"].items()}
    record["ratio"] = {"vmapped_cost_over_single": t["vmapped"] / t["single"],
                       "unrolled_cost_over_single": t["unrolled"] / t["single"]}
    for other in ("unrolled", "sequential_jax", "torch"):
        if other in t:
            record["ratio"][f"vmapped_speedup_over_{other}"] = t[other] / t["vmapped"]
    record["load_average_after"] = list(os.getloadavg())
    return record


VARIANTS = {
    "single": "single (1 net, CE)",
    "vmapped": "vmapped (M nets, 1 jit)",
    "unrolled": "unrolled (M nets, 1 jit, loop)",
    "sequential_jax": "sequential_jax (M fwd + M jitted steps)",
    "torch": "torch (M models, M backward)",
}


def format_table(record: dict[str, Any]) -> str:
    """Renders a `run` record as a Markdown table and the ratios under it."""
    cfg, versions, m = record["config"], record["versions"], record["config"]["num_networks"]
    lines = [
        f"CCT ensemble train step, M={m} networks, lam {cfg['lam']}: model {cfg['model']}, "
        f"batch {cfg['batch_size']}, {cfg['image_size']}x{cfg['image_size']}, {cfg['dtype']}, "
        f"optimizer {cfg['optimizer']}, median of {cfg['steps']} steps after {cfg['warmup']} "
        f"warm-up; device {record['device']}; jax {versions['jax']}, torch "
        f"{versions.get('torch', '-')}; 1-min load average "
        f"{record['load_average_before'][0]:.1f} before, "
        f"{record['load_average_after'][0]:.1f} after", "",
        "| variant | img/s | step ms | compile s | peak MB | first loss |",
        "|---|---|---|---|---|---|"]
    for name, label in VARIANTS.items():
        r = record["cct"].get(name)
        cells = ["-"] * 5 if r is None else [
            f"{r['images_per_s']:.1f}", f"{1e3 * r['median_step_s']:.1f}",
            "-" if r["compile_s"] is None else f"{r['compile_s']:.1f}",
            f"{r['peak_memory_mb']:.0f}", f"{r['first_loss']:.4f}"]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    ratio = {k: f"{v:.2f}x" for k, v in record["ratio"].items()}
    lines += ["", f"vmapped / single step time: {ratio['vmapped_cost_over_single']} (goal <= "
              f"2.4x for M=3 on GPU), unrolled / single: {ratio['unrolled_cost_over_single']}; "
              f"vmapped speed-up over unrolled: {ratio['vmapped_speedup_over_unrolled']}, over "
              f"sequential_jax: {ratio['vmapped_speedup_over_sequential_jax']}, over torch: "
              f"{ratio.get('vmapped_speedup_over_torch', '-')}"]
    return "\n".join(lines)
