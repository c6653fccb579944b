"""Input pipeline: TFDS array_record sources read with grain into numpy batches.

`create_source` prepares a data set once (cached in ``data_dir``) and opens a split as a
random-access source; `Loader` turns a source into batches:

* training: an infinite stream, reshuffled each epoch from ``(seed, epoch)``, drop
  remainder, augmentation seeded from ``(seed, step)``; or, with ``oversample=KEY``,
  class-balanced: each epoch ``len(source)`` indices drawn with replacement from
  ``(seed, epoch)``, every class of the label ``KEY`` equally likely. Either way the batch
  at step ``k`` depends on ``(seed, k)`` only, so ``iterate(start_step=k)`` resumes exactly
  where an uninterrupted run would be;
* evaluation: one ordered pass, the last batch padded to ``batch_size`` (copies of the last
  example), every batch carrying ``valid`` (B,) bool, so a jitted eval step compiles once.

Batches are dicts of numpy arrays: ``image`` float32 NHWC normalised, labels as in the data
contract (``parsing`` int32), string keys dropped. Reading and preprocessing run in grain
background threads (``num_threads``), ``prefetch`` batches ahead.
"""

import fcntl
import math
import os
import sys
import threading
from typing import Any, Iterator, Mapping

import grain
import ml_collections
import numpy as np

from affectjax import registry
from affectjax.data import preprocess as pp
from affectjax.data.builders import DATASETS
from affectjax.data.builders import MANUAL
from affectjax.data.builders import common as builder_common

Batch = dict[str, np.ndarray]


def default_config() -> ml_collections.ConfigDict:
    """The data section of a training config (``config.data``)."""
    c = ml_collections.ConfigDict()
    c.name = "synthfaces"  # key of `DATASETS`.
    c.data_dir = "~/tensorflow_datasets"  # TFDS data dir: prepared sets are cached here.
    c.manual_dir = ""  # folder with a real set in its original layout (manual builders only).
    c.image_size = 64  # model input size; stored images are resized to it.
    # Builder arguments, cached apart per value: synthfaces -> SynthFaces kwargs (domain,
    # image_size, seed, label noise, ...) and sizes={"train": n, ...}; synthaffect ->
    # variant, seed, seq_len, sizes; real sets -> image_size (stored) and reader options.
    c.builder_kwargs = ml_collections.ConfigDict()
    c.train_split = "train"
    c.eval_split = "validation"
    c.mean = (0.485, 0.456, 0.406)  # ImageNet normalisation of images in [0, 1].
    c.std = (0.229, 0.224, 0.225)
    c.augment = ml_collections.ConfigDict(dict(
        enabled=True,  # training batches only.
        flip_prob=0.5,  # horizontal flip (landmarks and parsing classes swapped).
        crop_prob=1.0,  # random zoom-in + shift (labels move with the image).
        scale=0.15,  # zoom drawn from [1, 1 + scale].
        translate=0.08,  # shift drawn from [-t, t] of the image size.
        jitter_prob=0.5,  # colour jitter: factors in [1 - s, 1 + s].
        brightness=0.25, contrast=0.25, saturation=0.25))
    # Class-balanced training stream: "" (off: each example once per epoch) or the name of
    # an integer class-label key, e.g. "expr": each epoch draws len(train split) examples
    # with replacement, P(example) ~ 1 / count(its class), so every class present is equally
    # likely and unlabelled (< 0) examples are never drawn. Training loader only.
    c.oversample = ""
    c.prefetch = 4  # batches prepared ahead in background threads.
    c.num_threads = 2  # grain reader threads (threads, not processes).
    return c


def get_builder_class(name: str):
    """The builder class of ``name``; an unknown name lists the choices."""
    return registry.lookup(DATASETS, name, "data set")


def _as_dict(value: Any) -> dict:
    return value.to_dict() if hasattr(value, "to_dict") else dict(value or {})


def make_builder(data_config: Mapping[str, Any]):
    """The TFDS builder of ``data_config`` (not yet prepared)."""
    cls = get_builder_class(data_config["name"])
    config = cls.config_for(**_as_dict(data_config.get("builder_kwargs")))
    data_dir = os.path.expanduser(data_config.get("data_dir") or "~/tensorflow_datasets")
    return cls(data_dir=data_dir, config=config, file_format="array_record")


