"""EfficientNet B0-B2 in timm's two flavours, plus a tiny test variant.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
(ICML 2019): stem 3x3/2 conv -> 7 stages of MBConv blocks (Table 1) -> 1x1 conv to 1280
(scaled) features -> global average pool -> dropout -> linear classifier; B1/B2 scale
width and depth by eq. (3) with (1.0, 1.1) and (1.1, 1.2).

Two flavours, as in timm:

* `efficientnet_b*`: symmetric padding, BatchNorm eps 1e-5 (timm's own PyTorch training);
* `tf_efficientnet_b*`: TensorFlow "SAME" padding, BatchNorm eps 1e-3 (weights ported from
  the TensorFlow releases, e.g. `tf_efficientnet_b0_ns`, the backbone of MT-EmotiEffNet).

Parameter names mirror timm's state-dict keys with the block index joined by `_`
(`blocks.1.0.conv_dw.weight` -> `params/blocks_1_0/conv_dw/kernel`), see `affectjax.convert`.

Outputs of `apply(variables, images, train=...)`: `({"logits": (B, num_classes)},
intermediates)` with intermediates `stem` (B, H/2, W/2, 32), `stage_0` ... `stage_6` (each
stage's last block output; strides 2, 4, 8, 16, 16, 32, 32), `features` (the 1x1 head
conv output before pooling) and `embedding` (B, num_features), the pooled pre-classifier
features. With `num_classes=0` there is no classifier and `logits` is the embedding (as
timm's `num_classes=0`).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax import registry
from affectjax.models.efficientnet_blocks import BLOCKS
from affectjax.models.efficientnet_builder import (
    EFFICIENTNET_B0_ARCH,
    EFFICIENTNET_TINY_ARCH,
    build_blocks,
    round_channels,
)
from affectjax.models.layers import BatchNorm, PointwiseConv, conv_kernel_init_fan_out, conv_padding, dense_init_uniform

Dtype = Any

# name: (width multiplier, depth multiplier, resolution, dropout), Tan & Le (2019) / timm.
EFFICIENTNET_PARAMS: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
}

BN_EPS_TORCH = 1e-5
BN_EPS_TF = 1e-3


class EfficientNet(nn.Module):
    """EfficientNet backbone and classifier (see module docstring for outputs).

    Attributes:
        arch: block strings, one sequence per stage (`efficientnet_builder`).
        width_multiplier: channel multiplier.
        depth_multiplier: repeat multiplier.
        stem_size: stem channels before width scaling.
        num_features: head channels before width scaling (1280).
        num_classes: classifier outputs; 0 = no classifier.
        pad_type: `''` (symmetric, timm) or `'same'` (TensorFlow).
        bn_eps: BatchNorm epsilon (1e-5 timm, 1e-3 tf_).
        depthwise_impl: `'auto'` (chosen per device), `'xla'` (XLA's grouped convolution)
            or `'cpu'` (shifted multiply-adds, 3-10x faster on CPU); same parameters and
            numbers either way (`affectjax.models.kernels`).
        drop_rate: dropout before the classifier.
        drop_path_rate: maximum stochastic-depth rate (linear over blocks).
        dtype: computation dtype (parameters stay float32); logits are float32.
    """

    arch: Sequence[Sequence[str]] = EFFICIENTNET_B0_ARCH
    width_multiplier: float = 1.0
    depth_multiplier: float = 1.0
    stem_size: int = 32
    num_features: int = 1280
    num_classes: int = 1000
    pad_type: str = ""
    bn_eps: float = BN_EPS_TORCH
    depthwise_impl: str = "auto"
    drop_rate: float = 0.2
    drop_path_rate: float = 0.2
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[dict, dict]:
        """Runs the network.

        Args:
            x: images (B, H, W, 3), float, already normalised by the caller.
            train: batch statistics, dropout and drop path on (needs the `'dropout'` rng
                and `mutable=['batch_stats']`).

        Returns:
            `(outputs, intermediates)` as described in the module docstring.
        """
        if x.ndim != 4:
            raise ValueError(f"images must be NHWC (B, H, W, C), got shape {x.shape}")
        inter: dict[str, jax.Array] = {}
        stem = round_channels(self.stem_size, self.width_multiplier)
        x = nn.Conv(
            stem,
            (3, 3),
            strides=(2, 2),
            padding=conv_padding(3, 2, self.pad_type),
            use_bias=False,
            dtype=self.dtype,
            kernel_init=conv_kernel_init_fan_out(),
            name="conv_stem",
        )(x)
        x = nn.silu(BatchNorm(self.bn_eps, dtype=self.dtype, name="bn1")(x, train))
        inter["stem"] = x
        stages = build_blocks(
            self.arch,
            stem_chs=stem,
            width_multiplier=self.width_multiplier,
            depth_multiplier=self.depth_multiplier,
            drop_path_rate=self.drop_path_rate,
        )
        for i, stage in enumerate(stages):
            for j, args in enumerate(stage):
                block = BLOCKS[args.block_type]
                x = block(
                    args,
                    pad_type=self.pad_type,
                    bn_eps=self.bn_eps,
                    depthwise_impl=self.depthwise_impl,
                    dtype=self.dtype,
                    name=f"blocks_{i}_{j}",
                )(x, train)
            inter[f"stage_{i}"] = x
        features = round_channels(self.num_features, self.width_multiplier)
        x = PointwiseConv(features, self.dtype, name="conv_head")(x)
        x = nn.silu(BatchNorm(self.bn_eps, dtype=self.dtype, name="bn2")(x, train))
        inter["features"] = x
        embedding = jnp.mean(x, axis=(1, 2), dtype=jnp.float32).astype(x.dtype)
        inter["embedding"] = embedding
        if self.num_classes == 0:
            return {"logits": embedding.astype(jnp.float32)}, inter
        h = nn.Dropout(self.drop_rate)(embedding, deterministic=not train)
        logits = nn.Dense(
            self.num_classes,
            dtype=self.dtype,
            kernel_init=dense_init_uniform(self.num_classes),
            name="classifier",
        )(h)
        return {"logits": logits.astype(jnp.float32)}, inter


EFFICIENTNET_NAMES = tuple(f"{p}efficientnet_{v}" for p in ("", "tf_") for v in EFFICIENTNET_PARAMS) + (
    "efficientnet_tiny",
)


def efficientnet_config(name: str) -> dict[str, Any]:
    """The `EfficientNet` attributes that define a named model.

    Args:
        name: one of `EFFICIENTNET_NAMES` (`efficientnet_b0`, `tf_efficientnet_b2`, ...).

    Returns:
        Attribute overrides: multipliers and dropout (Tan & Le Table/eq. 3 values), and for
        `tf_*` TensorFlow "same" padding with BN eps 1e-3; `efficientnet_tiny` is a 4-block
        network (stem 8, head 64 features, 10 classes) for fast tests, not a timm model.
    """
    if name == "efficientnet_tiny":
        return dict(arch=EFFICIENTNET_TINY_ARCH, stem_size=8, num_features=64, num_classes=10)
    if name not in EFFICIENTNET_NAMES:
        raise registry.unknown_name_error("EfficientNet", name, EFFICIENTNET_NAMES)
    width, depth, _, dropout = EFFICIENTNET_PARAMS[name.removeprefix("tf_").removeprefix("efficientnet_")]
    config: dict[str, Any] = dict(width_multiplier=width, depth_multiplier=depth, drop_rate=dropout)
    if name.startswith("tf_"):
        config.update(pad_type="same", bn_eps=BN_EPS_TF)
    return config


def efficientnet(name: str, **kwargs: Any) -> EfficientNet:
    """Builds a named EfficientNet.

    Args:
        name: one of `EFFICIENTNET_NAMES`.
        **kwargs: `EfficientNet` attributes to override (`num_classes`, `drop_rate`,
            `drop_path_rate`, `width_multiplier`, `depth_multiplier`, `dtype`, ...).

    Returns:
        The (unbound) flax module.
    """
    return EfficientNet(**{**efficientnet_config(name), **kwargs})
