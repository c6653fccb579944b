"""Binary and multi-label metrics: per-column F1, AU F1, weighted accuracy.

Every metric here derives from per-column counts TP, FP, FN, TN (`BinaryStats`),
so the streaming form is: `binary_init(K)`, `binary_update` per batch (counts
add up, `binary_merge` adds two sets), then `binary_finalize` (every score) or
one `*_from_stats` function once at the end.

Predictions are binarised as `positive = score >= threshold`, the rule of the
MT-EmotiEffNet authors' AU-threshold search. With `thresholds=None` the
predictions must already be 0/1 (or bool). Labels of -1 are missing and are
excluded per column. Labels are (N,) for one binary task or (N, K) for K
labels (e.g. the 12 ABAW action units).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from affectjax.metrics import _checks


class BinaryStats(NamedTuple):
    """Per-column confusion counts, each int32 of shape (K,)."""
    tp: jax.Array
    fp: jax.Array
    fn: jax.Array
    tn: jax.Array


def binary_init(num_labels: int = 1) -> BinaryStats:
    """Zero counts for `num_labels` columns."""
    if int(num_labels) < 1:
        raise ValueError(f"num_labels: expected >= 1, got {num_labels}")
    return BinaryStats(*(jnp.zeros((int(num_labels),), jnp.int32) for _ in range(4)))


def _validate(y_true: Any, y_pred: Any, thresholds: Any,
              where: Any) -> tuple[jax.Array, jax.Array, Any, Any]:
    """Validates the inputs of `binary_counts`; returns them as arrays."""
    y_true = _checks.as_array(y_true, "y_true")
    y_pred = _checks.as_array(y_pred, "y_pred")
    _checks.check_rank(y_true, (1, 2), "y_true")
    _checks.check_same_shape(y_true, y_pred, "y_true", "y_pred")
    _checks.check_labels(y_true, 2, "y_true")
    where = _checks.check_mask(where, y_true)
    if thresholds is None:
        if jnp.issubdtype(y_pred.dtype, jnp.floating):
            raise TypeError(
                "y_pred: float scores need thresholds=...; pass 0/1 predictions "
                "or give thresholds")
        _checks.check_labels(y_pred, 2, "y_pred", allow_missing=False)
        return y_true, y_pred, None, where
    t = _checks.as_array(thresholds, "thresholds")
    num_cols = 1 if y_pred.ndim == 1 else y_pred.shape[1]
    if t.ndim > 1 or (t.ndim == 1 and t.shape[0] not in (1, num_cols)):
        raise ValueError(
            f"thresholds: expected a scalar or shape ({num_cols},), got {t.shape}")
    return y_true, y_pred, t, where


@jax.jit
def _counts(y_true: jax.Array, y_pred: jax.Array, thresholds: jax.Array | None,
            where: jax.Array | None) -> BinaryStats:
    mask = _checks.broadcast_mask(where, y_true) & (y_true != -1)
    if thresholds is None:
        pred = y_pred == 1
    else:
        pred = y_pred >= (thresholds if y_pred.ndim == 2 else thresholds.reshape(()))
    truth = y_true == 1
    if y_true.ndim == 1:
        truth, pred, mask = truth[:, None], pred[:, None], mask[:, None]

    def count(a: jax.Array) -> jax.Array:
        return jnp.sum(a & mask, axis=0, dtype=jnp.int32)

    return BinaryStats(tp=count(truth & pred), fp=count(~truth & pred),
                       fn=count(truth & ~pred), tn=count(~truth & ~pred))


def binary_counts(y_true: Any, y_pred: Any, *, thresholds: Any = None,
                  where: Any = None) -> BinaryStats:
    """TP, FP, FN, TN per column for one batch.

    Args:
      y_true: labels in {0, 1, -1 (missing)}, shape (N,) or (N, K).
      y_pred: 0/1 predictions, or scores when `thresholds` is given.
      thresholds: None, a scalar, or one threshold per column (K,);
        positive when `y_pred >= threshold`.
      where: optional mask, shape of `y_true` or (N,).

    Returns:
      `BinaryStats` with fields of shape (K,) (K = 1 for 1-D input).
    """
    return _counts(*_validate(y_true, y_pred, thresholds, where))


def binary_merge(a: BinaryStats, b: BinaryStats) -> BinaryStats:
    """Sums two sets of counts."""
    if jnp.shape(a.tp) != jnp.shape(b.tp):
        raise ValueError(f"b: {jnp.shape(b.tp)} columns do not match a: {jnp.shape(a.tp)}")
    return BinaryStats(*(x + y for x, y in zip(a, b)))


def binary_update(stats: BinaryStats, y_true: Any, y_pred: Any, *,
                  thresholds: Any = None, where: Any = None) -> BinaryStats:
    """Adds one batch to the counts (arguments as in `binary_counts`)."""
    batch = binary_counts(y_true, y_pred, thresholds=thresholds, where=where)
    if batch.tp.shape != jnp.shape(stats.tp):
        raise ValueError(
            f"y_true: {batch.tp.shape[0]} columns, but stats hold "
            f"{jnp.shape(stats.tp)[0]} (see binary_init(num_labels))")
    return binary_merge(stats, batch)


@jax.jit
def binary_f1_from_stats(stats: BinaryStats) -> jax.Array:
    """Per-column F1 = 2 TP / (2 TP + FP + FN), 0 when undefined; shape (K,)."""
    denom = 2 * stats.tp + stats.fp + stats.fn
    return jnp.where(denom > 0, 2 * stats.tp / jnp.maximum(denom, 1), 0.0)


@jax.jit
def weighted_accuracy_from_stats(stats: BinaryStats) -> jax.Array:
    """WAcc = (TP N/P + TN) / (2 N) per column (multimodal weak-MTL paper, Sec. 4).

    P and N are the numbers of true positives and negatives. This equals
    (TP/P + TN/N) / 2; when a column has no positives (or no negatives) only
    the rate of the class present is used (as sklearn balanced_accuracy_score),
    and a column with no items gives 0.
    """
    p = stats.tp + stats.fn
    n = stats.tn + stats.fp
    tpr = stats.tp / jnp.maximum(p, 1)
    tnr = stats.tn / jnp.maximum(n, 1)
    both = (tpr + tnr) / 2
    return jnp.where((p > 0) & (n > 0), both,
                     jnp.where(p > 0, tpr, jnp.where(n > 0, tnr, 0.0)))


@jax.jit
def au_f1_from_stats(stats: BinaryStats) -> jax.Array:
    """Mean over the K columns of the per-column F1 (ABAW P_AU); a scalar.

    The per-AU F1 are `binary_f1_from_stats(stats)`.
    """
    return jnp.mean(binary_f1_from_stats(stats))


@jax.jit
def binary_finalize(stats: BinaryStats) -> dict[str, jax.Array]:
    """Every score of this module from accumulated counts.

    Returns:
      ``{"f1": (K,), "au_f1": scalar mean of "f1", "weighted_accuracy": (K,)}``;
      each entry equals its `*_from_stats` function.
    """
    return {"f1": binary_f1_from_stats(stats), "au_f1": au_f1_from_stats(stats),
            "weighted_accuracy": weighted_accuracy_from_stats(stats)}


def _squeeze(y_true: Any, out: jax.Array) -> jax.Array:
    return out[0] if jnp.ndim(y_true) == 1 else out


def binary_f1(y_true: Any, y_pred: Any, *, thresholds: Any = None,
              where: Any = None) -> jax.Array:
    """Binary F1 per column: scalar for (N,) labels, (K,) for (N, K) labels."""
    stats = binary_counts(y_true, y_pred, thresholds=thresholds, where=where)
    return _squeeze(y_true, binary_f1_from_stats(stats))


def weighted_accuracy(y_true: Any, y_pred: Any, *, thresholds: Any = None,
                      where: Any = None) -> jax.Array:
    """Weighted accuracy (TP N/P + TN) / (2 N) (multimodal weak-MTL paper).

    Args:
      y_true: labels in {0, 1, -1}, shape (N,) or (N, K) (one column per emotion).
      y_pred: 0/1 predictions, or scores with `thresholds` (positive if >= t).
      thresholds: None, scalar, or (K,).
      where: optional mask, shape of `y_true` or (N,).

    Returns:
      Scalar for (N,) labels, else (K,). See `weighted_accuracy_from_stats`.
    """
    stats = binary_counts(y_true, y_pred, thresholds=thresholds, where=where)
    return _squeeze(y_true, weighted_accuracy_from_stats(stats))


def au_f1(y_true: Any, y_pred: Any, *, thresholds: Any = 0.5,
          where: Any = None) -> jax.Array:
    """Action-unit F1 at given thresholds, averaged over the AUs (ABAW P_AU, t = 0.5).

    Args:
      y_true: AU labels (N, K) in {0, 1, -1}; -1 is excluded per AU.
      y_pred: AU probabilities (N, K) (or 0/1 predictions).
      thresholds: scalar or per-AU (K,); an AU is active when score >= t.
      where: optional mask, (N, K) or (N,).

    Returns:
      The mean over the K AUs of the per-AU F1, a scalar. The per-AU F1 are
      `binary_f1(y_true, y_pred, thresholds=thresholds, where=where)`.
    """
    y_true = _checks.as_array(y_true, "y_true")
    _checks.check_rank(y_true, (2,), "y_true")
    stats = binary_counts(y_true, y_pred, thresholds=thresholds, where=where)
    return au_f1_from_stats(stats)
