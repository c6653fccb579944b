"""Super-resolution (SR) preprocessing of low-resolution training faces.

MT-EmotiEffNet, learning-from-synthetic-data challenge (Savchenko, ABAW4 2022, Sec. 2.2
and Fig. 2): the 112x112 synthetic training faces are too small for a network trained at
224x224, so every training image is first enlarged by a super-resolution model (the
authors: Real-ESRGAN ``RealESRGAN_x4plus`` with output scale 2), and the network is
fine-tuned on the enlarged set. Table 7: fine-tuning on the SR set gains 1% F1 (head
only) to 3-4% (all weights) over the original set.

An SR function maps ``(images, scale) -> images``: ``images`` uint8 (N, H, W, C) with
C in {1, 3}, ``scale`` > 0; it returns uint8 (N, round(H * scale), round(W * scale), C).
`SUPER_RESOLUTION` holds the built-in ones:

* ``none``: the images unchanged (whatever ``scale``; the input pipeline resizes to the
  model's input size anyway);
* ``bicubic``: PIL bicubic interpolation (``Image.BICUBIC``), image by image.

Plugging in a real SR model: write a function of the same signature and register it
before the run starts, e.g. with the ``realesrgan`` package::

    from affectjax.methods.emotieffnet import super_resolution

    def realesrgan_x4plus(images, scale):
        # upsampler = realesrgan.RealESRGANer(scale=4, model_path=..., model=RRDBNet(...))
        return np.stack([upsampler.enhance(img[..., ::-1], outscale=scale)[0][..., ::-1]
                         for img in images])  # the upsampler works in BGR

    super_resolution.SUPER_RESOLUTION["realesrgan"] = realesrgan_x4plus

and set ``config.lsd.super_resolution = "realesrgan"`` (``affectjax.methods.emotieffnet.lsd`` applies
`apply` to every training image once, while it writes the fine-tuning set).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from affectjax import registry

SuperResolution = Callable[[np.ndarray, float], np.ndarray]


def _output_hw(images: np.ndarray, scale: float) -> tuple[int, int]:
    h, w = images.shape[1:3]
    return max(1, round(h * scale)), max(1, round(w * scale))


def none(images: np.ndarray, scale: float) -> np.ndarray:
    """No super-resolution: returns `images` unchanged (`scale` is ignored)."""
    del scale
    return images


def bicubic(images: np.ndarray, scale: float) -> np.ndarray:
    """PIL bicubic resize of every image by `scale`.

    Args:
      images: uint8 (N, H, W, C), C in {1, 3}.
      scale: output size factor (> 0).

    Returns:
      uint8 (N, round(H * scale), round(W * scale), C).
    """
    h, w = _output_hw(images, scale)
    out = np.empty((images.shape[0], h, w, images.shape[3]), np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        out[i] = np.asarray(pil.resize((w, h), Image.BICUBIC)).reshape(h, w, -1)
    return out


SUPER_RESOLUTION: dict[str, SuperResolution] = {"none": none, "bicubic": bicubic}


def get(name: str) -> SuperResolution:
    """The registered SR function `name`; an unknown name raises a KeyError listing choices."""
    return registry.lookup(SUPER_RESOLUTION, name, "super_resolution")


def apply(name: str, images: np.ndarray, scale: float) -> np.ndarray:
    """Checks the input, runs the SR function `name` and checks its output.

    Args:
      name: a key of `SUPER_RESOLUTION`.
      images: uint8 (N, H, W, C) with C in {1, 3}.
      scale: output size factor (> 0); ``none`` keeps the input size.

    Returns:
      uint8 (N, H', W', C) images: (round(H * scale), round(W * scale)) except for ``none``.

    Raises:
      KeyError: unknown `name`.
      ValueError: bad `images` or `scale`, or an SR function returning another shape/dtype.
    """
    fn = get(name)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images: expected uint8 (N, H, W, 1 or 3), got "
                         f"{images.dtype}{images.shape}")
    if isinstance(scale, bool) or not np.isscalar(scale) or not float(scale) > 0:
        raise ValueError(f"scale: expected a number > 0, got {scale!r}")
    out = np.asarray(fn(images, float(scale)))
    hw = images.shape[1:3] if name == "none" else _output_hw(images, float(scale))
    want = (images.shape[0], *hw, images.shape[3])
    if out.dtype != np.uint8 or out.shape != want:
        raise ValueError(f"super_resolution {name!r} returned {out.dtype}{out.shape}; "
                         f"expected uint8{want}")
    return out
