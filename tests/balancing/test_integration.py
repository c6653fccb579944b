"""Every balancer trains a tiny 2-task linear regression with a shared layer."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from affectjax import balancing

NOISE_STD = np.array([0.3, 1.0])
NUM_STEPS = 100
STEPS_PER_EPOCH = 10


def make_data(n=256, d=6):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    coefs = rng.normal(size=(d, 2))
    y = x @ coefs + NOISE_STD * rng.normal(size=(n, 2))
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def task_losses(shared, heads, x, y):
    """(2,) mean squared errors; the only shared parameter is the layer `shared`."""
    pred = jnp.tanh(x @ shared) @ heads
    return jnp.mean((pred - y) ** 2, axis=0)


@functools.lru_cache(maxsize=None)
def train(name, initial_losses=None):
    """Trains for NUM_STEPS jitted steps; returns per-step totals, losses, bparams."""
    x, y = make_data()
    kwargs = {}
    if name == "fixed":
        kwargs = {"weights": [1.0, 0.5]}
    if initial_losses is not None:
        kwargs = {"initial_losses": initial_losses}
    balancer = balancing.create(name, **kwargs)
    key_shared, key_heads = jax.random.split(jax.random.PRNGKey(0))
    model = {"shared": 0.3 * jax.random.normal(key_shared, (x.shape[1], 8)),
             "heads": 0.3 * jax.random.normal(key_heads, (8, 2))}
    bparams = balancer.init_params(2)
    tx, btx = optax.adam(0.03), optax.adam(0.025)
    carry = (model, bparams, balancer.init(2), tx.init(model), btx.init(bparams))

    def loss_fn(model, bparams, bstate, epoch):
        losses = task_losses(model["shared"], model["heads"], x, y)
        weights, bstate = balancer.update(
            bstate, jax.lax.stop_gradient(losses), epoch=epoch)
        return balancer.combine(bparams, weights, losses), (losses, bstate)

    def step(carry, step_index):
        model, bparams, bstate, opt, bopt = carry
        epoch = step_index // STEPS_PER_EPOCH
        (total, (losses, bstate)), (g_model, g_b) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True)(model, bparams, bstate, epoch)
        if name == "gradnorm":
            norms = balancing.per_task_grad_norms(
                lambda w: task_losses(w, model["heads"], x, y), model["shared"])
            g_gradnorm = jax.grad(balancing.gradnorm_loss)(
                bparams, norms, jax.lax.stop_gradient(losses), bstate.initial_losses)
            g_b = jax.tree_util.tree_map(
                lambda a, b: a + jnp.where(bstate.active, b, 0.0), g_b, g_gradnorm)
        updates, opt = tx.update(g_model, opt, model)
        bupdates, bopt = btx.update(g_b, bopt, bparams)
        model, bparams = optax.apply_updates(model, updates), optax.apply_updates(
            bparams, bupdates)
        return (model, bparams, bstate, opt, bopt), (total, losses)

    run = jax.jit(lambda carry: jax.lax.scan(step, carry, jnp.arange(NUM_STEPS)))
    (_, bparams, _, _, _), (totals, losses) = run(carry)
    return np.asarray(totals), np.asarray(losses), bparams


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_training_reduces_task_losses(name):
    totals, losses, _ = train(name)
    assert np.all(np.isfinite(totals))
    assert np.all(losses[-1] < 0.5 * losses[0]), losses[[0, -1]]
    if name not in ("ema", "dwema", "rema"):
        # EMA-family totals are sums of L_k / Lbar_k, about K throughout by design.
        assert totals[-1] < 0.5 * totals[0], totals[[0, -1]]


def test_uw_log_variances_move_toward_log_noise():
    _, losses, bparams = train("uw")
    log_vars = np.asarray(bparams["log_vars"])
    target = np.log(NOISE_STD ** 2)
    assert np.all(np.abs(log_vars - target) < np.abs(-0.5 - target)), log_vars
    assert log_vars[0] < log_vars[1]


@pytest.mark.parametrize("initial_losses", [None, "first_epoch"])
def test_gradnorm_moves_weights(initial_losses):
    _, losses, bparams = train("gradnorm", initial_losses=initial_losses)
    assert np.all(losses[-1] < 0.5 * losses[0])
    weights = np.asarray(balancing.gradnorm_weights(bparams))
    np.testing.assert_allclose(weights.sum(), 2.0, rtol=1e-5)
    assert not np.allclose(weights, 1.0, atol=1e-3)
