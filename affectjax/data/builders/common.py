"""Shared pieces of the affectjax TFDS builders: contract features, "missing" fill, configs.

Every builder writes **array_record** and never needs TensorFlow: images are yielded as PNG
bytes (encoded here with PIL), fixed-length vectors use `tfds.features.Tensor`, parsing masks
are zlib-compressed `Tensor`s. Every image data set stores the same keys, so every image
batch has the same structure; a key a data set lacks holds its "missing" value:

====================  ===========================  ==============================
key                   feature                      missing value
====================  ===========================  ==============================
``image``             PNG (H, W, 3) uint8          (always present)
``expr``              int32 scalar, ABAW order     -1
``va``                float32 (2,)                 0, with ``va_mask`` False
``au``                int32 (12,)                  -1
``landmarks``         float32 (5, 2)               0, with ``landmarks_mask`` False
``parsing``           uint8 (H, W), 11 Helen ids   255 everywhere (ignored)
====================  ===========================  ==============================

Landmark convention (identical in every module): (x, y) in pixels of the stored image,
continuous, pixel ``i`` covering ``[i, i + 1)``; order left eye, right eye, nose tip, left
mouth corner, right mouth corner, where "left" is the subject's left (the image's right).
"""

import dataclasses
import hashlib
import io
import json
from typing import Any, Mapping

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

IMAGE_KEYS = ("image", "expr", "va", "va_mask", "au", "landmarks", "landmarks_mask", "parsing")
VERSION = tfds.core.Version("1.0.0")


@dataclasses.dataclass(eq=False)
class AffectConfig(tfds.core.BuilderConfig):
    """A builder config carrying the keyword arguments that shape the generated data."""

    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def make_config(prefix: str, kwargs: Mapping[str, Any], *, salt: str = "") -> AffectConfig:
    """A config whose name is ``prefix`` plus a hash of ``kwargs``, so each setting caches apart.

    Args:
        prefix: readable part of the name, e.g. "studio-64px".
        kwargs: the generation/reading arguments (JSON-serialisable).
        salt: mixed into the hash only, e.g. a generator's version, so that data made by an
            older generator is never read back as current.

    Returns:
        An `AffectConfig` named ``{prefix}-{hash8}``.
    """
    blob = json.dumps(dict(kwargs), sort_keys=True, default=str)
    digest = hashlib.sha1((blob + salt).encode()).hexdigest()[:8]
    return AffectConfig(name=f"{prefix}-{digest}", version=VERSION, kwargs=dict(kwargs),
                        description=blob)


def image_features(height: int, width: int, extra: Mapping[str, Any] | None = None):
    """The contract's image features at a fixed stored size, plus optional ``extra`` ones."""
    feats = {
        "image": tfds.features.Image(shape=(height, width, 3), encoding_format="png"),
        "expr": tfds.features.Scalar(dtype=np.int32),
        "va": tfds.features.Tensor(shape=(2,), dtype=np.float32),
        "va_mask": tfds.features.Scalar(dtype=np.bool_),
        "au": tfds.features.Tensor(shape=(12,), dtype=np.int32),
        "landmarks": tfds.features.Tensor(shape=(5, 2), dtype=np.float32),
        "landmarks_mask": tfds.features.Scalar(dtype=np.bool_),
        "parsing": tfds.features.Tensor(shape=(height, width), dtype=np.uint8, encoding="zlib"),
    }
    feats.update(extra or {})
    return tfds.features.FeaturesDict(feats)


def extra_features(example: Mapping[str, Any]) -> dict[str, Any]:
    """Tensor features for the numeric keys of ``example`` beyond the contract's image keys."""
    out = {}
    for key, value in example.items():
        arr = np.asarray(value)
        if key in IMAGE_KEYS or arr.dtype.kind in "USO":
            continue
        out[key] = (tfds.features.Scalar(dtype=arr.dtype) if arr.ndim == 0
                    else tfds.features.Tensor(shape=arr.shape, dtype=arr.dtype))
    return out


def png_bytes(image: np.ndarray) -> bytes:
    """Encodes a uint8 (H, W, 3) array as PNG bytes (fast compression)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def fill_image_example(example: Mapping[str, Any], size: tuple[int, int], *, where: str,
                       keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """An example with every contract image key, missing ones filled, image as PNG bytes.

    Args:
        example: an example dict from a generator or reader.
        size: the stored (height, width); the image must already have it.
        where: names the item in errors (e.g. "fer2013 train item 12").
        keep: extra numeric keys to carry over unchanged.

    Returns:
        A dict ready for `image_features(*size)` (+ ``keep`` features).
    """
    h, w = size
    image = np.asarray(example["image"])
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.shape != (h, w, 3) or image.dtype != np.uint8:
        raise ValueError(f"{where}: image {image.dtype}{image.shape} is not uint8 ({h}, {w}, 3)")
    out = {
        "image": png_bytes(image),
        "expr": np.int32(example.get("expr", -1)),
        "au": np.asarray(example.get("au", np.full(12, -1)), np.int32),
    }
    for key, mask, shape in (("va", "va_mask", (2,)), ("landmarks", "landmarks_mask", (5, 2))):
        if key in example:
            out[key] = np.asarray(example[key], np.float32).reshape(shape)
            out[mask] = bool(example.get(mask, True))
        else:
            out[key], out[mask] = np.zeros(shape, np.float32), False
        if not out[mask]:
            out[key] = np.zeros(shape, np.float32)
    parsing = example.get("parsing")
    out["parsing"] = (np.full((h, w), 255, np.uint8) if parsing is None
                      else np.asarray(parsing, np.uint8))
    if out["parsing"].shape != (h, w):
        raise ValueError(f"{where}: parsing {out['parsing'].shape} is not ({h}, {w})")
    for key in keep:
        out[key] = np.asarray(example[key])
    return out
