"""Tasks absent from a batch leave every balancer's per-task statistics unchanged.

Each balancer runs (jitted, inside `jax.lax.scan`, `present` traced) over steps where
some tasks have no labels and a zero loss; the float64 numpy references below see only
the steps where each task is present.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import balancing

FACTORY_KWARGS = {"fixed": {"weights": [1.0, 0.5, 2.0]}}


def make(name):
    return balancing.create(name, **FACTORY_KWARGS.get(name, {}))


@pytest.fixture
def absent_losses(epoch_losses):
    """The 4-epoch losses with task 1 absent at steps 0 and 8, task 2 in all of epoch 1.

    Absent losses are 0, as a fully masked loss returns. Epochs hold steps 0-2, 3-4,
    5-8 and 9-11.
    """
    losses, epochs = epoch_losses
    present = np.ones(losses.shape, bool)
    present[[0, 8], 1] = False
    present[epochs == 1, 2] = False
    present[6, 2] = False
    return np.where(present, losses, 0.0), epochs, present


def numpy_ema(losses, present, beta):
    """Eq. 1 per task over its present steps; Lbar = 1 until a task is first seen."""
    averages = np.empty_like(losses)
    average = np.ones(losses.shape[1])
    seen = np.zeros(losses.shape[1], bool)
    for t in range(len(losses)):
        for k in range(losses.shape[1]):
            if present[t, k]:
                average[k] = (beta * losses[t, k] + (1 - beta) * average[k]
                              if seen[k] else losses[t, k])
                seen[k] = True
        averages[t] = average
    return averages


def numpy_rates(losses, epochs, present):
    """Per step: DWA rates from each task's last two completed epochs where it was present.

    Returns (T, K) rates (1 for a task with fewer than two such epochs) and (T,) bool,
    True once some task has two.
    """
    rates = np.ones_like(losses)
    ready = np.zeros(len(losses), bool)
    for t, e in enumerate(epochs):
        for k in range(losses.shape[1]):
            means = [losses[(epochs == d) & present[:, k], k].mean()
                     for d in range(e) if present[epochs == d, k].any()]
            if len(means) >= 2:
                rates[t, k] = means[-1] / means[-2]
                ready[t] = True
    return rates, ready


def test_fixture_covers_the_cases(absent_losses):
    losses, epochs, present = absent_losses
    rates, ready = numpy_rates(losses, epochs, present)
    # Epoch 2: tasks 0 and 1 have two completed epochs, task 2 (absent in epoch 1) not.
    assert ready[epochs == 2].all() and not ready[epochs < 2].any()
    np.testing.assert_array_equal(rates[epochs == 2, 2], 1.0)
    assert not np.allclose(rates[epochs == 3, 2], 1.0)


@pytest.mark.parametrize("name", ["ew", "fixed"])
def test_static_weights_ignore_presence(name, absent_losses, run_scan):
    losses, epochs, present = absent_losses
    weights, state = run_scan(make(name), losses, epochs, present)
    expected = np.asarray(make(name).init(3).weights)
    np.testing.assert_array_equal(weights, np.broadcast_to(expected, weights.shape))
    np.testing.assert_array_equal(state.weights, expected)


def test_uw_absent_task_contributes_nothing(absent_losses, run_scan):
    losses, epochs, present = absent_losses
    balancer = balancing.uw()
    weights, _ = run_scan(balancer, losses, epochs, present)
    np.testing.assert_array_equal(weights, present.astype(np.float64))
    s = np.array([0.3, -0.7, 0.1])
    step_losses = np.array([0.8, 0.0, 2.0])
    mask = np.array([True, False, True])
    total, grads = jax.value_and_grad(balancer.combine)(
        {"log_vars": jnp.asarray(s, jnp.float32)}, jnp.asarray(mask, jnp.float32),
        jnp.asarray(step_losses, jnp.float32))
    # Eq. 7 over the present tasks only; the absent task's log-variance does not move.
    np.testing.assert_allclose(
        total, np.sum((step_losses / (2 * np.exp(s)) + s / 2)[mask]), rtol=1e-6)
    expected_grad = np.where(mask, -step_losses / (2 * np.exp(s)) + 0.5, 0.0)
    np.testing.assert_allclose(grads["log_vars"], expected_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_dwa_uses_present_steps_only(absent_losses, temperature, run_scan, np_softmax):
    losses, epochs, present = absent_losses
    weights, state = run_scan(balancing.dwa(temperature=temperature), losses, epochs,
                              present)
    rates, ready = numpy_rates(losses, epochs, present)
    expected = np.stack([3 * np_softmax(r / temperature) if ok else np.ones(3)
                         for r, ok in zip(rates, ready)])
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    np.testing.assert_allclose(weights.sum(1), 3.0, rtol=1e-5)
    history = state.history
    last = epochs == 3
    np.testing.assert_array_equal(history.count, present[last].sum(0))
    np.testing.assert_allclose(history.loss_sum, losses[last].sum(0), rtol=1e-5)
    np.testing.assert_array_equal(history.num_epochs, [3, 3, 2])


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_ema_uses_present_steps_only(absent_losses, beta, run_scan):
    losses, epochs, present = absent_losses
    weights, state = run_scan(balancing.ema(beta=beta), losses, epochs, present)
    averages = numpy_ema(losses, present, beta)
    np.testing.assert_allclose(weights, 1.0 / averages, rtol=1e-5)
    # Task 1 is absent at step 0: not seen yet, weight 1; seen from step 1 on.
    assert weights[0, 1] == 1.0
    np.testing.assert_allclose(weights[1, 1], 1.0 / losses[1, 1], rtol=1e-6)
    np.testing.assert_array_equal(state.count, present.sum(0))
    np.testing.assert_allclose(state.average, averages[-1], rtol=1e-5)


def test_rema_and_dwema_use_present_steps_only(absent_losses, run_scan, np_softmax):
    losses, epochs, present = absent_losses
    rates, ready = numpy_rates(losses, epochs, present)
    averages = numpy_ema(losses, present, 0.2)
    weights, _ = run_scan(balancing.rema(beta=0.2), losses, epochs, present)
    np.testing.assert_allclose(weights, rates / averages, rtol=1e-5)
    weights, _ = run_scan(balancing.dwema(beta=0.2, temperature=1.0), losses, epochs,
                          present)
    dwa = np.stack([3 * np_softmax(r) if ok else np.ones(3) for r, ok in zip(rates, ready)])
    np.testing.assert_allclose(weights, dwa / averages, rtol=1e-5)


def test_gradnorm_initial_losses_at_first_present_step(absent_losses, run_scan):
    losses, epochs, present = absent_losses
    present = present.copy()
    present[:, 2] = False  # task 2 never present: L(0) stays at its neutral 1
    weights, state = run_scan(balancing.gradnorm(), losses, epochs, present)
    np.testing.assert_array_equal(weights, 1.0)
    np.testing.assert_allclose(state.initial_losses, [losses[0, 0], losses[1, 1], 1.0],
                               rtol=1e-6)
    np.testing.assert_array_equal(state.count, [1.0, 1.0, 0.0])


def test_gradnorm_first_epoch_means_over_present_steps(absent_losses, run_scan):
    losses, epochs, present = absent_losses
    present = present.copy()
    present[epochs == 0, 2] = False  # no epoch-0 label: L(0) is its first present loss
    losses = np.where(present, losses, 0.0)
    _, state = run_scan(balancing.gradnorm(initial_losses="first_epoch"), losses, epochs,
                        present)
    first = epochs == 0
    expected = [losses[first, 0].mean(), losses[first & present[:, 1], 1].mean(),
                losses[np.argmax(present[:, 2]), 2]]
    np.testing.assert_allclose(state.initial_losses, expected, rtol=1e-6)
    assert bool(state.active)


def numpy_gradnorm_present(logits, norms, losses, initial, present, alpha):
    """L_grad and d L_grad / d logits over the present tasks, float64."""
    p = np.exp(logits - logits.max())
    p /= p.sum()
    w = len(logits) * p
    g = w * norms
    ratios = losses[present] / initial[present]
    target = g[present].mean() * (ratios / ratios.mean()) ** alpha
    sign = np.zeros(len(w))
    sign[present] = np.sign(g[present] - target)
    grad = np.array([np.sum(sign * norms * w * ((np.arange(len(w)) == j) - p[j]))
                     for j in range(len(w))])
    return np.abs(g[present] - target).sum(), grad


def test_gradnorm_loss_leaves_absent_tasks_out():
    logits = np.array([0.4, -0.1, 0.2, -0.3])
    norms = np.array([1.5, 0.0, 0.7, 2.0])
    losses = np.array([0.9, 0.0, 1.3, 0.4])
    initial = np.array([1.2, 1.0, 1.1, 0.8])
    present = np.array([True, False, True, True])
    args = [jnp.asarray(a, jnp.float32) for a in (norms, losses, initial)]
    value, grad = jax.jit(jax.value_and_grad(balancing.gradnorm_loss))(
        {"logits": jnp.asarray(logits, jnp.float32)}, *args, present=jnp.asarray(present))
    ref_value, ref_grad = numpy_gradnorm_present(logits, norms, losses, initial, present,
                                                 1.5)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    np.testing.assert_allclose(grad["logits"], ref_grad, rtol=1e-4, atol=1e-6)
    none_present = balancing.gradnorm_loss({"logits": jnp.asarray(logits, jnp.float32)},
                                           *args, present=jnp.zeros(4, bool))
    assert float(none_present) == 0.0


def test_ema_keeps_average_through_a_long_absence():
    balancer = balancing.ema(beta=0.1)
    steps = 500
    losses = np.full((steps, 2), 0.0, np.float32)
    losses[:, 0] = np.linspace(1.0, 0.5, steps)
    losses[0, 1] = 4.0
    present = np.zeros((steps, 2), bool)
    present[:, 0] = True
    present[0, 1] = True

    @jax.jit
    def run(state, losses, present):
        def body(state, inputs):
            weights, state = balancer.update(state, inputs[0], epoch=0, present=inputs[1])
            return state, weights
        return jax.lax.scan(body, state, (losses, present))

    state, weights = run(balancer.init(2), jnp.asarray(losses), jnp.asarray(present))
    np.testing.assert_array_equal(weights[:, 1], 0.25)
    assert float(state.average[1]) == 4.0 and int(state.count[1]) == 1
    # When it comes back, the average moves from the kept value (eq. 1).
    weights, state = balancer.update(state, jnp.array([0.5, 2.0]), epoch=0,
                                     present=jnp.array([True, True]))
    np.testing.assert_allclose(state.average[1], 0.1 * 2.0 + 0.9 * 4.0, rtol=1e-6)
    assert np.all(np.isfinite(weights))


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_present_none_is_bit_identical_to_all_true(name, epoch_losses, run_scan):
    losses, epochs = epoch_losses
    weights_none, state_none = run_scan(make(name), losses, epochs)
    weights_true, state_true = run_scan(make(name), losses, epochs,
                                        np.ones(losses.shape, bool))
    np.testing.assert_array_equal(weights_none, weights_true)
    jax.tree_util.tree_map(np.testing.assert_array_equal, state_none, state_true)


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_weights_finite_and_state_fixed_shape(name, absent_losses, run_scan):
    losses, epochs, present = absent_losses
    present = present.copy()
    present[:, 0] = False  # a task never present at all
    weights, state = run_scan(make(name), np.where(present, losses, 0.0), epochs, present)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_equal(a.shape, b.shape),
                           state, make(name).init(3))


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_bad_present_names_argument(name):
    balancer = make(name)
    state = balancer.init(3)
    for bad in (jnp.ones(2, bool), jnp.ones((1, 3), bool), True):
        with pytest.raises(ValueError, match=r"present must have shape \(num_tasks,\)"):
            balancer.update(state, jnp.ones(3), epoch=0, present=bad)
    for bad in (jnp.ones(3), jnp.ones(3, jnp.int32)):
        with pytest.raises(ValueError, match="present must be a bool array"):
            balancer.update(state, jnp.ones(3), epoch=0, present=bad)
