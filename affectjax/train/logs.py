"""Run observability: ``config.json``, progress bar, ``metrics.jsonl``, TensorBoard, the summary line.

``config.json`` is the run's config as JSON (`save_config`), written when a run starts,
so `affectjax.predict` (and a reader of the run directory) knows what was trained.

``metrics.jsonl`` has one JSON object per line: ``{"step", "split", "time", <metrics>}``
with ``split`` in ``train`` (averages over the last log interval), ``eval`` and
``best``. On resume, records after the restored step are dropped (from the file and,
through ``purge_step``, from TensorBoard), so curves never show the lost steps twice.
Only process 0 writes.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Mapping

import jax
import tqdm
from tensorboardX import SummaryWriter


CONFIG_FILE = "config.json"


def save_config(config: Any, workdir: str) -> None:
    """Writes `config` (an `ml_collections.ConfigDict`) to ``workdir/config.json``."""
    if jax.process_index() != 0:
        return
    path = os.path.join(workdir, CONFIG_FILE)
    text = (config.to_json_best_effort(indent=2, sort_keys=True)
            if hasattr(config, "to_json_best_effort") else json.dumps(config, indent=2,
                                                                       sort_keys=True))
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n")
    os.replace(path + ".tmp", path)


def load_config(workdir: str) -> Any:
    """The `ml_collections.ConfigDict` that `save_config` wrote into `workdir`.

    Raises:
      FileNotFoundError: `workdir` has no ``config.json``.
      ValueError: it is not a JSON object (one line naming the file).
    """
    import ml_collections  # pylint: disable=import-outside-toplevel
    path = os.path.join(workdir, CONFIG_FILE)
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    return ml_collections.ConfigDict(data)


def _jsonable(value: Any) -> Any:
    value = float(value) if not isinstance(value, (int, str)) else value
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


class RunLog:
    """Writes metrics to ``metrics.jsonl`` and TensorBoard event files.

    Args:
      workdir: the run directory.
      resume_step: the restored step (records after it are dropped); 0 for a new run.
    """

    def __init__(self, workdir: str, *, resume_step: int = 0):
        self.enabled = jax.process_index() == 0
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.records: list[dict[str, Any]] = []
        if not self.enabled:
            return
        if os.path.exists(self.path):
            with open(self.path) as f:
                for line in f:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a killed process
                        continue
                    if resume_step and record.get("step", 0) <= resume_step:
                        self.records.append(record)
            with open(self.path, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in self.records)
        self.writer = SummaryWriter(os.path.join(workdir, "tensorboard"),
                                    purge_step=resume_step + 1 if resume_step else None)

    def write(self, step: int, split: str, scalars: Mapping[str, Any]) -> None:
        """Appends one record and writes its scalars to TensorBoard as ``split/name``."""
        if not self.enabled:
            return
        record = {"step": int(step), "split": split, "time": round(time.time(), 3)}
        record.update({k: _jsonable(v) for k, v in scalars.items()})
        self.records.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in scalars.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{split}/{name}", value, int(step))
        self.writer.flush()

    def close(self) -> None:
        if self.enabled:
            self.writer.close()


class Progress:
    """A tqdm bar over global steps showing loss and images/s (tqdm gives the ETA)."""

    def __init__(self, total: int, initial: int, *, enabled: bool = True):
        self.bar = tqdm.tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                             file=sys.stderr, mininterval=1.0, smoothing=0.1,
                             disable=not enabled or jax.process_index() != 0)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def show(self, **values: Any) -> None:
        self.bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                              for k, v in values.items()}, refresh=False)

    def write(self, text: str) -> None:
        if jax.process_index() == 0:
            self.bar.write(text, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def summary_line(*, steps: int, seconds: float, scalars: Mapping[str, float],
                 best: Mapping[str, Any] | None, workdir: str) -> str:
    """The one-line summary printed on stdout at the end of a run."""
    minutes, secs = divmod(int(round(seconds)), 60)
    shown = " ".join(f"{k}={v:.4f}" for k, v in scalars.items()
                     if isinstance(v, float) and not k.startswith("num_"))
    text = f"done: {steps} steps in {minutes}m{secs:02d}s | eval {shown}"
    if best and best.get("step") is not None:
        text += f" | best {best['metric']}={best['value']:.4f} at step {best['step']}"
    return text + f" | workdir {workdir}"
