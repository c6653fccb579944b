"""Cross-data-set batches for iFAN (paper 4, Sec. 3.3 and Algorithm 1).

Each task t has its own data set D_t (``config.ifan.sources.<task>``: a full data section
as `affectjax.data.pipeline.default_config`, plus the task's ``batch_size``), labelled for
that task alone: labels of the other tasks are masked on loading (``landmarks_mask``
False, ``parsing`` 255, ``expr`` -1), so a SynthFaces data set split into disjoint
domains is labelled exactly like the real trio MTFL (landmarks), Helen (parsing) and an
expression set. Every batch comes from ONE data set and carries its index as ``source``
(B,) int32, which selects the task's BatchNorm set in the backbone.

`CrossDatasetLoader` orders the data sets' own streams (`affectjax.data.pipeline.Loader`)
into the two stages of Algorithm 1, each a pure function of ``(seed, step)`` so a
resumed run replays the same batches:

* ``sequential`` (stage 1, task-wise pre-training, lines 1-8): all ``epochs`` epochs of
  D_1, then all of D_2, ...; one trainer epoch is one pass over every data set;
* ``alternate`` (stage 2, batch-wise fine-tuning, lines 9-16): step s takes a batch of
  data set ``s mod T`` (equal counts per task, whatever the data sets' sizes); one
  trainer epoch is T times the batches of the largest data set.

Evaluation: every data set's validation split in turn (``valid`` marks padding).
"""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Mapping

import ml_collections
import numpy as np

from affectjax.train.errors import ConfigError

TASK_LABELS = {  # task -> the batch keys holding its labels, and their "missing" value
    "landmarks": (("landmarks_mask", False), ("landmarks", 0.0)),
    "parsing": (("parsing", 255),),
    "emotion": (("expr", -1),),
}
ORDERS = ("sequential", "alternate")
BATCH_KEYS = ("image", "source", "valid", "expr", "landmarks", "landmarks_mask", "parsing")


