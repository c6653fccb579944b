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

A checkpoint damaged afterwards (files truncated, overwritten or deleted) is skipped by
`Checkpointer.restore_latest`, which resumes from the newest one that restores and moves
the damaged one aside; `restore_stored` names a damaged checkpoint in one `DataError`
line. Neither lets Orbax's asyncio and TensorStore reports reach the console.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import warnings
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp

from affectjax.train.errors import ConfigError, DataError, one_line
from affectjax.train.state import TrainState

_FIELDS = ("step", "params", "batch_stats", "opt_state", "balancer_state",
           "balancer_params")


def state_tree(state: TrainState) -> dict[str, Any]:
    """The checkpointed arrays of `state` as a plain dict (static fields dropped)."""
    return {name: getattr(state, name) for name in _FIELDS}


# What Orbax (0.12, TensorStore OCDBT format) raises for a damaged checkpoint:
#   array files under state/ truncated, overwritten or deleted, manifest.ocdbt deleted or
#     overwritten: ValueError carrying a TensorStore status (OUT_OF_RANGE, DATA_LOSS,
#     NOT_FOUND);
#   state/_METADATA deleted: ValueError ("pytree structure error": the stored tree loses
#     its named tuples); state/_METADATA, state/array_metadatas or meta/metadata
#     overwritten: json.JSONDecodeError (a ValueError);
#   meta/metadata deleted: FileNotFoundError; the state/ or meta/ directory deleted:
#     KeyError ("Item ... was not found in the checkpoint").
_READ_ERRORS = (OSError, ValueError, KeyError)
# Orbax's own comparison of a readable checkpoint with the restore target: the checkpoint
# is intact but was written for another model, optimizer or phase layout.
_MISMATCH = ("tree structures do not match", "is not compatible with the stored shape")
CORRUPT_DIR = "corrupt_checkpoints"


def _abandoned_read(unraisable: Any) -> bool:
    """Whether `unraisable` is a leftover of a restore that Orbax gave up on."""
    exc, obj = unraisable.exc_value, unraisable.object
    if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
        return True
    code = getattr(obj, "cr_code", None)  # a coroutine, closed when garbage-collected
    return (code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename
            and isinstance(exc.__cause__ or exc.__context__, GeneratorExit))


class _DropAbandonedReads(logging.Filter):
    """Drops asyncio's reports of the TensorStore reads a failed restore left behind."""

    MESSAGES = ("Future exception was never retrieved", "Task exception was never retrieved",
                "Task was destroyed but it is pending")

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if not message.startswith(self.MESSAGES):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        return not ("tensorstore_spec" in str(exc) or f"{os.sep}orbax{os.sep}" in message)


def _drop_abandoned_read_reports() -> None:
    """Keeps the leftovers of a failed restore off the console, for the rest of the run.

    Orbax runs a restore in its own asyncio loop and closes it as soon as one read fails.
    What was still in flight is reported later, each with a traceback: TensorStore reads
    finishing into the closed loop (``RuntimeError: Event loop is closed`` through
    `sys.unraisablehook`, up to a second after the restore returned); futures and tasks
    whose TensorStore error nobody retrieved (asyncio's logger, when garbage-collected);
    Orbax's read coroutines turning the ``GeneratorExit`` of their collection into another
    exception (`sys.unraisablehook`). A page of tracebacks per damaged checkpoint, at any
    later moment. Only these reports are dropped; every other one goes through.
    """
    previous = sys.unraisablehook
    if getattr(previous, "_drops_abandoned_reads", False):
        return

    def hook(unraisable):
        if not _abandoned_read(unraisable):
            previous(unraisable)

    hook._drops_abandoned_reads = True  # pylint: disable=protected-access
    sys.unraisablehook = hook
    logging.getLogger("asyncio").addFilter(_DropAbandonedReads())


def _after_failed_restore() -> None:
    """Also drops the ``coroutine ... was never awaited`` warnings of Orbax's coroutines
    left unstarted by a failed restore (at garbage collection or exit): once a restore
    has failed in this process, since the warning does not say whose coroutine it was."""
    warnings.filterwarnings("ignore", message=r"coroutine '[\w.<>]+' was never awaited",
                            category=RuntimeWarning)


