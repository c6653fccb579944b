"""Bernoulli and squared consensus (affectjax's AU / VA extension of CCT) against float64
references written as explicit loops over ordered pairs of networks."""

import jax
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.special import log_expit

from affectjax import losses


def bernoulli_kl(z_p, z_q):
    """sum_a KL(Bern(sigmoid(z_p)) || Bern(sigmoid(z_q))) in float64, from log-sigmoids."""
    z_p, z_q = np.asarray(z_p, np.float64), np.asarray(z_q, np.float64)
    kl = np.exp(log_expit(z_p)) * (log_expit(z_p) - log_expit(z_q)) + np.exp(
        log_expit(-z_p)
    ) * (log_expit(-z_p) - log_expit(-z_q))
    return kl.sum(-1)


def squared(y_p, y_q):
    return ((np.asarray(y_p, np.float64) - np.asarray(y_q, np.float64)) ** 2).sum(-1)


def ref_pairwise(term, stacked, mask=None):
    """sum over ordered pairs k != j of the masked batch mean of term(stacked[k], stacked[j])."""
    m, b, _ = stacked.shape
    mask = np.ones(b, bool) if mask is None else np.asarray(mask, bool)
    total = 0.0
    for j in range(m):
        for k in range(m):
            if k != j:
                per_item = term(stacked[k], stacked[j])
                total += per_item[mask].mean() if mask.any() else 0.0
    return total


CASES = [
    (losses.bernoulli_consensus, bernoulli_kl),
    (losses.squared_consensus, squared),
]
IDS = ["bernoulli", "squared"]


def random_stack(seed, shape=None):
    rng = np.random.default_rng(seed)
    if shape is None:
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 8)), int(rng.integers(1, 6)))
    return rng.normal(scale=2.0, size=shape).astype(np.float32)


@pytest.mark.parametrize(("fn", "term"), CASES, ids=IDS)
@pytest.mark.parametrize("seed", range(6))
def test_matches_double_loop_on_random_shapes(fn, term, seed):
    stacked = random_stack(seed)
    got = fn(stacked)
    assert got.shape == () and got.dtype == np.float32
    np.testing.assert_allclose(got, ref_pairwise(term, stacked), rtol=1e-5, atol=1e-6)
    assert float(got) >= 0.0


@pytest.mark.parametrize(("fn", "term"), CASES, ids=IDS)
@pytest.mark.parametrize("seed", range(4))
def test_where_matches_reference_and_slicing(fn, term, seed):
    stacked = random_stack(100 + seed, (3, 7, 4))
    mask = np.random.default_rng(seed).random(7) < 0.5
    mask[seed] = True  # at least one item
    got = fn(stacked, where=mask)
    np.testing.assert_allclose(got, ref_pairwise(term, stacked, mask), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, fn(stacked[:, mask]), rtol=1e-6, atol=1e-7)
    # 0/1 numeric masks are read as booleans.
    np.testing.assert_allclose(fn(stacked, where=mask.astype(np.float32)), got, rtol=1e-7)


@pytest.mark.parametrize(("fn", "term"), CASES, ids=IDS)
def test_one_network_and_identical_networks_give_zero(fn, term):
    assert float(fn(random_stack(1, (1, 5, 3)))) == 0.0
    same = np.broadcast_to(random_stack(2, (1, 5, 3)), (4, 5, 3))
    assert float(fn(same)) == 0.0


@pytest.mark.parametrize(("fn", "term"), CASES, ids=IDS)
def test_all_masked_gives_zero_with_finite_zero_gradients(fn, term):
    stacked = random_stack(3, (3, 5, 4))
    value, grad = jax.jit(jax.value_and_grad(lambda z, m: fn(z, where=m)))(
        stacked, np.zeros(5, bool)
    )
    assert float(value) == 0.0
    assert np.isfinite(grad).all() and not np.asarray(grad).any()
    value, grad = jax.value_and_grad(fn)(random_stack(4, (3, 0, 4)))  # empty batch
    assert float(value) == 0.0 and grad.shape == (3, 0, 4)


