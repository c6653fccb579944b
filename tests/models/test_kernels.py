"""The CPU kernels against float64 / PyTorch references, against XLA's own operations, and
inside the models (gradients, also under `vmap` over stacked parameters as CCT runs them)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from affectjax import models
from affectjax.models import kernels
from affectjax.models.resnet import Conv


def _nchw64(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(x).transpose(0, 3, 1, 2), dtype=torch.float64)


# --- depthwise_conv -------------------------------------------------------------------

@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, [(1, 1), (1, 1)]), (5, 2, [(2, 2), (2, 2)]), (3, 2, "SAME"), (5, 2, "SAME")])
def test_depthwise_cpu_equals_grouped_conv_and_float64_reference(kernel, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 10, 4)).astype(np.float32)
    w = rng.normal(size=(kernel, kernel, 1, 4)).astype(np.float32)
    cpu = kernels.depthwise_conv_cpu(jnp.asarray(x), jnp.asarray(w), stride, padding)
    xla = kernels.depthwise_conv_xla(jnp.asarray(x), jnp.asarray(w), stride, padding)
    np.testing.assert_allclose(cpu, xla, rtol=1e-5, atol=1e-5)
    # float64 direct loop for one output pixel and channel.
    pads = kernels.explicit_pads((9, 10), (kernel, kernel), stride, padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), pads[0], pads[1], (0, 0)))
    ref = (xp[1, stride : stride + kernel, 0:kernel, 2] * w[:, :, 0, 2]).sum()
    np.testing.assert_allclose(cpu[1, 1, 0, 2], ref, rtol=1e-5)
    grad = lambda f: jax.grad(lambda a, b: (f(a, b, stride, padding) ** 2).sum(), argnums=(0, 1))(jnp.asarray(x), jnp.asarray(w))
    for a, b in zip(grad(kernels.depthwise_conv_cpu), grad(kernels.depthwise_conv_xla)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch", [5, 6])  # odd: a zero-padded last chunk
def test_depthwise_cpu_kernel_gradient_accumulates_over_batch_chunks(batch):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, 7, 8, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 1, 3)).astype(np.float32)
    r = rng.normal(size=(batch, 4, 4, 3)).astype(np.float32)  # stride 2, padding 1: 4x4 output
    loss = lambda b: (kernels.depthwise_conv_cpu(jnp.asarray(x), b, 2, [(1, 1), (1, 1)]) * r).sum()
    dw = jax.jit(jax.grad(loss))(jnp.asarray(w))
    # float64 reference: d/dw[i, j, c] = sum_{b, o, p} xp[b, 2o + i, 2p + j, c] * r[b, o, p, c].
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
    ref = np.zeros((3, 3, 1, 3))
    for i in range(3):
        for j in range(3):
            ref[i, j, 0] = (xp[:, i : i + 8 : 2, j : j + 8 : 2] * r).sum(axis=(0, 1, 2))
    np.testing.assert_allclose(dw, ref, rtol=1e-5, atol=1e-5)


# --- max_pool -------------------------------------------------------------------------

@pytest.mark.parametrize("window,stride,pad", [(3, 2, 1), (2, 2, 0), (3, 1, 1), (3, 3, 0)])
def test_max_pool_cpu_value_and_gradient_equal_torch(window, stride, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    x[0, :5, :5] = 0.0  # tied windows: the gradient must go to the first maximum only
    x[1, 2:6, 1:4, 1] = 1.5
    y, vjp = jax.vjp(lambda a: kernels.max_pool_cpu(a, window, stride, pad), jnp.asarray(x))
    g = rng.standard_normal(y.shape).astype(np.float32)
    (dx,) = vjp(jnp.asarray(g))
    xt = _nchw64(x).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, window, stride, pad)
    yt.backward(_nchw64(g))
    np.testing.assert_array_equal(np.asarray(y), yt.detach().numpy().transpose(0, 2, 3, 1).astype(np.float32))
    np.testing.assert_allclose(np.asarray(dx), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-6)


def test_max_pool_cpu_jit_vmap_and_all_negative_input():
    x = -1.0 - jax.random.uniform(jax.random.key(0), (3, 2, 7, 7, 4))  # padding (-inf) never wins
    ref = jax.vmap(lambda a: kernels.max_pool_xla(a, 3, 2, 1))(x)
    out = jax.jit(jax.vmap(lambda a: kernels.max_pool_cpu(a, 3, 2, 1)))(x)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
    traced, _ = jax.vjp(jax.vmap(lambda a: kernels.max_pool_cpu(a, 3, 2, 1)), x)  # the shift forward
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(ref))
    grad = jax.jit(jax.grad(lambda a: jnp.sum(kernels.max_pool_cpu(a, 3, 2, 1))))(x[0])
    assert float(grad.sum()) == pytest.approx(out[0].size)  # one unit per output window


def test_max_pool_cpu_rejects_windows_beyond_int8():
    with pytest.raises(ValueError, match="window"):
        kernels.max_pool_cpu(jnp.zeros((1, 16, 16, 1)), 12, 1, 0)


# --- conv, conv_same ------------------------------------------------------------------

@pytest.mark.parametrize("kernel,stride,batch", [(3, 1, 5), (3, 2, 4), (7, 2, 3), (1, 2, 5)])
def test_conv_cpu_equals_xla_and_float64_kernel_gradient(kernel, stride, batch, monkeypatch):
    monkeypatch.setattr(kernels, "CONV_KERNEL_GRAD_CHUNK_ELEMENTS", 2 * 11 * 10 * 4)  # chunks of ~2: a padded last one
    pad = (kernel - 1) // 2
    x = jax.random.normal(jax.random.key(0), (batch, 11, 10, 3))
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 3, 4))
    y_ref, vjp_ref = jax.vjp(lambda a, b: kernels.conv_xla(a, b, stride, pad), x, w)
    y, vjp = jax.vjp(jax.jit(lambda a, b: kernels.conv_cpu(a, b, stride, pad)), x, w)
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


def test_conv_cpu_program_does_not_grow_with_the_batch():
    # The kernel-gradient chunks are a scan: the same number of convolutions at any batch.
    def count(batch):
        x, w = jnp.zeros((batch, 16, 16, 8)), jnp.zeros((3, 3, 8, 8))
        grad = jax.jit(jax.grad(lambda a, b: kernels.conv_cpu(a, b, 1, 1).sum(), (0, 1)))
        return grad.lower(x, w).as_text().count("stablehlo.convolution")

    assert count(4) == count(64)


@pytest.mark.parametrize("kernel", [1, 3, 4])
def test_conv_same_cpu_values_and_gradients_equal_xla(kernel):
    x = jax.random.normal(jax.random.key(0), (3, 8, 7, 4))
    w = jax.random.normal(jax.random.key(1), (kernel, kernel, 4, 5))
    grad = lambda f: jax.grad(lambda a, b: (f(a, b) ** 3).sum(), (0, 1))(x, w)
    np.testing.assert_allclose(kernels.conv_same_cpu(x, w), kernels.conv_same_xla(x, w), rtol=1e-5, atol=1e-5)
    for a, b in zip(grad(kernels.conv_same_cpu), grad(kernels.conv_same_xla)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


# --- choosing per device --------------------------------------------------------------

def _lowered_for(platform, fn, *args):
    return jax.export.export(jax.jit(fn), platforms=[platform])(*args).mlir_module()


def test_auto_chooses_per_device_when_lowering_not_by_default_backend():
    x, k = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 1, 3))
    grad = jax.grad(lambda b, a: (kernels.depthwise_conv(a, b, 1, "SAME", "auto") ** 2).sum())
    # This process's default backend is the CPU; lowered for a GPU or TPU the program is
    # XLA's grouped convolution, lowered for the CPU the shift sums.
    for platform in ("cuda", "rocm", "tpu"):
        text = _lowered_for(platform, grad, k, x)
        assert "feature_group_count = 3" in text and "stablehlo.slice" not in text
    text = _lowered_for("cpu", grad, k, x)
    assert "feature_group_count" not in text and "stablehlo.slice" in text


def test_auto_values_equal_both_impls_and_bad_impl_lists_the_choices():
    x, w = jax.random.normal(jax.random.key(0), (2, 9, 9, 3)), jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
    for impl in ("auto", "cpu"):
        np.testing.assert_allclose(kernels.conv(x, w, 2, 1, impl), kernels.conv(x, w, 2, 1, "xla"), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"max_pool impl must be one of 'auto', 'xla', 'cpu', got 'shift'"):
        kernels.max_pool(x, 3, 2, 1, "shift")


# --- in the models: gradients against the plain XLA models ----------------------------

def _grads_per_impl(name, impl_attributes, x, stacked_too, **kwargs):
    """Gradients of a train-mode loss for every impl, of one network and, if `stacked_too`,
    of two stacked ones (vmap)."""
    base = models.create(name, **kwargs, **{a: "xla" for a in impl_attributes})
    variables = jax.jit(lambda k: base.init(k, x, train=False))(jax.random.key(0))
    stacked = jax.tree.map(lambda p: jnp.stack([p, 0.5 * p]), variables["params"])

    def loss(params, impl):
        model = models.create(name, **kwargs, **{a: impl for a in impl_attributes})
        (out, _), _ = model.apply({**variables, "params": params}, x, train=True, mutable=["batch_stats"],
                                  rngs={"dropout": jax.random.key(3)})
        return jnp.sum(out["logits"] ** 2)

    @jax.jit
    def both(params, stacked):  # "auto" is "cpu" on this CPU (test_auto_chooses_per_device...)
        return {impl: (jax.grad(loss)(params, impl),
                       jax.vmap(jax.grad(loss), (0, None))(stacked, impl) if stacked_too else ())
                for impl in ("xla", "auto")}

    return both(variables["params"], stacked)


@pytest.mark.parametrize("name,impl_attributes,stacked_too,kwargs", [
    # ResNet-18 is CCT's backbone: its members' stacked parameters go through vmap.
    ("resnet18", ("pool_impl", "conv_impl"), True, {"num_classes": 3, "width": 8}),
    ("efficientnet_tiny", ("depthwise_impl",), False, {"num_classes": 3, "pad_type": "same"}),
])
def test_model_gradients_equal_plain_xla_also_vmapped_over_stacked_parameters(name, impl_attributes, stacked_too,
                                                                            kwargs, fast_compiled):
    x = jax.random.normal(jax.random.key(1), (3, 17, 17, 3))  # odd batch: padded chunks
    grads = _grads_per_impl(name, impl_attributes, x, stacked_too, **kwargs)
    # Relative to the largest gradient of the network: the biases of BatchNorms that feed
    # another BatchNorm have a zero gradient up to float32 rounding (~1e-5).
    scale = max(float(jnp.abs(g).max()) for g in jax.tree.leaves(grads["xla"]))
    for got, want in zip(jax.tree.leaves(grads["auto"]), jax.tree.leaves(grads["xla"])):
        np.testing.assert_allclose(np.asarray(got) / scale, np.asarray(want) / scale, rtol=0, atol=1e-4)


def test_model_impl_attributes_are_checked_by_name():
    x = jnp.ones((1, 6, 6, 2))
    assert Conv(3, 3, 2).init(jax.random.key(0), x)["params"]["kernel"].shape == (3, 3, 2, 3)
    with pytest.raises(ValueError, match="conv_impl must be one of"):
        Conv(3, 3, impl="chunked").init(jax.random.key(0), x)
    x = jnp.ones((1, 32, 32, 3))
    with pytest.raises(ValueError, match="pool_impl must be one of"):  # raised while tracing
        jax.eval_shape(models.create("resnet18", pool_impl="shift").init, jax.random.key(0), x)
    with pytest.raises(ValueError, match="depthwise_impl must be one of"):
        jax.eval_shape(models.create("efficientnet_tiny", depthwise_impl="conv").init, jax.random.key(0), x)