def _require_manual_dir(data_config: Mapping[str, Any]) -> str:
    """The expanded ``manual_dir`` of a manual data set ("" for generated ones), or raises."""
    name = data_config["name"]
    manual_dir = data_config.get("manual_dir") or ""
    if name not in MANUAL:
        return manual_dir
    if not manual_dir or not os.path.isdir(os.path.expanduser(manual_dir)):
        layout = get_builder_class(name).layout()
        raise FileNotFoundError(
            f"data set {name!r} needs data.manual_dir (got {manual_dir!r}): a folder "
            f"holding the original files laid out as: {layout}")
    return os.path.expanduser(manual_dir)


def _is_prepared(builder) -> bool:
    return os.path.isdir(builder.data_dir) and bool(builder.info.splits)


def check_available(data_config: Mapping[str, Any]) -> None:
    """Raises FileNotFoundError unless the data set is cached or its ``manual_dir`` exists.

    Cheap (no data is read), so a run can check its data before any other work.
    """
    if not _is_prepared(make_builder(data_config)):
        _require_manual_dir(data_config)


def prepare(data_config: Mapping[str, Any]):
    """Prepares the data set once (a no-op when cached) and returns its builder.

    Processes that prepare the same data set at once (a sweep's parallel runs) take turns
    through a lock file next to it: the first one writes it, the others find it prepared.
    """
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = make_builder(data_config)
    if _is_prepared(builder):
        return builder
    manual_dir = _require_manual_dir(data_config)
    lock_path = os.path.normpath(builder.data_dir) + ".lock"
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            builder = make_builder(data_config)
            if not _is_prepared(builder):
                builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                    manual_dir=manual_dir or None))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return builder


class Source:
    """A prepared TFDS split as a random-access source of contract examples.

    Scalars come back as 0-d numpy arrays of the feature's dtype; string keys are dropped.
    An image set that does not store a `builders.common.READ_FILLED` key (``attr``) gets it
    with its missing value (-1), so every image batch has the same keys.
    """

    def __init__(self, builder, split: str):
        available = list(builder.info.splits)
        if split not in available:
            raise registry.unknown_name_error(f"{builder.name} split", split, available)
        self.builder, self.split = builder, split
        self._ds = builder.as_data_source(split)
        feats = builder.info.features
        self._dtypes = {k: feats[k].np_dtype for k in feats.keys()
                        if np.dtype(feats[k].np_dtype).kind not in "USO"}
        self._fills = {k: builder_common.missing_value(k) for k in builder_common.READ_FILLED
                       if "image" in feats.keys() and k not in feats.keys()}
        self._labels: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._ds)

    def _convert(self, record: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out = {k: np.asarray(record[k], dtype=d) for k, d in self._dtypes.items()}
        out.update((k, v.copy()) for k, v in self._fills.items())
        return out

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self._convert(self._ds[int(index)])

    def __getitems__(self, indices) -> list[dict[str, np.ndarray]]:
        return [self._convert(r) for r in self._ds.__getitems__([int(i) for i in indices])]

    def labels(self, key: str) -> np.ndarray:
        """All values of ``key`` stacked, read without decoding images or masks (cached)."""
        if key in self._fills:
            return np.repeat(self._fills[key][None], len(self), axis=0)
        if key not in self._labels:
            import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

            feats = self.builder.info.features
            skip = {k: tfds.decode.SkipDecoding() for k in ("image", "parsing") if k in feats}
            ds = self.builder.as_data_source(self.split, decoders=skip)
            n = len(ds)
            values = [r[key] for s in range(0, n, 1024) for r in
                      ds.__getitems__(list(range(s, min(n, s + 1024))))]
            self._labels[key] = np.asarray(values, dtype=self._dtypes[key])
        return self._labels[key]


def describe(source: Source) -> str:
    """``data NAME SPLIT: N examples`` plus the builder's note for the split, if any.

    E.g. ``data affectnet train: 287,651 examples (3,120 rows with codes 8-10 dropped)``.
    """
    line = f"data {source.builder.name} {source.split}: {len(source):,} examples"
    meta = source.builder.info.metadata  # None, or a (lazy) dict read from metadata.json
    notes = meta["notes"] if meta is not None and "notes" in meta.keys() else {}
    return f"{line} ({notes[source.split]})" if source.split in notes else line


def create_source(data_config: Mapping[str, Any], split: str, *,
                  announce: bool = True) -> Source:
    """Prepares ``data_config``'s data set if needed and opens ``split`` as a `Source`.

    Prints `describe` of the split (its size) on stderr, so a run states what it uses;
    ``announce=False`` keeps it quiet (the processes of a multi-host run other than 0).
    """
    source = Source(prepare(data_config), split)
    if announce:
        print(describe(source), file=sys.stderr, flush=True)
    return source


def read_examples(source, indices) -> list[dict[str, np.ndarray]]:
    """Reads ``source[i]`` for each index, in one batched call when the source has one."""
    if hasattr(source, "__getitems__"):
        return list(source.__getitems__(list(indices)))
    return [source[int(i)] for i in indices]


def stack(examples: list[Mapping[str, Any]]) -> Batch:
    """Stacks examples into a batch (numeric keys only)."""
    keys = [k for k, v in examples[0].items() if np.asarray(v).dtype.kind not in "USO"]
    return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in keys}


