"""EfficientNet blocks: squeeze-excite, depthwise-separable and inverted-residual (MBConv).

Sandler et al., "MobileNetV2" (CVPR 2018), Sec. 3.3 (inverted residual with linear
bottleneck); Hu et al., "Squeeze-and-Excitation Networks" (CVPR 2018), eq. (2)-(3); Tan &
Le, "EfficientNet" (ICML 2019), Sec. 4 (MBConv + SE + SiLU, stochastic depth). The layer
order and submodule names follow timm's `_efficientnet_blocks.py` (`conv_pw`, `bn1`,
`conv_dw`, `bn2`, `se.conv_reduce`, `se.conv_expand`, `conv_pwl`, `bn3`), so that
`affectjax.convert.from_timm` maps weights by name.

1x1 convolutions are `layers.PointwiseConv` (a channel matmul). Depthwise convolutions
are `layers.DepthwiseConv`: the parameter of a grouped `nn.Conv` (kernel HWIO
`(k, k, 1, C)`, PyTorch `(C, 1, k, k)`), computed as `affectjax.models.kernels.depthwise_conv`
(`depthwise_impl`: an XLA grouped convolution, or shifted multiply-adds on the CPU).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models.efficientnet_builder import BlockArgs
from affectjax.models.layers import BatchNorm, DepthwiseConv, DropPath, PointwiseConv, conv_kernel_init_fan_out, conv_padding

Dtype = Any


class SqueezeExcite(nn.Module):
    """Channel gating: `x * sigmoid(W2 silu(W1 mean_hw(x) + b1) + b2)` (Hu et al. eq. 2-3).

    The two 1x1 convolutions of timm are dense layers on the pooled vector here (same
    weights, kernels `(C, R)` and `(R, C)`).

    Attributes:
        reduced_chs: width R of the bottleneck.
        dtype: computation dtype.
    """

    reduced_chs: int
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        s = jnp.mean(x, axis=(1, 2), dtype=jnp.float32).astype(x.dtype)
        s = nn.Dense(self.reduced_chs, dtype=self.dtype, kernel_init=conv_kernel_init_fan_out(), name="conv_reduce")(s)
        s = nn.silu(s)
        s = nn.Dense(channels, dtype=self.dtype, kernel_init=conv_kernel_init_fan_out(), name="conv_expand")(s)
        return x * nn.sigmoid(s)[:, None, None, :]


def _depthwise(kernel: int, stride: int, pad_type: str, impl: str, dtype: Dtype | None) -> DepthwiseConv:
    return DepthwiseConv(kernel, stride, conv_padding(kernel, stride, pad_type), impl, dtype, name="conv_dw")


class DepthwiseSeparable(nn.Module):
    """Depthwise conv -> BN -> SiLU -> SE -> pointwise conv -> BN (+ residual).

    Attributes:
        args: the resolved block (`efficientnet_builder.BlockArgs`).
        pad_type: `''` (symmetric) or `'same'` (TensorFlow).
        bn_eps: BatchNorm epsilon.
        depthwise_impl: `'auto'`, `'xla'` or `'cpu'` (see `layers.DepthwiseConv`).
        dtype: computation dtype.
    """

    args: BlockArgs
    pad_type: str = ""
    bn_eps: float = 1e-5
    depthwise_impl: str = "auto"
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        a = self.args
        shortcut = x
        x = _depthwise(a.kernel_size, a.stride, self.pad_type, self.depthwise_impl, self.dtype)(x)
        x = nn.silu(BatchNorm(self.bn_eps, dtype=self.dtype, name="bn1")(x, train))
        if a.se_chs:
            x = SqueezeExcite(a.se_chs, dtype=self.dtype, name="se")(x)
        x = PointwiseConv(a.out_chs, self.dtype, name="conv_pw")(x)
        x = BatchNorm(self.bn_eps, dtype=self.dtype, name="bn2")(x, train)
        if a.skip:
            x = DropPath(a.drop_path_rate)(x, deterministic=not train) + shortcut
        return x


class InvertedResidual(nn.Module):
    """MBConv: 1x1 expand -> BN -> SiLU -> depthwise -> BN -> SiLU -> SE -> 1x1 project -> BN
    (+ stochastic-depth residual), Sandler et al. (2018) Table 1 with SE.

    Attributes:
        args: the resolved block (`efficientnet_builder.BlockArgs`).
        pad_type: `''` (symmetric) or `'same'` (TensorFlow).
        bn_eps: BatchNorm epsilon.
        depthwise_impl: `'auto'`, `'xla'` or `'cpu'` (see `layers.DepthwiseConv`).
        dtype: computation dtype.
    """

    args: BlockArgs
    pad_type: str = ""
    bn_eps: float = 1e-5
    depthwise_impl: str = "auto"
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        a = self.args
        shortcut = x
        x = PointwiseConv(a.mid_chs, self.dtype, name="conv_pw")(x)
        x = nn.silu(BatchNorm(self.bn_eps, dtype=self.dtype, name="bn1")(x, train))
        x = _depthwise(a.kernel_size, a.stride, self.pad_type, self.depthwise_impl, self.dtype)(x)
        x = nn.silu(BatchNorm(self.bn_eps, dtype=self.dtype, name="bn2")(x, train))
        if a.se_chs:
            x = SqueezeExcite(a.se_chs, dtype=self.dtype, name="se")(x)
        x = PointwiseConv(a.out_chs, self.dtype, name="conv_pwl")(x)
        x = BatchNorm(self.bn_eps, dtype=self.dtype, name="bn3")(x, train)
        if a.skip:
            x = DropPath(a.drop_path_rate)(x, deterministic=not train) + shortcut
        return x


BLOCKS = {"ds": DepthwiseSeparable, "ir": InvertedResidual}