@pytest.mark.parametrize(("fn", "term"), CASES, ids=IDS)
def test_symmetric_in_the_networks(fn, term):
    stacked = random_stack(5, (4, 6, 3))
    perm = np.array([2, 0, 3, 1])
    np.testing.assert_allclose(fn(stacked[perm]), fn(stacked), rtol=1e-6)


def test_squared_consensus_for_two_networks():
    y = random_stack(6, (2, 9, 2))
    expected = 2 * squared(y[0], y[1]).mean()
    np.testing.assert_allclose(losses.squared_consensus(y), expected, rtol=1e-6)
    np.testing.assert_allclose(losses.squared_consensus(y + 5.0), expected, rtol=1e-4)


def test_bernoulli_consensus_for_two_networks_is_the_symmetrised_kl():
    z = random_stack(7, (2, 9, 5))
    expected = (bernoulli_kl(z[0], z[1]) + bernoulli_kl(z[1], z[0])).mean()
    np.testing.assert_allclose(losses.bernoulli_consensus(z), expected, rtol=1e-5)


def test_bernoulli_consensus_is_stable_for_large_logits():
    z = np.array([[[60.0, -80.0, 0.0]], [[-60.0, 80.0, 30.0]], [[60.0, -80.0, -30.0]]],
                 np.float32)
    value, grad = jax.value_and_grad(losses.bernoulli_consensus)(z)
    assert np.isfinite(value) and np.isfinite(grad).all()
    np.testing.assert_allclose(value, ref_pairwise(bernoulli_kl, z), rtol=1e-5)


def numeric_grad(f, x, step=1e-5):
    """Central finite difference of a float64 NumPy function, element by element."""
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (f(up) - f(down)) / (2 * step)
    return grad


@pytest.mark.parametrize(("fn", "term"), CASES, ids=IDS)
def test_gradient_matches_float64_finite_difference(fn, term):
    stacked = random_stack(8, (3, 5, 4))
    mask = np.array([True, False, True, True, False])
    got = jax.jit(jax.grad(lambda z: fn(z, where=mask)))(stacked)
    expected = numeric_grad(lambda z: ref_pairwise(term, z, mask), stacked)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert not np.asarray(got)[:, ~mask].any()  # masked items get no gradient


def test_check_grads_in_float64():
    with jax.enable_x64(True):
        z64 = random_stack(9, (3, 4, 3)).astype(np.float64)
        mask = np.array([True, True, False, True])

        def both(z):
            return (losses.bernoulli_consensus(z, where=mask)
                    + losses.squared_consensus(z, where=mask))

        check_grads(jax.jit(both), (z64,), order=2)


def test_jit_and_vmap():
    stacked = random_stack(10, (3, 6, 4))
    mask = np.array([True, False, True, True, True, False])
    for fn in (losses.bernoulli_consensus, losses.squared_consensus):
        jitted = jax.jit(lambda z, m, fn=fn: fn(z, where=m))
        np.testing.assert_allclose(jitted(stacked, mask), fn(stacked, where=mask), rtol=1e-6)
        batched = jax.vmap(fn)(np.stack([stacked, stacked[::-1]]))
        assert batched.shape == (2,)
        np.testing.assert_allclose(batched[0], batched[1], rtol=1e-5)


def test_bad_inputs_name_the_argument():
    stacked = random_stack(11, (3, 6, 4))
    with pytest.raises(ValueError, match=r"stacked_logits must have shape \(M, B, A\)"):
        losses.bernoulli_consensus(stacked[0])
    with pytest.raises(ValueError, match=r"stacked_preds must have shape \(M, B, D\)"):
        losses.squared_consensus(stacked[..., None])
    with pytest.raises(TypeError, match="stacked_logits must be a floating"):
        losses.bernoulli_consensus(stacked.astype(np.int32))
    with pytest.raises(TypeError, match="stacked_preds must be a floating"):
        losses.squared_consensus(stacked.astype(np.int32))
    for fn in (losses.bernoulli_consensus, losses.squared_consensus):
        with pytest.raises(ValueError, match="where of shape"):
            fn(stacked, where=np.ones(4, bool))
        with pytest.raises(ValueError, match="where must have rank 1"):
            fn(stacked, where=np.ones((6, 4), bool))  # a per-AU mask is not a batch mask
