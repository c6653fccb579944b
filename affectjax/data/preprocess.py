"""Batch preprocessing: resize, label-consistent augmentation, normalisation (numpy, vectorised).

Everything works on a batch of stacked examples (dict of numpy arrays with a leading batch
axis) with per-example random parameters, so one call costs a few numpy ops, not a Python
loop over images. Geometry keeps the labels right:

* `warp` zooms by ``z`` and shifts by ``(tx, ty)`` (fractions of the input size) while
  resizing to the output size: the image is sampled bilinearly, the parsing mask by
  nearest neighbour (pixels from outside the input become 0 in the image and 255,
  "ignored", in the mask), and the landmarks move with the image.
* `hflip` mirrors the image and mask, maps landmark ``x`` to ``W - x``, swaps the left and
  right landmarks (eyes 0<->1, mouth corners 3<->4) and the left and right parsing classes
  (brows 2<->3, eyes 4<->5).

Landmarks are (x, y), continuous, pixel ``i`` covering ``[i, i + 1)``; "left" is the
subject's left (the image's right). Missing landmarks (``landmarks_mask`` False) stay 0.
"""

from typing import Any, Mapping

import numpy as np

Batch = dict[str, np.ndarray]
FLIP_LANDMARKS = np.array([1, 0, 2, 4, 3])
FLIP_PARSING = np.arange(256, dtype=np.uint8)
FLIP_PARSING[[2, 3, 4, 5]] = [3, 2, 5, 4]


def _axis_sampling(size_in: int, size_out: int, zoom: np.ndarray, shift: np.ndarray):
    """Input continuous coordinate of each output pixel centre, (B, size_out)."""
    c_out = np.arange(size_out, dtype=np.float64) + 0.5
    step = size_in / (size_out * zoom[:, None])
    return (c_out[None] - size_out / 2) * step + size_in / 2 + shift[:, None] * size_in


def _bilinear_weights(c_in: np.ndarray, size: int):
    u = c_in - 0.5
    i0 = np.floor(u).astype(np.int64)
    w1 = (u - i0).astype(np.float32)
    w0 = 1.0 - w1
    i1 = i0 + 1
    w0 = np.where((i0 >= 0) & (i0 < size), w0, 0.0).astype(np.float32)
    w1 = np.where((i1 >= 0) & (i1 < size), w1, 0.0).astype(np.float32)
    return np.clip(i0, 0, size - 1), np.clip(i1, 0, size - 1), w0, w1


def warp(batch: Batch, out_hw: tuple[int, int], zoom: np.ndarray, tx: np.ndarray,
         ty: np.ndarray) -> Batch:
    """Zooms, shifts and resizes images (float32 in [0, 1]), parsing masks and landmarks.

    Args:
        batch: with ``image`` float32 (B, H, W, 3); optional ``parsing`` (B, H, W),
            ``landmarks`` (B, 5, 2) and ``landmarks_mask`` (B,).
        out_hw: output (height, width).
        zoom: (B,) zoom factors (1 = whole image, 2 = the central half).
        tx, ty: (B,) shifts of the sampled window, as fractions of the input width/height.

    Returns:
        A new batch with the warped ``image``, ``parsing`` (int32) and ``landmarks``.
    """
    img = batch["image"]
    b, h, w = img.shape[:3]
    ho, wo = out_hw
    cy, cx = _axis_sampling(h, ho, zoom, ty), _axis_sampling(w, wo, zoom, tx)
    bi = np.arange(b)[:, None]
    y0, y1, wy0, wy1 = _bilinear_weights(cy, h)
    rows = img[bi, y0] * wy0[..., None, None] + img[bi, y1] * wy1[..., None, None]
    x0, x1, wx0, wx1 = _bilinear_weights(cx, w)
    take = lambda idx: np.take_along_axis(rows, idx[:, None, :, None], axis=2)
    out = dict(batch)
    out["image"] = take(x0) * wx0[:, None, :, None] + take(x1) * wx1[:, None, :, None]
    if "parsing" in batch:
        yi, xi = np.floor(cy).astype(np.int64), np.floor(cx).astype(np.int64)
        valid = ((yi >= 0) & (yi < h))[:, :, None] & ((xi >= 0) & (xi < w))[:, None, :]
        par = batch["parsing"][bi, np.clip(yi, 0, h - 1)]
        par = np.take_along_axis(par, np.clip(xi, 0, w - 1)[:, None, :], axis=2)
        out["parsing"] = np.where(valid, par, 255).astype(np.int32)
    if "landmarks" in batch:
        lm = batch["landmarks"].astype(np.float64)
        scale = np.stack([wo * zoom / w, ho * zoom / h], -1)[:, None, :]
        centre = np.stack([w / 2 + tx * w, h / 2 + ty * h], -1)[:, None, :]
        moved = (lm - centre) * scale + np.array([wo / 2, ho / 2])
        mask = batch.get("landmarks_mask", np.ones(b, bool)).reshape(b, 1, 1)
        out["landmarks"] = np.where(mask, moved, 0.0).astype(np.float32)
    return out


