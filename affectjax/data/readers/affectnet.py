"""AffectNet reader (Mollahosseini et al., "AffectNet", IEEE TAC 2017), both distributions.

Layout (a), the original release::

    root/Manually_Annotated_file_lists/training.csv      (train)
    root/Manually_Annotated_file_lists/validation.csv    (val)
    root/Manually_Annotated_Images/<subDirectory_filePath>

with columns ``subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal``; ``facial_landmarks`` is the 68-point
scheme as ``"x0;y0;x1;y1;…"``.  The header row may be missing (the released
``validation.csv`` has none); it is detected from the first field.

Layout (b), the resized 8-class release::

    root/{train_set,val_set}/images/N.jpg
    root/{train_set,val_set}/annotations/N_exp.npy  N_val.npy  N_aro.npy  N_lnd.npy

where ``N_exp`` holds the expression code (stored as a string or an int), ``N_val`` and
``N_aro`` the valence and arousal, ``N_lnd`` the 136 landmark coordinates (x, y pairs).
Examples come in numeric order of ``N``.

Expression mapping (AffectNet code → ABAW index):

| AffectNet      | code | ABAW            |
|----------------|------|-----------------|
| Neutral        | 0    | 0 Neutral       |
| Happy          | 1    | 4 Happiness     |
| Sad            | 2    | 5 Sadness       |
| Surprise       | 3    | 6 Surprise      |
| Fear           | 4    | 3 Fear          |
| Disgust        | 5    | 2 Disgust       |
| Anger          | 6    | 1 Anger         |
| Contempt       | 7    | 7 Other         |
| None           | 8    | −1 (missing)    |
| Uncertain      | 9    | −1 (missing)    |
| No-Face        | 10   | −1 (missing)    |

Codes 8–10 never become a class.  By default (``drop_non_class=True``) their rows are left
out, as the authors do (Savchenko, ABAW4 2022, Sec. 3.1): the manually annotated set then
has 287,651 train and 4,000 validation images.  The rows are dropped before their image
is opened and without checking their other fields; the reader's iterator counts them in
``dropped`` and says so in ``note``.  With ``drop_non_class=False`` they are kept (their
valence/arousal may still be labelled) with ``expr = −1``.  Valence or arousal equal to
−2 means "not annotated":
``va_mask = False`` and ``va = 0``.  Any other code, or VA outside [−1, 1], is an error.

Landmarks: the 5 contract points are derived from the 68 (`landmarks5_from_68`: eye
centres = mean of each eye's 6 points, nose tip 30, mouth corners 54/48 for the
subject's left/right) and mapped through the optional face crop and resize.
"""

from __future__ import annotations

import csv
import io
import os
import re

import numpy as np

from affectjax import registry
from affectjax.data.readers import _common as c

AFFECTNET_TO_ABAW: dict[int, int] = {
    0: 0, 1: 4, 2: 5, 3: 6, 4: 3, 5: 2, 6: 1, 7: 7, 8: -1, 9: -1, 10: -1}
CSV_COLUMNS: tuple[str, ...] = (
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "facial_landmarks", "expression", "valence", "arousal")
_CSV_NAME = {"train": "training.csv", "val": "validation.csv"}
_SET_NAME = {"train": "train_set", "val": "val_set"}
NON_CLASS_CODES: frozenset[int] = frozenset({8, 9, 10})  # None, Uncertain, No-Face
_LAYOUTS = ("auto", "csv", "npy")
_NAME = "AffectNet"


class AffectNetExamples:
    """The examples of one split (an iterator over example dicts), counting codes 8–10.

    Attributes:
        drop_non_class: whether rows with codes 8–10 are left out.
        non_class: rows with codes 8–10 met so far: dropped, or yielded with ``expr = −1``.
    """

    def __init__(self, examples, *, drop_non_class: bool):
        self.drop_non_class = bool(drop_non_class)
        self.non_class = 0
        self._examples = examples

    @property
    def dropped(self) -> int:
        """Rows left out so far (``non_class`` when dropping, else 0)."""
        return self.non_class if self.drop_non_class else 0

    @property
    def note(self) -> str:
        """What happened to codes 8–10, e.g. ``"3,120 rows with codes 8-10 dropped"``."""
        action = "dropped" if self.drop_non_class else "kept with expr -1"
        rows = "row" if self.non_class == 1 else "rows"
        return f"{self.non_class:,} {rows} with codes 8-10 {action}"

    def __iter__(self) -> "AffectNetExamples":
        return self

    def __next__(self) -> c.Example:
        while True:
            example = next(self._examples)  # None: a row with code 8-10, dropped.
            if example is None or example["expr"] < 0:  # expr -1 only comes from 8-10.
                self.non_class += 1
            if example is not None:
                return example


