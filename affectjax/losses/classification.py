"""Cross-entropy losses with missing labels, class weights and positive weights.

Labels are integers; -1 marks a missing label, which contributes nothing (batch contract
of affectjax). Reductions are masked means that give 0 with finite gradients when every
item is masked.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from affectjax.losses import _checks

NORMALIZATIONS = ("weights", "count")


def softmax_cross_entropy(logits: Any, labels: Any) -> jax.Array:
    """Per-example softmax cross-entropy with integer labels, unreduced.

    Args:
      logits: floating array of shape (..., C).
      labels: integer array of shape (...); -1 = missing, which gives loss 0. Labels
        outside [-1, C) raise ValueError when concrete and give NaN under `jit`.

    Returns:
      `-log softmax(logits)[label]`, of shape (...).

    References:
      The supervision term of CCT (Gera et al., eq. 2) and of MT-EmotiEffNet (eq. 1).

    Example:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[2.0, 0.0], [0.0, 0.0]])
      >>> [round(v, 4) for v in softmax_cross_entropy(logits, jnp.array([0, -1])).tolist()]
      [0.1269, 0.0]
    """
    logits = _checks.as_float(logits, "logits")
    labels = _checks.as_int(labels, "labels")
    _checks.check_min_rank(logits, "logits", 1)
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels shape {labels.shape} must equal logits shape without the class axis "
            f"{logits.shape[:-1]}"
        )
    _checks.check_labels_in_range(labels, logits.shape[-1], "labels")
    return _softmax_cross_entropy(logits, labels)


@jax.jit
def _softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    num_classes = logits.shape[-1]
    valid = labels >= 0
    in_range = (labels >= -1) & (labels < num_classes)
    safe = jnp.where(valid & in_range, labels, 0)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    loss = -jnp.take_along_axis(log_p, safe[..., None], axis=-1)[..., 0]
    loss = jnp.where(valid, loss, 0)
    return jnp.where(in_range, loss, jnp.nan)


def weighted_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    class_weights: Any | None = None,
    where: Any | None = None,
    normalize: str = "weights",
) -> jax.Array:
    r"""Class-weighted softmax cross-entropy, reduced to a scalar over valid items.

    Valid items have a label != -1 and `where` True. With per-item weight
    :math:`w_{y_i}` (1 without `class_weights`):

    * `normalize="weights"`: :math:`\sum_i w_{y_i} CE_i / \sum_i w_{y_i}`, the
      weight-normalised mean of PyTorch `CrossEntropyLoss(weight=...)`, which the
      MT-EmotiEffNet authors train with;
    * `normalize="count"`: :math:`\sum_i w_{y_i} CE_i / N_{valid}`, the plain mean
      of the weighted per-item losses (eq. 1 read literally).

    No valid item (or zero total weight) gives 0 with finite gradients.

    Args:
      logits: floating array of shape (..., C), typically (B, C).
      labels: integer array of shape (...); -1 = missing.
      class_weights: optional (C,) weights, e.g. from `class_balanced_weights`.
      where: optional mask broadcastable to `labels.shape`.
      normalize: "weights" or "count", see above.

    Returns:
      A scalar.

    References:
      Savchenko, "MT-EmotiEffNet ...", ABAW4 2022, eq. (1) (the expression term).

    Example:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
      >>> w = jnp.array([1.0, 3.0])
      >>> round(float(weighted_cross_entropy(logits, jnp.array([0, 0]), class_weights=w)), 4)
      1.1269
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    logits = _checks.as_float(logits, "logits")
    labels = _checks.as_int(labels, "labels")
    per_item = softmax_cross_entropy(logits, labels)
    # Out-of-range labels stay "valid" so their NaN reaches the result.
    valid = labels != -1
    if where is not None:
        valid &= _checks.as_mask(where, labels.shape)
    if class_weights is not None:
        class_weights = _checks.as_float(class_weights, "class_weights")
        num_classes = logits.shape[-1]
        if class_weights.shape != (num_classes,):
            raise ValueError(
                f"class_weights must have shape ({num_classes},), got {class_weights.shape}"
            )
    return _weighted_mean(per_item, labels, valid, class_weights, normalize=normalize)


