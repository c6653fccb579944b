"""Streaming evaluation: per-batch sufficient statistics, merged, finalised once.

Dataset-level CCC and macro-F1 are not means of per-batch values, so the jitted eval step
returns sufficient statistics (`affectjax.metrics` streaming forms) that are merged over
the whole split and finalised at the end. The loader's last batch is padded to the batch
size (one compilation) and marked by ``batch["valid"]``, which every method folds into
its masks.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import jax
import numpy as np
from jax.experimental import multihost_utils

from affectjax.train.method import Method


def _to_host(tree: Any) -> Any:
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def evaluate(eval_step: Callable[..., Any], method: Method, state: Any,
             batches: Iterable[dict[str, np.ndarray]], shard: Callable[[Any], Any], *,
             max_points: int = 4000) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Runs one pass over `batches` and returns the method's metrics.

    Args:
      eval_step: jitted ``(state, batch) -> (stats, outputs)``.
      method: the `Method` (merge, finalize and collect functions).
      state: the train state.
      batches: host batches with a ``valid`` key (``Loader.eval_batches()``).
      shard: puts a host batch on the devices.
      max_points: predictions kept for plots (e.g. the valence/arousal scatter).

    Returns:
      ``(scalars, arrays)``: metric floats, and arrays for plots (the method's, plus the
      collected predictions, concatenated).
    """
    stats = None
    kept: dict[str, list[np.ndarray]] = {}
    count = 0
    # The eval step reads the model's variables only; without the phase's optimizer (its
    # state and its static transformation differ between phases) it compiles once per run.
    state = state.replace(opt_state=None, tx=None)
    for batch in batches:
        batch_stats, outputs = eval_step(state, shard(batch))
        batch_stats = jax.device_get(batch_stats)
        stats = batch_stats if stats is None else method.eval_merge(stats, batch_stats)
        if count < max_points:
            collected = method.collect(_to_host(outputs), batch)
            for key, value in collected.items():
                kept.setdefault(key, []).append(value)
            count += max((len(v) for v in collected.values()), default=0)
    if stats is None:
        raise ValueError("the evaluation split is empty")
    scalars, arrays = method.eval_finalize(jax.device_get(stats))
    arrays = dict(arrays)
    for key, values in kept.items():
        arrays[key] = np.concatenate(values)[:max_points]
    return scalars, arrays
