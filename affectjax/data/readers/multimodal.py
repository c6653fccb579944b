"""Reader for word-aligned multimodal feature pickles in the common MulT layout
(Tsai et al., "Multimodal Transformer for unaligned multimodal language sequences",
ACL 2019; the files used by the weakly-supervised multimodal MTL paper).

Layout: one pickle, e.g. ``iemocap_data.pkl`` or ``mosei_senti_data.pkl``, holding::

    {"train" | "valid" | "test": {"vision": (N, S, 35), "audio": (N, S, 74),
                                  "text": (N, S, 300), "labels": …, "id": … (optional)}}

with S = 50 in the standard files (GloVe text, COVAREP audio, Facet/OpenFace visual).
Example keys: ``text``, ``audio``, ``visual`` (from the pickle's ``vision``) float32
(S, D), plus the labels below and ``id`` (a string) when the pickle has ids.

Labels by ``dataset``:

| dataset        | pickle ``labels``              | example keys                              |
|----------------|--------------------------------|-------------------------------------------|
| ``iemocap``    | (N, 4, 2) one-hot per emotion  | ``emotion`` int32 (4,) multi-hot = argmax over the last axis, order [Neutral, Happy, Sad, Angry] |
| ``mosei``/``mosi`` | (N, 1, 1) sentiment in [−3, 3] | ``sentiment`` float32, ``sentiment_binary`` int32 |
| ``auto``       | picked from the labels' shape  |                                           |

``sentiment_binary`` follows ``binarize``: ``"positive"`` (default) is ``s > 0`` (zero →
negative, 0); ``"non_negative"`` is ``s >= 0`` (zero → positive, the "non-negative vs.
negative" accuracy of MulT's evaluation); ``"non_zero"`` marks ``s == 0`` missing (−1), the
"non-zero" protocol that leaves neutral items out.

Non-finite features: the released pickles contain −inf and NaN in ``audio`` (and
occasionally elsewhere).  They are replaced by 0, and the count per modality and split is
logged (absl ``warning``) when the reader opens the split; nothing else is altered.

CMU-MOSEI emotions (``emotion_labels=``).  ``mosei_senti_data.pkl`` holds sentiment only.
The six emotion intensities come from the CMU-MultimodalSDK label sequence
``CMU_MOSEI_Labels.csd`` (HDF5, read with h5py; layout in `affectjax.data.readers.csd`:
root "All Labels", ``data/<video_id>/features`` (n, 7) = [sentiment, happy, sad, anger,
surprise, disgust, fear] and ``data/<video_id>/intervals`` (n, 2) in seconds).  Each pickle
item is matched to its ``.csd`` segment by its ``id``, which in the MOSEI pickle is the
triple (video_id, segment start, segment end), start/end written as decimal strings.  The
MulT repository does not document the field; the evidence is its loader
(``src/dataset.py`` unpacks ``meta[index][0..2]`` and decodes bytes for MOSI only, so the
MOSEI ids are presumably str) and published scripts that merge the pickle with
``CMU_MOSEI_Labels.csd`` by looking ``(video_id, float(start), float(end))`` up among the
``.csd`` intervals.  str and bytes ids are both accepted.  A segment matches when both its start and end lie within ``match_tolerance`` seconds
(default 0.01) of the id's, the closest one winning.  Ids in any other form (e.g.
``(video_id, segment_index)``) are rejected rather than guessed.

``emotion`` is then int32 (6,) in the order `MOSEI_EMOTIONS` = (Happy, Sad, Anger,
Surprise, Disgust, Fear) (the ``.csd`` columns 1–6, and
``affectjax.data.synthaffect.MOSEI_EMOTIONS``), binarised by the usual multi-label MOSEI
protocol "intensity > 0" (the SDK's CMU-MOSEI README: "emotion > 0 (emotion present)");
``emotion_threshold`` changes the 0.  The sentiment stays the pickle's; items whose
``.csd`` sentiment differs from it by more than 0.01 are counted in a warning (a sign of
misalignment), not altered.  An item with no matching segment is a `DataFormatError`
naming the ``.csd`` file and the id (skipped and counted with ``on_error="skip"``).
"""

from __future__ import annotations

import os
import pickle

import numpy as np
from absl import logging

from affectjax import registry
from affectjax.data.readers import _common as c
from affectjax.data.readers import csd

MODALITIES: dict[str, str] = {"text": "text", "audio": "audio", "vision": "visual"}
IEMOCAP_EMOTIONS: tuple[str, ...] = ("Neutral", "Happy", "Sad", "Angry")
MOSEI_EMOTIONS: tuple[str, ...] = ("Happy", "Sad", "Anger", "Surprise", "Disgust", "Fear")
_CSD_COLUMNS = [csd.MOSEI_LABEL_COLUMNS.index(e.lower()) for e in MOSEI_EMOTIONS]
DATASETS = ("auto", "iemocap", "mosei", "mosi")
BINARIZE = ("positive", "non_negative", "non_zero")
_SPLIT_KEY = {"train": "train", "val": "valid", "test": "test"}
_NAME = "multimodal pickle"


