"""Generic class-per-folder image reader (BNU-LSVED frames and any other such set).

Layout::

    root/<class_name>/*.jpg | *.jpeg | *.png | *.bmp     (extension case ignored)

Classes are the sub-folders in sorted order; files come sorted within each class, classes
in order.  Every example has ``label`` int32 = the class folder's index in sorted order.
``expr`` (ABAW) is added when the folder names can be mapped:

* ``class_names`` given: a mapping ``{folder: ABAW index or ABAW name}`` (−1 allowed for
  "keep the image, no expression label"); a folder absent from it is an error.
* ``class_names=None`` and every folder is an emotion word of this table (case ignored),
  the mapping is automatic:

| ABAW          | folder names accepted                        |
|---------------|----------------------------------------------|
| 0 Neutral     | neutral                                      |
| 1 Anger       | anger, angry                                 |
| 2 Disgust     | disgust, disgusted, disgusting               |
| 3 Fear        | fear, fearful, afraid, scared                |
| 4 Happiness   | happiness, happy, joy                        |
| 5 Sadness     | sadness, sad                                 |
| 6 Surprise    | surprise, surprised                          |
| 7 Other       | other, contempt                              |

* otherwise only ``label`` is yielded (logged once, so the choice is visible).

Files with other extensions are not images of the set; their count is logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from absl import logging

from affectjax import registry
from affectjax.data.readers import _common as c

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
EMOTION_WORDS: dict[str, int] = {
    "neutral": 0, "anger": 1, "angry": 1, "disgust": 2, "disgusted": 2, "disgusting": 2,
    "fear": 3, "fearful": 3, "afraid": 3, "scared": 3, "happiness": 4, "happy": 4, "joy": 4,
    "sadness": 5, "sad": 5, "surprise": 6, "surprised": 6, "other": 7, "contempt": 7}
_NAME = "image folder"


def _abaw_index(value: int | str, folder: str) -> int:
    if isinstance(value, str):
        names = {n.lower(): i for i, n in enumerate(c.ABAW_EXPRESSIONS)}
        if value.lower() not in names:
            raise c.DataFormatError(f"class_names[{folder!r}]: " + registry.unknown_name_message(
                "ABAW class", value, c.ABAW_EXPRESSIONS))
        return names[value.lower()]
    if int(value) not in range(-1, 8):
        raise c.DataFormatError(f"class_names[{folder!r}] = {value!r} is not an ABAW index "
                                "in -1..7")
    return int(value)


def _classes(root: str) -> list[str]:
    if not os.path.isdir(root):
        raise c.DataFormatError(f"{_NAME}: expected folder {root}/ with one sub-folder per "
                                "class (root/<class_name>/*.jpg) — it does not exist")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise c.DataFormatError(f"{_NAME}: {root}/ has no class sub-folders "
                                "(expected root/<class_name>/*.jpg)")
    return classes


def _records(root: str, classes: list[str]) -> list[tuple[int, str]]:
    records, ignored = [], 0
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        for file in sorted(os.listdir(folder)):
            full = os.path.join(folder, file)
            if os.path.splitext(file)[1].lower() in IMAGE_EXTENSIONS and os.path.isfile(full):
                records.append((index, full))
            else:
                ignored += 1
    if ignored:
        logging.info("%s: %s: ignored %d entries that are not %s files", _NAME, root, ignored,
                     "/".join(IMAGE_EXTENSIONS))
    return records


def read_image_folder(root: str, *, class_names: Mapping[str, int | str] | None = None,
                      image_size: c.ImageSize = None, on_error: str = "raise"):
    """Reads ``root/<class_name>/*`` images (rules and emotion-word table in the module docstring).

    Args:
        root: the folder of class folders.
        class_names: optional ``{folder name: ABAW index or name}``.
        image_size: optional (height, width) or int; PIL bilinear resize.
        on_error: ``"raise"`` (default) or ``"skip"`` (counted and logged).

    Returns:
        A generator of examples with keys ``image, label, file`` and ``expr`` when mapped.
    """
    root = os.fspath(root)
    classes = _classes(root)
    if class_names is not None:
        unknown = [name for name in classes if name not in class_names]
        if unknown:
            raise c.DataFormatError(f"{_NAME}: {root}/: class folder(s) {', '.join(unknown)} "
                                    f"missing from class_names (has {', '.join(class_names)})")
        to_abaw = {name: _abaw_index(class_names[name], name) for name in classes}
    elif all(name.lower() in EMOTION_WORDS for name in classes):
        to_abaw = {name: EMOTION_WORDS[name.lower()] for name in classes}
    else:
        to_abaw = None
        logging.info("%s: %s: folders %s are not all emotion words; yielding 'label' only",
                     _NAME, root, classes)
    hw = c.image_hw(image_size)

    def build(record: tuple[int, str]) -> c.Example:
        index, path = record
        image, _ = c.load_rgb(path, hw)
        example = {"image": image, "label": c.scalar(index, np.int32),
                   "file": c.relpath(path, root)}
        if to_abaw is not None:
            example["expr"] = c.scalar(to_abaw[classes[index]], np.int32)
        return example

    return c.iterate(_records(root, classes), build, on_error=on_error, dataset=_NAME)


def count_image_folder(root: str) -> int:
    """Number of image files under the class folders, without decoding them."""
    root = os.fspath(root)
    return len(_records(root, _classes(root)))