def read_labels(source, key: str) -> np.ndarray:
    """All values of ``key`` over a source: a `Source` reads them without decoding images
    (cached), any other source example by example."""
    if isinstance(source, Source):
        return np.asarray(source.labels(key))
    return np.array([np.asarray(source[i][key]) for i in range(len(source))])


def label_keys(source) -> list[str]:
    """The integer scalar keys of a source's examples (its candidate class labels)."""
    if isinstance(source, Source):
        feats = source.builder.info.features
        return [k for k, d in source._dtypes.items()  # pylint: disable=protected-access
                if np.dtype(d).kind in "iu" and tuple(feats[k].shape) == ()]
    if len(source) == 0:
        return []
    return [k for k, v in source[0].items()
            if np.asarray(v).dtype.kind in "iu" and np.ndim(v) == 0]


def oversample_weights(source, key: str) -> np.ndarray:
    """Per-example sampling probabilities that make every class of ``key`` equally likely.

    ``p[i] ~ 1 / count(class of example i)`` over the classes present; examples with a
    negative label (unlabelled) get probability 0.

    Raises:
        KeyError: ``key`` is not an integer scalar key of the examples (the error names
            ``config.data.oversample`` and lists the keys there are).
        ValueError: no example is labelled in ``key``.
    """
    keys = label_keys(source)
    if key not in keys:
        raise KeyError(registry.unknown_name_message("config.data.oversample", key, keys)
                       + " (the integer class-label keys of the examples)")
    labels = read_labels(source, key).astype(np.int64).reshape(-1)
    labelled = labels >= 0
    if not labelled.any():
        raise ValueError(f"config.data.oversample={key!r}: all {labels.size} examples are "
                         f"unlabelled ({key} < 0), nothing to draw")
    counts = np.bincount(labels[labelled])
    weights = np.zeros(labels.size, np.float64)
    weights[labelled] = 1.0 / counts[labels[labelled]]
    return weights / weights.sum()


def class_counts(source, key: str = "expr", num_classes: int = 8) -> np.ndarray:
    """Per-class counts of an integer label over a source (-1 and other negatives ignored).

    A `Source` reads the labels without decoding images (cached per source).
    """
    labels = read_labels(source, key).reshape(-1)
    labels = labels[labels >= 0]
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"class_counts: label {labels.max()} in {key!r} "
                         f">= num_classes={num_classes}")
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


