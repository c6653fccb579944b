"""Aff-Wild2 reader for the ABAW multi-task-learning set (Kollias, ABAW3/ABAW4 MTL challenge).

Layout::

    root/training_set_annotations.txt      (train)
    root/validation_set_annotations.txt    (val)
    root/cropped_aligned/<video>/<frame>.jpg

Each annotation file starts with the header ``image,valence,arousal,expression,aus``
(detected; a file without it is read too) followed by one line per frame::

    video/frame.jpg,V,A,EXPR,AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26

Labels:

| field            | values              | example keys                                   |
|------------------|---------------------|------------------------------------------------|
| valence, arousal | [−1, 1]; −5 missing | ``va`` float32 (2,), ``va_mask`` (False if either is −5) |
| expression       | 0–7; −1 missing     | ``expr`` int32, already in ABAW order (identity map)    |
| 12 AUs           | 0/1; −1 missing     | ``au`` int32 (12,), −1 kept per AU              |

ABAW's expression order (Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise,
Other) is the contract's, so codes pass through unchanged; any other code is an error.
"""

from __future__ import annotations

import os

import numpy as np

from affectjax.data.readers import _common as c

_FILE = {"train": "training_set_annotations.txt", "val": "validation_set_annotations.txt"}
FIELDS: tuple[str, ...] = ("image", "valence", "arousal", "expression") + c.AU_NAMES
_NAME = "Aff-Wild2 MTL"


def _records(root: str, split: str) -> tuple[str, list[tuple[int, str]]]:
    path = os.path.join(root, _FILE[split])
    if not os.path.isfile(path):
        raise c.DataFormatError(
            f"{_NAME}: expected {path} (header image,valence,arousal,expression,aus) and "
            f"{root}/cropped_aligned/ — the annotation file does not exist")
    lines = c.read_lines(path)
    if lines and lines[0][1].split(",")[0].strip().lower() == "image":
        lines = lines[1:]
    return path, lines


def read_affwild2_mtl(root: str, split: str, *, image_size: c.ImageSize = None,
                      on_error: str = "raise"):
    """Reads the Aff-Wild2 ABAW MTL set (layout and label table in the module docstring).

    Args:
        root: folder holding the annotation files and ``cropped_aligned/``.
        split: ``"train"`` or ``"val"``.
        image_size: optional (height, width) or int; PIL bilinear resize.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``image, expr, va, va_mask, au, file``.
    """
    split = c.normalize_split(split, ("train", "val"), _NAME)
    root = os.fspath(root)
    path, lines = _records(root, split)
    image_dir = c.require_dir(os.path.join(root, "cropped_aligned"), _NAME)
    hw = c.image_hw(image_size)

    def build(record: tuple[int, str]) -> c.Example:
        lineno, line = record
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(FIELDS):
            missing = FIELDS[len(fields)] if len(fields) < len(FIELDS) else "(extra)"
            raise c.DataFormatError(
                f"{c.where(path, lineno)}: expected {len(FIELDS)} comma-separated fields "
                f"(image, V, A, EXPR, 12 AUs), got {len(fields)}; field {missing!r}")
        if not fields[0]:
            raise c.DataFormatError(f"{c.where(path, lineno, 'image')}: empty")
        valence = c.parse_float(fields[1], path, lineno, "valence")
        arousal = c.parse_float(fields[2], path, lineno, "arousal")
        if valence == -5 or arousal == -5:
            va, va_mask = c.missing_va()
        else:
            for name, value in (("valence", valence), ("arousal", arousal)):
                if not -1.0 <= value <= 1.0:
                    raise c.DataFormatError(f"{c.where(path, lineno, name)}: {value} is "
                                            "outside [-1, 1] and is not the missing code -5")
            va, va_mask = np.array([valence, arousal], np.float32), c.scalar(True, np.bool_)
        code = c.parse_int(fields[3], path, lineno, "expression")
        expr = c.map_code(code, {k: k for k in range(-1, 8)}, path, lineno, "expression")
        au = np.array([c.map_code(c.parse_int(v, path, lineno, name), {-1: -1, 0: 0, 1: 1},
                                  path, lineno, name)
                       for v, name in zip(fields[4:], c.AU_NAMES)], np.int32)
        image_path = os.path.join(image_dir, *fields[0].replace("\\", "/").split("/"))
        image, _ = c.load_rgb(image_path, hw)
        return {"image": image, "expr": c.scalar(expr, np.int32), "va": va,
                "va_mask": va_mask, "au": au, "file": c.relpath(image_path, root)}

    return c.iterate(lines, build, on_error=on_error, dataset=_NAME)


def count_affwild2_mtl(root: str, split: str) -> int:
    """Number of annotated frames listed (header excluded), without decoding images."""
    split = c.normalize_split(split, ("train", "val"), _NAME)
    return len(_records(os.fspath(root), split)[1])