def _load(path: str) -> dict:
    if not os.path.isfile(path):
        raise c.DataFormatError(
            f"{_NAME}: expected file {path} (MulT layout: split 'train'/'valid'/'test' -> "
            "vision/audio/text/labels) — it does not exist")
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except UnicodeDecodeError:
        with open(path, "rb") as f:  # pickles written by Python 2
            data = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
        raise c.DataFormatError(f"{path}: cannot unpickle ({e})") from None
    if not isinstance(data, dict):
        raise c.DataFormatError(f"{path}: expected a dict of splits, got {type(data).__name__}")
    return data


def _split_arrays(path: str, data: dict, split: str) -> dict[str, np.ndarray]:
    key = _SPLIT_KEY[split]
    if key not in data:
        raise c.DataFormatError(f"{path}: no split {key!r}; the pickle has "
                                f"{', '.join(map(repr, data))}")
    part = data[key]
    arrays = {}
    for field in (*MODALITIES, "labels"):
        if field not in part:
            raise c.DataFormatError(f"{path}: split {key!r}: field {field!r} is missing "
                                    f"(has {', '.join(map(repr, part))})")
        try:
            arrays[field] = np.asarray(part[field], np.float32)
        except (TypeError, ValueError):
            raise c.DataFormatError(f"{path}: split {key!r}: field {field!r} is not "
                                    "numeric") from None
    n = len(arrays["labels"])
    for field in MODALITIES:
        if arrays[field].ndim != 3 or len(arrays[field]) != n:
            raise c.DataFormatError(
                f"{path}: split {key!r}: field {field!r} has shape {arrays[field].shape}; "
                f"expected (N={n}, seq_len, features)")
    if "id" in part:
        arrays["id"] = np.asarray(part["id"])
        if len(arrays["id"]) != n:
            raise c.DataFormatError(f"{path}: split {key!r}: field 'id' has {len(arrays['id'])} "
                                    f"entries for {n} items")
    return arrays


def _dataset(path: str, labels: np.ndarray, dataset: str) -> str:
    shape = labels.shape[1:]
    if dataset == "auto":
        if shape == (4, 2):
            return "iemocap"
        if shape in ((1, 1), (1,), ()):
            return "mosei"
        raise c.DataFormatError(f"{path}: field 'labels': shape {labels.shape} matches no "
                                "known data set; pass dataset='iemocap'|'mosei'|'mosi'")
    if dataset == "iemocap" and shape != (4, 2):
        raise c.DataFormatError(f"{path}: field 'labels': IEMOCAP expects (N, 4, 2), got "
                                f"{labels.shape}")
    if dataset in ("mosei", "mosi") and shape not in ((1, 1), (1,), ()):
        raise c.DataFormatError(f"{path}: field 'labels': {dataset} sentiment expects "
                                f"(N, 1, 1), got {labels.shape}")
    return dataset


def _id_fields(value: np.ndarray) -> list[str]:
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in np.asarray(value, dtype=object).reshape(-1)]


def _id_string(value: np.ndarray) -> str:
    return "/".join(_id_fields(value))


class _EmotionLabels:
    """The ``.csd`` segments of CMU-MOSEI, looked up by a pickle item's (video, start, end)."""

    def __init__(self, path: str, threshold: float, tolerance: float):
        self.path, self.threshold, self.tolerance = path, float(threshold), float(tolerance)
        self.root, self.videos = csd.read_csd(path, width=len(csd.MOSEI_LABEL_COLUMNS))

    def lookup(self, value: np.ndarray, at: str) -> tuple[np.ndarray, float]:
        """(emotion int32 (6,), .csd sentiment) of the segment the id names."""
        fields = _id_fields(value)
        try:
            video, start, end = fields[0], float(fields[1]), float(fields[2])
            if len(fields) != 3:
                raise ValueError
        except (IndexError, ValueError):
            raise c.DataFormatError(
                f"{at}: field 'id' {fields}: expected (video_id, start, end) to match a "
                f"segment of {self.path}") from None
        if video not in self.videos:
            raise c.DataFormatError(f"{self.path}: no video {video!r} for id {fields} ({at})")
        intervals, features = self.videos[video]
        row = csd.match_segment(intervals, start, end, self.tolerance)
        if row is None:
            raise c.DataFormatError(
                f"{self.path}: no segment of video {video!r} within {self.tolerance} s of "
                f"[{start}, {end}] for id {fields} ({at})")
        values = features[row]
        if not np.all(np.isfinite(values)):
            raise c.DataFormatError(
                f"{self.path}: field '{self.root}/data/{video}/features' row {row}: "
                f"non-finite label {values.tolist()}")
        emotion = (values[_CSD_COLUMNS] > self.threshold).astype(np.int32)
        return emotion, float(values[0])


