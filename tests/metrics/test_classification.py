"""Tests of confusion-matrix metrics against sklearn (float64 references)."""

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from affectjax import metrics


def _labels(rng, n, num_classes, present=None, missing=0.2):
    present = num_classes if present is None else present
    y_true = rng.integers(0, present, n)
    y_true[rng.random(n) < missing] = -1
    y_pred = rng.integers(0, num_classes, n)
    return y_true.astype(np.int32), y_pred.astype(np.int32)


@pytest.mark.parametrize("n,num_classes,present", [(50, 3, 3), (120, 8, 5), (9, 8, 8)])
def test_matches_sklearn(n, num_classes, present):
    y_true, y_pred = _labels(np.random.default_rng(n), n, num_classes, present)
    keep = y_true != -1
    t, p = y_true[keep], y_pred[keep]
    classes = list(range(num_classes))
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, num_classes),
                                  skm.confusion_matrix(t, p, labels=classes))
    np.testing.assert_allclose(
        metrics.f1_per_class(y_true, y_pred, num_classes),
        skm.f1_score(t, p, labels=classes, average=None, zero_division=0), rtol=1e-6)
    f1 = skm.f1_score(t, p, labels=classes, average="macro", zero_division=0)
    acc = skm.accuracy_score(t, p)
    np.testing.assert_allclose(metrics.f1_macro(y_true, y_pred, num_classes), f1, rtol=1e-6)
    np.testing.assert_allclose(metrics.accuracy(y_true, y_pred), acc, rtol=1e-6)
    np.testing.assert_allclose(metrics.cct_score(y_true, y_pred, num_classes),
                               0.67 * f1 + 0.33 * acc, rtol=1e-6)


def test_class_absent_from_truth_and_prediction_counts_zero():
    y = np.array([0, 1, 0, 1], np.int32)
    np.testing.assert_allclose(metrics.f1_per_class(y, y, 3), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(metrics.f1_macro(y, y, 3), 2 / 3, rtol=1e-6)


def test_where_equals_slicing_and_2d_labels():
    y_true, y_pred = _labels(np.random.default_rng(3), 40, 4)
    mask = np.random.default_rng(4).random(40) < 0.5
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true, y_pred, 4, where=mask),
        metrics.confusion_matrix(y_true[mask], y_pred[mask], 4))
    np.testing.assert_allclose(metrics.accuracy(y_true, y_pred, where=mask),
                               metrics.accuracy(y_true[mask], y_pred[mask]))
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y_true.reshape(8, 5), y_pred.reshape(8, 5), 4),
        metrics.confusion_matrix(y_true, y_pred, 4))


def test_empty_input_gives_zero():
    empty = np.zeros((0,), np.int32)
    assert float(metrics.accuracy(empty, empty)) == 0.0
    assert float(metrics.f1_macro(empty, empty, 3)) == 0.0
    allmissing = -np.ones(5, np.int32)
    assert float(metrics.cct_score(allmissing, np.zeros(5, np.int32), 3)) == 0.0


def test_streaming_equals_one_shot(splits, masked_batch_mask):
    n, c = 70, 5
    y_true, y_pred = _labels(np.random.default_rng(5), n, c)
    batches = splits(n, seed=2)
    mask = masked_batch_mask(n, batches)
    update = jax.jit(metrics.confusion_update)
    cm = metrics.confusion_init(c)
    for s in batches:
        cm = update(cm, y_true[s], y_pred[s], where=mask[s])
    want = metrics.confusion_matrix(y_true, y_pred, c, where=mask)
    np.testing.assert_array_equal(cm, want)
    halves = metrics.confusion_merge(
        metrics.confusion_matrix(y_true[:30], y_pred[:30], c, where=mask[:30]),
        metrics.confusion_matrix(y_true[30:], y_pred[30:], c, where=mask[30:]))
    np.testing.assert_array_equal(halves, want)
    np.testing.assert_allclose(metrics.f1_macro_from_cm(cm),
                               metrics.f1_macro(y_true, y_pred, c, where=mask))
    np.testing.assert_allclose(metrics.accuracy_from_cm(cm),
                               metrics.accuracy(y_true, y_pred, where=mask), rtol=1e-6)
    np.testing.assert_allclose(metrics.cct_score_from_cm(cm),
                               metrics.cct_score(y_true, y_pred, c, where=mask))
    final = metrics.confusion_finalize(cm)
    assert sorted(final) == ["accuracy", "cct_score", "f1_macro", "f1_per_class"]
    np.testing.assert_allclose(final["f1_macro"], metrics.f1_macro_from_cm(cm))
    np.testing.assert_allclose(final["accuracy"], metrics.accuracy_from_cm(cm))
    np.testing.assert_allclose(final["cct_score"], metrics.cct_score_from_cm(cm))
    np.testing.assert_allclose(final["f1_per_class"],
                               metrics.f1_per_class(y_true, y_pred, c, where=mask))


def test_errors_name_the_argument():
    y = np.array([0, 1, 2], np.int32)
    with pytest.raises(ValueError, match="y_true: label 3"):
        metrics.f1_macro(np.array([0, 1, 3]), y, 3)
    with pytest.raises(ValueError, match="y_true: label -2"):
        metrics.confusion_matrix(np.array([0, -2, 1]), y, 3)
    with pytest.raises(ValueError, match="y_pred: label 5"):
        metrics.f1_macro(y, np.array([0, 5, 1]), 3)
    with pytest.raises(ValueError, match="y_pred: shape"):
        metrics.f1_macro(y, y[:2], 3)
    with pytest.raises(ValueError, match="y_pred: shape"):
        metrics.accuracy(y, y[:2])
    with pytest.raises(TypeError, match="y_true: expected integer"):
        metrics.f1_macro(y.astype(np.float32), y, 3)
    with pytest.raises(ValueError, match="num_classes"):
        metrics.confusion_matrix(y, y, 0)
    with pytest.raises(ValueError, match="b: shape"):
        metrics.confusion_merge(metrics.confusion_init(3), metrics.confusion_init(4))
    # A missing true label may carry any prediction.
    np.testing.assert_allclose(metrics.accuracy(np.array([-1, 1]), np.array([-1, 1])), 1.0)
    metrics.f1_macro(np.array([-1, 1]), np.array([7, 1]), 3)
