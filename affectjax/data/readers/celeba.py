"""CelebA reader (Liu, Luo, Wang & Tang, "Deep learning face attributes in the wild", ICCV 2015).

Layout, as distributed::

    root/img_align_celeba/000001.jpg ...   aligned and cropped faces (178 x 218 pixels)
    root/list_attr_celeba.txt              line 1: the image count (202599)
                                           line 2: the 40 attribute names
                                           then "000001.jpg -1  1  1 -1 ..." per image
    root/list_eval_partition.txt           "000001.jpg 0" per image: 0 train,
                                           1 validation, 2 test

Values in the attribute file are separated by one or more spaces (the file right-aligns
them, so a ``1`` follows two spaces); -1 becomes 0 and 1 stays 1. The attribute names must
be `CELEBA_ATTRIBUTES`, in that order. Both lists must name the same images.

Examples: ``image`` uint8 (H, W, 3), the whole aligned image (optionally resized, aspect not
kept), ``attr`` int32 (40,) in 0/1, and ``file``. CelebA has no expression, VA, AU,
landmark or parsing labels; a builder fills them as missing.

Problems in the two lists (a missing file, a count line that disagrees with the rows, other
attribute names, a duplicate, an image listed in one file only, a bad partition line) always
raise. A bad attribute row (wrong number of values, a value other than -1/1) or a missing or
unreadable image is an item error: it raises, or with ``on_error="skip"`` is skipped,
logged and counted.
"""

from __future__ import annotations

import os

import numpy as np

from affectjax.data.readers import _common as c

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young")
PARTITION_TO_SPLIT: dict[str, str] = {"0": "train", "1": "val", "2": "test"}
_VALUES = {"-1": 0, "1": 1}
_NAME = "CelebA"
_IMAGES = "img_align_celeba"
_ATTR = "list_attr_celeba.txt"
_PARTITION = "list_eval_partition.txt"
_SPLITS = ("train", "val", "test")


def _attribute_rows(path: str) -> list[tuple[int, str, str]]:
    """``(line, name, line text)`` per image row, after checking the count and name lines."""
    lines = c.read_lines(path)
    if len(lines) < 2:
        raise c.DataFormatError(f"{path}: expected a count line and a line of attribute "
                                f"names, found {len(lines)} non-blank line(s)")
    (count_line, count_text), (names_line, names_text) = lines[:2]
    count = c.parse_int(count_text.strip(), path, count_line, "count")
    names = tuple(names_text.split())
    if names != CELEBA_ATTRIBUTES:
        pos = next((i for i, (a, b) in enumerate(zip(names, CELEBA_ATTRIBUTES)) if a != b),
                   None)
        detail = (f"{len(names)} names" if pos is None else
                  f"name {pos + 1} is {names[pos]!r}, expected {CELEBA_ATTRIBUTES[pos]!r}")
        raise c.DataFormatError(f"{c.where(path, names_line)}: the attribute names are not "
                                f"CelebA's 40 ({detail})")
    rows = [(lineno, line.split(maxsplit=1)[0], line) for lineno, line in lines[2:]]
    if count != len(rows):
        raise c.DataFormatError(f"{c.where(path, count_line, 'count')}: says {count} images "
                                f"but the file has {len(rows)} rows")
    return rows


def _partition(path: str) -> dict[str, tuple[int, str]]:
    """File name -> (line, canonical split) from ``list_eval_partition.txt``."""
    out: dict[str, tuple[int, str]] = {}
    for lineno, line in c.read_lines(path):
        fields = line.split()
        if len(fields) != 2:
            raise c.DataFormatError(f"{c.where(path, lineno)}: expected 'FILE 0|1|2', got "
                                    f"{len(fields)} fields")
        name, code = fields
        if code not in PARTITION_TO_SPLIT:
            raise c.DataFormatError(f"{c.where(path, lineno, 'partition')}: {code!r} is not "
                                    "0 (train), 1 (validation) or 2 (test)")
        if name in out:
            raise c.DataFormatError(f"{c.where(path, lineno)}: {name} is listed again (first "
                                    f"on line {out[name][0]})")
        out[name] = (lineno, PARTITION_TO_SPLIT[code])
    return out