def _expected(root: str, split: str) -> str:
    return (f"{_NAME}: expected {root}/Manually_Annotated_file_lists/{_CSV_NAME[split]} "
            f"or {root}/{_SET_NAME[split]}/images/")


def _resolve_layout(root: str, split: str, layout: str) -> str:
    if layout not in _LAYOUTS:
        raise c.DataFormatError(f"{_NAME}: {registry.unknown_name_message('layout', layout, _LAYOUTS)}")
    csv_path = os.path.join(root, "Manually_Annotated_file_lists", _CSV_NAME[split])
    npy_dir = os.path.join(root, _SET_NAME[split], "images")
    if layout == "auto":
        if os.path.isfile(csv_path):
            return "csv"
        if os.path.isdir(npy_dir):
            return "npy"
        raise c.DataFormatError(f"{_expected(root, split)} — neither exists")
    if layout == "csv":
        c.require_file(csv_path, _NAME)
    else:
        c.require_dir(npy_dir, _NAME)
    return layout


def _va(valence: float, arousal: float, source: str) -> tuple[np.ndarray, np.ndarray]:
    if valence == -2 or arousal == -2:
        return c.missing_va()
    for name, value in (("valence", valence), ("arousal", arousal)):
        if not -1.0 <= value <= 1.0:
            raise c.DataFormatError(f"{source}: field {name!r}: {value} is outside [-1, 1] "
                                    "and is not the missing code -2")
    return np.array([valence, arousal], np.float32), c.scalar(True, np.bool_)


def _landmarks(values: np.ndarray, source: str) -> np.ndarray:
    if values.size != 136:
        raise c.DataFormatError(f"{source}: field 'facial_landmarks': expected 136 numbers "
                                f"(68 x;y pairs), got {values.size}")
    return c.landmarks5_from_68(values.reshape(68, 2))


def _finish(image_path: str, root: str, lm5: np.ndarray | None, expr: int, va: np.ndarray,
            va_mask: np.ndarray, box: tuple[float, float, float, float] | None,
            hw: tuple[int, int] | None) -> c.Example:
    im = c.open_image(image_path)
    if box is not None:
        x, y, w, h = box
        im = im.crop((int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h))))
        if lm5 is not None:
            lm5 = lm5 - np.array([round(x), round(y)], np.float32)
    im, scale = c.resize(im, hw)
    example = {
        "image": c.to_array(im),
        "expr": c.scalar(expr, np.int32),
        "va": va,
        "va_mask": va_mask,
        "landmarks": np.zeros((5, 2), np.float32),
        "landmarks_mask": c.scalar(lm5 is not None, np.bool_),
        "file": c.relpath(image_path, root),
    }
    if lm5 is not None:
        example["landmarks"] = (lm5 * scale).astype(np.float32)
    return example


def _csv_records(path: str) -> list[tuple[int, list[str]]]:
    return [(n, next(csv.reader(io.StringIO(line)))) for n, line in c.read_lines(path)]


def _csv_columns(rows: list[tuple[int, list[str]]]) -> tuple[dict[str, int], int]:
    """Column positions and how many leading rows to drop (1 if there is a header)."""
    if rows and rows[0][1] and rows[0][1][0].strip().lower() == "subdirectory_filepath":
        header = [h.strip() for h in rows[0][1]]
        lower = {h.lower(): i for i, h in enumerate(header)}
        missing = [col for col in CSV_COLUMNS if col.lower() not in lower]
        if missing:
            raise c.DataFormatError(f"header lacks column(s) {', '.join(missing)}")
        return {col: lower[col.lower()] for col in CSV_COLUMNS}, 1
    return {col: i for i, col in enumerate(CSV_COLUMNS)}, 0


