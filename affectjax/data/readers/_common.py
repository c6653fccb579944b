"""Shared pieces of the real-data-set readers: errors, splits, images, landmarks.

Every reader in this package yields *examples*: dicts of numpy arrays without a batch
dimension, in the data contract of `affectjax.data` (``image`` uint8 (H, W, 3), ``expr``
int32 in ABAW order, ``va`` float32 (2,) with ``va_mask``, ``au`` int32 (12,),
``landmarks`` float32 (5, 2) with ``landmarks_mask``, ``parsing`` uint8 (H, W), …), plus
an optional ``file`` string naming the source file.

Conventions kept identical in every reader:

* Expression classes follow ABAW: 0 Neutral, 1 Anger, 2 Disgust, 3 Fear, 4 Happiness,
  5 Sadness, 6 Surprise, 7 Other; −1 = missing.
* The five landmarks are (left eye centre, right eye centre, nose tip, left mouth corner,
  right mouth corner), where "left" is the **subject's** left, which appears on the
  **image's right** in a frontal face.  Coordinates are (x, y) in pixels of the image as
  yielded, continuous, with pixel ``i`` covering ``[i, i + 1)``; a resize by factor ``s``
  maps ``x`` to ``s * x`` and a crop at ``x0`` maps ``x`` to ``x - x0``.
* Bad input raises `DataFormatError` (a `ValueError`) with a one-line message naming the
  file, the line and the field.  Skipping bad items is opt-in (``on_error="skip"``); each
  skipped item is logged with absl logging and the total is logged when the reader ends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
from absl import logging
from PIL import Image

from affectjax import labels
from affectjax import registry

Example = dict[str, Any]
ImageSize = int | tuple[int, int] | None
T = TypeVar("T")

ABAW_EXPRESSIONS: tuple[str, ...] = labels.EXPRESSIONS
AU_NAMES: tuple[str, ...] = labels.AUS
HELEN_CLASSES: tuple[str, ...] = (
    "background", "skin", "left_brow", "right_brow", "left_eye", "right_eye", "nose",
    "upper_lip", "inner_mouth", "lower_lip", "hair")

SPLIT_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}
ON_ERROR_CHOICES = ("raise", "skip")


class DataFormatError(ValueError):
    """A data set on disk does not match the layout or format its reader expects."""


def normalize_split(split: str, allowed: Sequence[str], dataset: str) -> str:
    """Maps a split name or alias (``training``, ``validation``, ``valid`` …) to its canonical name.

    Args:
        split: the requested split.
        allowed: the canonical splits this data set has (subset of train, val, test).
        dataset: data-set name for the error message.

    Returns:
        The canonical split name.
    """
    canonical = SPLIT_ALIASES.get(str(split).lower())
    if canonical not in allowed:
        raise DataFormatError(f"{dataset}: {registry.unknown_name_message('split', split, allowed)}")
    return canonical


def check_on_error(on_error: str) -> None:
    if on_error not in ON_ERROR_CHOICES:
        raise DataFormatError(registry.unknown_name_message("on_error", on_error, ON_ERROR_CHOICES))


def require_file(path: str, what: str) -> str:
    """Returns ``path`` if it is a file, else raises naming the expected layout ``what``."""
    if not os.path.isfile(path):
        raise DataFormatError(f"{what}: expected file {path} — it does not exist")
    return path


def require_dir(path: str, what: str) -> str:
    """Returns ``path`` if it is a folder, else raises naming the expected layout ``what``."""
    if not os.path.isdir(path):
        raise DataFormatError(f"{what}: expected folder {path}/ — it does not exist")
    return path


def where(path: str, lineno: int | None = None, field: str | None = None) -> str:
    """Formats ``file:line: field 'name'`` for error messages."""
    out = path if lineno is None else f"{path}:{lineno}"
    return out if field is None else f"{out}: field {field!r}"


def parse_float(text: str, path: str, lineno: int, field: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise DataFormatError(
            f"{where(path, lineno, field)}: cannot parse {text!r} as a number") from None
    if not np.isfinite(value):
        raise DataFormatError(f"{where(path, lineno, field)}: value {text!r} is not finite")
    return value


def parse_int(text: str, path: str, lineno: int, field: str) -> int:
    value = parse_float(text, path, lineno, field)
    if value != int(value):
        raise DataFormatError(
            f"{where(path, lineno, field)}: expected an integer code, got {text!r}")
    return int(value)


def map_code(code: int, table: dict[int, int], path: str, lineno: int | None,
             field: str) -> int:
    """Looks a data set's label code up in ``table``; an unknown code names value, file, line."""
    if code not in table:
        raise DataFormatError(
            f"{where(path, lineno, field)}: unknown label code {code!r} "
            f"(known codes: {', '.join(str(k) for k in sorted(table))})")
    return table[code]


