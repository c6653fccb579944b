"""DWA against epoch-mean ratios computed in float64 numpy (Liu et al. 2019)."""

import numpy as np
import pytest

from affectjax import balancing


@pytest.mark.parametrize("temperature", [2.0, 0.5])
def test_dwa_matches_epoch_mean_softmax(epoch_losses, temperature, run_scan, epoch_means,
                                        np_softmax):
    losses, epochs = epoch_losses
    weights, _ = run_scan(balancing.dwa(temperature=temperature), losses, epochs)
    means = epoch_means(losses, epochs)
    num_tasks = losses.shape[1]
    for t, e in enumerate(epochs):
        if e < 2:
            expected = np.ones(num_tasks)
        else:
            expected = num_tasks * np_softmax(means[e - 1] / means[e - 2] / temperature)
        np.testing.assert_allclose(weights[t], expected, rtol=1e-5, err_msg=f"step {t}")


def test_dwa_weights_positive_and_sum_to_k(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    weights, _ = run_scan(balancing.dwa(), losses, epochs)
    assert np.all(weights > 0)
    np.testing.assert_allclose(weights.sum(1), losses.shape[1], rtol=1e-5)
    # The ratios differ between tasks, so from epoch 2 on the weights are not all 1.
    assert not np.allclose(weights[epochs >= 2], 1.0)


def test_dwa_state_holds_running_epoch(epoch_losses, run_scan, epoch_means):
    losses, epochs = epoch_losses
    _, state = run_scan(balancing.dwa(), losses, epochs)
    history = state.history
    means = epoch_means(losses, epochs)
    assert int(history.epoch) == 3
    np.testing.assert_array_equal(history.num_epochs, [3, 3, 3])
    np.testing.assert_array_equal(history.count, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(history.loss_sum, losses[epochs == 3].sum(0), rtol=1e-5)
    np.testing.assert_allclose(history.last, means[2], rtol=1e-5)
    np.testing.assert_allclose(history.before_last, means[1], rtol=1e-5)


def test_dwa_eager_equals_scan(epoch_losses, run_scan):
    losses, epochs = epoch_losses
    balancer = balancing.dwa()
    state = balancer.init(3)
    eager = []
    for step_losses, epoch in zip(losses, epochs):
        w, state = balancer.update(state, step_losses.astype(np.float32), epoch=int(epoch))
        eager.append(np.asarray(w))
    scanned, _ = run_scan(balancer, losses, epochs)
    np.testing.assert_allclose(np.stack(eager), scanned, rtol=1e-6)


def test_dwa_rejects_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        balancing.dwa(temperature=0.0)