@contextlib.contextmanager
def _absl_errors_only():
    """Holds back Orbax's absl warnings about a damaged step (e.g. ``Metadata file does
    not exist``): the caller reports the damage itself, in one line."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _quiet_restore():
    """Restores without Orbax's absl warnings or a failed restore's leftovers on the console."""
    _drop_abandoned_read_reports()
    with _absl_errors_only():
        yield


def short_reason(exc: BaseException, directory: str = "") -> str:
    """One short line for why a checkpoint could not be read.

    TensorStore errors carry their status and the innermost cause (e.g. ``DATA_LOSS:
    Error decoding b-tree node: ...``), without the store spec; paths inside `directory`
    are shortened to be relative to it.
    """
    text = one_line(exc).split(" [tensorstore_spec")[0]
    status = re.match(r"([A-Z_]{4,}): ", text)
    if status:  # "STATUS: Error opening ...: Error reading ... \"path\": innermost cause"
        cause = text.rsplit(chr(34) + ": ", 1)[-1]
        text = cause if cause.startswith(status.group(0)) else status.group(0) + cause
    else:
        text = f"{type(exc).__name__}: {text}"
    if directory:
        text = text.replace(directory.rstrip("/") + "/", "")
    return text if len(text) <= 200 else text[:197] + "..."


def _first_local_device() -> jax.sharding.SingleDeviceSharding:
    """Where `restore_stored` puts arrays saved on devices this process does not have
    (another device count or several processes): the first local device."""
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def restore_stored(directory: str, *, hint: str = "") -> tuple[int, dict[str, Any]] | None:
    """The ``state`` item of the newest checkpoint in `directory`, as stored (no target).

    For readers of a finished run (feature extraction, prediction) rather than for
    resuming: a damaged checkpoint is an error, not skipped, since an older one would be
    other weights. A checkpoint saved on devices this process lacks (written on several
    devices or by several processes) is read onto this process's first device.

    Args:
      directory: a checkpoint manager directory (``<workdir>/best`` or
        ``<workdir>/checkpoints``).
      hint: what the user can do, appended to the error message.

    Returns:
      ``(step, state dict)``, or None when `directory` holds no checkpoint.

    Raises:
      DataError: one line naming the damaged checkpoint and why it cannot be read.
    """
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        return None
    with _quiet_restore():
        manager = ocp.CheckpointManager(
            directory, options=ocp.CheckpointManagerOptions(create=False),
            item_names=("state", "meta"))
        try:
            step = manager.latest_step()
            if step is None:
                return None
            try:
                restore = ocp.args.StandardRestore(fallback_sharding=_first_local_device())
                state = manager.restore(step, args=ocp.args.Composite(state=restore))["state"]
            except _READ_ERRORS as exc:
                _after_failed_restore()
                path = os.path.join(directory, str(step))
                raise DataError(
                    f"the checkpoint {path} is damaged and cannot be restored "
                    f"({short_reason(exc, path)})" + (f"; {hint}" if hint else "")) from None
        finally:
            manager.close()
    return step, state


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
        with _absl_errors_only():
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

    def restore_latest(self, target_for: Callable[[dict[str, Any]], TrainState],
                       ) -> tuple[int, TrainState, dict[str, Any]] | None:
        """Restores the newest periodic checkpoint that can be read, skipping damaged ones.

        Tries the steps newest first: reads ``meta``, builds the restore target with
        ``target_for(meta)`` (the state of the checkpoint's phase), restores ``state``
        into it. Damage and another config are told apart by where the failure happens:

        - the checkpoint does not fit: ``target_for`` raises ValueError or IndexError
          (e.g. a phase index this config lacks), or Orbax, having read the stored tree,
          finds it differs from the target (its "tree structures do not match" and
          "not compatible with the stored shape" checks). The checkpoint is intact but
          written by another model, method or phase layout, and so are the older ones:
          `ConfigError` at once, nothing skipped or moved.
        - the checkpoint is damaged: any other OSError, ValueError or KeyError while
          reading (missing or unreadable files, JSON or arrays that do not decode,
          TensorStore read errors). It is skipped and the next older one tried.

        When an older checkpoint restores, each skipped one gets ONE warning line on
        stderr (its path and a short reason) and its directory is moved, not deleted, to
        ``<workdir>/corrupt_checkpoints/<step>`` (``<step>-1``, ... if taken): it stays
        for inspection, and the run saves that step again in ``checkpoints/``. When none
        restores, nothing is moved.

        Args:
          target_for: ``meta -> TrainState`` with the structure and shardings to restore.

        Returns:
          ``(step, state, meta)``, or None when there is no periodic checkpoint.

        Raises:
          ConfigError: the newest readable checkpoint does not fit this config.
          DataError: no checkpoint can be restored (one line naming the directory).
        """
        directory = os.fspath(self.latest.directory)
        skipped = []
        with _quiet_restore():
            for step in sorted(self.latest.all_steps(), reverse=True):
                path = os.path.join(directory, str(step))
                try:
                    meta = self.restore_meta(step)
                except _READ_ERRORS as exc:
                    _after_failed_restore()
                    skipped.append((step, "meta: " + short_reason(exc, path)))
                    continue
                try:
                    target = target_for(meta)
                except (ValueError, IndexError) as exc:
                    raise self._does_not_fit(path, exc) from exc
                try:
                    state = self.restore(step, target)
                except _READ_ERRORS as exc:
                    _after_failed_restore()
                    if isinstance(exc, ValueError) and any(m in str(exc) for m in _MISMATCH):
                        raise self._does_not_fit(path, exc) from exc
                    skipped.append((step, "state: " + short_reason(exc, path)))
                    continue
                self._set_aside(skipped)
                return step, state, meta
        if not skipped:
            return None
        step, reason = skipped[0]
        raise DataError(
            f"no checkpoint in {directory} can be restored (the newest, {step}: {reason}); "
            f"use a new --workdir, or delete {directory} to train this run from the start")

    @staticmethod
    def _does_not_fit(path: str, exc: BaseException) -> ConfigError:
        return ConfigError(
            f"{path} does not fit this config (was it written by another model, method or "
            f"phase layout?); use a new --workdir: {one_line(exc)[:200]}")

    def _set_aside(self, skipped: list[tuple[int, str]]) -> None:
        """Moves the damaged `skipped` steps out of ``checkpoints/``, one warning each."""
        if not skipped:
            return
        directory = os.fspath(self.latest.directory)
        aside = os.path.join(os.path.dirname(directory), CORRUPT_DIR)
        for step, reason in skipped:
            path = os.path.join(directory, str(step))
            dest, n = os.path.join(aside, str(step)), 0
            while os.path.exists(dest):
                n += 1
                dest = os.path.join(aside, f"{step}-{n}")
            if jax.process_index() == 0:
                try:
                    os.makedirs(aside, exist_ok=True)
                    os.rename(path, dest)
                except OSError as exc:
                    raise DataError(
                        f"the checkpoint {path} is damaged ({reason}) and cannot be moved "
                        f"to {dest} ({exc.strerror or type(exc).__name__}); delete it and "
                        "run again") from None
                print(f"warning: skipped the damaged checkpoint {path} ({reason}); "
                      f"moved it to {dest}", file=sys.stderr, flush=True)
        if jax.process_count() > 1:
            ocp.multihost.sync_global_processes("affectjax_checkpoints_set_aside")
        self.latest.reload()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def restore_run_variables(workdir: str, *, subdirs: tuple[str, ...] = ("best", "checkpoints")
                          ) -> tuple[dict[str, Any], str]:
    """The model variables of a finished training run: ``best/``, else ``checkpoints/``
    (the first of `subdirs` that holds a checkpoint; ``("checkpoints",)``: the latest).

    A damaged checkpoint is a `DataError`, never a fall-back to other weights.

    Returns:
      ``(variables, origin)``: ``{"params", "batch_stats" (when the model has BatchNorm)}``
      and ``"workdir:<directory>/<step>"``.

    Raises:
      FileNotFoundError: `workdir` holds no checkpoint in ``best/`` or ``checkpoints/``.
    """
    workdir = os.path.abspath(workdir)
    for sub in subdirs:
        path = os.path.join(workdir, sub)
        if not os.path.isdir(path):
            continue
        hint = (f"delete {path} to use the latest checkpoint in checkpoints/ instead, or "
                "train again into a new --workdir" if sub == "best" else
                f"run the training in {workdir} again (it resumes from an older checkpoint)")
        found = restore_stored(path, hint=hint)
        if found is None:
            continue
        step, state = found
        variables = {"params": state["params"]}
        if state.get("batch_stats"):
            variables["batch_stats"] = state["batch_stats"]
        return variables, f"workdir:{path}/{step}"
    raise FileNotFoundError(f"{workdir}: no trainer checkpoint in "
                            f"{' or '.join(d + '/' for d in subdirs)}")
