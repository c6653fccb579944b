"""Aff-Wild2 reader for the expression-track layout (ABAW2–ABAW5 EXPR challenge, CCT paper).

Layout::

    root/annotations/EXPR_Set/Train_Set/<video>.txt          (train)
    root/annotations/EXPR_Set/Validation_Set/<video>.txt     (val)
    root/cropped_aligned/<video>/<frame:05d>.jpg

One label file per video; a video with two subjects has two, ``<video>_left.txt`` and
``<video>_right.txt``, with frame folders of the same names.  The first line of a label
file is a header naming the classes in the file's code order, then one integer code per
frame: line ``k + 2`` holds frame ``k + 1`` (frames are 1-based), whose image is
``cropped_aligned/<video>/<frame:05d>.jpg``.  Code −1 means the frame is unlabelled.

Labels: the header's names are mapped by name (case-insensitive) into ABAW order, so
both released headers read the same:

| header (ABAW2/3)  | header (ABAW4/5) | code | ``expr`` (ABAW order) |
|-------------------|------------------|------|-----------------------|
| Neutral           | Neutral          | 0    | 0 Neutral             |
| Anger             | Anger            | 1    | 1 Anger               |
| Disgust           | Disgust          | 2    | 2 Disgust             |
| Fear              | Fear             | 3    | 3 Fear                |
| Happiness         | Happiness        | 4    | 4 Happiness           |
| Sadness           | Sadness          | 5    | 5 Sadness             |
| Surprise          | Surprise         | 6    | 6 Surprise            |
| —                 | Other            | 7    | 7 Other               |
| (unlabelled)      | (unlabelled)     | −1   | dropped, or −1        |

A header in another order is mapped by its names too; an unknown or repeated name is an
error naming the file and line 1, and so is a code outside −1 … (number of names − 1).

Unlabelled frames (−1) are dropped by default, as the CCT paper trains on labelled frames
only; ``drop_unlabelled=False`` keeps them with ``expr = −1`` (the missing value, as the
MTL reader yields it).  The labels cover every frame of a video, but ``cropped_aligned/``
has no image where no face was found: such frames are skipped, counted, and the total is
logged when the reader ends (see `AffWild2ExprExamples.note`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from absl import logging

from affectjax.data.readers import _common as c

_SET = {"train": "Train_Set", "val": "Validation_Set"}
_NAME = "Aff-Wild2 EXPR"
_CLASS_INDEX = {name.lower(): i for i, name in enumerate(c.ABAW_EXPRESSIONS)}


class _Skip:
    """A frame `read_affwild2_expr` leaves out (``reason``: "unlabelled" or "no_image")."""

    def __init__(self, reason: str):
        self.reason = reason


_UNLABELLED, _NO_IMAGE = _Skip("unlabelled"), _Skip("no_image")


class AffWild2ExprExamples:
    """The iterator `read_affwild2_expr` returns: examples, plus counts of left-out frames.

    Attributes:
        drop_unlabelled: whether frames with code −1 are left out.
        unlabelled: frames with code −1 met so far (dropped, or yielded with ``expr = −1``).
        no_image: frames skipped so far because ``cropped_aligned/`` has no image for them.
    """

    def __init__(self, examples: Iterator, *, drop_unlabelled: bool):
        self.drop_unlabelled = bool(drop_unlabelled)
        self.unlabelled = 0
        self.no_image = 0
        self._examples = examples
        self._logged = False

    @property
    def dropped(self) -> int:
        """Frames left out so far: those without an image, plus the unlabelled if dropped."""
        return self.no_image + (self.unlabelled if self.drop_unlabelled else 0)

    @property
    def note(self) -> str:
        """E.g. ``"1,204 unlabelled frames dropped; 96 frames without an image skipped"``."""
        action = "dropped" if self.drop_unlabelled else "kept with expr -1"
        return (f"{self.unlabelled:,} unlabelled frame{'s' * (self.unlabelled != 1)} {action}; "
                f"{self.no_image:,} frame{'s' * (self.no_image != 1)} without an image skipped")

    def __iter__(self) -> "AffWild2ExprExamples":
        return self

    def __next__(self) -> c.Example:
        while True:
            try:
                example = next(self._examples)
            except StopIteration:
                if not self._logged:
                    self._logged = True
                    log = logging.warning if self.no_image else logging.info
                    log("%s: %s", _NAME, self.note)
                raise
            if example is _UNLABELLED or (isinstance(example, dict) and example["expr"] < 0):
                self.unlabelled += 1
            elif example is _NO_IMAGE:
                self.no_image += 1
            if isinstance(example, dict):
                return example


def _split_dir(root: str, split: str) -> str:
    path = os.path.join(root, "annotations", "EXPR_Set", _SET[split])
    if not os.path.isdir(path):
        raise c.DataFormatError(
            f"{_NAME}: expected folder {path}/ (one <video>.txt label file per video, header "
            f"Neutral,Anger,…) and {root}/cropped_aligned/<video>/ — it does not exist")
    return path


def _videos(label_dir: str) -> list[str]:
    names = sorted(n[:-4] for n in os.listdir(label_dir)
                   if n.endswith(".txt") and os.path.isfile(os.path.join(label_dir, n)))
    if not names:
        raise c.DataFormatError(f"{_NAME}: {label_dir}/ holds no <video>.txt label files")
    return names


def parse_header(path: str, lines: list[tuple[int, str]]) -> dict[int, int]:
    """Maps a label file's codes to ABAW indices by its header's class names (−1 → −1)."""
    if not lines:
        raise c.DataFormatError(f"{path}:1: empty label file (expected a header naming the "
                                "classes, e.g. Neutral,Anger,Disgust,Fear,Happiness,Sadness,"
                                "Surprise)")
    lineno, text = lines[0]
    names = [n.strip() for n in text.split(",")]
    table = {-1: -1}
    for code, name in enumerate(names):
        index = _CLASS_INDEX.get(name.lower())
        if index is None:
            what = ("expected a header naming the classes, e.g. Neutral,Anger,…"
                    if len(names) == 1 else "known: " + ", ".join(c.ABAW_EXPRESSIONS))
            raise c.DataFormatError(
                f"{c.where(path, lineno, 'header')}: unknown class name {name!r} ({what})")
        if index in table.values():
            raise c.DataFormatError(
                f"{c.where(path, lineno, 'header')}: class {name!r} is named twice")
        table[code] = index
    return table


def _records(root: str, split: str, label_dir: str, image_root: str) -> Iterator[tuple]:
    """Per frame: (label path, line number, code text, video, frame, code table, has image)."""
    for video in _videos(label_dir):
        path = os.path.join(label_dir, video + ".txt")
        lines = c.read_lines(path)
        table = parse_header(path, lines)
        header_line = lines[0][0]
        frame_dir = os.path.join(image_root, video)
        if os.path.isdir(frame_dir):
            images = set(os.listdir(frame_dir))
        else:
            images = set()
            logging.warning("%s: %s/ does not exist; the frames of %s are skipped",
                            _NAME, frame_dir, c.relpath(path, root))
        for lineno, text in lines[1:]:
            frame = lineno - header_line
            yield path, lineno, text, video, frame, table, f"{frame:05d}.jpg" in images


def _code(record: tuple) -> int:
    path, lineno, text, _, _, table, _ = record
    return c.map_code(c.parse_int(text.strip(), path, lineno, "expression"), table, path,
                      lineno, "expression")


def read_affwild2_expr(root: str, split: str, *, drop_unlabelled: bool = True,
                       image_size: c.ImageSize = None,
                       on_error: str = "raise") -> AffWild2ExprExamples:
    """Reads the Aff-Wild2 expression track (layout and label table in the module docstring).

    Args:
        root: folder holding ``annotations/EXPR_Set/`` and ``cropped_aligned/``.
        split: ``"train"`` (Train_Set) or ``"val"`` / ``"validation"`` (Validation_Set).
        drop_unlabelled: leave out frames with code −1 (default, as the CCT paper trains);
            False yields them with ``expr = −1``.
        image_size: optional (height, width) or int; PIL bilinear resize.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged) for bad codes and
            undecodable images; a bad header always raises.

    Returns:
        An `AffWild2ExprExamples` iterator of examples with keys ``image, expr, video,
        frame, file``, videos in name order and frames in file order; its ``unlabelled``,
        ``no_image`` and ``note`` count the left-out frames once it is exhausted.
    """
    split = c.normalize_split(split, ("train", "val"), _NAME)
    root = os.fspath(root)
    label_dir = _split_dir(root, split)
    image_root = c.require_dir(os.path.join(root, "cropped_aligned"), _NAME)
    hw = c.image_hw(image_size)

    def build(record: tuple) -> c.Example | _Skip:
        _, _, _, video, frame, _, has_image = record
        expr = _code(record)
        if expr < 0 and drop_unlabelled:
            return _UNLABELLED
        if not has_image:
            return _NO_IMAGE
        image_path = os.path.join(image_root, video, f"{frame:05d}.jpg")
        image, _ = c.load_rgb(image_path, hw)
        return {"image": image, "expr": c.scalar(expr, np.int32), "video": video,
                "frame": c.scalar(frame, np.int32), "file": c.relpath(image_path, root)}

    examples = c.iterate(_records(root, split, label_dir, image_root), build,
                         on_error=on_error, dataset=_NAME)
    return AffWild2ExprExamples(examples, drop_unlabelled=drop_unlabelled)


def count_affwild2_expr(root: str, split: str, *, drop_unlabelled: bool = True) -> int:
    """Number of frames `read_affwild2_expr` yields (with ``on_error="raise"``), no image read.

    Reads every label file and lists every frame folder; a bad header or code raises.
    """
    split = c.normalize_split(split, ("train", "val"), _NAME)
    root = os.fspath(root)
    label_dir = _split_dir(root, split)
    image_root = c.require_dir(os.path.join(root, "cropped_aligned"), _NAME)
    return sum(not (_code(r) < 0 and drop_unlabelled) and r[-1]
               for r in _records(root, split, label_dir, image_root))
