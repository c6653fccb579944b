"""Reader for MUStARD (Castro et al., "Towards multimodal sarcasm detection (an _obviously_
perfect paper)", ACL 2019) in the layout of its repository's ``data/`` folder
(soujanyaporia/MUStARD: ``data_loader.py``, ``extract_audio_features.py``,
``visual/extract_features.py``, README).

Layout under ``root`` (the repository's ``data/`` folder with the downloaded features)::

    sarcasm_data.json          {id: {utterance, speaker, context, context_speakers, show,
                                     sarcasm: true|false}}; 690 items, in this order
    split_indices.p            5 (train_indices, test_indices) int arrays into that order
    audio_features.p           {id: float (283, T)}: librosa MFCC 13 + delta 13 + mel 128 +
                               mel delta 128 + spectral centroid 1, feature-major, T ~ 11
                               time bins (``librosa.util.sync`` into about ten chunks)
    features/utterances_final/resnet_pool5.hdf5
                               one dataset per id, float (frames, 2048): ResNet-152 pool5
                               of every video frame (``visual_file`` picks another, e.g.
                               ``c3d_fc7.hdf5`` (n, 4096) or ``i3d_avg_pool.hdf5`` (n, 1024))
    glove_full_dict.p          {word: float (300,)}: GloVe 840B vectors of the data set's
                               lower-cased words, plus "<PAD>" and "<UNK>"  (text="glove")
    bert-output.jsonl          one line per item, in the json's order: BERT-base features of
                               every word piece, 4 layers each     (text="bert"/"bert_cls")

Examples (one per item of the split, in the json's order):

| key                | value                                                              |
|--------------------|--------------------------------------------------------------------|
| ``text``           | float32 (S, 300) GloVe word vectors (``text="glove"``, default);   |
|                    | (S, 768) per word piece, mean of BERT's last 4 layers (``"bert"``); |
|                    | (S, 768) with only the [CLS] vector, the authors' utterance        |
|                    | feature (``"bert_cls"``)                                           |
| ``audio``          | float32 (S, 283), the librosa bins                                 |
| ``visual``         | float32 (S, 2048) (the width of ``visual_file``)                   |
| ``sarcasm``        | int32 0/1 from the json                                            |
| ``emotion``        | int32 (6,) all −1 (missing; MOSEI order, for weak labels)          |
| ``sentiment``      | float32 0.0 with ``sentiment_binary`` int32 −1 (missing)           |
| ``id``             | the json key, e.g. "1_60"                                          |

Sequences: a modality of length L becomes S = ``seq_len`` steps (default 50, as the MulT
pickles): L <= S is zero-padded **at the start** (the MulT convention); L > S is averaged
over S contiguous, nearly equal chunks (order kept).  Widths are the files' own: they are
not the 300/74/35 of the MulT pickles, and the fusion models read widths from the inputs.

Feature provenance.  The weakly-supervised multimodal MTL paper (Sec. 3.2 and 5.1) states
that it extracted GloVe (300), COVAREP (74) and OpenFace (35) features, word-aligned with
P2FA, the same way for all three data sets; those MUStARD features were not released.
This reader therefore uses the features the MUStARD authors distribute; only the text
("glove") has the paper's width.  The GloVe tokens follow the authors' recipe loosely:
lower-cased runs of letters/digits, the clitics n't 's 've 're 'd 'll 'm split off, each
other punctuation mark one token (the authors use NLTK's tokenizer); a word missing from
the dict takes its "<UNK>" vector (dropped if the dict has none).  The frames in
``resnet_pool5.hdf5`` are stored in the order the extraction script listed the frame
files (``os.listdir``), which the script does not sort, so their time order is not
guaranteed.

Splits (``scheme``; splits ``train`` and ``test``, MUStARD has no validation set):

* ``"folds"`` (default): the authors' speaker-dependent 5-fold cross-validation, fold
  ``fold`` of ``split_indices.p``.  The folds predate the last label correction of the
  json (2019-02-28), so their test sets hold 61–76 sarcastic items of 138.
* ``"speaker_independent"``: the authors' other setting, test = show "FRIENDS" (356
  items), train = the other shows (334).
* ``"balanced"``: the counts of the weak-MTL paper's Table 1 (train 276 + 276, test
  69 + 69): per class a seeded (``seed``) random 20 % is test.  The paper does not publish
  its indices, so this reproduces the sizes, not the exact split.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from typing import Any

import numpy as np

from affectjax import registry
from affectjax.data.readers import _common as c
from affectjax.data.readers import csd

FILES = {
    "labels": "sarcasm_data.json", "folds": "split_indices.p", "audio": "audio_features.p",
    "glove": "glove_full_dict.p", "bert": "bert-output.jsonl",
    "visual": "features/utterances_final/resnet_pool5.hdf5",
}
SCHEMES = ("folds", "speaker_independent", "balanced")
TEXT_FEATURES = ("glove", "bert", "bert_cls")
TEXT_DIMS = {"glove": 300, "bert": 768, "bert_cls": 768}
AUDIO_DIM = 283
VISUAL_DIMS = {"resnet_pool5": 2048, "c3d_fc7": 4096, "i3d_avg_pool": 1024}
NUM_EMOTIONS = 6  # weak emotion labels follow CMU-MOSEI's six
_NAME = "MUStARD"
_TOKEN = re.compile(r"n't|'(?:s|ve|re|d|ll|m)\b|[a-z0-9]+(?=n't)|[a-z0-9]+|[^\sa-z0-9]")


def _load_pickle(path: str, what: str) -> Any:
    c.require_file(path, f"{_NAME} {what}")
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except UnicodeDecodeError:
        with open(path, "rb") as f:  # pickles written by Python 2
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError) as e:
        raise c.DataFormatError(f"{path}: cannot unpickle ({e})") from None


def _load_items(root: str) -> dict[str, dict]:
    path = c.require_file(os.path.join(root, FILES["labels"]), f"{_NAME} labels")
    try:
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise c.DataFormatError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(items, dict) or not items:
        raise c.DataFormatError(f"{path}: expected a non-empty object {{id: {{utterance, "
                                f"show, sarcasm, ...}}}}")
    for key, item in items.items():
        if not isinstance(item, dict):
            raise c.DataFormatError(f"{path}: item {key!r} is not an object")
        for field in ("utterance", "show", "sarcasm"):
            if field not in item:
                raise c.DataFormatError(f"{path}: item {key!r}: field {field!r} is missing")
        if item["sarcasm"] not in (True, False):  # also admits 0 and 1
            raise c.DataFormatError(f"{path}: item {key!r}: field 'sarcasm' is "
                                    f"{item['sarcasm']!r}; expected true or false")
    return items


def _split_indices(root: str, items: dict[str, dict], split: str, scheme: str, fold: int,
                   seed: int) -> np.ndarray:
    n = len(items)
    if scheme == "speaker_independent":
        test = np.array([str(v["show"]).upper() == "FRIENDS" for v in items.values()])
        return np.flatnonzero(test if split == "test" else ~test)
    if scheme == "balanced":
        y = np.array([int(v["sarcasm"]) for v in items.values()])
        rng = np.random.default_rng(seed)
        test = np.zeros(n, bool)
        for label in (0, 1):
            idx = rng.permutation(np.flatnonzero(y == label))
            test[idx[:int(round(0.2 * len(idx)))]] = True
        return np.flatnonzero(test if split == "test" else ~test)
    path = os.path.join(root, FILES["folds"])
    folds = _load_pickle(path, "folds")
    if not isinstance(folds, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in folds):
        raise c.DataFormatError(f"{path}: expected a list of (train_indices, test_indices) "
                                f"pairs, got {type(folds).__name__}")
    if not 0 <= fold < len(folds):
        raise c.DataFormatError(f"{path}: fold {fold} does not exist (the file has "
                                f"{len(folds)} folds: 0..{len(folds) - 1})")
    field = "train" if split == "train" else "test"
    try:
        idx = np.asarray(folds[fold][0 if field == "train" else 1], np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise c.DataFormatError(f"{path}: fold {fold}: field {field!r} is not an integer "
                                "array") from None
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise c.DataFormatError(f"{path}: fold {fold}: field {field!r} holds index "
                                f"{int(idx.max())}; {FILES['labels']} has {n} items")
    return idx


def tokenize(utterance: str) -> list[str]:
    """Lower-cased word tokens of an utterance (the GloVe lookup; module docstring)."""
    return _TOKEN.findall(utterance.lower())


def _glove_text(root: str, items: dict[str, dict]) -> dict[str, np.ndarray]:
    path = os.path.join(root, FILES["glove"])
    table = _load_pickle(path, "GloVe dict (text='glove')")
    if not isinstance(table, dict) or not table:
        raise c.DataFormatError(f"{path}: expected a dict {{word: (300,) vector}}")
    unk = table.get("<UNK>")
    out = {}
    for key, item in items.items():
        vectors = [table.get(w, unk) for w in tokenize(str(item["utterance"]))]
        vectors = [v for v in vectors if v is not None]
        try:
            out[key] = (np.stack([np.asarray(v, np.float32).reshape(-1) for v in vectors])
                        if vectors else np.zeros((0, TEXT_DIMS["glove"]), np.float32))
        except ValueError:
            raise c.DataFormatError(f"{path}: the vectors of item {key!r}'s words differ in "
                                    "width") from None
    return out


def _bert_text(root: str, keys: list[str], wanted: set[str], cls_only: bool) -> dict:
    """{id: float32 (tokens, 768) or a DataFormatError} for the ids in ``wanted``."""
    path = c.require_file(os.path.join(root, FILES["bert"]), f"{_NAME} BERT features")
    out: dict[str, Any] = {}
    with open(path, encoding="utf-8") as f:
        lineno = 0
        for lineno, line in enumerate(f, 1):
            key = keys[lineno - 1] if lineno <= len(keys) else None
            if key not in wanted:
                continue
            try:
                tokens = json.loads(line)["features"]
                tokens = tokens[:1] if cls_only else tokens
                out[key] = np.stack([np.mean([layer["values"] for layer in t["layers"]], axis=0)
                                     for t in tokens]).astype(np.float32)
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as e:
                out[key] = c.DataFormatError(
                    f"{c.where(path, lineno, 'features')}: expected BERT extract_features "
                    f"output (features[].layers[].values) for item {key!r} ({e!r})")
    if lineno != len(keys):
        raise c.DataFormatError(f"{path}: {lineno} lines for the {len(keys)} items of "
                                f"{FILES['labels']} (one line per item, in its order)")
    return out


def to_steps(x: np.ndarray, seq_len: int) -> np.ndarray:
    """(L, D) -> (seq_len, D): zero-padded at the start, or averaged over seq_len chunks."""
    if len(x) <= seq_len:
        return np.concatenate([np.zeros((seq_len - len(x), x.shape[1]), x.dtype), x])
    return np.stack([chunk.mean(axis=0) for chunk in np.array_split(x, seq_len)])


def _check_options(split: str, scheme: str, text: str, seq_len: int) -> str:
    split = c.normalize_split(split, ("train", "test"), _NAME)
    if scheme not in SCHEMES:
        raise c.DataFormatError(registry.unknown_name_message("scheme", scheme, SCHEMES))
    if text not in TEXT_FEATURES:
        raise c.DataFormatError(registry.unknown_name_message("text", text, TEXT_FEATURES))
    if int(seq_len) < 1:
        raise c.DataFormatError(f"{_NAME}: seq_len={seq_len!r}; expected >= 1")
    return split


def read_mustard(root: str, split: str, *, scheme: str = "folds", fold: int = 0, seed: int = 0,
                 text: str = "glove", seq_len: int = 50, visual_file: str = FILES["visual"],
                 on_error: str = "raise"):
    """Reads one split of MUStARD (layout, keys and splits in the module docstring).

    Args:
        root: MUStARD's ``data/`` folder.
        split: ``"train"`` or ``"test"``.
        scheme: ``"folds"``, ``"speaker_independent"`` or ``"balanced"``.
        fold: the fold of ``split_indices.p`` (0–4) for ``scheme="folds"``.
        seed: the seed of ``scheme="balanced"``.
        text: ``"glove"``, ``"bert"`` or ``"bert_cls"``.
        seq_len: S, the number of steps of every modality.
        visual_file: the visual HDF5 under ``root``.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples.  Needs h5py (the visual file).
    """
    split = _check_options(split, scheme, text, seq_len)
    c.check_on_error(on_error)
    root, seq_len = os.fspath(root), int(seq_len)
    items = _load_items(root)
    keys = list(items)
    order = _split_indices(root, items, split, scheme, int(fold), int(seed))
    wanted = {keys[i] for i in order}
    audio_path = os.path.join(root, FILES["audio"])
    text_path = os.path.join(root, FILES["glove" if text == "glove" else "bert"])
    visual_path = os.path.join(root, visual_file)
    for path, what in ((audio_path, "audio features"), (text_path, f"text={text!r} features"),
                       (visual_path, "visual features")):
        c.require_file(path, f"{_NAME} {what}")
    csd.import_h5py(f"{_NAME} visual features")
    audio = _load_pickle(audio_path, "audio features")
    if not isinstance(audio, dict):
        raise c.DataFormatError(f"{audio_path}: expected a dict {{id: (283, T) array}}, got "
                                f"{type(audio).__name__}")
    texts = (_glove_text(root, items) if text == "glove"
             else _bert_text(root, keys, wanted, cls_only=text == "bert_cls"))
    visual = csd.open_hdf5(visual_path, f"{_NAME} visual features")
    widths: dict[str, int] = {}

    def steps(x: Any, key: str, field: str, path: str) -> np.ndarray:
        if isinstance(x, Exception):
            raise x
        at = f"{path}: item {key!r}: field {field!r}"
        try:
            x = np.asarray(x, np.float32)
        except (TypeError, ValueError):
            raise c.DataFormatError(f"{at}: not a numeric array") from None
        if x.ndim != 2 or 0 in x.shape:
            raise c.DataFormatError(f"{at}: shape {x.shape}; expected a non-empty (steps, "
                                    "features) array")
        if not np.all(np.isfinite(x)):
            raise c.DataFormatError(f"{at}: {int((~np.isfinite(x)).sum())} non-finite values")
        width = widths.setdefault(field, x.shape[1])
        if x.shape[1] != width:
            raise c.DataFormatError(f"{at}: width {x.shape[1]} differs from the {width} of "
                                    "the items before it")
        return to_steps(x, seq_len)

    def build(i: int) -> c.Example:
        key = keys[i]
        if key not in audio:
            raise c.DataFormatError(f"{audio_path}: item {key!r} is missing")
        if key not in visual or not hasattr(visual[key], "shape"):
            raise c.DataFormatError(f"{visual_path}: item {key!r} is missing (expected a "
                                    "dataset named after it, (frames, features))")
        raw_audio = np.asarray(audio[key])
        return {
            "text": steps(texts.get(key), key, "text", text_path),
            "audio": steps(raw_audio.T if raw_audio.ndim == 2 else raw_audio, key, "audio",
                           audio_path),
            "visual": steps(visual[key][()], key, "visual", visual_path),
            "emotion": np.full(NUM_EMOTIONS, -1, np.int32),
            "sentiment": c.scalar(0.0, np.float32),
            "sentiment_binary": c.scalar(-1, np.int32),
            "sarcasm": c.scalar(int(items[key]["sarcasm"]), np.int32),
            "id": key,
        }

    examples = c.iterate(order.tolist(), build, on_error=on_error, dataset=_NAME)

    def generate():
        try:
            yield from examples
        finally:
            visual.close()

    return generate()


def count_mustard(root: str, split: str, *, scheme: str = "folds", fold: int = 0,
                  seed: int = 0) -> int:
    """Number of items in the split (reads only the json and, for "folds", the folds)."""
    split = _check_options(split, scheme, "glove", 1)
    root = os.fspath(root)
    return len(_split_indices(root, _load_items(root), split, scheme, int(fold), int(seed)))
