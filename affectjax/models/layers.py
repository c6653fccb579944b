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

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models import kernels

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


class DepthwiseConv(nn.Module):
    """Bias-free depthwise convolution with the parameter layout of `nn.Conv(..., feature_group_count=C)`.

    Attributes:
        kernel_size: square kernel size.
        stride: spatial stride.
        padding: as `conv_padding` returns.
        impl: `'auto'` (chosen per device), `'xla'` (XLA's grouped convolution) or `'cpu'`
            (shifted multiply-adds, 3-10x faster on CPU); see `affectjax.models.kernels`.
        dtype: computation dtype.
    """

    kernel_size: int
    stride: int = 1
    padding: Padding = "SAME"
    impl: str = "auto"
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernels.check_impl("depthwise_impl", self.impl)
        channels = x.shape[-1]
        k = self.kernel_size
        kernel = self.param("kernel", conv_kernel_init_fan_out(channels), (k, k, 1, channels), jnp.float32)
        dtype = self.dtype or x.dtype
        return kernels.depthwise_conv(x.astype(dtype), kernel.astype(dtype), self.stride, self.padding,
                                      self.impl)


class PointwiseConv(nn.Module):
    """Bias-free 1x1 convolution computed as a matrix product over the channel axis.

    Same parameter as `nn.Conv(features, (1, 1), use_bias=False)` (kernel HWIO
    `(1, 1, C, O)`); XLA's CPU backend runs the `dot` 1.5-5x faster than the equivalent
    convolution, forward and backward (docs/performance.md).

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
