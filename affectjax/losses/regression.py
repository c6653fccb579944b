"""Concordance correlation coefficient (CCC) and the valence/arousal CCC loss.

CCC (Lin, 1989) is the ABAW metric for valence and arousal and, as `1 - CCC`, the VA
term of the MT-EmotiEffNet loss (Savchenko, ABAW4 2022, eq. 1).
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from affectjax.losses import _checks


def ccc(
    x: Any,
    y: Any,
    *,
    where: Any | None = None,
    axis: int = 0,
    ddof: int = 0,
    eps: float = 0.0,
) -> jax.Array:
    r"""Concordance correlation coefficient, reduced over `axis`.

    .. math::
        \mathrm{CCC} = \frac{2 s_{xy}}{s_x^2 + s_y^2 + (\bar x - \bar y)^2 + \epsilon}

    With the defaults (`ddof=0`, `eps=0`) this is the ABAW challenge metric script
    (population variances and covariance, no epsilon). `ddof=1` gives the
    MT-EmotiEffNet authors' PyTorch training loss (unbiased variances and covariance, no
    epsilon); `eps=1e-7` with `ddof=0` gives their Keras MTL heads' loss.

    Degenerate input is well defined: where the denominator is 0 (everything masked, or
    `x` and `y` both constant and equal) the result is 0, with finite gradients. Fewer
    than `ddof + 1` valid items also give 0.

    Args:
      x: predictions, a floating array of rank >= 1.
      y: targets, a floating array of the same shape as `x`.
      where: optional mask broadcastable to `x.shape`; True (non-zero) items take part.
        Masked items are excluded exactly: the result equals slicing them away.
      axis: the axis to reduce (the sample axis), so (N,) -> () and (N, 2) -> (2,).
      ddof: delta degrees of freedom of the variances and covariance (0 or 1).
      eps: added to the denominator.

    Returns:
      The CCC, of shape `x.shape` without `axis`, in [-1, 1].

    References:
      Lin, "A concordance correlation coefficient to evaluate reproducibility",
      Biometrics 1989; Savchenko, "MT-EmotiEffNet for multi-task human affective
      behavior analysis and learning from synthetic data", ABAW4 2022, eq. (1).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([0.1, 0.4, 0.3, 0.9])
      >>> round(float(ccc(x, x)), 4), round(float(ccc(x, 2 * x)), 4)
      (1.0, 0.565)
    """
    x = _checks.as_float(x, "x")
    y = _checks.as_float(y, "y")
    _checks.check_min_rank(x, "x", 1)
    _checks.check_same_shape(x, y, "x", "y")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x of shape {x.shape}")
    mask = jnp.ones(x.shape, bool) if where is None else _checks.as_mask(where, x.shape)
    return _ccc(x, y, mask, eps, axis=axis % x.ndim, ddof=ddof)


@functools.partial(jax.jit, static_argnames=("axis", "ddof"))
def _ccc(
    x: jax.Array, y: jax.Array, mask: jax.Array, eps: Any, *, axis: int, ddof: int
) -> jax.Array:
    w = mask.astype(x.dtype)
    x = jnp.where(mask, x, 0)  # NaN/inf in masked items must not leak into the sums.
    y = jnp.where(mask, y, 0)
    n = w.sum(axis, keepdims=True)
    mean_x = _checks.safe_divide(x.sum(axis, keepdims=True), n)
    mean_y = _checks.safe_divide(y.sum(axis, keepdims=True), n)
    dx = (x - mean_x) * w
    dy = (y - mean_y) * w
    dof = jnp.maximum(n - ddof, 0)
    var_x = _checks.safe_divide((dx * dx).sum(axis, keepdims=True), dof)
    var_y = _checks.safe_divide((dy * dy).sum(axis, keepdims=True), dof)
    cov = _checks.safe_divide((dx * dy).sum(axis, keepdims=True), dof)
    den = var_x + var_y + (mean_x - mean_y) ** 2 + eps
    out = _checks.safe_divide(2 * cov, den)
    return jnp.squeeze(out, axis)


def ccc_loss(
    x: Any,
    y: Any,
    *,
    where: Any | None = None,
    axis: int = 0,
    ddof: int = 0,
    eps: float = 0.0,
) -> jax.Array:
    """CCC loss `1 - ccc(x, y)`, reduced over `axis` (see `ccc` for every argument).

    Args:
      x: predictions, a floating array of rank >= 1.
      y: targets of the same shape.
      where: optional mask broadcastable to `x.shape`.
      axis: the sample axis to reduce.
      ddof: 0 (ABAW metric) or 1 (MT-EmotiEffNet authors' PyTorch loss).
      eps: added to the CCC denominator.

    Returns:
      `1 - ccc`, of shape `x.shape` without `axis`, in [0, 2].

    References:
      Savchenko, ABAW4 2022, eq. (1).

    Example:
      >>> import jax.numpy as jnp
      >>> x = jnp.array([0.1, 0.4, 0.3, 0.9])
      >>> float(ccc_loss(x, x))
      0.0
    """
    return 1 - ccc(x, y, where=where, axis=axis, ddof=ddof, eps=eps)


def va_ccc_loss(
    pred: Any,
    target: Any,
    *,
    where: Any | None = None,
    ddof: int = 0,
    eps: float = 0.0,
) -> jax.Array:
    r"""Valence/arousal loss :math:`1 - \frac12(\mathrm{CCC}_V + \mathrm{CCC}_A)`.

    Args:
      pred: predictions of shape (B, 2), columns [valence, arousal] (raw, no tanh
        applied here).
      target: targets of shape (B, 2).
      where: optional mask of shape (B,) (both columns) or (B, 2) (per column, e.g. the
        batch's `va_mask`); masked rows are excluded from each column's CCC.
      ddof: 0 (ABAW metric) or 1 (MT-EmotiEffNet authors' PyTorch loss).
      eps: added to each CCC denominator (1e-7 in the authors' Keras heads).

    Returns:
      A scalar in [0, 2].

    References:
      Savchenko, "MT-EmotiEffNet ...", ABAW4 2022, eq. (1) (the VA term).

    Example:
      >>> import jax.numpy as jnp
      >>> va = jnp.array([[0.1, 0.5], [0.3, -0.2], [-0.4, 0.0]])
      >>> float(va_ccc_loss(va, va))
      0.0
    """
    pred = _checks.as_float(pred, "pred")
    target = _checks.as_float(target, "target")
    _checks.check_rank(pred, "pred", 2)
    if pred.shape[-1] != 2:
        raise ValueError(f"pred must have shape (B, 2) [valence, arousal], got {pred.shape}")
    _checks.check_same_shape(pred, target, "pred", "target")
    if where is not None:
        where = jnp.asarray(where)
        _checks.check_rank(where, "where", 1, 2)
        if where.ndim == 1:
            where = where[:, None]
        where = _checks.as_mask(where, pred.shape)
    per_dim = ccc(pred, target, where=where, axis=0, ddof=ddof, eps=eps)
    return 1 - per_dim.mean()