def read_multimodal_pickle(path: str, split: str, *, dataset: str = "auto",
                           binarize: str = "positive", emotion_labels: str | None = None,
                           emotion_threshold: float = 0.0, match_tolerance: float = 0.01,
                           on_error: str = "raise"):
    """Reads one split of a MulT-layout feature pickle (tables in the module docstring).

    Args:
        path: the pickle file.
        split: ``"train"``, ``"val"`` (the pickle's ``"valid"``) or ``"test"``.
        dataset: ``"iemocap"``, ``"mosei"``, ``"mosi"`` or ``"auto"`` (from label shape).
        binarize: sentiment binarisation, ``"positive"``, ``"non_negative"`` or ``"non_zero"``.
        emotion_labels: CMU-MOSEI only: the SDK's label sequence, e.g.
            ``CMU_MOSEI_Labels.csd``; adds ``emotion`` (6,) in `MOSEI_EMOTIONS` order,
            matched by the pickle's ``id`` (module docstring).  Needs h5py.
        emotion_threshold: an emotion is present when its intensity is above this (0).
        match_tolerance: seconds by which an id's start/end may differ from the segment's.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``text, audio, visual`` and ``emotion`` (IEMOCAP,
        or MOSEI with ``emotion_labels``) and ``sentiment, sentiment_binary`` (MOSEI/MOSI),
        plus ``id`` when present.
    """
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    if dataset not in DATASETS:
        raise c.DataFormatError(registry.unknown_name_message("dataset", dataset, DATASETS))
    if binarize not in BINARIZE:
        raise c.DataFormatError(registry.unknown_name_message("binarize", binarize, BINARIZE))
    c.check_on_error(on_error)
    path = os.fspath(path)
    arrays = _split_arrays(path, _load(path), split)
    dataset = _dataset(path, arrays["labels"], dataset)
    emotions = None
    if emotion_labels is not None:
        if dataset != "mosei":
            raise c.DataFormatError(f"{path}: emotion_labels is for CMU-MOSEI; this pickle is "
                                    f"read as {dataset!r}")
        if "id" not in arrays:
            raise c.DataFormatError(f"{path}: split {_SPLIT_KEY[split]!r}: field 'id' is "
                                    "missing; emotion_labels match segments by it")
        emotions = _EmotionLabels(os.fspath(emotion_labels), emotion_threshold,
                                  match_tolerance)
    for field in MODALITIES:
        bad = ~np.isfinite(arrays[field])
        if bad.any():
            logging.warning("%s: split %r: replaced %d non-finite %s values with 0", path,
                            _SPLIT_KEY[split], int(bad.sum()), field)
            arrays[field] = np.where(bad, np.float32(0), arrays[field])
    disagree = []

    def build(i: int) -> c.Example:
        at = f"{path}: split {_SPLIT_KEY[split]!r} item {i}"
        example = {MODALITIES[f]: np.array(arrays[f][i]) for f in MODALITIES}
        labels = arrays["labels"][i]
        if not np.all(np.isfinite(labels)):
            raise c.DataFormatError(f"{at}: field 'labels': non-finite label "
                                    f"{labels.reshape(-1).tolist()}")
        if dataset == "iemocap":
            if not (np.all(np.isin(labels, (0, 1))) and np.all(labels.sum(-1) == 1)):
                raise c.DataFormatError(f"{at}: field 'labels': expected one-hot pairs per "
                                        f"emotion, got {labels.tolist()}")
            example["emotion"] = np.argmax(labels, axis=-1).astype(np.int32)
        else:
            s = float(labels.reshape(-1)[0])
            if not -3.0 <= s <= 3.0:
                raise c.DataFormatError(f"{at}: field 'labels': sentiment {s} is outside "
                                        "[-3, 3]")
            if binarize == "positive":
                binary = int(s > 0)
            elif binarize == "non_negative":
                binary = int(s >= 0)
            else:
                binary = -1 if s == 0 else int(s > 0)
            example["sentiment"] = c.scalar(s, np.float32)
            example["sentiment_binary"] = c.scalar(binary, np.int32)
            if emotions is not None:
                example["emotion"], sentiment = emotions.lookup(arrays["id"][i], at)
                if abs(sentiment - s) > 0.01:
                    disagree.append(i)
        if "id" in arrays:
            example["id"] = _id_string(arrays["id"][i])
        return example

    examples = c.iterate(range(len(arrays["labels"])), build, on_error=on_error, dataset=_NAME)

    def generate():
        yield from examples
        if disagree:
            logging.warning("%s: split %r: %d items have a sentiment differing by > 0.01 from "
                            "their segment's in %s (first: item %d)", path, _SPLIT_KEY[split],
                            len(disagree), emotion_labels, disagree[0])

    return generate()


def count_multimodal_pickle(path: str, split: str) -> int:
    """Number of items in the split (loads the pickle)."""
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    path = os.fspath(path)
    return len(_split_arrays(path, _load(path), split)["labels"])
