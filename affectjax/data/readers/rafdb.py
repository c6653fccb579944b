"""RAF-DB basic-emotion reader (Li, Deng & Du, "Reliable crowdsourcing …", CVPR 2017).

Layout::

    root/EmoLabel/list_patition_label.txt        lines "train_00001.jpg 5"
    root/Image/aligned/train_00001_aligned.jpg   (aligned=True, the default)
    root/Image/original/train_00001.jpg          (aligned=False)

The split comes from the name prefix (``train_`` → train, ``test_`` → test); the list
file's spelling "patition" is the data set's own.

Expression mapping (RAF-DB code → ABAW index):

| RAF-DB     | code | ABAW          |
|------------|------|---------------|
| Surprise   | 1    | 6 Surprise    |
| Fear       | 2    | 3 Fear        |
| Disgust    | 3    | 2 Disgust     |
| Happiness  | 4    | 4 Happiness   |
| Sadness    | 5    | 5 Sadness     |
| Anger      | 6    | 1 Anger       |
| Neutral    | 7    | 0 Neutral     |
"""

from __future__ import annotations

import os

import numpy as np

from affectjax.data.readers import _common as c

RAFDB_TO_ABAW: dict[int, int] = {1: 6, 2: 3, 3: 2, 4: 4, 5: 5, 6: 1, 7: 0}
_NAME = "RAF-DB"
_LIST = os.path.join("EmoLabel", "list_patition_label.txt")


def _records(root: str, split: str) -> tuple[str, list[tuple[int, str]]]:
    """The list's lines of ``split``, plus any line whose prefix names no split (an error)."""
    path = os.path.join(root, _LIST)
    if not os.path.isfile(path):
        raise c.DataFormatError(
            f"{_NAME}: expected {path} (lines 'train_00001.jpg 5') and "
            f"{root}/Image/aligned/ — the label list does not exist")
    keep = []
    for lineno, line in c.read_lines(path):
        name = line.split()[0]
        if name.startswith(f"{split}_") or not name.startswith(("train_", "test_")):
            keep.append((lineno, line))
    return path, keep


def read_rafdb(root: str, split: str, *, aligned: bool = True, image_size: c.ImageSize = None,
               on_error: str = "raise"):
    """Reads RAF-DB basic (layout and label table in the module docstring).

    Args:
        root: the RAF-DB ``basic`` folder.
        split: ``"train"`` or ``"test"``.
        aligned: read ``Image/aligned/*_aligned.jpg`` (default) or ``Image/original/*.jpg``.
        image_size: optional (height, width) or int; PIL bilinear resize.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``image, expr, file`` in list order.
    """
    split = c.normalize_split(split, ("train", "test"), _NAME)
    root = os.fspath(root)
    path, lines = _records(root, split)
    image_dir = c.require_dir(
        os.path.join(root, "Image", "aligned" if aligned else "original"), _NAME)
    hw = c.image_hw(image_size)

    def build(record: tuple[int, str]) -> c.Example:
        lineno, line = record
        fields = line.split()
        if len(fields) != 2:
            raise c.DataFormatError(f"{c.where(path, lineno)}: expected 'NAME CODE', got "
                                    f"{len(fields)} fields; field 'code'")
        name, code_text = fields
        if not name.startswith(("train_", "test_")):
            raise c.DataFormatError(
                f"{c.where(path, lineno, 'name')}: {name!r} starts with neither 'train_' nor "
                "'test_', so its split is unknown")
        code = c.parse_int(code_text, path, lineno, "code")
        expr = c.map_code(code, RAFDB_TO_ABAW, path, lineno, "code")
        stem, ext = os.path.splitext(name)
        file_name = f"{stem}_aligned{ext}" if aligned else name
        image, _ = c.load_rgb(os.path.join(image_dir, file_name), hw)
        return {"image": image, "expr": c.scalar(expr, np.int32),
                "file": c.relpath(os.path.join(image_dir, file_name), root)}

    return c.iterate(lines, build, on_error=on_error, dataset=_NAME)


def count_rafdb(root: str, split: str) -> int:
    """Number of listed images of the split (plus unknown-prefix lines), without decoding."""
    split = c.normalize_split(split, ("train", "test"), _NAME)
    return len(_records(os.fspath(root), split)[1])
