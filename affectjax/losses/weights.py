"""Class weights from label counts, for imbalanced classification losses.

`class_balanced_weights` is MT-EmotiEffNet's expression weighting; `balanced_pos_weight`
and `sklearn_balanced_weights` give per-column weights for multi-label BCE
(`sigmoid_binary_cross_entropy`). All are pure `jnp` and work under `jax.jit`.
"""

from typing import Any

import jax
import jax.numpy as jnp

from affectjax.losses import _checks


def class_balanced_weights(counts: Any) -> jax.Array:
    r"""Class weights :math:`w_c = \max_k N_k / N_c` from per-class training counts.

    A class with zero count gets weight 0 (it cannot occur as a label, and a finite weight
    keeps the loss finite if it ever does). Negative counts raise ValueError when `counts`
    is concrete.

    Args:
      counts: per-class counts, shape (C,), integer or float.

    Returns:
      Float weights of shape (C,); the most frequent class gets 1.

    References:
      Savchenko, "MT-EmotiEffNet ...", ABAW4 2022, eq. (1).

    Example:
      >>> class_balanced_weights([10, 5, 20]).tolist()
      [2.0, 4.0, 1.0]
    """
    counts = jnp.asarray(counts)
    _checks.check_rank(counts, "counts", 1)
    values = _checks.concrete(counts)
    if values is not None and (values < 0).any():
        raise ValueError(f"counts must be non-negative, got {values.tolist()}")
    counts = counts.astype(jnp.result_type(float))
    return _checks.safe_divide(counts.max(), counts)


def _column_counts(labels: Any) -> tuple[jax.Array, jax.Array]:
    labels = _checks.as_int(labels, "labels")
    _checks.check_min_rank(labels, "labels", 1)
    axes = tuple(range(labels.ndim - 1))
    dtype = jnp.result_type(float)
    pos = (labels == 1).sum(axes).astype(dtype)
    neg = (labels == 0).sum(axes).astype(dtype)
    return pos, neg


def balanced_pos_weight(labels: Any) -> jax.Array:
    """Per-column `pos_weight` = #negatives / #positives over non-missing labels.

    A column without positives gets 1 (its positive term never occurs).

    Args:
      labels: integer array (N, K) with 0, 1 or -1 (missing).

    Returns:
      Float weights of shape (K,).

    References:
      Weakly-supervised multimodal MTL paper: emotion BCE with pos_weight = neg/pos.

    Example:
      >>> balanced_pos_weight([[1, 0], [0, 1], [0, -1], [0, 0]]).tolist()
      [3.0, 2.0]
    """
    pos, neg = _column_counts(labels)
    return jnp.where(pos > 0, _checks.safe_divide(neg, pos), 1)


def sklearn_balanced_weights(labels: Any) -> tuple[jax.Array, jax.Array]:
    """Per-column sklearn "balanced" weights n / (2 n_c) for the negative and positive class.

    n counts the non-missing labels of the column; a class absent from a column gets 1.
    Use as `sigmoid_binary_cross_entropy(..., neg_weight=neg, pos_weight=pos)`.

    Args:
      labels: integer array (N, K) with 0, 1 or -1 (missing).

    Returns:
      `(neg_weight, pos_weight)`, each of shape (K,).

    References:
      MT-EmotiEffNet MTL heads: AU BCE with
      `sklearn.utils.class_weight.compute_class_weight("balanced", ...)`.

    Example:
      >>> neg, pos = sklearn_balanced_weights([[1], [0], [0], [0]])
      >>> neg.tolist(), pos.tolist()
      ([0.6666666865348816], [2.0])
    """
    pos, neg = _column_counts(labels)
    n = pos + neg
    pos_w = jnp.where(pos > 0, _checks.safe_divide(n, 2 * pos), 1)
    neg_w = jnp.where(neg > 0, _checks.safe_divide(n, 2 * neg), 1)
    return neg_w, pos_w
