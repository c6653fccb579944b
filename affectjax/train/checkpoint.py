"""Orbax checkpoints: periodic (latest, for resuming) and best-by-validation.

Layout inside the workdir::

    checkpoints/<step>/state   TrainState arrays (params, batch_stats, opt_state,
                               balancer state and params, step)
    checkpoints/<step>/meta    JSON: step, phase index, data position, best metric so far
    best/<step>/...            the same, for the best evaluation so far

Both are `ocp.CheckpointManager`s saving ``ocp.args.Composite(state=StandardSave,
meta=JsonSave)``. Orbax writes into a temporary directory and renames it when complete,
so a run killed mid-save leaves the previous checkpoint intact. Saves are synchronous:
the train state is donated to the next step, and a resumed run must see exactly what
was saved.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from affectjax.train.state import TrainState

_FIELDS = ("step", "params", "batch_stats", "opt_state", "balancer_state",
           "balancer_params")


def state_tree(state: TrainState) -> dict[str, Any]:
    """The checkpointed arrays of `state` as a plain dict (static fields dropped)."""
    return {name: getattr(state, name) for name in _FIELDS}


def _abstract(tree: Any) -> Any:
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree)


class Checkpointer:
    """The run's two checkpoint managers.

    Args:
      workdir: the run directory.
      max_to_keep: periodic checkpoints kept.
    """

    def __init__(self, workdir: str, *, max_to_keep: int = 2):
        workdir = os.path.abspath(workdir)
        def manager(sub: str, keep: int) -> ocp.CheckpointManager:
            options = ocp.CheckpointManagerOptions(
                max_to_keep=keep, create=True, enable_async_checkpointing=False)
            return ocp.CheckpointManager(os.path.join(workdir, sub), options=options,
                                         item_names=("state", "meta"))
        self.latest = manager("checkpoints", max_to_keep)
        self.best = manager("best", 1)

    def latest_step(self) -> int | None:
        """The step of the newest complete periodic checkpoint, or None."""
        return self.latest.latest_step()

    def save(self, state: TrainState, meta: dict[str, Any], *, best: bool = False) -> None:
        """Saves `state` and `meta` at ``state.step`` (into ``best/`` when `best`)."""
        manager = self.best if best else self.latest
        step = int(jax.device_get(state.step))
        if step in manager.all_steps():
            return
        manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state_tree(state)),
            meta=ocp.args.JsonSave(dict(meta, step=step))))
        manager.wait_until_finished()

    def restore_meta(self, step: int) -> dict[str, Any]:
        """The JSON metadata of periodic checkpoint `step`."""
        return self.latest.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, step: int, target: TrainState) -> TrainState:
        """Restores periodic checkpoint `step` into the structure and shardings of `target`.

        Args:
          step: the checkpoint step.
          target: a state with the same structure (same phase's optimizer), whose arrays
            give the shapes, dtypes and shardings to restore to.

        Returns:
          `target` with every array replaced by the checkpoint's.
        """
        restored = self.latest.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(state_tree(target)))))["state"]
        return target.replace(**restored)

    def close(self) -> None:
        self.latest.close()
        self.best.close()
