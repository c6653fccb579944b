"""ABAW4 multi-task-learning score P_MTL = P_VA + P_EXPR + P_AU.

MT-EmotiEffNet paper (ABAW4 MTL challenge, Sec. 2):

* P_VA   = (CCC_V + CCC_A) / 2, dataset CCC with population variances;
* P_EXPR = macro F1 over the 8 expression classes;
* P_AU   = mean over the 12 AUs of the binary F1 at threshold 0.5;

each over the items whose label is present only (`va_mask`, expression -1,
AU -1). The streaming form `AbawStats` bundles the three sufficient
statistics: CCC statistics for V and A, the 8 x 8 confusion matrix and
per-AU counts.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from affectjax import labels
from affectjax.metrics import _checks
from affectjax.metrics import binary
from affectjax.metrics import classification
from affectjax.metrics import regression


class AbawStats(NamedTuple):
    """Streaming statistics of the ABAW MTL score."""
    va: regression.CCCStats
    expr: jax.Array
    au: binary.BinaryStats


def abaw_init(num_expr: int = labels.NUM_EXPRESSIONS,
              num_au: int = labels.NUM_AUS) -> AbawStats:
    """Empty statistics (CCC of 2 outputs, num_expr^2 matrix, num_au counts)."""
    return AbawStats(regression.ccc_init(2), classification.confusion_init(num_expr),
                     binary.binary_init(num_au))


def _va_mask(va_mask: Any, va_true: jax.Array) -> Any:
    if va_mask is None:
        return None
    va_mask = _checks.as_array(va_mask, "va_mask")
    if va_mask.shape not in (va_true.shape, va_true.shape[:1]):
        raise ValueError(
            f"va_mask: shape {va_mask.shape} matches neither va_true {va_true.shape} "
            f"nor {va_true.shape[:1]}")
    return va_mask


def abaw_update(stats: AbawStats, va_true: Any, va_pred: Any, expr_true: Any,
                expr_pred: Any, au_true: Any, au_pred: Any, *, va_mask: Any = None,
                au_threshold: Any = 0.5) -> AbawStats:
    """Adds one batch; arguments as in `abaw_mtl_score`.

    The inputs are checked on the host, then one jitted function updates all
    three statistics (so a new batch shape compiles once).
    """
    va_true = _checks.as_array(va_true, "va_true")
    _checks.check_rank(va_true, (2,), "va_true")
    if va_true.shape[1] != 2:
        raise ValueError(f"va_true: expected shape (N, 2), got {va_true.shape}")
    va_pred = _checks.as_array(va_pred, "va_pred")
    _checks.check_same_shape(va_true, va_pred, "va_true", "va_pred")
    va = regression._validate(va_true, va_pred, _va_mask(va_mask, va_true))
    expr = classification._check_labels(expr_true, expr_pred,
                                        stats.expr.shape[0], None)[:2]
    au_true = _checks.as_array(au_true, "au_true")
    _checks.check_rank(au_true, (2,), "au_true")
    au = binary._validate(au_true, au_pred, au_threshold, None)[:3]
    if au_true.shape[1] != jnp.shape(stats.au.tp)[0]:
        raise ValueError(
            f"au_true: {au_true.shape[1]} AUs, but stats hold "
            f"{jnp.shape(stats.au.tp)[0]} (see abaw_init(num_au))")
    return _update(stats, va, expr, au)


@jax.jit
def _update(stats: AbawStats, va: tuple, expr: tuple, au: tuple) -> AbawStats:
    """Traced update of the three statistics from validated arrays."""
    num_expr = stats.expr.shape[0]
    return AbawStats(
        regression._merge(stats.va, regression._batch_stats(*va)),
        stats.expr + classification._confusion(*expr, None, num_classes=num_expr),
        binary.binary_merge(stats.au, binary._counts(*au, None)))


def abaw_merge(a: AbawStats, b: AbawStats) -> AbawStats:
    """Merges two sets of statistics."""
    return AbawStats(regression.ccc_merge(a.va, b.va),
                     classification.confusion_merge(a.expr, b.expr),
                     binary.binary_merge(a.au, b.au))


@jax.jit
def abaw_finalize(stats: AbawStats) -> dict[str, jax.Array]:
    """Scores from the statistics.

    Returns:
      dict with CCC_V, CCC_A, P_VA, P_EXPR, P_AU and P_MTL = P_VA + P_EXPR + P_AU.
    """
    ccc_va = regression.ccc_finalize(stats.va)
    p_va = jnp.mean(ccc_va)
    p_expr = classification.f1_macro_from_cm(stats.expr)
    p_au = binary.au_f1_from_stats(stats.au)
    return {"CCC_V": ccc_va[0], "CCC_A": ccc_va[1], "P_VA": p_va,
            "P_EXPR": p_expr, "P_AU": p_au, "P_MTL": p_va + p_expr + p_au}


def abaw_mtl_score(va_true: Any, va_pred: Any, expr_true: Any, expr_pred: Any,
                   au_true: Any, au_pred: Any, *, va_mask: Any = None,
                   au_threshold: Any = 0.5) -> dict[str, jax.Array]:
    """ABAW4 MTL score (MT-EmotiEffNet paper, Sec. 2), one shot.

    Each task's labels come before its predictions, the `(y_true, y_pred)` order of
    every metric.

    Args:
      va_true: (N, 2) valence, arousal targets.
      va_pred: (N, 2) predicted valence, arousal.
      expr_true: (N,) expression labels, -1 = missing.
      expr_pred: (N,) predicted expression class in [0, 8).
      au_true: (N, 12) AU labels in {0, 1, -1}.
      au_pred: (N, 12) AU probabilities or 0/1 predictions.
      va_mask: (N,) or (N, 2) bool, True where the VA label is present
        (None: all present).
      au_threshold: AU active when score >= threshold (scalar or (12,)).

    Returns:
      dict with CCC_V, CCC_A, P_VA, P_EXPR, P_AU, P_MTL (see `abaw_finalize`).
    """
    au_true_arr = _checks.as_array(au_true, "au_true")
    _checks.check_rank(au_true_arr, (2,), "au_true")
    stats = abaw_init(labels.NUM_EXPRESSIONS, au_true_arr.shape[1])
    stats = abaw_update(stats, va_true, va_pred, expr_true, expr_pred, au_true_arr,
                        au_pred, va_mask=va_mask, au_threshold=au_threshold)
    return abaw_finalize(stats)
