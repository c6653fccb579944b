"""Landmark regression loss (iFAN paper, Sec. 4.1.2)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from affectjax.losses import _checks

_EPS = 1e-12  # inside the square root: a finite gradient at zero distance


def landmark_distance(pred: Any, target: Any, *, scale: Any = 1.0,
                      where: Any | None = None) -> jax.Array:
    r"""Mean Euclidean distance between predicted and target landmarks, over valid images.

    iFAN (Li et al., ACM MM 2017, Sec. 4.1.2) regresses normalised landmark coordinates
    "with the Euclidean distance loss":

    .. math:: L = \frac{1}{N} \sum_i \frac{1}{P} \sum_p \frac{\|\hat{y}_{ip} - y_{ip}\|_2}{s}

    over the N images with labels (`where`), P points each, with the coordinates divided
    by `scale` s (the image size: pixels -> normalised units). A square root of
    :math:`d^2 + 10^{-12}` keeps the gradient finite when a point is exact.

    Args:
      pred: (B, P, D) predicted coordinates.
      target: (B, P, D) target coordinates.
      scale: a scalar dividing the coordinates (1 = as given).
      where: optional (B,) bool, True for images with landmark labels.

    Returns:
      A scalar; 0 (finite gradients) when no image is valid.

    Example:
      >>> import jax.numpy as jnp
      >>> pred = jnp.array([[[3.0, 4.0], [0.0, 0.0]]])
      >>> round(float(landmark_distance(pred, jnp.zeros((1, 2, 2)), scale=10.0)), 4)
      0.25
    """
    pred = _checks.as_float(pred, "pred")
    target = _checks.as_float(target, "target")
    _checks.check_rank(pred, "pred", 3)
    _checks.check_same_shape(pred, target, "pred", "target")
    mask = (jnp.ones(pred.shape[:1], bool) if where is None
            else _checks.as_mask(where, pred.shape[:1]))
    return _landmark_distance(pred, target, jnp.asarray(scale, pred.dtype), mask)


@jax.jit
def _landmark_distance(pred: jax.Array, target: jax.Array, scale: jax.Array,
                       mask: jax.Array) -> jax.Array:
    d = (pred - target) / scale
    per_image = jnp.mean(jnp.sqrt(jnp.sum(jnp.square(d), axis=-1) + _EPS), axis=-1)
    w = mask.astype(per_image.dtype)
    return _checks.safe_divide(jnp.sum(jnp.where(mask, per_image, 0.0)), jnp.sum(w))