def _read_csv(root: str, split: str, crop_to_face: bool, hw, drop_non_class: bool):
    """The csv rows, their ``build`` (None for a dropped row) and their ``code``."""
    path = os.path.join(root, "Manually_Annotated_file_lists", _CSV_NAME[split])
    rows = _csv_records(path)
    try:
        columns, start = _csv_columns(rows)
    except c.DataFormatError as e:
        raise c.DataFormatError(f"{c.where(path, rows[0][0])}: {e}") from None
    images = os.path.join(root, "Manually_Annotated_Images")
    ncols = max(columns.values()) + 1

    def fields_of(record: tuple[int, list[str]]) -> dict[str, str]:
        lineno, fields = record
        if len(fields) < ncols:
            raise c.DataFormatError(
                f"{c.where(path, lineno)}: expected {ncols} comma-separated fields, got "
                f"{len(fields)} (field {CSV_COLUMNS[len(fields)]!r} is missing)")
        return {col: fields[i].strip() for col, i in columns.items()}

    def code_of(record: tuple[int, list[str]]) -> int:
        code = c.parse_int(fields_of(record)["expression"], path, record[0], "expression")
        c.map_code(code, AFFECTNET_TO_ABAW, path, record[0], "expression")
        return code

    def build(record: tuple[int, list[str]]) -> c.Example | None:
        lineno = record[0]
        get, code = fields_of(record), code_of(record)
        if drop_non_class and code in NON_CLASS_CODES:
            return None
        expr = AFFECTNET_TO_ABAW[code]
        num = {col: c.parse_float(get[col], path, lineno, col)
               for col in ("face_x", "face_y", "face_width", "face_height", "valence",
                           "arousal")}
        va, va_mask = _va(num["valence"], num["arousal"], c.where(path, lineno))
        lm5 = None
        if get["facial_landmarks"]:
            parts = [p for p in re.split(r"[;\s]+", get["facial_landmarks"]) if p]
            values = np.array([c.parse_float(p, path, lineno, "facial_landmarks")
                               for p in parts])
            lm5 = _landmarks(values, c.where(path, lineno))
        box = None
        if crop_to_face:
            box = (num["face_x"], num["face_y"], num["face_width"], num["face_height"])
            if box[2] <= 0 or box[3] <= 0:
                raise c.DataFormatError(
                    f"{c.where(path, lineno, 'face_width')}: face box {box} is empty")
        if not get["subDirectory_filePath"]:
            raise c.DataFormatError(f"{c.where(path, lineno, 'subDirectory_filePath')}: empty")
        image_path = os.path.join(images, *re.split(r"[\\/]", get["subDirectory_filePath"]))
        return _finish(image_path, root, lm5, expr, va, va_mask, box, hw)

    return rows[start:], build, code_of


