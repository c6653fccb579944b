"""Tests of affectjax.tuning: AU-threshold and blending-weight search."""

import numpy as np
import pytest
from sklearn import metrics as skm

from affectjax import tuning


def _au_data(rng, n=150, k=12):
    labels = (rng.random((n, k)) < 0.3).astype(np.int64)
    scores = np.clip(0.25 * labels + 0.2 * rng.normal(size=(n, k)) + 0.3, 0, 1)
    labels[rng.random((n, k)) < 0.1] = -1
    return scores, labels


def ref_f1(scores, labels, t):
    keep = labels != -1
    return skm.f1_score(labels[keep], scores[keep] >= t, zero_division=0)


def test_thresholds_match_brute_force_and_never_lower_f1():
    scores, labels = _au_data(np.random.default_rng(0))
    result = tuning.tune_au_thresholds(scores, labels)
    grid = np.arange(0.1, 1.0, 0.1)
    for j in range(12):
        f1s = [ref_f1(scores[:, j], labels[:, j], t) for t in grid]
        np.testing.assert_allclose(result.f1_grid[:, j], f1s, rtol=1e-12)
        assert result.thresholds[j] == grid[int(np.argmax(f1s))]
        np.testing.assert_allclose(result.f1_after[j], max(f1s), rtol=1e-12)
        np.testing.assert_allclose(result.f1_before[j],
                                   ref_f1(scores[:, j], labels[:, j], 0.5), rtol=1e-12)
    assert np.all(result.f1_after >= result.f1_before)
    assert result.f1_after.mean() > result.f1_before.mean()


def test_threshold_ties_pick_the_first_grid_value():
    labels = np.array([[1], [1], [0]])
    scores = np.array([[0.95], [0.97], [0.05]])  # Every t in 0.1..0.9 gives F1 = 1.
    result = tuning.tune_au_thresholds(scores, labels)
    assert result.thresholds[0] == pytest.approx(0.1)
    result = tuning.tune_au_thresholds(scores, labels, grid=[0.9, 0.3, 0.5])
    assert result.thresholds[0] == 0.9


def test_missing_labels_are_excluded():
    scores, labels = _au_data(np.random.default_rng(1), n=60, k=3)
    keep = labels[:, 0] != -1
    a = tuning.tune_au_thresholds(scores[:, :1], labels[:, :1])
    b = tuning.tune_au_thresholds(scores[keep, :1], labels[keep, :1])
    np.testing.assert_array_equal(a.f1_grid, b.f1_grid)


def test_blend_with_w_one_is_exactly_the_first_model():
    rng = np.random.default_rng(2)
    a, b = rng.random((20, 8)).astype(np.float32), rng.random((20, 8)).astype(np.float32)
    np.testing.assert_array_equal(tuning.blend(a, b, 1.0), a)
    np.testing.assert_array_equal(tuning.blend(a, b, 0.0), b)
    np.testing.assert_allclose(tuning.blend(a, b, 0.3), 0.3 * a + 0.7 * b, rtol=1e-6)


def test_blend_weight_matches_brute_force():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 8, 120)
    onehot = np.eye(8)[labels]
    a = 0.6 * onehot + rng.random((120, 8))
    b = 0.6 * onehot + rng.random((120, 8))
    labels[:10] = -1
    result = tuning.tune_blend_weight(a, b, labels, metric="f1_macro")
    keep = labels != -1
    grid = np.linspace(0, 1, 11)
    want = [skm.f1_score(labels[keep], np.argmax(w * a[keep] + (1 - w) * b[keep], -1),
                         labels=range(8), average="macro", zero_division=0) for w in grid]
    np.testing.assert_allclose(result.scores, want, rtol=1e-12)
    assert result.weight == grid[int(np.argmax(want))]
    assert result.score == max(want)
    acc = tuning.tune_blend_weight(a, b, labels, metric="accuracy")
    np.testing.assert_allclose(
        acc.scores[-1], skm.accuracy_score(labels[keep], a[keep].argmax(-1)), rtol=1e-12)


def test_blend_weight_ties_and_multilabel_and_callable():
    scores, labels = _au_data(np.random.default_rng(4), n=80, k=4)
    same = tuning.tune_blend_weight(scores, scores, labels, metric="au_f1")
    assert same.weight == 0.0  # All weights tie: the first grid value wins.
    np.testing.assert_allclose(same.scores, same.scores[0])
    want = np.mean([ref_f1(scores[:, j], labels[:, j], 0.5) for j in range(4)])
    np.testing.assert_allclose(same.score, want, rtol=1e-12)
    seen = []
    result = tuning.tune_blend_weight(
        scores, 1 - scores, labels, grid=[0.0, 1.0],
        metric=lambda y, s: seen.append(s) or float(np.mean(s)))
    np.testing.assert_array_equal(seen[1], scores)
    assert result.scores.shape == (2,)


def test_errors_name_the_argument():
    scores, labels = _au_data(np.random.default_rng(5), n=10, k=2)
    with pytest.raises(ValueError, match="labels: shape"):
        tuning.tune_au_thresholds(scores, labels[:, :1])
    with pytest.raises(ValueError, match="scores: expected shape"):
        tuning.tune_au_thresholds(scores[:, 0], labels[:, 0])
    with pytest.raises(ValueError, match="labels: expected values"):
        tuning.tune_au_thresholds(scores, labels + 2)
    with pytest.raises(ValueError, match="grid"):
        tuning.tune_au_thresholds(scores, labels, grid=[])
    with pytest.raises(KeyError, match=r"unknown metric 'f2'; choose one of \['accuracy', 'au_f1', 'f1_macro'\]"):
        tuning.tune_blend_weight(scores, scores, labels, metric="f2")
    with pytest.raises(ValueError, match="scores_b: shape"):
        tuning.tune_blend_weight(scores, scores[:5], labels, metric="au_f1")
    with pytest.raises(ValueError, match="scores_b: shape"):
        tuning.blend(scores, scores[:5], 0.5)
    with pytest.raises(ValueError, match="labels: values outside"):
        tuning.tune_blend_weight(scores, scores, np.full(10, 2), metric="f1_macro")
    with pytest.raises(ValueError, match="labels: shape"):
        tuning.tune_blend_weight(scores, scores, np.zeros(3, int), metric="f1_macro")
