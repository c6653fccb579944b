"""GradNorm helpers against a hand-computed 2-task linear model (Chen et al. 2018)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import balancing


def make_problem(seed=0, n=16, d=4, h=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(n, 2))
    shared = rng.normal(size=(d, h)) / np.sqrt(d)
    heads = rng.normal(size=(h, 2))
    return x, y, shared, heads


def task_losses_fn(x, y, heads):
    def fn(shared):
        pred = jnp.asarray(x, jnp.float32) @ shared["w"] @ jnp.asarray(heads, jnp.float32)
        return jnp.mean((pred - jnp.asarray(y, jnp.float32)) ** 2, axis=0)
    return fn


def numpy_grad_norms(x, y, shared, heads):
    # L_k = mean_i (x_i W v_k - y_ik)^2  =>  dL_k/dW = (2/n) x^T r_k v_k^T.
    residual = x @ shared @ heads - y
    norms = []
    for k in range(2):
        grad = 2.0 / len(x) * np.outer(x.T @ residual[:, k], heads[:, k])
        norms.append(np.linalg.norm(grad))
    return np.array(norms)


def test_per_task_grad_norms_match_numpy():
    x, y, shared, heads = make_problem()
    norms = balancing.per_task_grad_norms(task_losses_fn(x, y, heads),
                                          {"w": jnp.asarray(shared, jnp.float32)})
    np.testing.assert_allclose(norms, numpy_grad_norms(x, y, shared, heads), rtol=1e-4)


def test_per_task_grad_norms_over_several_leaves_jitted():
    x, y, shared, heads = make_problem(seed=1)
    params = {"w": jnp.asarray(shared, jnp.float32), "b": jnp.ones((2,), jnp.float32)}

    def fn(p):
        return task_losses_fn(x, y, heads)(p) + p["b"] ** 2 * jnp.array([1.0, 3.0])

    norms = jax.jit(lambda p: balancing.per_task_grad_norms(fn, p))(params)
    # d(b_k^2 c_k)/db = 2 c_k b_k e_k adds a single entry to task k's gradient.
    expected = np.sqrt(numpy_grad_norms(x, y, shared, heads) ** 2
                       + (2 * np.array([1.0, 3.0])) ** 2)
    np.testing.assert_allclose(norms, expected, rtol=1e-4)


def numpy_gradnorm(logits, norms, losses, initial, alpha):
    p = np.exp(logits - logits.max())
    p /= p.sum()
    w = len(logits) * p
    g = w * norms
    ratios = losses / initial
    target = g.mean() * (ratios / ratios.mean()) ** alpha
    value = np.abs(g - target).sum()
    sign = np.sign(g - target)
    # dG_k/da_j = n_k w_k (delta_kj - p_j); the target is a constant.
    grad = np.array([np.sum(sign * norms * w * ((np.arange(len(w)) == j) - p[j]))
                     for j in range(len(w))])
    return value, grad, w


def test_gradnorm_loss_value_and_gradient():
    x, y, shared, heads = make_problem(seed=2)
    norms = numpy_grad_norms(x, y, shared, heads)
    losses = np.array([0.7, 1.9])
    initial = np.array([1.0, 2.0])
    logits = np.array([0.3, -0.2])
    params = {"logits": jnp.asarray(logits, jnp.float32)}
    args = (jnp.asarray(norms, jnp.float32), jnp.asarray(losses, jnp.float32),
            jnp.asarray(initial, jnp.float32))
    value, grad = jax.jit(jax.value_and_grad(balancing.gradnorm_loss))(params, *args)
    ref_value, ref_grad, ref_w = numpy_gradnorm(logits, norms, losses, initial, 1.5)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    np.testing.assert_allclose(grad["logits"], ref_grad, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(balancing.gradnorm_weights(params), ref_w, rtol=1e-6)
    value3 = balancing.gradnorm_loss(params, *args, alpha=3.0)
    np.testing.assert_allclose(value3, numpy_gradnorm(logits, norms, losses, initial,
                                                      3.0)[0], rtol=1e-5)


def test_gradnorm_balancer_state_and_combine(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    balancer = balancing.gradnorm()
    weights, state = run_scan(balancer, losses, epochs)
    np.testing.assert_array_equal(weights, 1.0)
    np.testing.assert_allclose(state.initial_losses, losses[0], rtol=1e-6)
    params = {"logits": jnp.array([0.5, -0.5, 0.0])}
    step_losses = jnp.asarray(losses[3], jnp.float32)
    total, grads = jax.value_and_grad(balancer.combine)(params, jnp.ones(3), step_losses)
    w = np.asarray(balancing.gradnorm_weights(params))
    np.testing.assert_allclose(w.sum(), 3.0, rtol=1e-6)
    np.testing.assert_allclose(total, np.sum(w * losses[3]), rtol=1e-5)
    # The logits learn from the GradNorm loss only, never from the total loss.
    np.testing.assert_array_equal(grads["logits"], 0.0)
    np.testing.assert_array_equal(balancer.init_params(3)["logits"], 0.0)
    assert bool(state.active)


def test_gradnorm_first_epoch_variant(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    balancer = balancing.gradnorm(initial_losses="first_epoch")
    assert not bool(balancer.init(3).active)
    state = balancer.init(3)
    for step_losses, epoch in zip(losses, epochs):
        _, state = balancer.update(state, jnp.asarray(step_losses, jnp.float32),
                                   epoch=int(epoch))
        assert bool(state.active) == (epoch >= 1)
    np.testing.assert_allclose(state.initial_losses, losses[epochs == 0].mean(0),
                               rtol=1e-5)
    _, scanned = run_scan(balancer, losses, epochs)
    np.testing.assert_allclose(scanned.initial_losses, state.initial_losses, rtol=1e-6)


def test_gradnorm_rejects_bad_options():
    with pytest.raises(ValueError, match="initial_losses"):
        balancing.gradnorm(initial_losses="epoch")
    with pytest.raises(ValueError, match="alpha"):
        balancing.gradnorm(alpha=-1.0)
