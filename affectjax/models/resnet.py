"""ResNet-18 in torchvision's layout (the CCT backbone).

He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1 (18-layer
column) with torchvision's `BasicBlock` (stride on the first 3x3 conv, 1x1/stride
projection + BN on the shortcut when the shape changes). Parameter names mirror
torchvision's state-dict keys with indices joined by `_` (`layer2.0.downsample.0.weight`
-> `params/layer2_0/downsample_0/kernel`), see `affectjax.convert.from_torchvision`.

Outputs of `apply(variables, images, train=...)`: `({"logits": (B, num_classes)},
intermediates)` with intermediates `stem` (after the max pool, stride 4, 64 channels),
`stage_0` ... `stage_3` (`layer1` ... `layer4`, strides 4, 8, 16, 32; 64, 128, 256, 512
channels) and `embedding` (B, 512). `num_classes=0` drops the classifier and returns the
embedding as `logits`.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models.layers import BatchNorm, dense_init_uniform

Dtype = Any

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(features: int, kernel: int, stride: int, dtype: Dtype | None, name: str) -> nn.Conv:
    pad = (kernel - 1) // 2
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=[(pad, pad), (pad, pad)],
        use_bias=False,
        dtype=dtype,
        kernel_init=_conv_init,
        name=name,
    )


class BasicBlock(nn.Module):
    """conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN, + shortcut, -> ReLU."""

    features: int
    stride: int = 1
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        shortcut = x
        y = _conv(self.features, 3, self.stride, self.dtype, "conv1")(x)
        y = nn.relu(BatchNorm(1e-5, dtype=self.dtype, name="bn1")(y, train))
        y = _conv(self.features, 3, 1, self.dtype, "conv2")(y)
        y = BatchNorm(1e-5, dtype=self.dtype, name="bn2")(y, train)
        if self.stride != 1 or x.shape[-1] != self.features:
            shortcut = _conv(self.features, 1, self.stride, self.dtype, "downsample_0")(x)
            shortcut = BatchNorm(1e-5, dtype=self.dtype, name="downsample_1")(shortcut, train)
        return nn.relu(y + shortcut)


class ResNet(nn.Module):
    """torchvision ResNet with basic blocks.

    Attributes:
        stage_sizes: blocks per stage ((2, 2, 2, 2) for ResNet-18).
        num_classes: classifier outputs (0 = none).
        width: channels of the first stage (doubled per stage).
        dtype: computation dtype (parameters stay float32); logits are float32.
    """

    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    num_classes: int = 1000
    width: int = 64
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[dict, dict]:
        """Runs the network on NHWC images; see the module docstring for the outputs."""
        if x.ndim != 4:
            raise ValueError(f"images must be NHWC (B, H, W, C), got shape {x.shape}")
        inter: dict[str, jax.Array] = {}
        x = _conv(self.width, 7, 2, self.dtype, "conv1")(x)
        x = nn.relu(BatchNorm(1e-5, dtype=self.dtype, name="bn1")(x, train))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
        inter["stem"] = x
        for i, size in enumerate(self.stage_sizes):
            for j in range(size):
                stride = 2 if i > 0 and j == 0 else 1
                x = BasicBlock(self.width * 2**i, stride, self.dtype, name=f"layer{i + 1}_{j}")(x, train)
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
    return ResNet(stage_sizes=(2, 2, 2, 2), **kwargs)
