"""Layers shared by the backbones: PyTorch-exact BatchNorm, padding rules, drop path, inits.

The backbones in `affectjax.models` load timm and torchvision weights and must give the
same numbers as the PyTorch models, in eval *and* in train mode. Three details make that
possible and live here:

* `BatchNorm` normalises with the biased batch variance (as `torch.nn.BatchNorm2d`) but
  updates the running variance with the *unbiased* one, and uses flax's momentum
  convention: `ra = momentum * ra + (1 - momentum) * batch`, so `momentum=0.9` here is
  PyTorch's `momentum=0.1`.
* `conv_padding` gives timm's symmetric padding (`pad_type=''`: `((s - 1) + (k - 1)) // 2`
  on each side) or TensorFlow "SAME" padding (`pad_type='same'`: the extra pixel goes on
  the bottom/right, exactly as timm's `Conv2dSame` for `tf_*` models).
* `drop_path` is timm's stochastic depth (Huang et al., 2016): whole examples of a
  residual branch are zeroed with probability `rate`, the rest scaled by `1 / (1 - rate)`.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

Dtype = Any
Padding = str | Sequence[tuple[int, int]]


def conv_padding(kernel_size: int, stride: int = 1, pad_type: str = "") -> Padding:
    """Padding for a square convolution, in the form `flax.linen.Conv` accepts.

    Args:
        kernel_size: kernel height (= width).
        stride: convolution stride.
        pad_type: `''` for timm/PyTorch symmetric padding, `'same'` for TensorFlow SAME.

    Returns:
        `'SAME'` (XLA's SAME is TensorFlow's: the odd pixel is padded at the end) or explicit
        `[(p, p), (p, p)]`.
    """
    if pad_type == "same":
        return "SAME"
    if pad_type != "":
        raise ValueError(f"pad_type must be '' (symmetric) or 'same' (TensorFlow), got {pad_type!r}")
    pad = ((stride - 1) + (kernel_size - 1)) // 2
    return [(pad, pad), (pad, pad)]


def conv_kernel_init_fan_out(groups: int = 1):
    """timm's `_init_weight_goog` for convolutions: N(0, 2 / fan_out), fan_out = k*k*out/groups.

    Works for HWIO kernels and for 1x1 convolutions written as dense `(in, out)` kernels.
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: Dtype = jnp.float32) -> jax.Array:
        receptive = 1
        for d in shape[:-2]:
            receptive *= d
        fan_out = receptive * shape[-1] // groups
        return jax.random.normal(key, shape, dtype) * jnp.sqrt(2.0 / fan_out).astype(dtype)

    return init


