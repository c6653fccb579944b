"""Weak labels: a teacher's predictions on another data set, stored beside it (paper 3, Sec. 5).

A teacher (EF-LF-LSTM by default) trained on data set D2 for task T2 predicts T2 on every
split of data set D1; the hard predictions (emotions multi-hot at sigmoid > 0.5,
sentiment binarised, sarcasm a class) become ``weak_<task>`` and the teacher's accuracy
on D2's validation split (for emotions the mean WAcc) their confidence ``weak_<task>_conf``
(paper: "we store the accuracy of the EF-LF-LSTM model on each dataset as a confidence
score of the generated weak labels"). The labels file is an ``.npz`` written next to the
prepared data set, never into it:

    weak_<task>             the task's name (a 0-d string)
    <split>/weak_<task>     (N,) int32 or (N, E) int32 for emotions, one row per example
    weak_<task>_conf        0-d float32
    meta                    JSON: the teacher's run directory, D1's data set and sizes

`WeakLabelSource` adds the file's rows to a split of D1 by example index (the data sets'
order is fixed), so the student's batches carry them beside the strong labels.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np

from affectjax.methods.fusion import tasks as tasks_lib
from affectjax.train.errors import ConfigError


def write(path: str, task: str, predictions: Mapping[str, np.ndarray], confidence: float,
          meta: Mapping[str, Any]) -> str:
    """Writes a weak-label file (module docstring) atomically; returns `path`."""
    key = tasks_lib.weak_key(task)
    arrays = {f"{split}/{key}": np.asarray(v, np.int32) for split, v in predictions.items()}
    arrays[f"{key}_conf"] = np.float32(confidence)
    arrays["task"] = np.asarray(task)
    arrays["meta"] = np.asarray(json.dumps(dict(meta), sort_keys=True))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


class WeakLabels:
    """A weak-label file read back: ``task``, ``confidence``, ``meta`` and ``split(name)``."""

    def __init__(self, path: str, *, where: str = ""):
        self.path = path
        at = f"{where}: " if where else ""
        if not os.path.isfile(path):
            raise ConfigError(f"{at}weak-label file {path} does not exist (write it with "
                              "python -m affectjax.methods.fusion.teachers --config CONFIG)")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{at}{path}: not a weak-label file ({exc})") from None
        if "task" not in arrays:
            raise ConfigError(f"{at}{path}: not a weak-label file (no 'task' entry)")
        self.task = str(arrays["task"])
        key = tasks_lib.weak_key(self.task)
        if f"{key}_conf" not in arrays:
            raise ConfigError(f"{at}{path}: entry '{key}_conf' is missing")
        self.confidence = float(arrays[f"{key}_conf"])
        self.meta = json.loads(str(arrays.get("meta", "{}")))
        self._splits = {k.split("/")[0]: v for k, v in arrays.items() if k.endswith(f"/{key}")}

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(sorted(self._splits))

    def split(self, name: str, *, expected_len: int | None = None) -> np.ndarray:
        """The labels of split `name`; its length must be `expected_len` when given."""
        if name not in self._splits:
            raise ConfigError(f"{self.path}: no weak labels for split {name!r}; the file has "
                              f"{list(self.splits)}")
        values = self._splits[name]
        if expected_len is not None and len(values) != expected_len:
            raise ConfigError(f"{self.path}: split {name!r} has {len(values)} weak labels for "
                              f"{expected_len} examples (written for another data set? "
                              "delete it and write it again)")
        return values


class WeakLabelSource:
    """A random-access source of D1 with weak-label rows added by example index.

    Args:
      source: the split's source (``__len__``, ``__getitem__``; ``labels(key)`` if any).
      extra: ``{key: (N, ...) array}`` added to every example.
      where: what the error messages name (the config key).

    When ``weak_emotion`` is added and the source's own ``emotion`` has another width (D1
    labels other emotions, all missing), that ``emotion`` is replaced by a missing (-1)
    vector of the weak labels' width; a labelled emotion of another width is an error.
    """

    def __init__(self, source: Any, extra: Mapping[str, np.ndarray], *, where: str = ""):
        self.source, self.extra = source, dict(extra)
        for key, values in self.extra.items():
            if len(values) != len(source):
                raise ConfigError(f"{where}: {key} has {len(values)} rows for {len(source)} "
                                  "examples")
        self._replace_emotion = None
        weak = self.extra.get(tasks_lib.weak_key("emotion"))
        if weak is not None and len(source):
            own = _read_labels(source, "emotion")
            if own.shape[1:] != weak.shape[1:]:
                if (own >= 0).any():
                    raise ConfigError(f"{where}: the data set labels {own.shape[1]} emotions and "
                                      f"the weak labels {weak.shape[1]}; they must be the same")
                self._replace_emotion = np.full(weak.shape[1:], -1, np.int32)

    def __len__(self) -> int:
        return len(self.source)

    def _add(self, index: int, example: dict) -> dict:
        example = dict(example)
        for key, values in self.extra.items():
            example[key] = values[index]
        if self._replace_emotion is not None:
            example["emotion"] = self._replace_emotion
        return example

    def __getitem__(self, index: int) -> dict:
        return self._add(int(index), self.source[int(index)])

    def __getitems__(self, indices) -> list[dict]:
        indices = [int(i) for i in indices]
        if hasattr(self.source, "__getitems__"):
            examples = self.source.__getitems__(indices)
        else:
            examples = [self.source[i] for i in indices]
        return [self._add(i, e) for i, e in zip(indices, examples)]

    def labels(self, key: str) -> np.ndarray:
        if key in self.extra:
            return np.asarray(self.extra[key])
        if key == "emotion" and self._replace_emotion is not None:
            return np.broadcast_to(self._replace_emotion, (len(self),) +
                                   self._replace_emotion.shape).copy()
        return _read_labels(self.source, key)


def _read_labels(source: Any, key: str) -> np.ndarray:
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    return np.asarray(pipeline.read_labels(source, key))
