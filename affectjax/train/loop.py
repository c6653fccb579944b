"""The training loop: ``train_and_evaluate(config, workdir)`` and the CLI entry ``run``.

One run = a sequence of *phases* (``config.phase_order``; e.g. MT-EmotiEffNet's head-only
phase, then all weights), each with its epochs, learning rate and trainable parameter
groups. A phase builds its optimizer (fresh state, as a new optimizer in the authors'
code) and jits its train step once. The data stream is global: step ``s`` of the run
consumes batch ``s`` of ``Loader.iterate()``, so resuming at step ``s`` replays exactly
the batches (and, via ``fold_in(rng, step)``, the random draws) an uninterrupted run
would see.

Per step nothing syncs with the host; metrics are fetched every ``log_every_steps``
(and before every checkpoint), checked for non-finite values, averaged and logged.
Evaluation runs after every ``eval_every_epochs`` epochs and at the end; the best
evaluation (``method.best_metric``) is also checkpointed to ``best/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from affectjax.train import checkpoint as ckpt_lib
from affectjax.train import evaluation as eval_lib
from affectjax.train import logs
from affectjax.train import plots
from affectjax.train.errors import ConfigError, NonFiniteLossError, UserError, one_line
from affectjax.train.method import Method
from affectjax.train.setup import (RunSetup, build_phase_optimizer, initialize_distributed,
                                   setup_run, user_errors)


class _Interval:
    """Per-step device metrics since the last host fetch."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.pending: list[tuple[int, Any]] = []
        self.start = time.perf_counter()

    def restart(self) -> None:
        self.start = time.perf_counter()

    def add(self, step: int, metrics: Any) -> None:
        self.pending.append((step, metrics))

    def flush(self) -> dict[str, float] | None:
        """Fetches pending metrics, raises on a non-finite one, returns their means."""
        if not self.pending:
            return None
        fetched = jax.device_get([m for _, m in self.pending])
        for (step, _), metrics in zip(self.pending, fetched):
            for name, value in metrics.items():
                if name.startswith("loss") and not np.all(np.isfinite(value)):
                    raise NonFiniteLossError(step, name, float(np.asarray(value).ravel()[0]))
        means = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
        seconds = time.perf_counter() - self.start
        means["images_per_s"] = len(fetched) * self.batch_size / max(seconds, 1e-9)
        self.pending, self.start = [], time.perf_counter()
        return means