def hflip(batch: Batch, flip: np.ndarray) -> Batch:
    """Mirrors the examples where ``flip`` (B,) is True, keeping every label consistent."""
    out = dict(batch)
    f = flip.astype(bool)
    out["image"] = np.where(f[:, None, None, None], batch["image"][:, :, ::-1], batch["image"])
    if "parsing" in batch:
        par = batch["parsing"]
        mirrored = FLIP_PARSING[par[:, :, ::-1]].astype(par.dtype)
        out["parsing"] = np.where(f[:, None, None], mirrored, par)
    if "landmarks" in batch:
        lm = batch["landmarks"]
        w = batch["image"].shape[2]
        mirrored = lm[:, FLIP_LANDMARKS].copy()
        mirrored[..., 0] = w - mirrored[..., 0]
        mask = batch.get("landmarks_mask", np.ones(len(f), bool))
        out["landmarks"] = np.where((f & mask)[:, None, None], mirrored, lm).astype(lm.dtype)
    return out


def color_jitter(image: np.ndarray, rng: np.random.Generator, apply: np.ndarray, *,
                 brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Random brightness, contrast and saturation factors in ``[1 - s, 1 + s]`` where ``apply``."""
    b = image.shape[0]
    factor = lambda s: np.where(apply, rng.uniform(1 - s, 1 + s, b), 1.0).astype(np.float32)
    x = image * factor(brightness)[:, None, None, None]
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * factor(contrast)[:, None, None, None] + mean
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = gray[..., None] + (x - gray[..., None]) * factor(saturation)[:, None, None, None]
    return np.clip(x, 0.0, 1.0)


def preprocess(batch: Batch, *, image_size: int, mean, std, augment: Mapping[str, Any] | None,
               rng: np.random.Generator | None = None) -> Batch:
    """uint8 images -> resized (and augmented if ``augment``) normalised float32 NHWC.

    Args:
        batch: stacked examples; images uint8 (B, H, W, 3). Batches without ``image``
            (multimodal) pass through unchanged.
        image_size: the model's square input size.
        mean, std: per-channel normalisation of images in [0, 1].
        augment: None for evaluation, else a mapping with ``flip_prob``, ``crop_prob``,
            ``scale``, ``translate``, ``jitter_prob``, ``brightness``, ``contrast``,
            ``saturation``.
        rng: required when ``augment`` is given.

    Returns:
        The batch with ``image`` float32 (B, image_size, image_size, 3) and ``parsing``
        int32 at the same size.
    """
    if "image" not in batch:
        return batch
    out = dict(batch)
    out["image"] = batch["image"].astype(np.float32) / 255.0
    if "parsing" in out:
        out["parsing"] = out["parsing"].astype(np.int32)
    b, h, w = out["image"].shape[:3]
    ones, zeros = np.ones(b), np.zeros(b)
    if augment:
        crop = rng.random(b) < augment["crop_prob"]
        zoom = np.where(crop, rng.uniform(1.0, 1.0 + augment["scale"], b), 1.0)
        t = augment["translate"]
        tx = np.where(crop, rng.uniform(-t, t, b), 0.0)
        ty = np.where(crop, rng.uniform(-t, t, b), 0.0)
        out = warp(out, (image_size, image_size), zoom, tx, ty)
        out = hflip(out, rng.random(b) < augment["flip_prob"])
        out["image"] = color_jitter(out["image"], rng, rng.random(b) < augment["jitter_prob"],
                                    brightness=augment["brightness"],
                                    contrast=augment["contrast"],
                                    saturation=augment["saturation"])
    elif (h, w) != (image_size, image_size):
        out = warp(out, (image_size, image_size), ones, zeros, zeros)
    mean = np.asarray(mean, np.float32)
    std = np.asarray(std, np.float32)
    out["image"] = ((out["image"] - mean) / std).astype(np.float32)
    return out
