"""Tests of the ABAW4 MTL score against a float64 numpy/sklearn reference."""

import jax
import numpy as np
import pytest
from sklearn import metrics as skm

from affectjax import metrics


def ref_ccc(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return 2 * np.mean((x - x.mean()) * (y - y.mean())) / (
        x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def _batch(rng, n):
    """(va_true, va_pred, expr_true, expr_pred, au_true, au_scores), va_mask."""
    va_true = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    va_pred = np.clip(va_true + 0.4 * rng.normal(size=(n, 2)), -1, 1).astype(np.float32)
    va_mask = rng.random(n) < 0.7
    expr_true = rng.integers(0, 8, n).astype(np.int32)
    expr_true[rng.random(n) < 0.3] = -1
    expr_pred = np.where(rng.random(n) < 0.5, np.maximum(expr_true, 0),
                         rng.integers(0, 8, n)).astype(np.int32)
    au_true = (rng.random((n, 12)) < 0.3).astype(np.int32)
    au_true[rng.random((n, 12)) < 0.2] = -1
    au_scores = np.clip(0.3 * au_true + 0.7 * rng.random((n, 12)), 0, 1).astype(np.float32)
    return [va_true, va_pred, expr_true, expr_pred, au_true, au_scores], va_mask


def reference(va_true, va_pred, expr_true, expr_pred, au_true, au_scores, va_mask):
    p_va = np.mean([ref_ccc(va_pred[va_mask, k], va_true[va_mask, k]) for k in range(2)])
    keep = expr_true != -1
    p_expr = skm.f1_score(expr_true[keep], expr_pred[keep], labels=range(8),
                          average="macro", zero_division=0)
    f1s = []
    for j in range(12):
        ok = au_true[:, j] != -1
        f1s.append(skm.f1_score(au_true[ok, j], au_scores[ok, j] >= 0.5, zero_division=0))
    p_au = np.mean(f1s)
    return {"P_VA": p_va, "P_EXPR": p_expr, "P_AU": p_au, "P_MTL": p_va + p_expr + p_au}


def test_matches_reference():
    data, va_mask = _batch(np.random.default_rng(0), 150)
    got = metrics.abaw_mtl_score(*data, va_mask=va_mask)
    for key, want in reference(*data, va_mask).items():
        np.testing.assert_allclose(got[key], want, rtol=1e-5, err_msg=key)


def test_keyword_arguments_and_old_positional_form_fails():
    data, va_mask = _batch(np.random.default_rng(0), 40)
    names = ("va_true", "va_pred", "expr_true", "expr_pred", "au_true", "au_pred")
    got = metrics.abaw_mtl_score(**dict(zip(names, data)), va_mask=va_mask)
    want = metrics.abaw_mtl_score(*data, va_mask=va_mask)
    assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in want.items()}
    va_true, va_pred, expr_true, expr_pred, au_true, au_scores = data
    with pytest.raises(TypeError):  # the former (va_pred, va_true, va_mask, ...) order
        metrics.abaw_mtl_score(va_pred, va_true, va_mask, expr_pred, expr_true,
                               au_scores, au_true)


def test_per_column_va_mask():
    data, _ = _batch(np.random.default_rng(1), 60)
    va_true, va_pred = data[:2]
    mask = np.random.default_rng(2).random((60, 2)) < 0.6
    got = metrics.abaw_mtl_score(*data, va_mask=mask)
    np.testing.assert_allclose(got["CCC_V"], ref_ccc(va_pred[mask[:, 0], 0],
                                                     va_true[mask[:, 0], 0]), rtol=1e-5)
    np.testing.assert_allclose(got["CCC_A"], ref_ccc(va_pred[mask[:, 1], 1],
                                                     va_true[mask[:, 1], 1]), rtol=1e-5)


def test_streaming_equals_one_shot(splits):
    n = 90
    data, va_mask = _batch(np.random.default_rng(3), n)
    batches = splits(n, seed=4)
    last = [s for s in batches if s.stop > s.start][-1]
    # One batch without any label of any task.
    va_mask[last] = False
    data[2][last] = -1
    data[4][last] = -1
    stats = metrics.abaw_init()
    for s in batches:
        stats = metrics.abaw_update(stats, *(d[s] for d in data), va_mask=va_mask[s])
    got = metrics.abaw_finalize(stats)
    want = metrics.abaw_mtl_score(*data, va_mask=va_mask)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)
    update = jax.jit(metrics.abaw_update)
    halves = metrics.abaw_merge(
        update(metrics.abaw_init(), *(d[:45] for d in data), va_mask=va_mask[:45]),
        update(metrics.abaw_init(), *(d[45:] for d in data), va_mask=va_mask[45:]))
    np.testing.assert_allclose(metrics.abaw_finalize(halves)["P_MTL"], want["P_MTL"],
                               rtol=1e-5)


def test_errors_name_the_argument():
    data, va_mask = _batch(np.random.default_rng(5), 10)
    bad = list(data)
    bad[0] = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="va_true"):
        metrics.abaw_mtl_score(*bad, va_mask=va_mask)
    with pytest.raises(ValueError, match="va_mask"):
        metrics.abaw_mtl_score(*data, va_mask=np.ones(9, bool))
    bad = list(data)
    bad[2] = np.full(10, 8, np.int32)
    with pytest.raises(ValueError, match="y_true: label 8"):
        metrics.abaw_mtl_score(*bad, va_mask=va_mask)
    bad = list(data)
    bad[4] = data[4][:, 0]
    with pytest.raises(ValueError, match="au_true: expected rank 2"):
        metrics.abaw_mtl_score(*bad, va_mask=va_mask)
