"""Shared helpers for the balancing tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


def _run_scan(balancer, losses, epochs, present=None):
    """Runs `update` over steps inside one jitted `jax.lax.scan`; returns all weights.

    Args:
      balancer: a `Balancer`.
      losses: (T, K) per-step losses.
      epochs: (T,) int epoch of each step.
      present: optional (T, K) bool task presence of each step, traced inside the scan;
        None calls `update` without `present`.

    Returns:
      (T, K) float64 numpy array of the weights of every step, and the final state.
    """
    losses = jnp.asarray(losses, jnp.float32)
    epochs = jnp.asarray(epochs, jnp.int32)
    kwargs = {} if present is None else {"present": jnp.asarray(present, bool)}

    @jax.jit
    def run(losses, epochs, kwargs):
        def body(state, inputs):
            step_losses, epoch, step_kwargs = inputs
            weights, state = balancer.update(
                state, jax.lax.stop_gradient(step_losses), epoch=epoch, **step_kwargs)
            return state, weights

        state, weights = jax.lax.scan(body, balancer.init(losses.shape[1]),
                                      (losses, epochs, kwargs))
        return weights, state

    weights, state = run(losses, epochs, kwargs)
    return np.asarray(weights, np.float64), state


@pytest.fixture
def epoch_losses():
    """Hand-made positive losses over 4 epochs of 3, 2, 4 and 3 steps for 3 tasks."""
    rng = np.random.default_rng(0)
    steps = [3, 2, 4, 3]
    epochs = np.repeat(np.arange(4), steps)
    scale = np.array([1.0, 5.0, 0.2])
    decay = np.array([0.9, 0.6, 0.95]) ** epochs[:, None]
    losses = scale * decay * rng.uniform(0.5, 1.5, size=(epochs.size, 3))
    return losses, epochs


def _epoch_means(losses, epochs):
    """float64 per-epoch mean loss, shape (num_epochs, K)."""
    return np.stack([losses[epochs == e].mean(0) for e in range(epochs.max() + 1)])


def _softmax(x):
    z = np.exp(x - x.max())
    return z / z.sum()


@pytest.fixture
def run_scan():
    """`run_scan(balancer, losses, epochs) -> (weights, state)` under jit and scan."""
    return _run_scan


@pytest.fixture
def epoch_means():
    """`epoch_means(losses, epochs)`: float64 per-epoch means."""
    return _epoch_means


@pytest.fixture
def np_softmax():
    """float64 numpy softmax of a vector."""
    return _softmax