def source_config(config: Any, task: str) -> ml_collections.ConfigDict:
    """The full data section of ``task``'s data set (defaults + ``ifan.sources.<task>``)."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    sources = config.ifan.sources
    if task not in sources:
        raise ConfigError(f"config.ifan.sources has no data set for task {task!r}; it has "
                          f"{sorted(sources)}")
    data = pipeline.default_config()
    given = sources[task].to_dict() if hasattr(sources[task], "to_dict") else dict(
        sources[task])
    given.pop("batch_size", None)
    unknown = sorted(set(given) - set(data))
    if unknown:
        raise ConfigError(f"config.ifan.sources.{task}: unknown keys {unknown}; choose from "
                          f"{sorted(data) + ['batch_size']}")
    _merge(data, given)
    data.image_size = int(config.ifan.image_size)
    return data


def _merge(section: ml_collections.ConfigDict, values: Mapping[str, Any]) -> None:
    """Overrides `section` with `values`, sub-sections key by key."""
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(section.get(key),
                                                     ml_collections.ConfigDict):
            if key == "builder_kwargs":  # the builder's own arguments: taken as given
                section[key] = ml_collections.ConfigDict(dict(value))
            else:
                _merge(section[key], value)
        else:
            section[key] = value


def mask_other_tasks(batch: dict[str, np.ndarray], task: str) -> dict[str, np.ndarray]:
    """`batch` with the labels of every task but `task` set to "missing"."""
    out = dict(batch)
    for other, keys in TASK_LABELS.items():
        if other == task:
            continue
        for key, missing in keys:
            if key in out:
                out[key] = np.full_like(out[key], missing)
    return out


def _tag(batch: dict[str, np.ndarray], task: str, index: int) -> dict[str, np.ndarray]:
    batch = {k: v for k, v in mask_other_tasks(batch, task).items() if k in BATCH_KEYS}
    batch["source"] = np.full((len(batch["image"]),), index, np.int32)
    return batch


class CrossDatasetLoader:
    """One data set per task, ordered as Algorithm 1's stage 1 or stage 2 (module doc).

    Args:
      loaders: task -> training `affectjax.data.pipeline.Loader` of its data set, in the
        order of the model's tasks (index = ``source`` = BatchNorm set).
      order: ``sequential`` or ``alternate``.
      epochs: for ``sequential``: the epochs each data set is trained before the next.
    """

    def __init__(self, loaders: Mapping[str, Any], *, order: str, epochs: int = 1):
        if order not in ORDERS:
            raise ConfigError(f"iFAN data order {order!r}; choose one of {list(ORDERS)}")
        self.tasks = tuple(loaders)
        self.loaders = dict(loaders)
        self.order, self.epochs = order, max(int(epochs), 1)
        spe = [self.loaders[t].steps_per_epoch for t in self.tasks]
        if order == "sequential":
            self.steps_per_epoch = int(sum(spe))
            self.boundaries = np.cumsum([0] + [s * self.epochs for s in spe])
        else:
            self.steps_per_epoch = len(self.tasks) * int(max(spe))

    def task_at(self, step: int) -> tuple[int, int]:
        """(data set index, that data set's own step) of the run's global `step`."""
        step = int(step)
        if self.order == "alternate":
            return step % len(self.tasks), step // len(self.tasks)
        index = int(np.searchsorted(self.boundaries, step, side="right")) - 1
        index = min(index, len(self.tasks) - 1)  # past the end: the last data set goes on
        return index, step - int(self.boundaries[index])

    def iterate(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Training batches from the global `start_step` on, endlessly."""
        streams: dict[int, Iterator] = {}
        for step in itertools.count(int(start_step)):
            index, own = self.task_at(step)
            if index not in streams:
                streams[index] = self.loaders[self.tasks[index]].iterate(start_step=own)
            if self.order == "sequential":  # the earlier data sets are done for good
                for done in [i for i in streams if i < index]:
                    del streams[done]
            yield _tag(next(streams[index]), self.tasks[index], index)


class CrossDatasetEval:
    """Every task's validation data set in turn, each batch tagged with its ``source``."""

    def __init__(self, loaders: Mapping[str, Any]):
        self.tasks = tuple(loaders)
        self.loaders = dict(loaders)
        self.steps_per_epoch = sum(l.steps_per_epoch for l in self.loaders.values())

    def eval_batches(self) -> Iterator[dict[str, np.ndarray]]:
        for index, task in enumerate(self.tasks):
            for batch in self.loaders[task].eval_batches():
                yield _tag(batch, task, index)


def open_source(data: Any, task: str, split: str):
    """`pipeline.create_source` whose errors name ``config.ifan.sources.<task>``."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    try:
        return pipeline.create_source(data, split)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        message = str(exc.args[0] if exc.args else exc).replace(
            "data.manual_dir", f"config.ifan.sources.{task}.manual_dir")
        raise ConfigError(f"config.ifan.sources.{task}: {message}") from None


def make_loaders(config: Any, tasks: tuple[str, ...], *, seed: int, order: str,
                 epochs: int = 1):
    """``(train CrossDatasetLoader, CrossDatasetEval, {task: train source})``."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    train, evaluation, sources = {}, {}, {}
    eval_batch_size = int(config.get("eval_batch_size", 0) or 32)
    for index, task in enumerate(tasks):
        data = source_config(config, task)
        batch_size = int(config.ifan.sources[task].get("batch_size", 0) or config.batch_size)
        source = open_source(data, task, data.train_split)
        eval_source = open_source(data, task, data.eval_split)
        try:  # each data set shuffles with its own stream of the run's seed
            train[task] = pipeline.Loader(source, batch_size=batch_size, seed=seed * 131 + index,
                                          train=True, data_config=data)
        except ValueError as exc:
            raise ConfigError(f"config.ifan.sources.{task}: {exc}") from None
        evaluation[task] = pipeline.Loader(eval_source, batch_size=eval_batch_size,
                                           shuffle=False, seed=seed, train=False,
                                           data_config=data)
        sources[task] = source
    return (CrossDatasetLoader(train, order=order, epochs=epochs),
            CrossDatasetEval(evaluation), sources)


def mean_predictions(config: Any, tasks: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The training sets' mean labels, as the predictions iteration 0 starts from.

    The authors' inference code feeds iteration 0 the data-set means (``mean_values``):
    ``landmarks`` (L, 2) mean position in model-input pixels, ``parsing`` (S, S, C) the
    per-pixel class frequencies (nearest-neighbour resized to the input size S),
    ``emotion`` (C,) the class frequencies. Unlabelled examples are left out.
    """
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    size, out = int(config.ifan.image_size), {}
    for task in tasks:
        data = source_config(config, task)
        source = open_source(data, task, data.train_split)
        stored = np.asarray(pipeline.read_examples(source, [0])[0]["image"]).shape[:2]
        if task == "landmarks":
            points = pipeline.read_labels(source, "landmarks")
            mask = pipeline.read_labels(source, "landmarks_mask").astype(bool)
            if not mask.any():
                raise ConfigError(f"config.ifan.sources.{task}: no landmark label to average")
            scale = np.array([size / stored[1], size / stored[0]])
            out[task] = (points[mask].mean(axis=0) * scale).astype(np.float32)
        elif task == "parsing":
            masks = np.stack([np.asarray(e["parsing"]) for e in  # decoded masks
                              pipeline.read_examples(source, range(len(source)))])
            rows = (np.arange(size) * masks.shape[1] // size)
            cols = (np.arange(size) * masks.shape[2] // size)
            masks = masks[:, rows][:, :, cols]
            classes = int(config.model.get("num_parsing_classes", 11))
            counts = np.stack([(masks == c).sum(0) for c in range(classes)], -1)
            out[task] = (counts / np.maximum(counts.sum(-1, keepdims=True), 1)).astype(
                np.float32)
        else:
            expr = pipeline.read_labels(source, "expr")
            classes = int(config.model.get("num_emotions", 8))
            counts = np.bincount(expr[(expr >= 0) & (expr < classes)], minlength=classes)
            out[task] = (counts / max(counts.sum(), 1)).astype(np.float32)
    return out
