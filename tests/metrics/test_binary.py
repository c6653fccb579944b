"""Tests of binary / multi-label metrics: WAcc, per-column F1, AU F1."""

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from affectjax import metrics


def ref_wacc(t, p):
    """(TP * N / P + TN) / (2 N), float64."""
    tp = np.sum((t == 1) & (p == 1))
    tn = np.sum((t == 0) & (p == 0))
    pos, neg = np.sum(t == 1), np.sum(t == 0)
    return (tp * neg / pos + tn) / (2 * neg)


def _multilabel(rng, n, k, missing=0.15):
    y = (rng.random((n, k)) < 0.35).astype(np.int32)
    y[rng.random((n, k)) < missing] = -1
    scores = np.clip(0.4 * y + 0.6 * rng.random((n, k)), 0, 1).astype(np.float32)
    return y, scores


@pytest.mark.parametrize("n,k", [(60, 1), (80, 6), (200, 12)])
def test_weighted_accuracy_and_f1_match_references(n, k):
    y, scores = _multilabel(np.random.default_rng(n), n, k)
    thresholds = np.linspace(0.3, 0.7, k).astype(np.float32)
    wacc = metrics.weighted_accuracy(y, scores, thresholds=thresholds)
    f1 = metrics.binary_f1(y, scores, thresholds=thresholds)
    for j in range(k):
        keep = y[:, j] != -1
        t, p = y[keep, j], (scores[keep, j] >= thresholds[j]).astype(int)
        np.testing.assert_allclose(wacc[j], ref_wacc(t, p), rtol=1e-5)
        np.testing.assert_allclose(wacc[j], skm.balanced_accuracy_score(t, p), rtol=1e-5)
        np.testing.assert_allclose(f1[j], skm.f1_score(t, p, zero_division=0), rtol=1e-5)


def test_one_dimensional_labels_give_scalars():
    y, scores = _multilabel(np.random.default_rng(1), 50, 1)
    y, pred = y[:, 0], (scores[:, 0] >= 0.5).astype(np.int32)
    keep = y != -1
    got = metrics.weighted_accuracy(y, pred)
    assert got.shape == ()
    np.testing.assert_allclose(got, ref_wacc(y[keep], pred[keep]), rtol=1e-5)
    np.testing.assert_allclose(metrics.binary_f1(y, pred.astype(bool)),
                               skm.f1_score(y[keep], pred[keep]), rtol=1e-5)


def test_au_f1_threshold_rule_and_mean():
    y, scores = _multilabel(np.random.default_rng(2), 90, 12)
    mean = metrics.au_f1(y, scores)
    assert mean.shape == ()
    want = [skm.f1_score(y[y[:, j] != -1, j], scores[y[:, j] != -1, j] >= 0.5,
                         zero_division=0) for j in range(12)]
    np.testing.assert_allclose(metrics.binary_f1(y, scores, thresholds=0.5), want, rtol=1e-5)
    np.testing.assert_allclose(mean, np.mean(want), rtol=1e-5)
    # A score equal to the threshold is positive.
    assert float(metrics.au_f1(np.array([[1]]), np.array([[0.5]], np.float32))) == 1.0


def test_degenerate_columns():
    # No positives: WAcc is the true-negative rate; no items: 0.
    y = np.array([[0, -1], [0, -1], [0, -1]], np.int32)
    p = np.array([[0, 1], [1, 1], [0, 0]], np.int32)
    np.testing.assert_allclose(metrics.weighted_accuracy(y, p), [2 / 3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(metrics.binary_f1(y, p), [0.0, 0.0])


def test_streaming_equals_one_shot(splits, masked_batch_mask):
    n, k = 80, 12
    y, scores = _multilabel(np.random.default_rng(3), n, k)
    batches = splits(n, seed=3)
    mask = masked_batch_mask(n, batches)
    update = jax.jit(metrics.binary_update)
    stats = metrics.binary_init(k)
    for s in batches:
        stats = update(stats, y[s], scores[s], thresholds=0.5, where=mask[s])
    one = metrics.binary_counts(y, scores, thresholds=0.5, where=mask)
    for got, want in zip(stats, one):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(metrics.au_f1_from_stats(stats),
                               metrics.au_f1(y, scores, where=mask), rtol=1e-6)
    np.testing.assert_allclose(metrics.weighted_accuracy_from_stats(stats),
                               metrics.weighted_accuracy(y, scores, thresholds=0.5, where=mask))
    np.testing.assert_allclose(metrics.binary_f1_from_stats(stats),
                               metrics.binary_f1(y[mask], scores[mask], thresholds=0.5))
    final = metrics.binary_finalize(stats)
    assert sorted(final) == ["au_f1", "f1", "weighted_accuracy"]
    np.testing.assert_allclose(final["f1"], metrics.binary_f1_from_stats(stats))
    np.testing.assert_allclose(final["au_f1"], metrics.au_f1_from_stats(stats))
    np.testing.assert_allclose(final["weighted_accuracy"],
                               metrics.weighted_accuracy_from_stats(stats))
    halves = metrics.binary_merge(
        metrics.binary_update(metrics.binary_init(k), y[:30], scores[:30], thresholds=0.5,
                              where=mask[:30]),
        metrics.binary_update(metrics.binary_init(k), y[30:], scores[30:], thresholds=0.5,
                              where=mask[30:]))
    for got, want in zip(halves, stats):
        np.testing.assert_array_equal(got, want)


def test_errors_name_the_argument():
    y = np.array([[0, 1], [1, 0]], np.int32)
    with pytest.raises(TypeError, match="y_pred: float scores need thresholds"):
        metrics.weighted_accuracy(y, y.astype(np.float32))
    with pytest.raises(ValueError, match="y_true: label 2"):
        metrics.binary_f1(y + 1, y)
    with pytest.raises(ValueError, match="y_pred: label 2"):
        metrics.binary_f1(y, y + 1)
    with pytest.raises(ValueError, match="thresholds"):
        metrics.binary_f1(y, y, thresholds=np.ones(3))
    with pytest.raises(ValueError, match="y_pred: shape"):
        metrics.binary_f1(y, y[:1])
    with pytest.raises(ValueError, match="y_true: expected rank 2"):
        metrics.au_f1(y[:, 0], y[:, 0])
    with pytest.raises(ValueError, match="y_true: 2 columns"):
        metrics.binary_update(metrics.binary_init(3), y, y)
