"""The LSD fine-tune's 6-class training set (paper 1, Sec. 2.2; `affectjax.methods.emotieffnet.lsd`).

The synthetic faces of the 6 LSD classes (rendered SynthFaces or a class-folder set),
optionally enlarged by super-resolution (`affectjax.methods.emotieffnet.super_resolution`), written as a
class-folder set ``<out>/<class>/<n>.png`` that the trainer's ``image_folder`` data set
reads. Class mapping (ABAW order -> LSD index)::

    ABAW  0 Neutral   1 Anger  2 Disgust  3 Fear  4 Happiness  5 Sadness  6 Surprise  7 Other
    LSD      -        0        1          2       3            4          5           -
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterator

import numpy as np

from affectjax.methods.emotieffnet import super_resolution as sr_lib
from affectjax.train.errors import ConfigError, DataError

LSD_CLASSES = ("Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
ABAW_TO_LSD = np.array([-1, 0, 1, 2, 3, 4, 5, -1], np.int32)
LSD_TO_ABAW = np.array([1, 2, 3, 4, 5, 6], np.int32)


def to_lsd_labels(expr: Any) -> np.ndarray:
    """ABAW expression labels (-1 missing) -> LSD indices 0..5 (-1: Neutral, Other, missing)."""
    expr = np.asarray(expr, np.int64)
    return np.where((expr >= 0) & (expr < 8), ABAW_TO_LSD[np.clip(expr, 0, 7)], -1)



def _abaw_examples(train: Any, chunk: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(images uint8 NHWC, ABAW expr)`` chunks of the configured synthetic set."""
    kind = train.get("source", "synthfaces")
    if kind == "synthfaces":
        from affectjax.data.synthfaces import SynthFaces  # pylint: disable=import-outside-toplevel
        faces = SynthFaces(int(train.num_examples), seed=int(train.get("seed", 0)),
                           image_size=int(train.image_size), domain=train.domain)
        for start in range(0, len(faces), chunk):
            batch = faces.batch(range(start, min(len(faces), start + chunk)))
            yield batch["image"], batch["expr"]
    elif kind == "image_folder":
        from affectjax.data.readers import read_image_folder  # pylint: disable=import-outside-toplevel
        if not train.get("root"):
            raise ConfigError("config.lsd.train.root is empty: give the folder of class "
                              "folders (root/<expression>/*.jpg)")
        names = train.get("class_names") or None
        size = int(train.get("image_size", 0) or 0) or None
        examples = read_image_folder(train.root, class_names=names and dict(names),
                                     image_size=size)
        while True:
            part = [e for _, e in zip(range(chunk), examples)]
            if not part:
                return
            if "expr" not in part[0]:
                raise DataError(f"config.lsd.train.root={train.root}: class folders are not "
                                "emotion words; give lsd.train.class_names")
            yield (np.stack([np.asarray(e["image"]) for e in part]),
                   np.array([int(e["expr"]) for e in part]))
    else:
        raise ConfigError(f"config.lsd.train.source={kind!r}; choose synthfaces or image_folder")


def write_training_set(config: Any, out: str) -> dict[str, Any]:
    """Writes the 6-class (super-resolved) training faces as ``out/<class>/<n>.png``.

    Reused when ``out/lsd_data.json`` records the same settings.

    Returns:
      The record: settings, ``image_size`` (stored) and ``counts`` per LSD class.
    """
    from PIL import Image  # pylint: disable=import-outside-toplevel

    lsd = config.lsd
    key = {"train": plain(lsd.train), "super_resolution": lsd.super_resolution,
           "sr_scale": float(lsd.sr_scale)}
    marker = os.path.join(out, "lsd_data.json")
    if os.path.exists(marker):
        with open(marker) as f:
            done = json.load(f)
        if done["key"] != json.loads(json.dumps(key)):
            raise ConfigError(f"{out} holds a training set of other lsd.train / "
                              "super_resolution settings; use a new --workdir")
        return done
    sr_lib.get(lsd.super_resolution)  # an unknown name fails before any work
    counts, size = np.zeros(6, np.int64), None
    for images, expr in _abaw_examples(lsd.train):
        labels = to_lsd_labels(expr)
        keep = labels >= 0
        if not keep.any():
            continue
        images = sr_lib.apply(lsd.super_resolution, images[keep], float(lsd.sr_scale))
        size = images.shape[1]
        for image, label in zip(images, labels[keep]):
            folder = os.path.join(out, LSD_CLASSES[label].lower())
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                os.path.join(folder, f"{int(counts.sum()):06d}.png"))
            counts[label] += 1
    if size is None:
        raise DataError("config.lsd.train: no training face of the 6 LSD classes")
    done = {"key": key, "image_size": int(size), "counts": dict(zip(LSD_CLASSES,
                                                                    counts.tolist()))}
    with open(marker, "w") as f:
        json.dump(done, f, indent=2)
    return done




def plain(section: Any) -> Any:
    """A ConfigDict section (or mapping) as plain JSON-compatible Python values."""
    return json.loads(json.dumps(section.to_dict() if hasattr(section, "to_dict")
                                 else dict(section)))