def _write_json(path: str, payload: dict[str, Any]) -> None:
    if jax.process_index() != 0:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def make_workdir(workdir: str) -> None:
    """Creates the run directory; one that cannot be created or written is a `UserError`."""
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as exc:
        parent = os.path.dirname(os.path.abspath(workdir))
        while parent and not os.path.exists(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        if os.path.exists(workdir):
            reason = "it exists and is not a directory"
        elif os.path.exists(parent) and not os.path.isdir(parent):
            reason = f"{parent} is a file, not a directory"
        else:
            reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot create the workdir {workdir}: {reason} (--workdir)") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise UserError(f"the workdir {workdir} is not writable (--workdir)")


def train_and_evaluate(config: Any, workdir: str, method: Method) -> dict[str, Any]:
    """Trains and evaluates `method` as `config` says, writing everything into `workdir`.

    Resumes from the newest checkpoint in ``workdir/checkpoints`` that restores (a damaged
    newer one is skipped with one warning line and moved to ``workdir/corrupt_checkpoints``,
    see `affectjax.train.checkpoint.Checkpointer.restore_latest`). A method with a
    ``pipeline`` (`affectjax.train.method.Method`) runs that instead of the loop (its
    stages call this function again with their own method and config).
    `affectjax.methods.train_and_evaluate` resolves ``config.method`` and calls this.

    Args:
      config: the run's `ml_collections.ConfigDict` (see ``configs/``).
      workdir: the run directory (created if needed).
      method: the `Method` to train.

    Returns:
      The content of ``final_metrics.json``.

    Raises:
      UserError: a bad config, missing data, a workdir that cannot be created (one-line
        message), checkpoints that do not fit this config or none of which restores,
        or a non-finite loss.
    """
    initialize_distributed(config)
    if method.specialize is not None:
        method = method.specialize(config)
    if method.pipeline is not None:
        make_workdir(workdir)
        logs.save_config(config, workdir)
        return method.pipeline(config, workdir)
    return fit(config, workdir, method)[1]


def fit(config: Any, workdir: str, method: Method) -> tuple[Any, dict[str, Any]]:
    """The loop as a stage of a pipeline: `train_and_evaluate` that also returns the state.

    Runs the generic loop for `method` (``specialize``d to `config`; its ``pipeline``
    is ignored) and returns ``(state, final_metrics)``, the trained `TrainState` (on the devices) and the content
    of ``final_metrics.json``. A finished run in `workdir` is not trained again: its last
    checkpoint is restored, evaluated and returned.
    """
    initialize_distributed(config)
    make_workdir(workdir)
    logs.save_config(config, workdir)
    with user_errors():
        if method.specialize is not None:
            method = method.specialize(config)
        run = setup_run(config, workdir, method)
    return _train(run, config, workdir)


def _check_evaluation(method: Method, scalars: dict[str, Any], arrays: dict[str, Any],
                      class_names: tuple[str, ...] | None) -> None:
    """At the first evaluation, not after training: the method's metrics fit its contract."""
    if method.best_metric not in scalars:
        raise ConfigError(f"method {method.name!r}: best_metric {method.best_metric!r} is not "
                          f"among its evaluation metrics {sorted(scalars)}")
    cm = arrays.get("confusion_matrix")
    if cm is not None and class_names is not None and len(class_names) != np.shape(cm)[0]:
        raise ConfigError(f"method {method.name!r}: {len(class_names)} class names "
                          f"{list(class_names)} for its {np.shape(cm)[0]}-class confusion matrix")


def _train(run: RunSetup, config: Any, workdir: str) -> tuple[Any, dict[str, Any]]:
    method, phases = run.method, run.phases
    checkpointer = ckpt_lib.Checkpointer(workdir, max_to_keep=config.get("keep_checkpoints", 2))
    state, phase_index = run.state, 0
    best = {"metric": method.best_metric, "mode": method.best_mode, "value": None,
            "step": None}
    try:  # the newest checkpoint that restores; damaged ones are skipped with a warning
        restored = checkpointer.restore_latest(
            lambda meta: build_phase_optimizer(run, run.state, phases[int(meta["phase"])]))
    except UserError:
        checkpointer.close()
        raise
    latest = None
    if restored is not None:
        latest, state, meta = restored
        phase_index = int(meta["phase"])
        best = meta.get("best", best)
    start = int(jax.device_get(state.step))
    total = phases[-1].end
    log = logs.RunLog(workdir, resume_step=start)
    progress = logs.Progress(total, start, enabled=config.get("progress_bar", True))
    if latest is not None:
        progress.write(f"resuming from {workdir}/checkpoints/{latest} (step {start} of {total})")

    def meta() -> dict[str, Any]:
        return {"phase": phase_index, "data_step": int(jax.device_get(state.step)),
                "best": best, "total_steps": total}

    def evaluate_now(step: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        nonlocal best
        scalars, arrays = eval_lib.evaluate(
            run.eval_step, method, state, run.eval_loader.eval_batches(), run.shard,
            max_points=config.get("max_plot_points", 4000))
        _check_evaluation(method, scalars, arrays, run.class_names)
        log.write(step, "eval", scalars)
        value = scalars[method.best_metric]
        if method.is_better(value, best["value"]):
            best = {"metric": method.best_metric, "mode": method.best_mode, "value": value,
                    "step": step}
            checkpointer.save(state, meta(), best=True)
            log.write(step, "best", {method.best_metric: value})
        return scalars, arrays

    t0 = time.perf_counter()
    spe, eval_every = run.steps_per_epoch, max(int(config.get("eval_every_epochs", 1)), 1)
    log_every = max(int(config.get("log_every_steps", 50)), 1)
    ckpt_every = max(int(config.get("checkpoint_every_steps", 500)), 1)
    ckpt_epochs = max(int(config.get("checkpoint_every_epochs", 1)), 1)
    scalars = arrays = None
    interval = _Interval(run.batch_size)
    data = run.train_loader.iterate(start_step=start)
    step = start
    try:
        for phase in phases:
            if step >= phase.end:
                continue
            if phase.index != phase_index:
                phase_index = phase.index
                state = build_phase_optimizer(run, state, phase)
            train_step = run.make_train_step(phase)
            while step < phase.end:
                state, metrics = train_step(state, run.shard(next(data)), run.rng)
                step += 1
                interval.add(step, metrics)
                progress.update()
                epoch_end = step % spe == 0
                do_eval = (epoch_end and (step // spe) % eval_every == 0) or step == total
                do_ckpt = (step % ckpt_every == 0 or step == phase.end
                           or (epoch_end and (step // spe) % ckpt_epochs == 0))
                if step % log_every == 0 or do_eval or do_ckpt:
                    means = interval.flush()
                    if means:
                        log.write(step, "train", dict(means, phase=phase.name))
                        progress.show(loss=means["loss"], img_s=round(means["images_per_s"]))
                if do_eval:
                    scalars, arrays = evaluate_now(step)
                    progress.write(f"step {step}: " + " ".join(
                        f"{k}={v:.4f}" for k, v in scalars.items() if isinstance(v, float)))
                if do_ckpt:
                    checkpointer.save(state, meta())
                if do_eval or do_ckpt:
                    interval.restart()  # throughput counts training steps only
        if scalars is None:  # resumed after the last step: evaluate the final state again
            scalars, arrays = eval_lib.evaluate(
                run.eval_step, method, state, run.eval_loader.eval_batches(), run.shard,
                max_points=config.get("max_plot_points", 4000))
    finally:
        progress.close()
        log.close()
        checkpointer.close()
    seconds = time.perf_counter() - t0
    final = {"step": step, "epochs": step / spe, "eval": scalars, "best": best,
             "train": next((r for r in reversed(log.records) if r["split"] == "train"), None),
             "seconds": round(seconds, 2), "method": method.name, "workdir": workdir,
             "num_devices": int(run.mesh.devices.size)}
    _write_json(os.path.join(workdir, "final_metrics.json"), final)
    if jax.process_index() == 0:
        final["plots"] = plots.write_plots(workdir, log.records, scalars, arrays,
                                           run.class_names)
        print(logs.summary_line(steps=step, seconds=seconds, scalars=scalars, best=best,
                                workdir=workdir), flush=True)
    return state, final


@contextlib.contextmanager
def cli_errors():
    """Ends the program with one ``error:`` line for the user's mistakes.

    A `UserError` (bad config value, unknown name, missing data) prints
    ``error: <message>`` on stderr and exits with status 2; a non-finite loss exits
    with status 1 (the last good checkpoint is kept).
    """
    try:
        yield
    except NonFiniteLossError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def run(config: Any, workdir: str, method: Method) -> dict[str, Any]:
    """The command-line entry: `train_and_evaluate` under `cli_errors`."""
    with cli_errors():
        return train_and_evaluate(config, workdir, method)
