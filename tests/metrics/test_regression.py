"""Tests of affectjax.metrics.regression (CCC) against a float64 numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import metrics


def ref_ccc(x, y):
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    cov = np.cov(x, y, ddof=0)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (x.mean() - y.mean()) ** 2)


def _data(rng, shape):
    """(x, y): predictions x and targets y; metrics take them as (y, x)."""
    x = rng.normal(size=shape)
    y = 0.7 * x + 0.5 * rng.normal(size=shape) + 0.3
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("shape", [(7,), (40,), (33, 3)])
def test_ccc_matches_numpy(shape):
    x, y = _data(np.random.default_rng(1), shape)
    got = np.asarray(metrics.ccc(y, x))
    if len(shape) == 1:
        assert got.shape == ()
        np.testing.assert_allclose(got, ref_ccc(x, y), rtol=1e-5)
    else:
        want = [ref_ccc(x[:, k], y[:, k]) for k in range(shape[1])]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_ccc_properties():
    x, _ = _data(np.random.default_rng(2), (50,))
    np.testing.assert_allclose(metrics.ccc(x, x), 1.0, rtol=1e-6)
    assert metrics.ccc(x, 2 * x) < 0.99
    np.testing.assert_allclose(np.corrcoef(x, 2 * x)[0, 1], 1.0, rtol=1e-6)
    perm = np.random.default_rng(3).permutation(50)
    np.testing.assert_allclose(metrics.ccc(x, x[::-1]), metrics.ccc(x[perm], x[::-1][perm]),
                               rtol=1e-5)


def test_ccc_where_equals_slicing():
    x, y = _data(np.random.default_rng(4), (30, 2))
    mask = np.random.default_rng(5).random(30) < 0.6
    np.testing.assert_allclose(metrics.ccc(y, x, where=mask), metrics.ccc(y[mask], x[mask]),
                               rtol=1e-5)
    full = np.random.default_rng(6).random((30, 2)) < 0.6
    for k in range(2):
        np.testing.assert_allclose(metrics.ccc(y, x, where=full)[k],
                                   ref_ccc(x[full[:, k], k], y[full[:, k], k]), rtol=1e-5)


def test_ccc_degenerate_is_zero_and_jittable():
    const = np.ones(10, np.float32)
    assert float(metrics.ccc(const, const)) == 0.0
    assert float(metrics.ccc(const, const, where=np.zeros(10, bool))) == 0.0
    x, y = _data(np.random.default_rng(7), (20,))
    np.testing.assert_allclose(jax.jit(metrics.ccc)(y, x), ref_ccc(x, y), rtol=1e-5)


def test_streaming_equals_one_shot(splits, masked_batch_mask):
    n = 60
    x, y = _data(np.random.default_rng(8), (n, 2))
    batches = splits(n, seed=1)
    mask = masked_batch_mask(n, batches)
    update = jax.jit(metrics.ccc_update)
    stats = metrics.ccc_init(2)
    for s in batches:
        stats = update(stats, y[s], x[s], where=mask[s])
    assert stats.n.tolist() == [int(mask.sum())] * 2
    np.testing.assert_allclose(metrics.ccc_finalize(stats), metrics.ccc(y, x, where=mask),
                               rtol=1e-5, atol=1e-6)
    want = [ref_ccc(x[mask, k], y[mask, k]) for k in range(2)]
    np.testing.assert_allclose(metrics.ccc_finalize(stats), want, rtol=1e-5)


def test_dataset_ccc_is_not_mean_of_batch_cccs():
    x, y = _data(np.random.default_rng(9), (40,))
    y[:20] += 1.0  # A shift between the two halves.
    halves = [metrics.ccc(y[:20], x[:20]), metrics.ccc(y[20:], x[20:])]
    stats = metrics.ccc_update(metrics.ccc_init(), y[:20], x[:20])
    stats = metrics.ccc_update(stats, y[20:], x[20:])
    got = metrics.ccc_finalize(stats)[0]
    np.testing.assert_allclose(got, ref_ccc(x, y), rtol=1e-5)
    assert abs(float(got) - float(np.mean(halves))) > 1e-2


def test_merge_is_order_independent():
    x, y = _data(np.random.default_rng(10), (50, 2))
    a = metrics.ccc_update(metrics.ccc_init(2), y[:13], x[:13])
    b = metrics.ccc_update(metrics.ccc_init(2), y[13:], x[13:])
    np.testing.assert_allclose(metrics.ccc_finalize(metrics.ccc_merge(a, b)),
                               metrics.ccc_finalize(metrics.ccc_merge(b, a)), rtol=1e-5)


def test_float32_streaming_with_large_offset():
    rng = np.random.default_rng(11)
    n = 4000
    x64 = 1000.0 + rng.normal(size=n)
    y64 = x64 + 0.5 * rng.normal(size=n) + 0.1
    x, y = x64.astype(np.float32), y64.astype(np.float32)
    want = ref_ccc(x, y)  # float64 reference on the same float32 data.
    stats = metrics.ccc_init()
    update = jax.jit(metrics.ccc_update)
    for start in range(0, n, 100):
        stats = update(stats, y[start:start + 100], x[start:start + 100])
    assert stats.m2_x.dtype == jnp.float32
    np.testing.assert_allclose(metrics.ccc_finalize(stats)[0], want, rtol=2e-4)
    # The raw power sums in float32 lose the variance entirely at this offset.
    sx, sxx = np.float32(0), np.float32(0)
    for v in x:
        sx += v
        sxx += v * v
    naive_var = sxx / n - (sx / n) ** 2
    assert abs(naive_var - x64.var()) > 0.5 * x64.var()


def test_errors_name_the_argument():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match="y_pred: shape"):
        metrics.ccc(x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="y_true: expected rank"):
        metrics.ccc(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="where"):
        metrics.ccc(x, x, where=np.ones(3, bool))
    with pytest.raises(ValueError, match="y_true: 2 outputs"):
        metrics.ccc_update(metrics.ccc_init(1), x, x)
    with pytest.raises(ValueError, match="num_outputs"):
        metrics.ccc_init(0)


def test_arguments_are_y_true_then_y_pred():
    x, y = _data(np.random.default_rng(12), (20,))
    np.testing.assert_allclose(metrics.ccc(y_true=y, y_pred=x), ref_ccc(x, y), rtol=1e-5)
    stats = metrics.ccc_update(metrics.ccc_init(), y_true=y, y_pred=x)
    np.testing.assert_allclose(stats.mean_x, x.mean(), rtol=1e-5)  # mean_x: predictions
    np.testing.assert_allclose(stats.mean_y, y.mean(), rtol=1e-5)
    with pytest.raises(TypeError):
        metrics.ccc(x=x, y=y)  # pylint: disable=unexpected-keyword-arg
