"""Shared layers against float64 NumPy references: BatchNorm, padding, drop path, depthwise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax.models import layers


def test_batchnorm_train_matches_float64_reference_with_unbiased_running_var():
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 5, 3, 6)).astype(np.float32)
    bn = layers.BatchNorm(epsilon=1e-3, momentum=0.9)
    variables = bn.init(jax.random.key(0), jnp.asarray(x), train=False)
    variables = {
        "params": {"scale": jnp.linspace(0.5, 1.5, 6), "bias": jnp.linspace(-1, 1, 6)},
        "batch_stats": {"mean": jnp.full(6, 0.3), "var": jnp.full(6, 2.0)},
    }
    y, state = bn.apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    x64 = x.astype(np.float64).reshape(-1, 6)
    mean, var = x64.mean(0), x64.var(0)
    expected = (x64 - mean) / np.sqrt(var + 1e-3) * np.linspace(0.5, 1.5, 6) + np.linspace(-1, 1, 6)
    np.testing.assert_allclose(np.asarray(y).reshape(-1, 6), expected, rtol=1e-5, atol=1e-5)
    n = x64.shape[0]
    np.testing.assert_allclose(state["batch_stats"]["mean"], 0.9 * 0.3 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(state["batch_stats"]["var"], 0.9 * 2.0 + 0.1 * var * n / (n - 1), rtol=1e-5)
    # Eval mode uses the running statistics and leaves them alone.
    y_eval = bn.apply(variables, jnp.asarray(x), train=False)
    expected_eval = (x64 - 0.3) / np.sqrt(2.0 + 1e-3) * np.linspace(0.5, 1.5, 6) + np.linspace(-1, 1, 6)
    np.testing.assert_allclose(np.asarray(y_eval).reshape(-1, 6), expected_eval, rtol=1e-5, atol=1e-5)


def test_batchnorm_constant_input_is_finite():
    bn = layers.BatchNorm()
    x = jnp.ones((2, 3, 3, 4))
    variables = bn.init(jax.random.key(0), x)
    y, _ = bn.apply(variables, x, train=True, mutable=["batch_stats"])
    assert np.isfinite(np.asarray(y)).all() and np.abs(np.asarray(y)).max() == 0


@pytest.mark.parametrize("size", [7, 8, 9, 66])
@pytest.mark.parametrize("kernel,stride", [(3, 1), (3, 2), (5, 2), (1, 1)])
def test_conv_padding(size, kernel, stride):
    # TensorFlow SAME: output ceil(size / stride), total pad split with the extra pixel last.
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    assert jax.lax.padtype_to_pads((size,), (kernel,), (stride,), layers.conv_padding(kernel, stride, "same")) == [
        (total // 2, total - total // 2)
    ]
    # timm symmetric padding.
    pad = ((stride - 1) + (kernel - 1)) // 2
    assert layers.conv_padding(kernel, stride, "") == [(pad, pad), (pad, pad)]
    with pytest.raises(ValueError, match="pad_type"):
        layers.conv_padding(kernel, stride, "valid")


def test_drop_path_statistics_and_identity_in_eval():
    x = jnp.ones((4000, 2, 2, 3))
    y = layers.drop_path(x, 0.25, deterministic=False, rng=jax.random.key(0))
    per_example = np.asarray(y)[:, 0, 0, 0]
    kept = per_example != 0
    np.testing.assert_allclose(per_example[kept], 1 / 0.75, rtol=1e-6)
    assert np.all(np.asarray(y) == per_example[:, None, None, None])  # whole examples dropped
    assert abs(per_example.mean() - 1.0) < 0.05  # unbiased in expectation
    np.testing.assert_array_equal(layers.drop_path(x, 0.25, deterministic=True), x)
    with pytest.raises(ValueError, match="rng"):
        layers.drop_path(x, 0.25, deterministic=False)