class Loader:
    """Batches of a source for training (infinite, resumable) or evaluation (one padded pass).

    Args:
        source: any random-access source (``__len__``, ``__getitem__``).
        batch_size: examples per batch.
        shuffle: reshuffle every epoch (training).
        seed: shuffle and augmentation seed.
        train: training stream (drop remainder, augmentation) or evaluation pass.
        data_config: `default_config()`-like mapping (image_size, mean, std, augment,
            prefetch, num_threads); defaults to `default_config()`.
        oversample: "" (off) or an integer class-label key of the examples (the training
            setup passes ``config.data.oversample``; the field in ``data_config`` is not read
            here). Each epoch is then ``len(source)`` indices drawn with replacement from
            ``(seed, epoch)`` with ``P(i) ~ 1 / count(class of i)`` (`oversample_weights`:
            every class present equally likely, unlabelled examples, label < 0, never drawn);
            ``steps_per_epoch`` stays ``len(source) // batch_size``, the remainder of the
            draws is dropped, and ``shuffle`` is not used (the draws are in random order).
            Training loaders only.
    """

    _OVERSAMPLE_STREAM = 0x0CC7  # separates the epoch draws' seeds from other uses of seed.

    def __init__(self, source, *, batch_size: int, shuffle: bool = True, seed: int = 0,
                 train: bool = True, data_config: Mapping[str, Any] | None = None,
                 oversample: str = ""):
        cfg = default_config() if data_config is None else data_config
        n = len(source)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if train and n < batch_size:
            raise ValueError(f"batch_size={batch_size} exceeds the {n} training examples")
        self.source, self.batch_size, self.shuffle, self.seed, self.train = (
            source, batch_size, shuffle, int(seed) % 2**32, train)
        self.image_size = int(cfg["image_size"])
        self.mean, self.std = tuple(cfg["mean"]), tuple(cfg["std"])
        aug = _as_dict(cfg["augment"])
        self.augment = aug if train and aug.pop("enabled", True) else None
        self.read_options = grain.ReadOptions(num_threads=int(cfg["num_threads"]),
                                              prefetch_buffer_size=int(cfg["prefetch"]))
        self.steps_per_epoch = n // batch_size if train else math.ceil(n / batch_size)
        self.oversample = oversample or ""
        if self.oversample and not train:
            raise ValueError(f"oversample={self.oversample!r} is for train=True loaders")
        self._weights = oversample_weights(source, self.oversample) if self.oversample else None
        self._epochs: dict[int, np.ndarray] = {}  # the last epochs' draws
        self._epochs_lock = threading.Lock()

    def _finish(self, batch: Batch, rng: np.random.Generator | None) -> Batch:
        return pp.preprocess(batch, image_size=self.image_size, mean=self.mean, std=self.std,
                             augment=self.augment, rng=rng)

    def _train_batch(self, indices: np.ndarray, rng: np.random.Generator) -> Batch:
        batch = self._finish(stack(read_examples(self.source, indices)), rng)
        batch["valid"] = np.ones(len(indices), bool)
        return batch

    def epoch_draws(self, epoch: int) -> np.ndarray:
        """The ``len(source)`` oversampled indices of ``epoch``, a function of (seed, epoch)."""
        if self._weights is None:
            raise ValueError("epoch_draws() is for loaders with oversample set")
        with self._epochs_lock:
            if epoch not in self._epochs:
                rng = np.random.default_rng((self.seed, int(epoch), self._OVERSAMPLE_STREAM))
                draws = rng.choice(len(self._weights), size=len(self._weights),
                                   replace=True, p=self._weights)
                if len(self._epochs) >= 2:  # reader threads straddle one epoch boundary
                    del self._epochs[min(self._epochs)]
                self._epochs[epoch] = draws
            return self._epochs[epoch]

    def _oversampled_indices(self, step: int, _) -> np.ndarray:
        epoch, k = divmod(int(step), self.steps_per_epoch)
        return self.epoch_draws(epoch)[k * self.batch_size:(k + 1) * self.batch_size]

    def train_dataset(self) -> grain.MapDataset:
        """The infinite training stream as a grain MapDataset indexed by step."""
        if self.oversample:
            # The index map_with_index sees is the global step (slicing comes later).
            ds = grain.MapDataset.range(self.steps_per_epoch).repeat()
            ds = ds.map_with_index(self._oversampled_indices)
        else:
            ds = grain.MapDataset.range(len(self.source))
            if self.shuffle:
                ds = ds.shuffle(seed=self.seed)
            ds = ds.batch(self.batch_size, drop_remainder=True).repeat()
        return ds.random_map(self._train_batch, seed=self.seed)

    def iterate(self, start_step: int = 0) -> Iterator[Batch]:
        """Training batches from ``start_step`` on (infinite), prefetched in the background."""
        if not self.train:
            raise ValueError("iterate() is for train=True loaders; use eval_batches()")
        ds = self.train_dataset()[int(start_step):]
        return iter(ds.to_iter_dataset(self.read_options))

    def _eval_batch(self, b: int) -> Batch:
        n, bs = len(self.source), self.batch_size
        idx = np.arange(b * bs, (b + 1) * bs)
        batch = self._finish(stack(read_examples(self.source, np.minimum(idx, n - 1))), None)
        batch["valid"] = idx < n
        return batch

    def eval_batches(self) -> Iterator[Batch]:
        """One ordered pass; the last batch padded to ``batch_size``, ``valid`` marks real rows."""
        ds = grain.MapDataset.range(self.steps_per_epoch).map(self._eval_batch)
        return iter(ds.to_iter_dataset(self.read_options))
