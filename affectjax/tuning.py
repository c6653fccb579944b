"""Post-hoc tuning on validation predictions: AU thresholds and blending weights.

MT-EmotiEffNet paper (ABAW4, Sec. 3): after training, the authors choose

* one decision threshold per action unit on the grid 0.1, 0.2, ..., 0.9
  (predict the AU when score >= t; the first threshold with the best F1 wins);
* a blending weight w on linspace(0, 1, 11) for s = w s_a + (1 - w) s_b
  (e.g. the pre-trained and the fine-tuned model; the first best w wins).

Plain float64 numpy on the host: these searches run once on collected
scores, outside any jitted step. Labels of -1 are missing and excluded.
"""

from typing import Any, Callable, NamedTuple

import numpy as np

from affectjax import registry

DEFAULT_THRESHOLD_GRID = np.arange(0.1, 1.0, 0.1)
DEFAULT_WEIGHT_GRID = np.linspace(0.0, 1.0, 11)


class ThresholdResult(NamedTuple):
    """Result of `tune_au_thresholds`.

    Attributes:
      thresholds: (K,) chosen threshold per AU.
      f1_before: (K,) F1 per AU at threshold 0.5.
      f1_after: (K,) F1 per AU at the chosen thresholds.
      f1_grid: (T, K) F1 of every grid threshold (rows follow the grid).
    """
    thresholds: np.ndarray
    f1_before: np.ndarray
    f1_after: np.ndarray
    f1_grid: np.ndarray


class BlendResult(NamedTuple):
    """Result of `tune_blend_weight`: the best weight, its metric, the metric per grid weight."""
    weight: float
    score: float
    scores: np.ndarray


def _binary_f1(labels: np.ndarray, scores: np.ndarray,
               thresholds: np.ndarray) -> np.ndarray:
    """F1 per (threshold, column): labels, scores (N, K); thresholds (T,) -> (T, K)."""
    pred = scores[None] >= thresholds[:, None, None]
    valid = labels != -1
    pos = (labels == 1)[None]
    tp = np.sum(pred & pos & valid, axis=1)
    fp = np.sum(pred & ~pos & valid, axis=1)
    fn = np.sum(~pred & pos & valid, axis=1)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def _check_multilabel(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels)
    if scores.ndim != 2:
        raise ValueError(f"scores: expected shape (N, K), got {scores.shape}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels: shape {labels.shape} does not match scores {scores.shape}")
    if labels.size and not np.isin(labels, (-1, 0, 1)).all():
        raise ValueError("labels: expected values in {-1, 0, 1}")
    return scores, labels


def tune_au_thresholds(scores: Any, labels: Any, *,
                       grid: Any = DEFAULT_THRESHOLD_GRID) -> ThresholdResult:
    """Per-AU decision thresholds maximising F1 (MT-EmotiEffNet authors' search).

    Args:
      scores: (N, K) AU probabilities on the validation set.
      labels: (N, K) AU labels in {0, 1, -1 (missing)}.
      grid: candidate thresholds, searched in order; ties keep the first.

    Returns:
      `ThresholdResult`. With the default grid (which contains 0.5) the
      tuned F1 is never below the F1 at 0.5 on the same data.
    """
    scores, labels = _check_multilabel(scores, labels)
    grid = np.asarray(grid, np.float64).reshape(-1)
    if grid.size == 0:
        raise ValueError("grid: expected at least one threshold")
    f1_grid = _binary_f1(labels, scores, grid)
    best = np.argmax(f1_grid, axis=0)  # First maximum: ties pick the first grid value.
    cols = np.arange(scores.shape[1])
    f1_before = _binary_f1(labels, scores, np.array([0.5]))[0]
    return ThresholdResult(grid[best], f1_before, f1_grid[best, cols], f1_grid)


def blend(scores_a: Any, scores_b: Any, w: float) -> np.ndarray:
    """Blended scores s = w s_a + (1 - w) s_b; w = 1 returns s_a exactly."""
    a = np.asarray(scores_a)
    b = np.asarray(scores_b)
    if a.shape != b.shape:
        raise ValueError(f"scores_b: shape {b.shape} does not match scores_a {a.shape}")
    return w * a + (1.0 - w) * b


def _f1_macro(labels: np.ndarray, scores: np.ndarray) -> float:
    num_classes = scores.shape[-1]
    pred = np.argmax(scores, axis=-1)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (labels, pred), 1)
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1)
    return float(np.mean(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)))


def _accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean(np.argmax(scores, axis=-1) == labels)) if labels.size else 0.0


def _au_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.mean(_binary_f1(labels, scores, np.array([0.5]))[0]))


# Built-in metrics for `tune_blend_weight`: metric(labels, scores) -> float.
BLEND_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "f1_macro": _f1_macro,   # (N, C) class scores, (N,) labels; argmax prediction.
    "accuracy": _accuracy,   # (N, C) class scores, (N,) labels; argmax prediction.
    "au_f1": _au_f1,         # (N, K) AU probabilities, (N, K) labels; mean F1 at 0.5.
}


def tune_blend_weight(scores_a: Any, scores_b: Any, labels: Any, *,
                      metric: str | Callable[[np.ndarray, np.ndarray], float],
                      grid: Any = DEFAULT_WEIGHT_GRID) -> BlendResult:
    """Best blending weight w for s = w s_a + (1 - w) s_b (MT-EmotiEffNet authors).

    Args:
      scores_a, scores_b: scores of two models, same shape: (N, C) class
        scores with (N,) labels, or (N, K) multi-label scores with (N, K) labels.
      labels: -1 marks missing labels. For (N,) labels, missing rows are
        dropped before `metric` is called; multi-label labels are passed
        unchanged, so `metric` must skip -1 entries itself (the built-in
        "au_f1" does).
      metric: a name in `BLEND_METRICS` or a callable metric(labels, scores)
        -> float, higher is better.
      grid: candidate weights, searched in order; ties keep the first.

    Returns:
      `BlendResult(weight, score, scores)`, scores[i] the metric at grid[i].
    """
    if isinstance(metric, str):
        metric = registry.lookup(BLEND_METRICS, metric, "metric")
    a = np.asarray(scores_a, np.float64)
    b = np.asarray(scores_b, np.float64)
    labels = np.asarray(labels)
    if a.shape != b.shape:
        raise ValueError(f"scores_b: shape {b.shape} does not match scores_a {a.shape}")
    if labels.shape != a.shape[: labels.ndim] or labels.ndim not in (a.ndim - 1, a.ndim):
        raise ValueError(f"labels: shape {labels.shape} does not fit scores {a.shape}")
    if labels.ndim == a.ndim - 1:
        keep = labels != -1
        a, b, labels = a[keep], b[keep], labels[keep]
        if labels.size and (labels.min() < 0 or labels.max() >= a.shape[-1]):
            raise ValueError(f"labels: values outside [-1, {a.shape[-1]})")
    grid = np.asarray(grid, np.float64).reshape(-1)
    if grid.size == 0:
        raise ValueError("grid: expected at least one weight")
    values = np.array([float(metric(labels, blend(a, b, w))) for w in grid])
    best = int(np.argmax(values))  # First maximum: ties pick the first grid value.
    return BlendResult(float(grid[best]), float(values[best]), values)