@functools.partial(jax.jit, static_argnames="normalize")
def _weighted_mean(
    per_item: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    class_weights: jax.Array | None,
    *,
    normalize: str,
) -> jax.Array:
    weight = valid.astype(per_item.dtype)
    count = weight.sum()
    if class_weights is not None:
        index = jnp.clip(labels, 0, class_weights.shape[0] - 1)
        weight = weight * class_weights[index]
    total = jnp.where(valid, weight * per_item, 0).sum()
    den = weight.sum() if normalize == "weights" else count
    return _checks.safe_divide(total, den)


def sigmoid_binary_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    pos_weight: Any | None = None,
    neg_weight: Any | None = None,
    where: Any | None = None,
) -> jax.Array:
    r"""Multi-label sigmoid BCE with optional positive/negative weights, mean over valid.

    Per entry, with :math:`\sigma` the sigmoid,
    :math:`\ell = -[p_k\, y \log\sigma(x) + n_k (1 - y) \log(1 - \sigma(x))]`,
    computed with softplus for stability. `pos_weight` alone reproduces PyTorch
    `BCEWithLogitsLoss(pos_weight=...)`; `neg_weight` with `pos_weight` applies
    per-class weights such as `sklearn_balanced_weights`. The mean runs over valid
    entries (label != -1 and `where`) and divides by their count; none valid gives 0.

    Args:
      logits: floating array of shape (B, K) (any rank >= 1; K is the last axis).
      labels: integer or bool array of the same shape with values 0, 1 or -1 (missing).
      pos_weight: optional (K,) weight of positive entries, e.g. `balanced_pos_weight`.
      neg_weight: optional (K,) weight of negative entries.
      where: optional mask broadcastable to `labels.shape`.

    Returns:
      A scalar.

    References:
      Emotion loss of the weakly-supervised multimodal MTL paper (pos_weight = neg/pos);
      AU loss of MT-EmotiEffNet's MTL heads (sklearn "balanced" weights).

    Example:
      >>> import jax.numpy as jnp
      >>> logits = jnp.array([[0.0, 2.0], [1.0, -1.0]])
      >>> labels = jnp.array([[1, 1], [0, -1]])
      >>> round(float(sigmoid_binary_cross_entropy(logits, labels)), 4)
      0.7111
    """
    logits = _checks.as_float(logits, "logits")
    labels = _checks.as_int(labels, "labels")
    _checks.check_min_rank(logits, "logits", 1)
    _checks.check_same_shape(logits, labels, "logits", "labels")
    values = _checks.concrete(labels)
    if values is not None and ((values < -1) | (values > 1)).any():
        raise ValueError(
            f"labels must be 0, 1 or -1 (missing), found {values.min()}..{values.max()}"
        )
    num_classes = logits.shape[-1]
    valid = labels >= 0
    if where is not None:
        valid &= _checks.as_mask(where, labels.shape)
    weights = []
    for name, weight in (("pos_weight", pos_weight), ("neg_weight", neg_weight)):
        if weight is not None:
            weight = _checks.as_float(weight, name)
            if weight.shape != (num_classes,):
                raise ValueError(f"{name} must have shape ({num_classes},), got {weight.shape}")
        weights.append(weight)
    return _binary_cross_entropy(logits, labels, valid, *weights)


@jax.jit
def _binary_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    valid: jax.Array,
    pos_weight: jax.Array | None,
    neg_weight: jax.Array | None,
) -> jax.Array:
    y = (labels == 1).astype(logits.dtype)
    pos_term = y * jax.nn.softplus(-logits)
    neg_term = (1 - y) * jax.nn.softplus(logits)
    if pos_weight is not None:
        pos_term = pos_term * pos_weight
    if neg_weight is not None:
        neg_term = neg_term * neg_weight
    loss = jnp.where(valid, pos_term + neg_term, 0)
    return _checks.safe_divide(loss.sum(), valid.sum().astype(loss.dtype))
