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
``attr``              int32 (40,), 0/1 attributes  -1 (filled when read, see below)
====================  ===========================  ==============================

``attr`` holds 40 binary attributes: CelebA's (`affectjax.data.readers.CELEBA_ATTRIBUTES`)
or SynthFaces' stand-in (``attributes=True``, `affectjax.data.synthfaces.SYNTHFACES_ATTRIBUTES`).
Only the builders of those sets store it (`image_features(..., attributes=True)`); for every
other image set `affectjax.data.pipeline.Source` adds it, all -1, when a split is read. So
every image batch has the same keys, while data prepared before ``attr`` existed stays
valid: storing it everywhere would change every builder's features, and TFDS cannot decode
a prepared split whose stored features lack a declared key.

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

# Stored by every image builder.
IMAGE_KEYS = ("image", "expr", "va", "va_mask", "au", "landmarks", "landmarks_mask", "parsing")
NUM_ATTRIBUTES = 40
# Stored only by the data sets that have them; read back as (shape, dtype, missing value).
READ_FILLED: dict[str, tuple[tuple[int, ...], Any, int]] = {
    "attr": ((NUM_ATTRIBUTES,), np.int32, -1)}
CONTRACT_KEYS = IMAGE_KEYS + tuple(READ_FILLED)
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


def missing_value(key: str) -> np.ndarray:
    """The "missing" value of a `READ_FILLED` key, e.g. ``attr``: int32 (40,) of -1."""
    shape, dtype, fill = READ_FILLED[key]
    return np.full(shape, fill, dtype)


def image_features(height: int, width: int, extra: Mapping[str, Any] | None = None, *,
                   attributes: bool = False):
    """The contract's image features at a fixed stored size, plus optional ``extra`` ones.

    ``attributes=True`` adds ``attr`` (int32 (40,)), for the data sets that have it.
    """
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
    if attributes:
        feats["attr"] = tfds.features.Tensor(shape=(NUM_ATTRIBUTES,), dtype=np.int32)
    feats.update(extra or {})
    return tfds.features.FeaturesDict(feats)


def extra_features(example: Mapping[str, Any]) -> dict[str, Any]:
    """Tensor features for the numeric keys of ``example`` beyond the contract's image keys."""
    out = {}
    for key, value in example.items():
        arr = np.asarray(value)
        if key in CONTRACT_KEYS or arr.dtype.kind in "USO":
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
                       keep: tuple[str, ...] = (), attributes: bool = False) -> dict[str, Any]:
    """An example with every contract image key, missing ones filled, image as PNG bytes.

    Args:
        example: an example dict from a generator or reader.
        size: the stored (height, width); the image must already have it.
        where: names the item in errors (e.g. "fer2013 train item 12").
        keep: extra numeric keys to carry over unchanged.
        attributes: also write ``attr`` (the example's, int32 (40,) in -1/0/1; all -1 when
            it has none), for a builder declaring ``image_features(..., attributes=True)``.

    Returns:
        A dict ready for `image_features(*size, attributes=attributes)` (+ ``keep``).
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
    if attributes:
        attr = np.asarray(example.get("attr", missing_value("attr")))
        if attr.shape != (NUM_ATTRIBUTES,) or not np.isin(attr, (-1, 0, 1)).all():
            raise ValueError(f"{where}: attr {attr.dtype}{attr.shape} is not {NUM_ATTRIBUTES} "
                             "values in -1/0/1")
        out["attr"] = attr.astype(np.int32)
    for key in keep:
        out[key] = np.asarray(example[key])
    return out
