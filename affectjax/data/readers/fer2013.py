"""FER2013 reader (Goodfellow et al., ICONIP 2013 challenge; Kaggle ``fer2013.csv``).

Layout: one csv ``fer2013.csv`` with columns ``emotion,pixels,Usage`` (the header is
detected and its column order honoured, e.g. ``emotion, Usage, pixels`` in the later
``icml_face_data.csv``; a file without a header is read in the original order).
``pixels`` holds 48×48 = 2304 space-separated grey levels 0–255, row-major; the image is
replicated to 3 channels.

Split mapping: ``Training`` → train, ``PublicTest`` → val, ``PrivateTest`` → test.

Expression mapping (FER2013 code → ABAW index):

| FER2013   | code | ABAW          |
|-----------|------|---------------|
| Angry     | 0    | 1 Anger       |
| Disgust   | 1    | 2 Disgust     |
| Fear      | 2    | 3 Fear        |
| Happy     | 3    | 4 Happiness   |
| Sad       | 4    | 5 Sadness     |
| Surprise  | 5    | 6 Surprise    |
| Neutral   | 6    | 0 Neutral     |
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image

from affectjax.data.readers import _common as c

FER2013_TO_ABAW: dict[int, int] = {0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 0}
USAGE_TO_SPLIT: dict[str, str] = {"Training": "train", "PublicTest": "val",
                                  "PrivateTest": "test"}
COLUMNS: tuple[str, ...] = ("emotion", "pixels", "Usage")
_NAME = "FER2013"


def _records(csv_path: str, split: str):
    if not os.path.isfile(csv_path):
        raise c.DataFormatError(f"{_NAME}: expected file {csv_path} (columns "
                                "emotion,pixels,Usage) — it does not exist")
    lines = c.read_lines(csv_path)
    columns = {name: i for i, name in enumerate(COLUMNS)}
    if lines and lines[0][1].split(",")[0].strip().lower() == "emotion":
        header = [h.strip().lower() for h in lines[0][1].split(",")]
        missing = [name for name in COLUMNS if name.lower() not in header]
        if missing:
            raise c.DataFormatError(f"{c.where(csv_path, lines[0][0])}: header lacks column(s) "
                                    f"{', '.join(missing)}")
        columns = {name: header.index(name.lower()) for name in COLUMNS}
        lines = lines[1:]
    selected = []
    for lineno, line in lines:
        fields = line.split(",")
        if len(fields) != len(COLUMNS):
            selected.append((lineno, fields))  # reported by build, with its line number
            continue
        usage = fields[columns["Usage"]].strip()
        if usage not in USAGE_TO_SPLIT:
            selected.append((lineno, fields))  # unknown usage: reported by build
        elif USAGE_TO_SPLIT[usage] == split:
            selected.append((lineno, fields))
    return selected, columns


def read_fer2013(csv_path: str, split: str, *, image_size: c.ImageSize = None,
                 on_error: str = "raise"):
    """Reads FER2013 from its csv (layout and label table in the module docstring).

    Args:
        csv_path: path of ``fer2013.csv``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        image_size: optional (height, width) or int; PIL bilinear resize of the 48×48 image.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``image`` (uint8 (48, 48, 3)), ``expr``.
    """
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    csv_path = os.fspath(csv_path)
    records, columns = _records(csv_path, split)
    hw = c.image_hw(image_size)

    def build(record) -> c.Example:
        lineno, fields = record
        if len(fields) != len(COLUMNS):
            raise c.DataFormatError(f"{c.where(csv_path, lineno)}: expected 3 comma-separated "
                                    f"fields (emotion, pixels, Usage), got {len(fields)}")
        usage = fields[columns["Usage"]].strip()
        if usage not in USAGE_TO_SPLIT:
            raise c.DataFormatError(
                f"{c.where(csv_path, lineno, 'Usage')}: unknown value {usage!r} "
                f"(known: {', '.join(USAGE_TO_SPLIT)})")
        code = c.parse_int(fields[columns["emotion"]], csv_path, lineno, "emotion")
        expr = c.map_code(code, FER2013_TO_ABAW, csv_path, lineno, "emotion")
        try:
            pixels = np.array(fields[columns["pixels"]].split(), dtype=np.int64)
        except ValueError:
            raise c.DataFormatError(f"{c.where(csv_path, lineno, 'pixels')}: not a list of "
                                    "integers") from None
        side = math.isqrt(pixels.size)
        if pixels.size == 0 or side * side != pixels.size:
            raise c.DataFormatError(f"{c.where(csv_path, lineno, 'pixels')}: {pixels.size} "
                                    "values do not form a square image (48×48 = 2304)")
        if pixels.min() < 0 or pixels.max() > 255:
            raise c.DataFormatError(f"{c.where(csv_path, lineno, 'pixels')}: values outside "
                                    "0..255")
        grey = Image.fromarray(pixels.reshape(side, side).astype(np.uint8))
        im, _ = c.resize(grey.convert("RGB"), hw)
        return {"image": c.to_array(im), "expr": c.scalar(expr, np.int32)}

    return c.iterate(records, build, on_error=on_error, dataset=_NAME)


def count_fer2013(csv_path: str, split: str) -> int:
    """Number of rows of the split (rows with an unreadable Usage count in every split)."""
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    return len(_records(os.fspath(csv_path), split)[0])
