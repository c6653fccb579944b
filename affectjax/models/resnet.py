"""ResNet-18, -34 and -50 in torchvision's layout (ResNet-18 is the CCT backbone).

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1 (18-, 34-
and 50-layer columns) with torchvision's blocks: `BasicBlock` (two 3x3 convs, stride on the
first) and `Bottleneck` (1x1 -> 3x3 -> 1x1 with expansion 4, stride on the 3x3: the "v1.5"
variant), each with a 1x1/stride projection + BN on the shortcut when the shape changes.
Parameter names mirror torchvision's state-dict keys with indices joined by `_`
(`layer2.0.downsample.0.weight` -> `params/layer2_0/downsample_0/kernel`), see
`affectjax.convert.from_torchvision`.

| name | block | stage depths | `embedding` | parameters (1000 classes) |
|---|---|---|---|---|
| `resnet18` | `BasicBlock` | 2, 2, 2, 2 | 512 | 11,689,512 |
| `resnet34` | `BasicBlock` | 3, 4, 6, 3 | 512 | 21,797,672 |
| `resnet50` | `Bottleneck` | 3, 4, 6, 3 | 2048 | 25,557,032 |

Outputs of `apply(variables, images, train=...)`: `({"logits": (B, num_classes)},
intermediates)` with intermediates `stem` (after the max pool, stride 4, 64 channels),
`stage_0` ... `stage_3` (`layer1` ... `layer4`, strides 4, 8, 16, 32; 64, 128, 256, 512
channels times the block's expansion, 1 or 4) and `embedding` (B, 512 or 2048).
`num_classes=0` drops the classifier and returns the embedding as `logits`.

On the CPU the stem's 3x3/2 max pool and the convolutions run as `affectjax.models.kernels`'
`max_pool_cpu` (each output gradient routed to the first maximum of its window, as PyTorch
does: XLA's CPU gradient of `nn.max_pool` builds four index tensors of the padded input and
took 16% of the train step) and `conv_cpu` (the kernel gradient summed over batch chunks);
`pool_impl` / `conv_impl` choose.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence


import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models import kernels
from affectjax.models.layers import BatchNorm, dense_init_uniform

Dtype = Any

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


class Conv(nn.Module):
    """Bias-free square convolution with `nn.Conv`'s parameter (`kernel`, HWIO).

    Attributes:
        features: output channels.
        kernel_size: k.
        stride: spatial stride; the padding is (k - 1) // 2 on every side (torchvision).
        impl: `'auto'` (chosen per device), `'xla'` or `'cpu'` (the kernel gradient summed
            over batch chunks in a scan); see `affectjax.models.kernels.conv`.
        dtype: computation dtype.
    """

    features: int
    kernel_size: int
    stride: int = 1
    impl: str = "auto"
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernels.check_impl("conv_impl", self.impl)
        k = self.kernel_size
        kernel = self.param("kernel", _conv_init, (k, k, x.shape[-1], self.features), jnp.float32)
        dtype = self.dtype or x.dtype
        return kernels.conv(x.astype(dtype), kernel.astype(dtype), self.stride, (k - 1) // 2, self.impl)


def _conv(features: int, kernel: int, stride: int, dtype: Dtype | None, name: str, impl: str = "auto") -> Conv:
    return Conv(features, kernel, stride, impl, dtype, name=name)


class BasicBlock(nn.Module):
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + shortcut, -> ReLU (torchvision).

    Attributes:
        features: channels of both convolutions and of the output (`expansion` 1).
        stride: stride of the first convolution and of the shortcut projection.
        dtype: computation dtype.
        conv_impl: see `Conv.impl`.
    """

    expansion: ClassVar[int] = 1

    features: int
    stride: int = 1
    dtype: Dtype | None = None
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = _conv(self.features, 3, self.stride, self.dtype, "conv1", self.conv_impl)(x)
        y = nn.relu(BatchNorm(1e-5, dtype=self.dtype, name="bn1")(y, train))
        y = _conv(self.features, 3, 1, self.dtype, "conv2", self.conv_impl)(y)
        y = BatchNorm(1e-5, dtype=self.dtype, name="bn2")(y, train)
        return nn.relu(y + _shortcut(x, self.features, self.stride, self.dtype, self.conv_impl, train))