def _npy_value(path: str, field: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise c.DataFormatError(f"{path}: annotation file does not exist (field {field!r})")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise c.DataFormatError(f"{path}: cannot read .npy (field {field!r}: {e})") from None


def _npy_number(path: str, field: str) -> float:
    value = _npy_value(path, field)
    if value.size != 1:
        raise c.DataFormatError(f"{path}: field {field!r}: expected one value, got {value.size}")
    text = str(value.reshape(-1)[0].item())
    try:
        return float(text)
    except ValueError:
        raise c.DataFormatError(f"{path}: field {field!r}: cannot parse {text!r}") from None


def _read_npy(root: str, split: str, hw, drop_non_class: bool):
    """The image names, their ``build`` (None for a dropped item) and their ``code``."""
    set_dir = os.path.join(root, _SET_NAME[split])
    image_dir = os.path.join(set_dir, "images")
    ann_dir = os.path.join(set_dir, "annotations")
    c.require_dir(ann_dir, _NAME)
    names = [n for n in os.listdir(image_dir)
             if os.path.splitext(n)[1].lower() in (".jpg", ".jpeg", ".png")]
    names.sort(key=lambda n: (0, int(os.path.splitext(n)[0]), n)
               if os.path.splitext(n)[0].isdigit() else (1, 0, n))

    def ann_path(name: str, kind: str) -> str:
        return os.path.join(ann_dir, f"{os.path.splitext(name)[0]}_{kind}.npy")

    def code_of(name: str) -> int:
        path = ann_path(name, "exp")
        code_value = _npy_number(path, "expression")
        if code_value != int(code_value):
            raise c.DataFormatError(f"{path}: field 'expression': code {code_value} "
                                    "is not an integer")
        c.map_code(int(code_value), AFFECTNET_TO_ABAW, path, None, "expression")
        return int(code_value)

    def build(name: str) -> c.Example | None:
        ann = lambda kind: ann_path(name, kind)  # noqa: E731
        code = code_of(name)
        if drop_non_class and code in NON_CLASS_CODES:
            return None
        expr = AFFECTNET_TO_ABAW[code]
        va, va_mask = _va(_npy_number(ann("val"), "valence"),
                          _npy_number(ann("aro"), "arousal"), ann("val"))
        lnd = _npy_value(ann("lnd"), "landmarks")
        try:
            values = lnd.astype(np.float64).reshape(-1)
        except ValueError:
            raise c.DataFormatError(f"{ann('lnd')}: field 'landmarks': not numeric") from None
        lm5 = _landmarks(values, ann("lnd"))
        return _finish(os.path.join(image_dir, name), root, lm5, expr, va, va_mask, None, hw)

    return names, build, code_of


def read_affectnet(root: str, split: str, *, layout: str = "auto", crop_to_face: bool = False,
                   image_size: c.ImageSize = None, on_error: str = "raise",
                   drop_non_class: bool = True) -> AffectNetExamples:
    """Reads AffectNet examples (see the module docstring for layouts and the label table).

    Args:
        root: the AffectNet folder.
        split: ``"train"`` or ``"val"`` (aliases ``training``, ``validation``).
        layout: ``"csv"`` (a), ``"npy"`` (b) or ``"auto"`` (whichever exists, csv first).
        crop_to_face: crop by the csv face box (layout a only; layout b is already cropped);
            a box reaching past the image border is padded with black (PIL ``crop``).
        image_size: optional (height, width) or int; resized with PIL bilinear after the crop.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).
        drop_non_class: leave out the rows with codes 8–10 (None, Uncertain, No-Face), as
            the authors do (default); False keeps them with ``expr = −1`` and their VA.

    Returns:
        An `AffectNetExamples` iterator of examples with keys ``image, expr, va, va_mask,
        landmarks, landmarks_mask, file`` in file order; its ``dropped`` and ``note`` count
        the rows with codes 8–10 once it is exhausted.
    """
    split = c.normalize_split(split, ("train", "val"), _NAME)
    root = os.fspath(root)
    layout = _resolve_layout(root, split, layout)
    hw = c.image_hw(image_size)
    c.check_on_error(on_error)
    if layout == "csv":
        records, build, _ = _read_csv(root, split, crop_to_face, hw, drop_non_class)
    else:
        if crop_to_face:
            raise c.DataFormatError(f"{_NAME}: crop_to_face needs layout (a) with face boxes; "
                                    f"{root}/{_SET_NAME[split]}/ images are already cropped")
        records, build, _ = _read_npy(root, split, hw, drop_non_class)
    return AffectNetExamples(c.iterate(records, build, on_error=on_error, dataset=_NAME),
                             drop_non_class=drop_non_class)


def count_affectnet(root: str, split: str, *, layout: str = "auto",
                    drop_non_class: bool = True) -> int:
    """Number of examples `read_affectnet` yields (with ``on_error="raise"``), no image read.

    With ``drop_non_class`` (default) every row's expression code is read (the csv column,
    or each ``N_exp.npy`` of layout b); False counts the listed items only.
    """
    split = c.normalize_split(split, ("train", "val"), _NAME)
    root = os.fspath(root)
    if _resolve_layout(root, split, layout) == "csv":
        records, _, code_of = _read_csv(root, split, False, None, drop_non_class)
    else:
        records, _, code_of = _read_npy(root, split, None, drop_non_class)
    if not drop_non_class:
        return len(records)
    return sum(code_of(r) not in NON_CLASS_CODES for r in records)
