"""MTFL reader (Zhang, Luo, Loy & Tang, "Facial landmark detection by deep multi-task
learning", ECCV 2014): five landmarks plus four face attributes.

Layout::

    root/training.txt     (train, 10,000 faces)
    root/testing.txt      (test, 2,995 faces)
    root/lfw_5590/… root/net_7876/… root/AFLW/…   (images, paths as listed)

Each line (possibly with a leading space) is::

    lfw_5590\\Name_0001.jpg x1 x2 x3 x4 x5 y1 y2 y3 y4 y5 gender smile glasses pose

with Windows path separators and landmarks in pixels of the original image.

Landmark order.  MTFL's readme names the points "left eye, right eye, nose, left mouth
corner, right mouth corner", and in the files x1 < x2 and x4 < x5 on frontal faces: MTFL's
"left" is the **image's** left (the subject's right).  The contract's "left" is the
subject's left, so the points are reordered:

| ours (subject's side)   | MTFL point                        |
|-------------------------|-----------------------------------|
| 0 left eye              | 2 (x2, y2) "right eye"            |
| 1 right eye             | 1 (x1, y1) "left eye"             |
| 2 nose tip              | 3 (x3, y3) "nose"                 |
| 3 left mouth corner     | 5 (x5, y5) "right mouth corner"   |
| 4 right mouth corner    | 4 (x4, y4) "left mouth corner"    |

Attributes are kept as MTFL codes in int32 scalars: ``gender`` (1 male, 2 female),
``smile`` (1 smiling, 2 not), ``glasses`` (1 wearing, 2 not), ``pose`` (1 left profile,
2 left, 3 frontal, 4 right, 5 right profile); any other code is an error.
"""

from __future__ import annotations

import os

import numpy as np

from affectjax.data.readers import _common as c

MTFL_TO_OURS: tuple[int, ...] = (1, 0, 2, 4, 3)  # ours[i] = mtfl[MTFL_TO_OURS[i]]
ATTRIBUTES: dict[str, tuple[int, ...]] = {
    "gender": (1, 2), "smile": (1, 2), "glasses": (1, 2), "pose": (1, 2, 3, 4, 5)}
_FILE = {"train": "training.txt", "test": "testing.txt"}
_FIELDS = (["path"] + [f"x{i}" for i in range(1, 6)] + [f"y{i}" for i in range(1, 6)]
           + list(ATTRIBUTES))
_NAME = "MTFL"


def _records(root: str, split: str) -> tuple[str, list[tuple[int, str]]]:
    path = os.path.join(root, _FILE[split])
    if not os.path.isfile(path):
        raise c.DataFormatError(
            f"{_NAME}: expected {path} (lines 'lfw_5590\\Name_0001.jpg x1..x5 y1..y5 gender "
            "smile glasses pose') — it does not exist")
    return path, c.read_lines(path)


def read_mtfl(root: str, split: str, *, image_size: c.ImageSize = None,
              on_error: str = "raise"):
    """Reads MTFL (layout, landmark reordering and attribute codes in the module docstring).

    Args:
        root: the MTFL folder holding ``training.txt``, ``testing.txt`` and the images.
        split: ``"train"`` or ``"test"``.
        image_size: optional (height, width) or int; PIL bilinear resize, landmarks scaled.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``image, landmarks, landmarks_mask, gender,
        smile, glasses, pose, file``.
    """
    split = c.normalize_split(split, ("train", "test"), _NAME)
    root = os.fspath(root)
    path, lines = _records(root, split)
    hw = c.image_hw(image_size)

    def build(record: tuple[int, str]) -> c.Example:
        lineno, line = record
        fields = line.split()
        if len(fields) != len(_FIELDS):
            missing = _FIELDS[len(fields)] if len(fields) < len(_FIELDS) else "(extra)"
            raise c.DataFormatError(f"{c.where(path, lineno)}: expected {len(_FIELDS)} "
                                    f"whitespace-separated fields, got {len(fields)}; "
                                    f"field {missing!r}")
        coords = [c.parse_float(v, path, lineno, name)
                  for v, name in zip(fields[1:11], _FIELDS[1:11])]
        points = np.stack([coords[:5], coords[5:]], axis=1)[list(MTFL_TO_OURS)]
        attributes = {}
        for (name, codes), text in zip(ATTRIBUTES.items(), fields[11:]):
            code = c.parse_int(text, path, lineno, name)
            attributes[name] = c.scalar(
                c.map_code(code, {k: k for k in codes}, path, lineno, name), np.int32)
        image_path = os.path.join(root, *fields[0].replace("\\", "/").split("/"))
        image, scale = c.load_rgb(image_path, hw)
        return {"image": image, "landmarks": (points * scale).astype(np.float32),
                "landmarks_mask": c.scalar(True, np.bool_), **attributes,
                "file": c.relpath(image_path, root)}

    return c.iterate(lines, build, on_error=on_error, dataset=_NAME)


def count_mtfl(root: str, split: str) -> int:
    """Number of non-blank lines of the split's list, without decoding images."""
    split = c.normalize_split(split, ("train", "test"), _NAME)
    return len(_records(os.fspath(root), split)[1])
