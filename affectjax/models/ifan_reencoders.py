"""iFAN's task-wise feature re-encoders: predictions -> a pyramid of feedback maps.

Li et al., "Integrated Face Analytics Networks through Cross-Dataset Hybrid Training" (ACM
MM 2017), eq. 2 (`f_{theta_e^t}`) and Sec. 4.1.2. Each re-encoder turns one task's raw
prediction into maps at the pyramid resolutions R, R/4, R/8, R/16 (R = model input size),
of which `IFAN` keeps those that are down-path resolutions of its backbone:

* landmarks: disk heat maps (`landmark_heatmaps`, radius 5 px at 128 px in the paper) ->
  `ConvPyramid`;
* parsing: per-pixel class probabilities -> `ConvPyramid`;
* emotion: class probabilities -> one Dense -> ReLU per level, tiled over the level
  (`DenseTiles`).

`ConvPyramid` follows the authors' released Keras code (5x5/2 conv + 2x2 max pool -> R/4,
then 3x3 conv + max pool -> R/8, R/16, each conv bias-free with BN and ReLU, computed from
the raw maps) and replaces their raw full-resolution maps by a 3x3 conv level, so that all
tasks give the same channel count per level and eq. 4's sum is defined. Without learnable
re-encoders (the Sec. 4.3.2 ablation) `raw_pyramid` only average-pools the raw maps.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models.fcdensenet import Conv
from affectjax.models.layers import BatchNorm

Dtype = Any

# Pyramid level k lies at resolution R // LEVEL_FACTORS[k].
LEVEL_FACTORS = (1, 4, 8, 16)


def landmark_heatmaps(landmarks: jax.Array, size: int, radius: float) -> jax.Array:
    """Disk heat maps of landmarks, one channel per landmark.

    Pixel (i, j) (row, column) covers [j, j + 1) x [i, i + 1); its value in map l is 1 where
    its centre (j + 0.5, i + 0.5) lies strictly within `radius` of landmark l, else 0. The
    landmarks are not differentiated through (the authors render them in NumPy).

    Args:
        landmarks: (B, L, 2) (x, y) in pixels of a `size` x `size` image; points outside the
            image give partial or empty disks.
        size: output height and width.
        radius: disk radius in pixels.

    Returns:
        (B, size, size, L) float32 maps of 0 and 1.
    """
    points = jax.lax.stop_gradient(jnp.asarray(landmarks, jnp.float32))
    centres = jnp.arange(size, dtype=jnp.float32) + 0.5
    dx = centres[None, None, :, None] - points[:, None, None, :, 0]  # (B, 1, W, L)
    dy = centres[None, :, None, None] - points[:, None, None, :, 1]  # (B, H, 1, L)
    return (jnp.square(dx) + jnp.square(dy) < radius * radius).astype(jnp.float32)


def num_levels(size: int, num_blocks: int) -> int:
    """Pyramid levels kept: those whose resolution is a down-path resolution (size ... size / 2**(num_blocks-1))."""
    return sum(1 for f in LEVEL_FACTORS if f <= 2 ** (num_blocks - 1) and size % f == 0)


def raw_pyramid(maps: jax.Array, levels: int) -> dict[int, jax.Array]:
    """Average-pools (B, R, R, C) maps to each of the first `levels` pyramid resolutions."""
    size = maps.shape[1]
    out = {}
    for f in LEVEL_FACTORS[:levels]:
        out[size // f] = maps if f == 1 else nn.avg_pool(maps, (f, f), strides=(f, f))
    return out


class ConvPyramid(nn.Module):
    """Learnable map re-encoder: (B, R, R, C) -> {R: widths[0], R/4: widths[1], ...}.

    Level 0: 3x3 conv; level 1: 5x5 conv stride 2 + 2x2 max pool; further levels: 3x3 conv
    + 2x2 max pool on the previous one. Each conv is bias-free (Keras `he_uniform`) followed
    by `BatchNorm` (one set, whatever the data set) and ReLU.

    Attributes:
        widths: channels per level (4 values).
        dtype: computation dtype.
    """

    widths: Sequence[int]
    dtype: Dtype | None = None

    def _unit(self, x: jax.Array, width: int, kernel: int, stride: int, k: int, train: bool) -> jax.Array:
        x = Conv(width, kernel, stride, dtype=self.dtype, name=f"level{k}_conv")(x)
        return nn.relu(BatchNorm(dtype=self.dtype, name=f"level{k}_bn")(x, train))

    @nn.compact
    def __call__(self, maps: jax.Array, levels: int, train: bool = False) -> dict[int, jax.Array]:
        """(B, R, R, C) maps -> the first `levels` levels `{R: ..., R/4: ..., ...}`."""
        size = maps.shape[1]
        maps = maps.astype(self.dtype or maps.dtype)
        out = {size: self._unit(maps, self.widths[0], 3, 1, 0, train)}
        x = maps
        for k in range(1, levels):
            x = self._unit(x, self.widths[k], 5 if k == 1 else 3, 2 if k == 1 else 1, k, train)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
            out[size // LEVEL_FACTORS[k]] = x
        return out


class DenseTiles(nn.Module):
    """Vector re-encoder: (B, C) -> {R / f_k: Dense(widths[k]) -> ReLU, tiled to (B, r, r, widths[k])}.

    Attributes:
        widths: channels per level (4 values).
        dtype: computation dtype.
    """

    widths: Sequence[int]
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, probabilities: jax.Array, size: int, levels: int, train: bool = False) -> dict[int, jax.Array]:
        """(B, C) -> the first `levels` levels for a `size` px input."""
        del train
        out = {}
        for k in range(levels):
            r = size // LEVEL_FACTORS[k]
            v = nn.relu(nn.Dense(self.widths[k], dtype=self.dtype, name=f"level{k}_dense")(probabilities))
            out[r] = jnp.broadcast_to(v[:, None, None, :], (v.shape[0], r, r, v.shape[-1]))
        return out