def read_lines(path: str) -> list[tuple[int, str]]:
    """Returns ``(line_number, text)`` for every non-blank line (1-based numbers, no newline)."""
    try:
        with open(path, encoding="utf-8-sig", errors="strict") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    return [(i + 1, line) for i, line in enumerate(lines) if line.strip()]


def image_hw(image_size: ImageSize) -> tuple[int, int] | None:
    """``image_size`` as (height, width): an int means a square, None means keep the size."""
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)):
        hw = (int(image_size), int(image_size))
    else:
        hw = tuple(int(v) for v in image_size)
    if len(hw) != 2 or min(hw) < 1:
        raise DataFormatError(f"image_size={image_size!r}: expected an int or (height, width) > 0")
    return hw  # type: ignore[return-value]


def open_image(path: str, mode: str = "RGB") -> Image.Image:
    """Opens and fully decodes an image with PIL; failure names the file."""
    if not os.path.isfile(path):
        raise DataFormatError(f"{path}: image file does not exist")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode)
    except (OSError, SyntaxError, ValueError) as e:
        raise DataFormatError(f"{path}: cannot decode image ({e})") from None


def resize(im: Image.Image, hw: tuple[int, int] | None,
           resample: int = Image.Resampling.BILINEAR) -> tuple[Image.Image, np.ndarray]:
    """Resizes a PIL image to (height, width); returns it and the (sx, sy) scale factors."""
    if hw is None or (im.height, im.width) == hw:
        return im, np.ones(2, np.float64)
    scale = np.array([hw[1] / im.width, hw[0] / im.height], np.float64)
    return im.resize((hw[1], hw[0]), resample=resample), scale


def to_array(im: Image.Image) -> np.ndarray:
    """A PIL RGB image as a contiguous uint8 (H, W, 3) array."""
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def load_rgb(path: str, hw: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decodes an image as uint8 RGB (H, W, 3), optionally resized (PIL bilinear).

    Returns:
        ``(image, scale)`` where ``scale`` = (sx, sy) maps landmark pixels into the result.
    """
    im, scale = resize(open_image(path, "RGB"), hw)
    return to_array(im), scale


def landmarks5_from_68(points: np.ndarray) -> np.ndarray:
    """Five landmarks from the 68-point iBUG/Multi-PIE scheme (0-based indices).

    In the 68-point scheme, points 36–41 outline the eye on the image's left (the
    subject's right), 42–47 the eye on the image's right (the subject's left), 30 is the nose
    tip, 48 the mouth corner on the image's left and 54 the one on the image's right.  With
    "left" = the subject's left:

    | ours                  | 68-point source   |
    |-----------------------|-------------------|
    | 0 left eye centre     | mean of 42–47     |
    | 1 right eye centre    | mean of 36–41     |
    | 2 nose tip            | 30                |
    | 3 left mouth corner   | 54                |
    | 4 right mouth corner  | 48                |

    Args:
        points: float (68, 2) array of (x, y).

    Returns:
        float32 (5, 2).
    """
    p = np.asarray(points, np.float64)
    out = np.stack([p[42:48].mean(0), p[36:42].mean(0), p[30], p[54], p[48]])
    return out.astype(np.float32)


def scalar(value: Any, dtype: Any) -> np.ndarray:
    """A 0-d numpy array of ``dtype``."""
    return np.asarray(value, dtype=dtype).reshape(())


def missing_va() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(2, np.float32), scalar(False, np.bool_)


def relpath(path: str, root: str) -> str:
    """``path`` relative to ``root`` with forward slashes (the ``file`` key)."""
    return os.path.relpath(path, root).replace(os.sep, "/")


def iterate(records: Iterable[T], build: Callable[[T], Example], *, on_error: str,
            dataset: str) -> Iterator[Example]:
    """Returns a generator of ``build(record)``; a `DataFormatError` raises or is skipped.

    ``on_error`` is checked now (not at the first ``next``).  With ``on_error="skip"`` each
    skipped record is logged (absl ``warning``) and the total is logged when iteration
    ends, so nothing disappears silently.
    """
    check_on_error(on_error)

    def generate() -> Iterator[Example]:
        skipped = total = 0
        for record in records:
            total += 1
            try:
                example = build(record)
            except DataFormatError as e:
                if on_error == "raise":
                    raise
                skipped += 1
                logging.warning("%s: skipped item: %s", dataset, e)
                continue
            yield example
        if skipped:
            logging.warning("%s: skipped %d of %d items (on_error='skip')",
                            dataset, skipped, total)

    return generate()
