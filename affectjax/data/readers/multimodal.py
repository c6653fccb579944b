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
"""

from __future__ import annotations

import os
import pickle

import numpy as np
from absl import logging

from affectjax import registry
from affectjax.data.readers import _common as c

MODALITIES: dict[str, str] = {"text": "text", "audio": "audio", "vision": "visual"}
IEMOCAP_EMOTIONS: tuple[str, ...] = ("Neutral", "Happy", "Sad", "Angry")
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


def _id_string(value: np.ndarray) -> str:
    flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            for v in np.asarray(value, dtype=object).reshape(-1)]
    return "/".join(flat)


def read_multimodal_pickle(path: str, split: str, *, dataset: str = "auto",
                           binarize: str = "positive", on_error: str = "raise"):
    """Reads one split of a MulT-layout feature pickle (tables in the module docstring).

    Args:
        path: the pickle file.
        split: ``"train"``, ``"val"`` (the pickle's ``"valid"``) or ``"test"``.
        dataset: ``"iemocap"``, ``"mosei"``, ``"mosi"`` or ``"auto"`` (from label shape).
        binarize: sentiment binarisation, ``"positive"``, ``"non_negative"`` or ``"non_zero"``.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``text, audio, visual`` and ``emotion`` (IEMOCAP)
        or ``sentiment, sentiment_binary`` (MOSEI/MOSI), plus ``id`` when present.
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
    for field in MODALITIES:
        bad = ~np.isfinite(arrays[field])
        if bad.any():
            logging.warning("%s: split %r: replaced %d non-finite %s values with 0", path,
                            _SPLIT_KEY[split], int(bad.sum()), field)
            arrays[field] = np.where(bad, np.float32(0), arrays[field])

    def build(i: int) -> c.Example:
        at = f"{path}: split {_SPLIT_KEY[split]!r} item {i}: field 'labels'"
        example = {MODALITIES[f]: np.array(arrays[f][i]) for f in MODALITIES}
        labels = arrays["labels"][i]
        if not np.all(np.isfinite(labels)):
            raise c.DataFormatError(f"{at}: non-finite label {labels.reshape(-1).tolist()}")
        if dataset == "iemocap":
            if not (np.all(np.isin(labels, (0, 1))) and np.all(labels.sum(-1) == 1)):
                raise c.DataFormatError(f"{at}: expected one-hot pairs per emotion, got "
                                        f"{labels.tolist()}")
            example["emotion"] = np.argmax(labels, axis=-1).astype(np.int32)
        else:
            s = float(labels.reshape(-1)[0])
            if not -3.0 <= s <= 3.0:
                raise c.DataFormatError(f"{at}: sentiment {s} is outside [-3, 3]")
            if binarize == "positive":
                binary = int(s > 0)
            elif binarize == "non_negative":
                binary = int(s >= 0)
            else:
                binary = -1 if s == 0 else int(s > 0)
            example["sentiment"] = c.scalar(s, np.float32)
            example["sentiment_binary"] = c.scalar(binary, np.int32)
        if "id" in arrays:
            example["id"] = _id_string(arrays["id"][i])
        return example

    return c.iterate(range(len(arrays["labels"])), build, on_error=on_error, dataset=_NAME)


def count_multimodal_pickle(path: str, split: str) -> int:
    """Number of items in the split (loads the pickle)."""
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    path = os.fspath(path)
    return len(_split_arrays(path, _load(path), split)["labels"])
