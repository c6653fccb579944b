"""Tests of NME and failure rate against a float64 numpy loop."""

import jax
import numpy as np
import pytest

from affectjax import metrics


def ref_nme(pred, target):
    out = []
    for p, t in zip(np.asarray(pred, np.float64), np.asarray(target, np.float64)):
        iod = np.sqrt(np.sum((t[0] - t[1]) ** 2))
        out.append(np.mean([np.sqrt(np.sum((p[l] - t[l]) ** 2)) for l in range(len(t))]) / iod)
    return np.array(out)


def _landmarks(rng, n, noise=4.0):
    base = np.array([[40, 50], [88, 50], [64, 75], [45, 100], [83, 100]], np.float64)
    target = base + rng.normal(scale=3.0, size=(n, 5, 2))
    pred = target + rng.normal(scale=noise, size=(n, 5, 2))
    return pred.astype(np.float32), target.astype(np.float32)


def test_nme_and_failure_rate_match_loop():
    pred, target = _landmarks(np.random.default_rng(0), 40)
    want = ref_nme(pred, target)
    per = metrics.nme_per_item(target, pred)
    mean = metrics.nme(target, pred)
    assert mean.shape == ()
    np.testing.assert_allclose(per, want, rtol=1e-5)
    np.testing.assert_allclose(mean, want.mean(), rtol=1e-5)
    for threshold in (0.05, 0.1):
        np.testing.assert_allclose(metrics.failure_rate(target, pred, threshold=threshold),
                                   np.mean(want > threshold), rtol=1e-6)
    assert 0 < float(metrics.failure_rate(target, pred)) < 1


def test_arguments_are_y_true_then_y_pred():
    pred, target = _landmarks(np.random.default_rng(0), 10)
    pred *= 1.5  # the normalising eye distance differs between the two
    want = ref_nme(pred, target).mean()
    np.testing.assert_allclose(metrics.nme(y_true=target, y_pred=pred), want, rtol=1e-5)
    assert abs(float(metrics.nme(pred, target)) - want) > 1e-3
    with pytest.raises(TypeError):
        metrics.failure_rate(target, pred, 0.1)  # threshold is keyword-only


def test_where_and_degenerate_inputs():
    pred, target = _landmarks(np.random.default_rng(1), 20)
    mask = np.random.default_rng(2).random(20) < 0.5
    per = metrics.nme_per_item(target, pred, where=mask)
    mean = metrics.nme(target, pred, where=mask)
    np.testing.assert_allclose(mean, ref_nme(pred[mask], target[mask]).mean(), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(per)[~mask], 0.0)
    # A masked image may have degenerate (all-zero) targets.
    target[~mask] = 0.0
    np.testing.assert_allclose(metrics.nme(target, pred, where=mask), mean, rtol=1e-6)
    assert float(metrics.nme(target, pred, where=np.zeros(20, bool))) == 0.0
    per = metrics.nme_per_item(target[mask], target[mask])
    assert float(metrics.nme(target[mask], target[mask])) == 0.0 and not np.asarray(per).any()


def test_streaming_equals_one_shot(splits, masked_batch_mask):
    n = 50
    pred, target = _landmarks(np.random.default_rng(3), n, noise=6.0)
    batches = splits(n, seed=5)
    mask = masked_batch_mask(n, batches)
    update = jax.jit(metrics.landmark_update)
    stats = metrics.landmark_init()
    for s in batches:
        stats = update(stats, target[s], pred[s], where=mask[s])
    got = metrics.landmark_finalize(stats)
    np.testing.assert_allclose(got["nme"], metrics.nme(target, pred, where=mask), rtol=1e-5)
    np.testing.assert_allclose(got["failure_rate"],
                               metrics.failure_rate(target, pred, where=mask), rtol=1e-6)
    halves = metrics.landmark_merge(
        metrics.landmark_update(metrics.landmark_init(), target[:20], pred[:20],
                                where=mask[:20]),
        metrics.landmark_update(metrics.landmark_init(), target[20:], pred[20:],
                                where=mask[20:]))
    for key in got:
        np.testing.assert_allclose(metrics.landmark_finalize(halves)[key], got[key], rtol=1e-5)
    assert int(stats.n) == int(mask.sum())


def test_errors_name_the_argument():
    pred, target = _landmarks(np.random.default_rng(4), 3)
    with pytest.raises(ValueError, match="y_pred: shape"):
        metrics.nme(target, pred[:, :4])
    with pytest.raises(ValueError, match="y_true: expected rank 3"):
        metrics.nme(target[0], pred[0])
    with pytest.raises(ValueError, match="y_true: expected shape"):
        metrics.nme(target[..., :1], pred[..., :1])
    with pytest.raises(ValueError, match="where"):
        metrics.nme(target, pred, where=np.ones((3, 5), bool))
    target[1, 1] = target[1, 0]
    with pytest.raises(ValueError, match="y_true: image 1 has zero inter-ocular"):
        metrics.failure_rate(target, pred)


def ref_point_errors(pred, target):
    """(N, L) normalised error of every landmark, a float64 loop."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    out = np.zeros(target.shape[:2])
    for i in range(len(target)):
        iod = np.sqrt(np.sum((target[i, 0] - target[i, 1]) ** 2))
        for l in range(target.shape[1]):
            out[i, l] = np.sqrt(np.sum((pred[i, l] - target[i, l]) ** 2)) / iod
    return out


def test_per_landmark_nme_and_failure_rate_match_loop():
    pred, target = _landmarks(np.random.default_rng(6), 60, noise=5.0)
    mask = np.random.default_rng(7).random(60) < 0.7
    err = ref_point_errors(pred[mask], target[mask])
    nme_l = metrics.nme_per_landmark(target, pred, where=mask)
    assert nme_l.shape == (5,)
    np.testing.assert_allclose(nme_l, err.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(np.mean(nme_l), metrics.nme(target, pred, where=mask),
                               rtol=1e-5)
    fail = metrics.failure_rate_per_landmark(target, pred, threshold=0.1, where=mask)
    np.testing.assert_allclose(fail, np.mean(err > 0.1, axis=0), rtol=1e-6)
    assert 0 < float(np.min(fail)) and float(np.max(fail)) < 1  # a non-trivial case
    # It is not the image-level failure rate (which thresholds the mean error).
    assert abs(float(np.mean(fail)) - float(metrics.failure_rate(
        target, pred, where=mask))) > 1e-3
    zero = metrics.nme_per_landmark(target, pred, where=np.zeros(60, bool))
    np.testing.assert_array_equal(zero, np.zeros(5))


def test_per_landmark_streaming_equals_one_shot(splits, masked_batch_mask):
    n = 45
    pred, target = _landmarks(np.random.default_rng(8), n, noise=6.0)
    batches = splits(n, seed=9)
    mask = masked_batch_mask(n, batches)
    update = jax.jit(metrics.landmark_point_update)
    stats = metrics.landmark_point_init(5)
    for s in batches:
        stats = update(stats, target[s], pred[s], where=mask[s])
    got = metrics.landmark_point_finalize(stats)
    np.testing.assert_allclose(got["nme"], metrics.nme_per_landmark(target, pred, where=mask),
                               rtol=1e-5)
    np.testing.assert_allclose(
        got["failure_rate"], metrics.failure_rate_per_landmark(target, pred, where=mask),
        rtol=1e-6)
    with pytest.raises(ValueError, match="stats: for 4 landmarks"):
        metrics.landmark_point_update(metrics.landmark_point_init(4), target, pred)