def dense_init_uniform(fan: int):
    """Uniform(-1/sqrt(fan), 1/sqrt(fan)): timm's classifier init (fan = out features) and
    PyTorch's default `nn.Linear` init (fan = in features)."""
    bound = 1.0 / float(fan) ** 0.5

    def init(key: jax.Array, shape: Sequence[int], dtype: Dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class BatchNorm(nn.Module):
    """Batch normalisation over all axes but the last, numerically equal to PyTorch's.

    Ioffe & Szegedy (2015), eq. (1)-(2); running statistics as `torch.nn.BatchNorm2d`.

    Attributes:
        epsilon: added to the variance (timm: 1e-5; `tf_*` EfficientNets: 1e-3).
        momentum: decay of the running averages, flax convention (0.9 == PyTorch 0.1).
        dtype: dtype of the output; statistics are always computed in float32.

    Variables:
        params: `scale` (PyTorch `weight`), `bias`.
        batch_stats: `mean` (`running_mean`), `var` (`running_var`).
    """

    epsilon: float = 1e-5
    momentum: float = 0.9
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """Normalises `x` (..., C): batch statistics if `train`, else the running ones.

        Args:
            x: features, channels last.
            train: use and update batch statistics (needs `mutable=['batch_stats']`).

        Returns:
            The normalised, scaled and shifted features, in `dtype` (default: `x.dtype`).
        """
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        axes = tuple(range(x.ndim - 1))
        if train:
            xf = x.astype(jnp.float32)
            mean = jnp.mean(xf, axis=axes)
            var = jnp.mean(jnp.square(xf - mean), axis=axes)
            if not self.is_initializing():
                n = x.size // features
                unbiased = var * (n / max(n - 1, 1))
                m = self.momentum
                ra_mean.value = m * ra_mean.value + (1.0 - m) * mean
                ra_var.value = m * ra_var.value + (1.0 - m) * unbiased
        else:
            mean, var = ra_mean.value, ra_var.value
        mul = scale * jax.lax.rsqrt(var + self.epsilon)
        add = bias - mean * mul
        dtype = self.dtype or x.dtype
        return x.astype(dtype) * mul.astype(dtype) + add.astype(dtype)


def drop_path(x: jax.Array, rate: float, *, deterministic: bool, rng: jax.Array | None = None) -> jax.Array:
    """Stochastic depth on a residual branch (timm `drop_path`, per example).

    Args:
        x: branch output (B, ...).
        rate: probability of dropping an example's branch.
        deterministic: if True (eval), return `x` unchanged.
        rng: PRNG key, required when `rate > 0` and not deterministic.

    Returns:
        `x * mask / (1 - rate)` with `mask ~ Bernoulli(1 - rate)` of shape (B, 1, ..., 1).
    """
    if deterministic or rate == 0.0:
        return x
    if rng is None:
        raise ValueError("drop_path needs an rng when rate > 0 and deterministic=False")
    keep = 1.0 - rate
    mask = jax.random.bernoulli(rng, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return x * (mask.astype(x.dtype) / jnp.asarray(keep, x.dtype))


class DropPath(nn.Module):
    """Module form of `drop_path`; draws from the `'dropout'` rng stream."""

    rate: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        if deterministic or self.rate == 0.0:
            return x
        return drop_path(x, self.rate, deterministic=False, rng=self.make_rng("dropout"))


# Examples per step of the kernel-gradient scan (2: fastest on a 2-core CPU, batch 32, B0 shapes).
_KERNEL_GRAD_CHUNK = 2


def _shift_sum(xp: jax.Array, kernel: jax.Array, stride: int, out_hw: tuple[int, int]) -> jax.Array:
    """sum_ij xp[:, s*o + i, s*p + j, :] * kernel[i, j, 0, :] over an already padded input."""
    kh, kw = kernel.shape[:2]
    h_out, w_out = out_hw
    out = None
    for i in range(kh):
        for j in range(kw):
            patch = jax.lax.slice(
                xp,
                (0, i, j, 0),
                (xp.shape[0], i + stride * (h_out - 1) + 1, j + stride * (w_out - 1) + 1, xp.shape[3]),
                (1, stride, stride, 1),
            )
            term = patch * kernel[i, j, 0]
            out = term if out is None else out + term
    return out


def _explicit_pads(shape_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int, padding: Padding):
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(shape_hw, kernel_hw, (stride, stride), padding)
    return tuple(tuple(int(p) for p in pair) for pair in padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise_shift(x: jax.Array, kernel: jax.Array, stride: int, pads: tuple) -> jax.Array:
    (pt, pb), (pl, pr) = pads
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = kernel.shape[:2]
    out_hw = ((xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1)
    return _shift_sum(xp, kernel, stride, out_hw)


def _depthwise_shift_fwd(x, kernel, stride, pads):
    return _depthwise_shift(x, kernel, stride, pads), (x, kernel)


def _depthwise_shift_bwd(stride, pads, residuals, g):
    x, kernel = residuals
    kh, kw = kernel.shape[:2]
    (pt, pb), (pl, pr) = pads
    h, w = x.shape[1:3]
    h_out, w_out = g.shape[1:3]
    # Input gradient: the transposed convolution, i.e. the stride-dilated output gradient,
    # padded (negative pads crop) and correlated with the flipped kernel, as one shift sum.
    zero = jnp.zeros((), g.dtype)
    gp = jax.lax.pad(
        g,
        zero,
        (
            (0, 0, 0),
            (kh - 1 - pt, h + pt - (h_out - 1) * stride - 1, stride - 1),
            (kw - 1 - pl, w + pl - (w_out - 1) * stride - 1, stride - 1),
            (0, 0, 0),
        ),
    )
    dx = _shift_sum(gp, kernel[::-1, ::-1].astype(g.dtype), 1, (h, w))
    # Kernel gradient: one reduction per tap, accumulated over the batch in chunks of
    # `_KERNEL_GRAD_CHUNK` examples (a scan), so that the k*k passes over each chunk's input
    # and output gradient hit the cache instead of main memory.
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    batch = x.shape[0]
    chunk = _KERNEL_GRAD_CHUNK if batch % _KERNEL_GRAD_CHUNK == 0 else 1
    chunks = (xp.reshape((batch // chunk, chunk) + xp.shape[1:]), g.reshape((batch // chunk, chunk) + g.shape[1:]))

    def accumulate(total, xg):
        xc, gc = xg
        gc = gc.astype(jnp.float32)
        taps = []
        for i in range(kh):
            for j in range(kw):
                patch = jax.lax.slice(
                    xc,
                    (0, i, j, 0),
                    (chunk, i + stride * (h_out - 1) + 1, j + stride * (w_out - 1) + 1, xc.shape[3]),
                    (1, stride, stride, 1),
                )
                taps.append(jnp.sum(patch.astype(jnp.float32) * gc, axis=(0, 1, 2)))
        return total + jnp.stack(taps), None

    taps, _ = jax.lax.scan(accumulate, jnp.zeros((kh * kw, x.shape[3]), jnp.float32), chunks)
    dkernel = taps.reshape(kh, kw, 1, -1).astype(kernel.dtype)
    return dx.astype(x.dtype), dkernel


_depthwise_shift.defvjp(_depthwise_shift_fwd, _depthwise_shift_bwd)


def depthwise_conv_shift(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """Depthwise convolution as a sum of k*k shifted, per-channel-scaled copies of the input.

    Numerically the same operation as `lax.conv_general_dilated(..., feature_group_count=C)`
    (cross-correlation, NHWC, HWIO kernel `(k, k, 1, C)`), written with pad / strided slice /
    multiply / add only, which XLA fuses into one loop on CPU. A custom VJP computes the
    input gradient the same way (transposed convolution = dilated, padded output gradient
    correlated with the flipped kernel), instead of the k*k separate pads that automatic
    differentiation of the slices produces; the kernel gradient (one reduction per tap)
    is accumulated over the batch two examples at a time, which keeps the k*k passes in
    cache. See the README's performance section.

    Args:
        x: (B, H, W, C).
        kernel: (kh, kw, 1, C).
        stride: spatial stride.
        padding: `'SAME'`/`'VALID'` or `[(top, bottom), (left, right)]`.

    Returns:
        (B, H_out, W_out, C).
    """
    pads = _explicit_pads(x.shape[1:3], kernel.shape[:2], stride, padding)
    return _depthwise_shift(x, kernel, stride, pads)


class DepthwiseConv(nn.Module):
    """Bias-free depthwise convolution with the parameter layout of `nn.Conv(..., feature_group_count=C)`.

    Attributes:
        kernel_size: square kernel size.
        stride: spatial stride.
        padding: as `conv_padding` returns.
        impl: `'conv'` (XLA grouped convolution), `'shift'` (`depthwise_conv_shift`) or
            `'auto'` (`'shift'` when JAX's default backend is the CPU, where XLA's grouped
            convolution is 3-10x slower, else `'conv'`).
        dtype: computation dtype.
    """

    kernel_size: int
    stride: int = 1
    padding: Padding = "SAME"
    impl: str = "auto"
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        k = self.kernel_size
        kernel = self.param("kernel", conv_kernel_init_fan_out(channels), (k, k, 1, channels), jnp.float32)
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        impl = self.impl
        if impl == "auto":
            impl = "shift" if jax.default_backend() == "cpu" else "conv"
        if impl == "shift":
            return depthwise_conv_shift(x, kernel, self.stride, self.padding)
        if impl != "conv":
            raise ValueError(f"depthwise impl must be 'auto', 'conv' or 'shift', got {self.impl!r}")
        return jax.lax.conv_general_dilated(
            x,
            kernel,
            (self.stride, self.stride),
            self.padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=channels,
        )


class PointwiseConv(nn.Module):
    """Bias-free 1x1 convolution computed as a matrix product over the channel axis.

    Same parameter as `nn.Conv(features, (1, 1), use_bias=False)` (kernel HWIO
    `(1, 1, C, O)`); XLA's CPU backend runs the `dot` 1.5-5x faster than the equivalent
    convolution, forward and backward (README, performance section).

    Attributes:
        features: output channels.
        dtype: computation dtype.
    """

    features: int
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", conv_kernel_init_fan_out(), (1, 1, x.shape[-1], self.features), jnp.float32)
        dtype = self.dtype or x.dtype
        return jnp.einsum("...c,co->...o", x.astype(dtype), kernel[0, 0].astype(dtype))