def _records(root: str, split: str) -> tuple[str, str, list[tuple[int, str, str]]]:
    """The attribute file, the image folder and the attribute rows of ``split``."""
    layout = f"{_NAME} ({_IMAGES}/, {_ATTR}, {_PARTITION} under {root})"
    attr_path = c.require_file(os.path.join(root, _ATTR), layout)
    part_path = c.require_file(os.path.join(root, _PARTITION), layout)
    image_dir = c.require_dir(os.path.join(root, _IMAGES), layout)
    rows = _attribute_rows(attr_path)
    partition = _partition(part_path)
    seen: dict[str, int] = {}
    for lineno, name, _ in rows:
        if name in seen:
            raise c.DataFormatError(f"{c.where(attr_path, lineno)}: {name} is listed again "
                                    f"(first on line {seen[name]})")
        seen[name] = lineno
    only_attr = [(n, l) for n, l in seen.items() if n not in partition]
    only_part = [(n, l) for n, (l, _) in partition.items() if n not in seen]
    for only, here, other in ((only_attr, attr_path, part_path),
                              (only_part, part_path, attr_path)):
        if only:
            name, lineno = only[0]
            more = f" (and {len(only) - 1} more)" if len(only) > 1 else ""
            raise c.DataFormatError(f"{c.where(here, lineno)}: {name} is not listed in "
                                    f"{other}{more}")
    keep = [row for row in rows if partition[row[1]][1] == split]
    return attr_path, image_dir, keep


def read_celeba(root: str, split: str, *, image_size: c.ImageSize = None,
                on_error: str = "raise"):
    """Reads aligned CelebA with its 40 attributes (layout in the module docstring).

    Args:
        root: the folder holding ``img_align_celeba/`` and the two lists.
        split: ``"train"``, ``"validation"`` (or ``"val"``) or ``"test"``.
        image_size: optional (height, width) or int; PIL bilinear resize of the 178 x 218
            aligned image.
        on_error: ``"raise"`` (default) or ``"skip"``: a bad row or a missing image is
            skipped, logged and counted.

    Returns:
        A generator of examples with keys ``image``, ``attr`` (int32 (40,), 0/1, in the order
        of `CELEBA_ATTRIBUTES`) and ``file``, in the attribute file's order.
    """
    split = c.normalize_split(split, _SPLITS, _NAME)
    root = os.fspath(root)
    c.check_on_error(on_error)
    attr_path, image_dir, rows = _records(root, split)
    hw = c.image_hw(image_size)
    width = len(CELEBA_ATTRIBUTES)

    def build(record: tuple[int, str, str]) -> c.Example:
        lineno, name, line = record
        values = line.split()[1:]
        if len(values) != width:
            raise c.DataFormatError(f"{c.where(attr_path, lineno)}: {name} has {len(values)} "
                                    f"values, expected {width}")
        for field, value in zip(CELEBA_ATTRIBUTES, values):
            if value not in _VALUES:
                raise c.DataFormatError(f"{c.where(attr_path, lineno, field)}: {value!r} is "
                                        "not -1 or 1")
        image, _ = c.load_rgb(os.path.join(image_dir, name), hw)
        return {"image": image,
                "attr": np.array([_VALUES[v] for v in values], np.int32),
                "file": f"{_IMAGES}/{name}"}

    return c.iterate(rows, build, on_error=on_error, dataset=_NAME)


def count_celeba(root: str, split: str) -> int:
    """Number of images of the split in the lists (after checking them), without decoding."""
    split = c.normalize_split(split, _SPLITS, _NAME)
    return len(_records(os.fspath(root), split)[2])
