"""ResNet's CPU kernels against float64 PyTorch references and XLA's own operations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from affectjax import models
from affectjax.models.resnet import Conv, conv_chunked_kernel_grad, max_pool_shift


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


@pytest.mark.parametrize("kernel,stride,chunk", [(3, 1, 2), (3, 2, 4), (7, 2, 1), (1, 2, 5)])
def test_conv_chunked_kernel_grad_equals_xla_convolution(kernel, stride, chunk):
    pad = (kernel - 1) // 2
    x = jax.random.normal(jax.random.key(0), (5, 11, 10, 3))  # 5 examples: a short last chunk
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 3, 4))

    def ref(a, b):
        return jax.lax.conv_general_dilated(a, b, (stride, stride), [(pad, pad)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    y_ref, vjp_ref = jax.vjp(ref, x, w)
    y, vjp = jax.vjp(jax.jit(lambda a, b: conv_chunked_kernel_grad(a, b, stride, pad, chunk)), x, w)
    g = jax.random.normal(jax.random.key(2), y.shape)
    np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-5, atol=1e-5)
    for got, want in zip(vjp(g), vjp_ref(g)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)
    # the kernel gradient against a float64 sum over examples and window positions
    xp = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    gg = np.asarray(g, np.float64)
    ho, wo = g.shape[1:3]
    dw = np.stack([
        np.stack([np.einsum("nhwc,nhwo->co", xp[:, i : i + stride * ho : stride, j : j + stride * wo : stride], gg) for j in range(kernel)])
        for i in range(kernel)
    ])
    np.testing.assert_allclose(np.asarray(vjp(g)[1]), dw, rtol=1e-4, atol=1e-4)


def test_conv_module_has_nn_conv_parameter_and_names_bad_impl():
    x = jnp.ones((1, 6, 6, 2))
    variables = Conv(3, 3, 2).init(jax.random.key(0), x)
    assert variables["params"]["kernel"].shape == (3, 3, 2, 3)
    with pytest.raises(ValueError, match="conv_impl"):
        Conv(3, 3, impl="im2col").init(jax.random.key(0), x)


def test_resnet_cpu_impls_agree_with_xla_and_bad_impl_is_named():
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    model = models.create("resnet18", num_classes=3, width=8, pool_impl="xla")
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(0))

    def loss(params, impl):
        kwargs = {"pool_impl": impl, "conv_impl": "xla" if impl == "xla" else "chunked"}
        out, _ = models.create("resnet18", num_classes=3, width=8, **kwargs).apply(
            {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
        )[0]
        return jnp.sum(out["logits"] ** 2)

    # Jitted (not op by op): the same gradients, one compilation per implementation.
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    for a, b in zip(jax.tree.leaves(grad(variables["params"], "xla")), jax.tree.leaves(grad(variables["params"], "shift"))):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pool_impl"):  # raised while tracing: nothing runs
        jax.eval_shape(models.create("resnet18", pool_impl="fast").init, jax.random.key(0), x)
