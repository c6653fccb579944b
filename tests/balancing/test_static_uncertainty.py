"""EW, fixed weights and uncertainty weighting (Kendall et al. 2018, eq. 7)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import balancing


def test_ew_weights_are_ones_and_combine_sums(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    weights, _ = run_scan(balancing.ew(), losses, epochs)
    np.testing.assert_array_equal(weights, 1.0)
    balancer = balancing.ew()
    total = balancer.combine(balancer.init_params(3), jnp.ones(3), jnp.asarray(losses[0]))
    np.testing.assert_allclose(total, losses[0].sum(), rtol=1e-6)
    assert balancer.init_params(3) == {}


def test_fixed_weights():
    balancer = balancing.fixed([0.5, 2.0])
    weights, _ = balancer.update(balancer.init(2), jnp.array([1.0, 3.0]), epoch=4)
    np.testing.assert_allclose(weights, [0.5, 2.0])
    np.testing.assert_allclose(balancer.combine({}, weights, jnp.array([1.0, 3.0])), 6.5)
    with pytest.raises(ValueError, match="num_tasks"):
        balancer.init(3)
    with pytest.raises(ValueError, match="weights"):
        balancing.fixed([1.0, -1.0])


@pytest.mark.parametrize("num_tasks", [1, 2, 5])
def test_uw_combine_and_gradient_closed_form(num_tasks):
    rng = np.random.default_rng(num_tasks)
    balancer = balancing.uw()
    params = balancer.init_params(num_tasks)
    np.testing.assert_array_equal(params["log_vars"], -0.5)
    s = rng.normal(size=num_tasks)
    losses = rng.uniform(0.1, 3.0, size=num_tasks)
    params = {"log_vars": jnp.asarray(s, jnp.float32)}
    weights, _ = balancer.update(balancer.init(num_tasks), jnp.asarray(losses, jnp.float32),
                                 epoch=0)
    np.testing.assert_array_equal(weights, 1.0)

    total, (g_params, g_losses) = jax.value_and_grad(balancer.combine, argnums=(0, 2))(
        params, weights, jnp.asarray(losses, jnp.float32))
    np.testing.assert_allclose(total, np.sum(losses / (2 * np.exp(s)) + s / 2), rtol=1e-5)
    np.testing.assert_allclose(g_params["log_vars"], -losses / (2 * np.exp(s)) + 0.5,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_losses, 1 / (2 * np.exp(s)), rtol=1e-5)
    np.testing.assert_allclose(balancing.uw_weights(params), 1 / (2 * np.exp(s)), rtol=1e-6)


def test_uw_optimum_is_log_loss():
    # d/ds [L / (2 e^s) + s / 2] = 0  <=>  s = log L.
    losses = jnp.array([0.01, 1.0, 4.0])
    balancer = balancing.uw()
    grad = jax.grad(balancer.combine)({"log_vars": jnp.log(losses)}, jnp.ones(3), losses)
    np.testing.assert_allclose(grad["log_vars"], 0.0, atol=1e-6)


def test_uw_params_shape_mismatch():
    balancer = balancing.uw()
    with pytest.raises(ValueError, match="log_vars"):
        balancer.combine(balancer.init_params(3), jnp.ones(2), jnp.ones(2))
