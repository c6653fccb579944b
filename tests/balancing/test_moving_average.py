"""EMA, DWEMA and REMA against float64 numpy recurrences (EMA paper, PAPERS.md §5)."""

import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import balancing


def numpy_ema(losses, beta):
    """Per-step EMA of eq. 1 with Lbar(0) = L(0), float64."""
    averages = np.empty_like(losses)
    averages[0] = losses[0]
    for t in range(1, len(losses)):
        averages[t] = beta * losses[t] + (1 - beta) * averages[t - 1]
    return averages


@pytest.mark.parametrize("beta", [0.1, 0.2, 1.0])
def test_ema_closed_form_after_three_updates(beta):
    losses = np.array([[2.0, 0.5], [1.0, 0.8], [4.0, 0.1]])
    balancer = balancing.ema(beta=beta)
    state = balancer.init(2)
    weights = []
    for step_losses in losses:
        w, state = balancer.update(state, jnp.asarray(step_losses, jnp.float32), epoch=0)
        weights.append(np.asarray(w))
    l0, l1, l2 = losses
    expected_avg = [l0, beta * l1 + (1 - beta) * l0,
                    beta * l2 + (1 - beta) * beta * l1 + (1 - beta) ** 2 * l0]
    np.testing.assert_allclose(np.stack(weights), 1.0 / np.stack(expected_avg), rtol=1e-6)
    np.testing.assert_allclose(state.average, expected_avg[-1], rtol=1e-6)
    np.testing.assert_array_equal(state.count, [3, 3])


def test_ema_first_weights_normalise_losses_to_one():
    losses = jnp.array([3.0, 0.25, 40.0])
    balancer = balancing.ema()
    weights, _ = balancer.update(balancer.init(3), losses, epoch=0)
    np.testing.assert_allclose(weights * losses, 1.0, rtol=1e-6)
    np.testing.assert_allclose(balancer.combine({}, weights, losses), 3.0, rtol=1e-6)


def test_ema_scan_matches_numpy(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    weights, _ = run_scan(balancing.ema(beta=0.1), losses, epochs)
    np.testing.assert_allclose(weights, 1.0 / numpy_ema(losses, 0.1), rtol=1e-5)
    assert np.all(weights > 0)


def test_ema_zero_loss_gives_finite_weight():
    balancer = balancing.ema(eps=1e-4)
    weights, _ = balancer.update(balancer.init(2), jnp.array([0.0, 1.0]), epoch=0)
    np.testing.assert_allclose(weights, [1e4, 1.0], rtol=1e-5)


def numpy_rates(losses, epochs, epoch_means):
    """DWA training rate r_k of every step (ones in epochs 0 and 1), float64."""
    means = epoch_means(losses, epochs)
    rates = np.ones_like(losses)
    for t, e in enumerate(epochs):
        if e >= 2:
            rates[t] = means[e - 1] / means[e - 2]
    return rates


def test_rema_matches_documented_formula(epoch_losses, run_scan, epoch_means):
    losses, epochs = epoch_losses
    weights, _ = run_scan(balancing.rema(beta=0.2), losses, epochs)
    expected = numpy_rates(losses, epochs, epoch_means) / numpy_ema(losses, 0.2)
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    assert np.all(weights > 0)
    # Epochs 0 and 1 are plain EMA.
    np.testing.assert_allclose(weights[epochs < 2],
                               1.0 / numpy_ema(losses, 0.2)[epochs < 2], rtol=1e-5)


@pytest.mark.parametrize("temperature", [2.0, 1.0])
def test_dwema_matches_documented_formula(epoch_losses, temperature, run_scan,
                                          epoch_means, np_softmax):
    losses, epochs = epoch_losses
    num_tasks = losses.shape[1]
    weights, _ = run_scan(balancing.dwema(beta=0.1, temperature=temperature),
                          losses, epochs)
    rates = numpy_rates(losses, epochs, epoch_means)
    dwa = np.stack([num_tasks * np_softmax(r / temperature) if e >= 2
                    else np.ones(num_tasks) for r, e in zip(rates, epochs)])
    np.testing.assert_allclose(weights, dwa / numpy_ema(losses, 0.1), rtol=1e-5)
    assert np.all(weights > 0)


def test_dwema_and_rema_differ_from_ema_after_two_epochs(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    w_ema, _ = run_scan(balancing.ema(), losses, epochs)
    for balancer in (balancing.dwema(), balancing.rema()):
        w, _ = run_scan(balancer, losses, epochs)
        np.testing.assert_allclose(w[epochs < 2], w_ema[epochs < 2], rtol=1e-6)
        assert not np.allclose(w[epochs >= 2], w_ema[epochs >= 2], rtol=1e-3)


@pytest.mark.parametrize("factory, kwargs, name", [
    (balancing.ema, {"beta": 0.0}, "beta"),
    (balancing.ema, {"beta": 1.5}, "beta"),
    (balancing.ema, {"eps": 0.0}, "eps"),
    (balancing.rema, {"beta": -0.1}, "beta"),
    (balancing.dwema, {"temperature": -1.0}, "temperature"),
])
def test_bad_hyper_parameters(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(**kwargs)
