"""Multi-class metrics from a confusion matrix: accuracy, per-class and macro F1.

The streaming statistic of every metric here is the confusion matrix
(rows = true class, columns = predicted class): `confusion_init(C)`, then
`confusion_update` per batch (or add matrices with `confusion_merge`), then
`confusion_finalize` (every score) or one `*_from_cm` function once. Labels of
-1 are missing and excluded.

Macro F1 averages over all `num_classes` classes; a class with no true and no
predicted items gets F1 = 0, as `sklearn.metrics.f1_score(...,
labels=range(C), average="macro", zero_division=0)`.

Counts are int32 (the JAX default); enable `jax_enable_x64` for more than
2^31 items per cell. Under `jax.jit` label values cannot be checked: labels
outside [-1, num_classes) are then silently dropped, like missing ones.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from affectjax.metrics import _checks


def _check_labels(y_true: Any, y_pred: Any, num_classes: int,
                  where: Any) -> tuple[jax.Array, jax.Array, Any]:
    """Validates labels and mask (values only when concrete)."""
    if int(num_classes) < 1:
        raise ValueError(f"num_classes: expected >= 1, got {num_classes}")
    y_true = _checks.as_array(y_true, "y_true")
    y_pred = _checks.as_array(y_pred, "y_pred")
    _checks.check_same_shape(y_true, y_pred, "y_true", "y_pred")
    where = _checks.check_mask(where, y_true)
    _checks.check_labels(y_true, num_classes, "y_true")
    _checks.check_labels(y_pred, num_classes, "y_pred", allow_missing=False,
                         only=_checks.host_mask(where, y_true))
    return y_true, y_pred, where


@functools.partial(jax.jit, static_argnames="num_classes")
def _confusion(y_true: jax.Array, y_pred: jax.Array, where: jax.Array | None,
               num_classes: int) -> jax.Array:
    c = num_classes
    valid = _checks.broadcast_mask(where, y_true)
    valid &= (y_true >= 0) & (y_true < c) & (y_pred >= 0) & (y_pred < c)
    index = jnp.where(valid, y_true.astype(jnp.int32) * c + y_pred.astype(jnp.int32),
                      c * c)
    counts = jnp.bincount(index.reshape(-1), length=c * c + 1)[: c * c]
    return counts.reshape(c, c).astype(jnp.int32)


def confusion_init(num_classes: int) -> jax.Array:
    """An all-zero (num_classes, num_classes) int32 confusion matrix."""
    return jnp.zeros((int(num_classes), int(num_classes)), jnp.int32)


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int, *,
                     where: Any = None) -> jax.Array:
    """Confusion matrix, rows = true class, columns = predicted class.

    Args:
      y_true: integer labels of any shape; -1 marks a missing label.
      y_pred: integer predicted labels, same shape, in [0, num_classes) wherever
        `y_true` is present.
      num_classes: number of classes C.
      where: optional mask, shape of `y_true` or its leading axis.

    Returns:
      int32 array (C, C); entry [i, j] counts items of class i predicted as j.
    """
    y_true, y_pred, where = _check_labels(y_true, y_pred, num_classes, where)
    return _confusion(y_true, y_pred, where, int(num_classes))


def confusion_update(cm: jax.Array, y_true: Any, y_pred: Any, *,
                     where: Any = None) -> jax.Array:
    """Adds one batch to a confusion matrix (streaming form of this module)."""
    return cm + confusion_matrix(y_true, y_pred, cm.shape[0], where=where)


def confusion_merge(a: jax.Array, b: jax.Array) -> jax.Array:
    """Merges two confusion matrices (their sum)."""
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape} does not match a: {a.shape}")
    return a + b


@jax.jit
def accuracy_from_cm(cm: jax.Array) -> jax.Array:
    """Accuracy = trace / total; 0 for an empty matrix."""
    total = jnp.sum(cm)
    return jnp.where(total > 0, jnp.trace(cm) / jnp.maximum(total, 1), 0.0)


@jax.jit
def f1_per_class_from_cm(cm: jax.Array) -> jax.Array:
    """Per-class F1 = 2 TP / (2 TP + FP + FN), shape (C,); 0 when undefined."""
    tp = jnp.diagonal(cm)
    fp = jnp.sum(cm, axis=0) - tp
    fn = jnp.sum(cm, axis=1) - tp
    denom = 2 * tp + fp + fn
    return jnp.where(denom > 0, 2 * tp / jnp.maximum(denom, 1), 0.0)


@jax.jit
def f1_macro_from_cm(cm: jax.Array) -> jax.Array:
    """Macro F1: mean of the per-class F1 over all C classes (absent classes count 0)."""
    return jnp.mean(f1_per_class_from_cm(cm))


@jax.jit
def cct_score_from_cm(cm: jax.Array) -> jax.Array:
    """CCT challenge score 0.67 * F1_macro + 0.33 * accuracy (CCT paper, Sec. 4)."""
    return 0.67 * f1_macro_from_cm(cm) + 0.33 * accuracy_from_cm(cm)


@jax.jit
def confusion_finalize(cm: jax.Array) -> dict[str, jax.Array]:
    """Every score of this module from an accumulated confusion matrix.

    Returns:
      ``{"accuracy": scalar, "f1_macro": scalar, "f1_per_class": (C,),
      "cct_score": scalar}``; each entry equals its `*_from_cm` function.
    """
    return {"accuracy": accuracy_from_cm(cm), "f1_macro": f1_macro_from_cm(cm),
            "f1_per_class": f1_per_class_from_cm(cm), "cct_score": cct_score_from_cm(cm)}


def accuracy(y_true: Any, y_pred: Any, *, where: Any = None) -> jax.Array:
    """Fraction of present items (y_true != -1, `where` True) predicted correctly.

    Returns 0 when no item is present.
    """
    y_true = _checks.as_array(y_true, "y_true")
    y_pred = _checks.as_array(y_pred, "y_pred")
    _checks.check_same_shape(y_true, y_pred, "y_true", "y_pred")
    if not jnp.issubdtype(y_true.dtype, jnp.integer):
        raise TypeError(f"y_true: expected integer labels, got dtype {y_true.dtype}")
    return _accuracy(y_true, y_pred, _checks.check_mask(where, y_true))


@jax.jit
def _accuracy(y_true: jax.Array, y_pred: jax.Array,
              where: jax.Array | None) -> jax.Array:
    mask = _checks.broadcast_mask(where, y_true) & (y_true != -1)
    n = jnp.sum(mask)
    correct = jnp.sum(mask & (y_true == y_pred))
    return jnp.where(n > 0, correct / jnp.maximum(n, 1), 0.0)


def f1_per_class(y_true: Any, y_pred: Any, num_classes: int, *,
                 where: Any = None) -> jax.Array:
    """Per-class F1, shape (num_classes,); see `f1_per_class_from_cm`."""
    return f1_per_class_from_cm(
        confusion_matrix(y_true, y_pred, num_classes, where=where))


def f1_macro(y_true: Any, y_pred: Any, num_classes: int, *,
             where: Any = None) -> jax.Array:
    """Macro F1 over all `num_classes` classes (ABAW P_EXPR uses C = 8).

    Equal to sklearn `f1_score(average="macro", labels=range(C),
    zero_division=0)` on the present items.
    """
    return f1_macro_from_cm(
        confusion_matrix(y_true, y_pred, num_classes, where=where))


def cct_score(y_true: Any, y_pred: Any, num_classes: int, *,
              where: Any = None) -> jax.Array:
    """CCT evaluation score 0.67 * F1_macro + 0.33 * accuracy.

    Consensual Collaborative Training paper (Aff-Wild2 expression track). The
    macro F1 here is global (from one confusion matrix over the whole set),
    not the per-batch average of the authors' code.
    """
    return cct_score_from_cm(
        confusion_matrix(y_true, y_pred, num_classes, where=where))