class Bottleneck(nn.Module):
    """conv1x1 -> BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv1x1 (x4) -> BN,
    + shortcut, -> ReLU (torchvision's `Bottleneck`, stride on the 3x3: "ResNet v1.5").

    Attributes:
        features: channels of the 1x1 and 3x3 convolutions; the output has
            `expansion * features` (torchvision's `planes`; `groups=1`, `base_width=64`).
        stride: stride of the 3x3 convolution and of the shortcut projection.
        dtype: computation dtype.
        conv_impl: see `Conv.impl`.
    """

    expansion: ClassVar[int] = 4

    features: int
    stride: int = 1
    dtype: Dtype | None = None
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        out = self.features * self.expansion
        y = _conv(self.features, 1, 1, self.dtype, "conv1", self.conv_impl)(x)
        y = nn.relu(BatchNorm(1e-5, dtype=self.dtype, name="bn1")(y, train))
        y = _conv(self.features, 3, self.stride, self.dtype, "conv2", self.conv_impl)(y)
        y = nn.relu(BatchNorm(1e-5, dtype=self.dtype, name="bn2")(y, train))
        y = _conv(out, 1, 1, self.dtype, "conv3", self.conv_impl)(y)
        y = BatchNorm(1e-5, dtype=self.dtype, name="bn3")(y, train)
        return nn.relu(y + _shortcut(x, out, self.stride, self.dtype, self.conv_impl, train))


def _shortcut(x: jax.Array, features: int, stride: int, dtype: Dtype | None, impl: str, train: bool) -> jax.Array:
    """Identity, or 1x1/stride conv + BN (`downsample.0`/`.1`) when the shape changes.

    Called inside the block's compact `__call__`, so the modules are the block's children.
    """
    if stride == 1 and x.shape[-1] == features:
        return x
    x = _conv(features, 1, stride, dtype, "downsample_0", impl)(x)
    return BatchNorm(1e-5, dtype=dtype, name="downsample_1")(x, train)


class ResNet(nn.Module):
    """torchvision ResNet.

    Attributes:
        stage_sizes: blocks per stage ((2, 2, 2, 2) for ResNet-18, (3, 4, 6, 3) for
            ResNet-34 and -50).
        block_cls: `BasicBlock` or `Bottleneck`.
        num_classes: classifier outputs (0 = none).
        width: `features` of the first stage's blocks (doubled per stage), and the stem's
            output channels.
        dtype: computation dtype (parameters stay float32); logits are float32.
        pool_impl: stem max pool, `kernels.max_pool`: `'auto'` (chosen per device), `'xla'`
            (`nn.max_pool`) or `'cpu'` (gradient to each window's first maximum).
        conv_impl: every convolution, `kernels.conv`: `'auto'`, `'xla'` or `'cpu'` (kernel
            gradient summed over batch chunks).
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    block_cls: Any = BasicBlock
    num_classes: int = 1000
    width: int = 64
    dtype: Dtype | None = None
    pool_impl: str = "auto"
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[dict, dict]:
        """Runs the network on NHWC images; see the module docstring for the outputs."""
        if x.ndim != 4:
            raise ValueError(f"images must be NHWC (B, H, W, C), got shape {x.shape}")
        inter: dict[str, jax.Array] = {}
        x = _conv(self.width, 7, 2, self.dtype, "conv1", self.conv_impl)(x)
        x = nn.relu(BatchNorm(1e-5, dtype=self.dtype, name="bn1")(x, train))
        kernels.check_impl("pool_impl", self.pool_impl)
        x = kernels.max_pool(x, 3, 2, 1, self.pool_impl)
        inter["stem"] = x
        for i, size in enumerate(self.stage_sizes):
            for j in range(size):
                stride = 2 if i > 0 and j == 0 else 1
                block = self.block_cls(self.width * 2**i, stride, self.dtype, self.conv_impl, name=f"layer{i + 1}_{j}")
                x = block(x, train)
            inter[f"stage_{i}"] = x
        embedding = jnp.mean(x, axis=(1, 2), dtype=jnp.float32).astype(x.dtype)
        inter["embedding"] = embedding
        if self.num_classes == 0:
            return {"logits": embedding.astype(jnp.float32)}, inter
        fan_in = embedding.shape[-1]
        logits = nn.Dense(
            self.num_classes,
            dtype=self.dtype,
            kernel_init=dense_init_uniform(fan_in),
            bias_init=lambda key, shape, dtype=jnp.float32: dense_init_uniform(fan_in)(key, shape, dtype),
            name="fc",
        )(embedding)
        return {"logits": logits.astype(jnp.float32)}, inter


def resnet18(**kwargs: Any) -> ResNet:
    """torchvision `resnet18` (11,689,512 parameters with 1000 classes)."""
    return ResNet(stage_sizes=(2, 2, 2, 2), block_cls=BasicBlock, **kwargs)


def resnet34(**kwargs: Any) -> ResNet:
    """torchvision `resnet34` (21,797,672 parameters with 1000 classes)."""
    return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=BasicBlock, **kwargs)


def resnet50(**kwargs: Any) -> ResNet:
    """torchvision `resnet50` (25,557,032 parameters with 1000 classes)."""
    return ResNet(stage_sizes=(3, 4, 6, 3), block_cls=Bottleneck, **kwargs)
