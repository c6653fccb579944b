"""ResNet's CPU kernels against float64 PyTorch references and XLA's own operations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from affectjax import models
from affectjax.models.resnet import max_pool_shift


def _nchw64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(x).transpose(0, 3, 1, 2), dtype=torch.float64)


@pytest.mark.parametrize("window,stride,pad", [(3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 3, 0)])
def test_max_pool_shift_value_and_gradient_equal_torch(window, stride, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    x[0, :5, :5] = 0.0  # tied windows: the gradient must go to the first maximum only
    x[1, 2:6, 1:4, 1] = 1.5
    y, vjp = jax.vjp(lambda a: max_pool_shift(a, window, stride, pad), jnp.asarray(x))
    g = rng.standard_normal(y.shape).astype(np.float32)
    (dx,) = vjp(jnp.asarray(g))
    xt = _nchw64(x).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, window, stride, pad)
    yt.backward(_nchw64(g))
    np.testing.assert_array_equal(np.asarray(y), yt.detach().numpy().transpose(0, 2, 3, 1).astype(np.float32))
    np.testing.assert_allclose(np.asarray(dx), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-6)


def test_max_pool_shift_jit_vmap_and_all_negative_input():
    x = -1.0 - jax.random.uniform(jax.random.key(0), (3, 2, 7, 7, 4))  # padding (-inf) never wins
    ref = jax.vmap(lambda a: jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))))(x)
    out = jax.jit(jax.vmap(lambda a: max_pool_shift(a, 3, 2, 1)))(x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    traced, _ = jax.vjp(jax.vmap(lambda a: max_pool_shift(a, 3, 2, 1)), x)  # the shift forward
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(ref))
    grad = jax.jit(jax.grad(lambda a: jnp.sum(max_pool_shift(a, 3, 2, 1))))(x[0])
    assert float(grad.sum()) == pytest.approx(out[0].size)  # one unit per output window


def test_max_pool_shift_rejects_windows_beyond_int8():
    with pytest.raises(ValueError, match="window"):
        max_pool_shift(jnp.zeros((1, 16, 16, 1)), 12, 1, 0)


def test_resnet_pool_impls_agree_and_bad_impl_is_named():
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    model = models.create("resnet18", num_classes=3, width=8, pool_impl="xla")
    variables = model.init(jax.random.key(0), x, train=False)

    def loss(params, impl):
        out, _ = models.create("resnet18", num_classes=3, width=8, pool_impl=impl).apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )[0]
        return jnp.sum(out["logits"] ** 2)

    for a, b in zip(jax.tree.leaves(jax.grad(loss)(variables["params"], "xla")), jax.tree.leaves(jax.grad(loss)(variables["params"], "shift"))):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pool_impl"):
        models.create("resnet18", pool_impl="fast").init(jax.random.key(0), x)
