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
