"""Helen face-parsing reader with the labels of Smith, Zhang, Brandt, Lin & Yang,
"Exemplar-based face parsing", CVPR 2013 (``SmithCVPR2013_dataset_resized``).

Layout::

    root/images/NAME.jpg
    root/labels/NAME/NAME_lbl00.png … NAME_lbl10.png   (one soft mask 0–255 per class)
    root/exemplars.txt   (train, 2,000)    root/tuning.txt   (val, 230)
    root/testing.txt     (test, 100)

A split list has one face per line, ``"1 , 100032540_1"`` (index, comma, name; spaces
around the comma vary) or just ``"100032540_1"``; both are accepted.

``parsing`` is the argmax over the 11 label maps (ties go to the lower class index, so an
all-zero pixel is background).  Class order is Helen's own and is the contract's:

| lbl | class        | lbl | class        |
|-----|--------------|-----|--------------|
| 00  | 0 background | 06  | 6 nose       |
| 01  | 1 face skin  | 07  | 7 upper lip  |
| 02  | 2 left brow  | 08  | 8 inner mouth|
| 03  | 3 right brow | 09  | 9 lower lip  |
| 04  | 4 left eye   | 10  | 10 hair      |
| 05  | 5 right eye  |     |              |

The left/right classes are passed through as Helen names them (identity map).  With
``image_size`` the image is resized bilinearly and each soft map too, before the argmax.
"""

from __future__ import annotations

import os

import numpy as np

from affectjax.data.readers import _common as c

NUM_CLASSES = 11
_LIST = {"train": "exemplars.txt", "val": "tuning.txt", "test": "testing.txt"}
_NAME = "Helen"


def _records(root: str, split: str) -> tuple[str, list[tuple[int, str]]]:
    path = os.path.join(root, _LIST[split])
    if not os.path.isfile(path):
        raise c.DataFormatError(
            f"{_NAME}: expected {path} (split lists exemplars.txt / tuning.txt / testing.txt "
            f"beside images/ and labels/) — it does not exist")
    return path, c.read_lines(path)


def _name(path: str, lineno: int, line: str) -> str:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) == 2 and parts[0].isdigit() and parts[1] and " " not in parts[1]:
        return parts[1]
    if len(parts) == 1 and parts[0] and " " not in parts[0]:
        return parts[0]
    raise c.DataFormatError(f"{c.where(path, lineno, 'name')}: expected 'INDEX , NAME' or "
                            f"'NAME', got {line.strip()!r}")


def read_helen(root: str, split: str, *, image_size: c.ImageSize = None,
               on_error: str = "raise"):
    """Reads Helen parsing (layout and class table in the module docstring).

    Args:
        root: the Helen folder (``images/``, ``labels/`` and the split lists).
        split: ``"train"`` (exemplars), ``"val"`` (tuning) or ``"test"`` (testing).
        image_size: optional (height, width) or int; bilinear resize of image and soft maps.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``image``, ``parsing`` uint8 (H, W), ``file``.
    """
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    root = os.fspath(root)
    path, lines = _records(root, split)
    image_dir = c.require_dir(os.path.join(root, "images"), _NAME)
    label_dir = c.require_dir(os.path.join(root, "labels"), _NAME)
    hw = c.image_hw(image_size)

    def build(record: tuple[int, str]) -> c.Example:
        lineno, line = record
        name = _name(path, lineno, line)
        image_path = os.path.join(image_dir, f"{name}.jpg")
        im = c.open_image(image_path)
        size = (im.width, im.height)
        im, _ = c.resize(im, hw)
        maps = []
        for k in range(NUM_CLASSES):
            label_path = os.path.join(label_dir, name, f"{name}_lbl{k:02d}.png")
            soft = c.open_image(label_path, "L")
            if soft.size != size:
                raise c.DataFormatError(f"{label_path}: label size {soft.size} differs from "
                                        f"image size {size} of {image_path}")
            maps.append(np.asarray(c.resize(soft, hw)[0], np.uint8))
        parsing = np.argmax(np.stack(maps), axis=0).astype(np.uint8)
        return {"image": c.to_array(im), "parsing": parsing,
                "file": c.relpath(image_path, root)}

    return c.iterate(lines, build, on_error=on_error, dataset=_NAME)


def count_helen(root: str, split: str) -> int:
    """Number of faces in the split list, without decoding images."""
    split = c.normalize_split(split, ("train", "val", "test"), _NAME)
    return len(_records(os.fspath(root), split)[1])

