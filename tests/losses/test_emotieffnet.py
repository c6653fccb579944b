"""The MT-EmotiEffNet loss (paper 1, eq. 1) against a float64 NumPy reference."""

import jax
import numpy as np
import pytest
from jax.test_util import check_grads

from affectjax import losses


def ref_ccc(x, y, ddof):
    cov = np.cov(x, y, ddof=ddof)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (x.mean() - y.mean()) ** 2)


def ref_loss(logits, va_pred, labels, va_target, va_rows, counts, ddof):
    logits, va_pred, va_target = (np.asarray(a, np.float64) for a in (logits, va_pred, va_target))
    va = 1 - 0.5 * sum(
        ref_ccc(va_pred[va_rows, i], va_target[va_rows, i], ddof) for i in range(2)
    )
    weights = counts.max() / counts
    shifted = logits - logits.max(-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    valid = labels >= 0
    w = weights[labels[valid]]
    ce = -log_p[valid, labels[valid]]
    return va + (w * ce).sum() / w.sum()


def make_batch(seed, batch=10, classes=8):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, classes)).astype(np.float32)
    va_target = rng.uniform(-1, 1, size=(batch, 2)).astype(np.float32)
    va_pred = (0.5 * va_target + 0.3 * rng.normal(size=(batch, 2))).astype(np.float32)
    labels = rng.integers(0, classes, size=batch).astype(np.int32)
    labels[[1, 6]] = -1
    va_rows = np.arange(batch) % 4 != 3
    counts = rng.integers(5, 500, size=classes)
    return logits, va_pred, labels, va_target, va_rows, counts


@pytest.mark.parametrize("ddof", [0, 1])
def test_matches_numpy_reference(ddof):
    logits, va_pred, labels, va_target, va_rows, counts = make_batch(0)
    got = losses.emotieffnet_loss(
        logits, va_pred, expr_labels=labels, va_target=va_target, va_mask=va_rows,
        class_weights=losses.class_balanced_weights(counts), ddof=ddof,
    )
    want = ref_loss(logits, va_pred, labels, va_target, va_rows, counts, ddof)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_jit_vmap_grad_and_degenerate():
    logits, va_pred, labels, va_target, va_rows, counts = make_batch(1)
    weights = losses.class_balanced_weights(counts)

    def f(z, va, y, m):
        return losses.emotieffnet_loss(
            z, va, expr_labels=y, va_target=va_target, va_mask=m, class_weights=weights
        )

    np.testing.assert_allclose(
        jax.jit(f)(logits, va_pred, labels, va_rows), f(logits, va_pred, labels, va_rows),
        rtol=1e-6,
    )
    halves = jax.vmap(lambda z, va: losses.emotieffnet_loss(
        z, va, expr_labels=labels[:5], va_target=va_target[:5]))(
        logits.reshape(2, 5, 8), va_pred.reshape(2, 5, 2))
    assert halves.shape == (2,) and np.isfinite(halves).all()
    with jax.enable_x64(True):
        args64 = (logits.astype(np.float64), va_pred.astype(np.float64))
        check_grads(jax.jit(lambda z, va: f(z, va, labels, va_rows)), args64, order=1)
    # Nothing labelled: VA masked everywhere and every expression missing.
    grad_fn = jax.jit(jax.value_and_grad(f, argnums=(0, 1)))
    value, grads = grad_fn(np.zeros_like(logits), np.zeros_like(va_pred),
                           np.full(10, -1, np.int32), np.zeros(10, bool))
    assert float(value) == 1.0  # 1 - mean CCC with CCC defined as 0 when undefined.
    assert all(np.isfinite(g).all() and not g.any() for g in grads)
    # Constant predictions with one class only: finite value and gradients.
    value, grads = grad_fn(np.zeros_like(logits), np.zeros_like(va_pred),
                           np.zeros(10, np.int32), va_rows)
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in grads)


def test_bad_inputs_name_the_argument():
    logits, va_pred, labels, va_target, va_rows, _ = make_batch(2)
    kwargs = dict(expr_labels=labels, va_target=va_target)
    with pytest.raises(ValueError, match="pred must have shape"):
        losses.emotieffnet_loss(logits, logits, expr_labels=labels, va_target=logits)
    with pytest.raises(ValueError, match="target shape"):
        losses.emotieffnet_loss(logits, va_pred, expr_labels=labels, va_target=va_target[:4])
    with pytest.raises(TypeError, match="logits must be a floating"):
        losses.emotieffnet_loss(labels[:, None], va_pred, **kwargs)
    with pytest.raises(TypeError, match="labels must be an integer"):
        losses.emotieffnet_loss(
            logits, va_pred, expr_labels=labels.astype(np.float32), va_target=va_target
        )
    with pytest.raises(ValueError, match="where"):
        losses.emotieffnet_loss(logits, va_pred, va_mask=va_rows[:3], **kwargs)
