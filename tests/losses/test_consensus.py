"""KL divergence, KL consensus and the CCT loss against float64 references."""

import jax
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import rel_entr

from affectjax import losses
from affectjax.schedules import cct_lambda


def softmax(logits, axis=-1):
    logits = np.asarray(logits, np.float64)
    e = np.exp(logits - logits.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def ref_consensus(stacked, mask=None):
    """Explicit double loop over ordered pairs j != k, batch mean of KL(p_k || p_j)."""
    m, b, _ = stacked.shape
    mask = np.ones(b, bool) if mask is None else mask
    total = 0.0
    for j in range(m):
        for k in range(m):
            if k != j:
                kl = rel_entr(softmax(stacked[k]), softmax(stacked[j])).sum(-1)
                total += kl[mask].mean() if mask.any() else 0.0
    return total


def ref_cct(stacked, labels, lam, mask=None):
    mask = np.ones(labels.shape, bool) if mask is None else mask
    labelled = mask & (labels >= 0)
    sup = 0.0
    for logits in stacked:
        ce = -np.log(softmax(logits)[np.arange(len(labels)), np.maximum(labels, 0)])
        sup += ce[labelled].mean() if labelled.any() else 0.0
    return (1 - lam) * sup + lam * ref_consensus(stacked, mask)


def random_stack(seed, shape=(3, 6, 4)):
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype(np.float32)


@pytest.mark.parametrize("shape", [(5,), (7, 4), (2, 3, 6)])
def test_kl_div_matches_rel_entr(shape):
    p, q = random_stack(0, (2, *shape))
    got = np.asarray(losses.kl_div(p, q))
    np.testing.assert_allclose(
        got, rel_entr(softmax(p), softmax(q)).sum(-1), rtol=1e-5, atol=1e-6
    )
    assert (got >= 0).all()
    np.testing.assert_allclose(losses.kl_div(p, p), 0.0, atol=1e-7)
    np.testing.assert_allclose(losses.kl_div(p, p + 3.0), 0.0, atol=1e-6)  # shift-invariant


def test_kl_div_axis():
    p, q = random_stack(1, (2, 4, 3))
    np.testing.assert_allclose(
        losses.kl_div(p, q, axis=0), losses.kl_div(p.T, q.T).T, rtol=1e-6
    )


@pytest.mark.parametrize("num_nets", [1, 2, 3, 4])
def test_kl_consensus_matches_double_loop(num_nets):
    stacked = random_stack(num_nets, (num_nets, 6, 4))
    got = losses.kl_consensus(stacked)
    np.testing.assert_allclose(got, ref_consensus(stacked), rtol=1e-5, atol=1e-7)
    if num_nets == 1:
        assert float(got) == 0.0


def test_kl_consensus_where_equals_slicing():
    stacked = random_stack(5)
    mask = np.array([True, False, True, True, False, True])
    got = losses.kl_consensus(stacked, where=mask)
    np.testing.assert_allclose(got, ref_consensus(stacked, mask), rtol=1e-5)
    np.testing.assert_allclose(got, losses.kl_consensus(stacked[:, mask]), rtol=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_cct_loss_matches_numpy(lam):
    stacked = random_stack(6)
    labels = np.array([0, 3, -1, 2, 1, 1], np.int32)
    mask = np.array([True, True, True, False, True, True])
    got = losses.cct_loss(stacked, labels, lam=lam, where=mask)
    np.testing.assert_allclose(got, ref_cct(stacked, labels, lam, mask), rtol=1e-5)
    np.testing.assert_allclose(
        losses.cct_loss(stacked, labels, lam=lam, where=mask, scale=0.33), 0.33 * got, rtol=1e-6
    )


def test_jit_vmap_grad_and_traced_lambda():
    stacked = random_stack(7)
    labels = np.array([0, 3, 2, 2, 1, -1], np.int32)
    f = jax.jit(lambda z, lam: losses.cct_loss(z, labels, lam=lam))
    for lam in (0.1, 0.7):  # a traced lam: one compilation, two values.
        np.testing.assert_allclose(f(stacked, lam), ref_cct(stacked, labels, lam), rtol=1e-5)
    from_epoch = jax.jit(
        lambda z, e: losses.cct_loss(z, labels, lam=cct_lambda(e, ramp_epochs=10))
    )(stacked, 3)
    lam = 0.9 * np.exp(-4.0 * (1 - 0.3) ** 2)
    np.testing.assert_allclose(from_epoch, ref_cct(stacked, labels, lam), rtol=1e-5)
    batched = jax.vmap(losses.kl_div, in_axes=(0, None))(stacked, stacked[0])
    assert batched.shape == (3, 6) and float(batched[0].max()) < 1e-6
    batched = jax.vmap(losses.kl_consensus)(np.stack([stacked, stacked[::-1]]))
    np.testing.assert_allclose(batched[0], batched[1], rtol=1e-5)
    with jax.enable_x64(True):
        z64 = stacked.astype(np.float64)

        def all_forms(z):
            return (
                losses.cct_loss(z, labels, lam=0.4)
                + losses.kl_div(z[0], z[1]).sum()
                + losses.kl_consensus(z, where=labels >= 0)
            )

        check_grads(jax.jit(all_forms), (z64,), order=1)


def test_degenerate_inputs():
    identical = np.zeros((3, 5, 4), np.float32)  # every network predicts the same constant
    grad_fn = jax.jit(jax.value_and_grad(
        lambda z, y, m: losses.cct_loss(z, y, lam=0.5, where=m)
    ))
    cases = [
        (identical, np.zeros(5, np.int32), np.ones(5, bool)),  # one class only
        (random_stack(8, (3, 5, 4)), np.full(5, -1, np.int32), np.ones(5, bool)),
        (random_stack(9, (3, 5, 4)), np.zeros(5, np.int32), np.zeros(5, bool)),
    ]
    for z, y, m in cases:
        value, grad = grad_fn(z, y, m)
        assert np.isfinite(value) and np.isfinite(grad).all()
    value, grad = grad_fn(*cases[-1])
    assert float(value) == 0.0 and not np.asarray(grad).any()
    assert float(losses.kl_consensus(identical)) == 0.0


def test_bad_inputs_name_the_argument():
    stacked = random_stack(10)
    labels = np.zeros(6, np.int32)
    with pytest.raises(ValueError, match="stacked_logits must have shape"):
        losses.kl_consensus(stacked[0])
    with pytest.raises(TypeError, match="stacked_logits must be a floating"):
        losses.cct_loss(labels[None, :, None], labels, lam=0.5)
    with pytest.raises(ValueError, match="labels must have shape"):
        losses.cct_loss(stacked, labels[:4], lam=0.5)
    with pytest.raises(TypeError, match="labels must be an integer"):
        losses.cct_loss(stacked, labels.astype(np.float32), lam=0.5)
    with pytest.raises(ValueError, match="lam must be a scalar"):
        losses.cct_loss(stacked, labels, lam=np.ones(2))
    with pytest.raises(ValueError, match="where"):
        losses.kl_consensus(stacked, where=np.ones(4, bool))
    with pytest.raises(ValueError, match="q_logits shape"):
        losses.kl_div(stacked[0], stacked[0, :3])
    with pytest.raises(TypeError, match="p_logits must be a floating"):
        losses.kl_div(labels, stacked[0, 0])
