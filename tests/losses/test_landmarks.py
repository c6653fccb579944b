"""landmark_distance against a float64 numpy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import losses


def ref_distance(pred, target, scale, mask):
    total, count = 0.0, 0
    for p, t, m in zip(np.asarray(pred, np.float64), np.asarray(target, np.float64), mask):
        if m:
            total += np.mean([np.sqrt(np.sum((p[k] - t[k]) ** 2)) for k in range(len(p))]) / scale
            count += 1
    return total / max(count, 1)


def test_matches_loop_with_mask_and_scale():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(2, 9, 5, 2)).astype(np.float32) * 20
    mask = rng.random(9) < 0.6
    got = losses.landmark_distance(pred, target, scale=64.0, where=mask)
    np.testing.assert_allclose(got, ref_distance(pred, target, 64.0, mask), rtol=1e-5)
    np.testing.assert_allclose(losses.landmark_distance(pred, target),
                               ref_distance(pred, target, 1.0, np.ones(9, bool)), rtol=1e-5)


def test_degenerate_inputs_give_finite_gradients():
    target = jnp.ones((3, 5, 2))
    grad = jax.grad(lambda p: losses.landmark_distance(p, target))(target)  # exact points
    assert np.all(np.isfinite(grad))
    none = jax.grad(lambda p: losses.landmark_distance(p, target, where=jnp.zeros(3, bool)))(
        target + 1.0)
    assert float(losses.landmark_distance(target + 1, target, where=jnp.zeros(3, bool))) == 0.0
    np.testing.assert_array_equal(none, 0.0)


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="target shape"):
        losses.landmark_distance(np.zeros((2, 5, 2)), np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match="pred must have rank 3"):
        losses.landmark_distance(np.zeros((5, 2)), np.zeros((5, 2)))
