"""The fully convolutional DenseNet ("Tiramisu") with task-specific BatchNorm and feedback inputs.

Jégou et al., "The One Hundred Layers Tiramisu: Fully Convolutional DenseNets for Semantic
Segmentation" (CVPR workshops 2017), as configured for the iFAN backbone by Li et al.,
"Integrated Face Analytics Networks through Cross-Dataset Hybrid Training" (ACM MM 2017),
Sec. 4.1.2: 5 dense blocks down and 5 up, 3 layers per block, growth rate 12, a 7x7 initial
convolution, 2x2 average pooling down and sub-pixel upsampling (Shi et al., CVPR 2016)
followed by a convolution up. With a 128x128 input the down path runs at 128, 64, 32, 16,
8, the bottleneck at 4 and the up path at 8 ... 128.

* `TaskBatchNorm`: one set of BN parameters and statistics per data set, the paper's
  "task-dependent batch normalization parameters" of the backbone (Sec. 3.3, 4.3.3).
* `feedback` is the iFAN task integrator's input: maps `{resolution: (B, r, r, c)}`
  concatenated on the channel axis at every merge point of that resolution (the image
  before the stem, after each down-path dense block, before each transition up, and the
  final features), where the authors' released Keras code concatenates them.
* Every convolution is `Conv` (`nn.Conv`'s parameters), whose custom gradient keeps
  iFAN's `nn.scan` loop as fast as the unrolled one on the CPU (`kernels.conv_same`).

Outputs of `apply(variables, images, feedback=..., bn_set=..., train=...)`: `(outputs,
intermediates)`, outputs `{"logits": (B, H, W, num_classes)}` (float32) when `num_classes
> 0` else `{}`; intermediates `down_<r>` (each down-path dense block, before feedback),
`bottleneck`, `up_<r>` (each up-path dense block) and `features` (the last up block with the
full-resolution feedback).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models import kernels

Dtype = Any

# Keras `he_uniform`: U(-sqrt(6 / fan_in), sqrt(6 / fan_in)).
he_uniform = nn.initializers.variance_scaling(2.0, "fan_in", "uniform")


class TaskBatchNorm(nn.Module):
    """Batch normalisation with one row of scale, bias and running statistics per data set.

    Numerically `layers.BatchNorm` (float32 statistics, biased batch variance for the
    normalisation, unbiased variance for the running average, flax momentum convention)
    applied with row `set_index` of every variable. `set_index` may be traced (chosen per
    batch under `jit`): rows are read with `jnp.take` and written with `.at[].set`, so a
    batch of one set leaves the other sets' statistics bit-identical and gives their scale
    and bias exactly zero gradient. An out-of-range traced index reads NaN.

    Attributes:
        num_sets: number of data sets (rows).
        epsilon: added to the variance.
        momentum: decay of the running averages (0.9 == PyTorch 0.1).
        dtype: dtype of the output (default: the input's).

    Variables:
        params: `scale` (num_sets, C) ones, `bias` (num_sets, C) zeros.
        batch_stats: `mean` (num_sets, C) zeros, `var` (num_sets, C) ones.
    """

    num_sets: int = 1
    epsilon: float = 1e-5
    momentum: float = 0.9
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, set_index: Any, train: bool = False) -> jax.Array:
        """Normalises `x` (..., C) with the batch statistics (`train`) or row `set_index` of the running ones."""
        if isinstance(set_index, int) and not 0 <= set_index < self.num_sets:
            raise ValueError(f"BN set {set_index} out of range for num_sets={self.num_sets}")
        features = x.shape[-1]
        shape = (self.num_sets, features)
        scale = self.param("scale", nn.initializers.ones, shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, shape, jnp.float32)
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, shape, jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, shape, jnp.float32)
        index = jnp.asarray(set_index, jnp.int32)
        axes = tuple(range(x.ndim - 1))
        if train:
            xf = x.astype(jnp.float32)
            mean = jnp.mean(xf, axis=axes)
            var = jnp.mean(jnp.square(xf - mean), axis=axes)
            if not self.is_initializing():
                n = x.size // features
                unbiased = var * (n / max(n - 1, 1))
                m = self.momentum
                old_mean = jnp.take(ra_mean.value, index, axis=0)
                old_var = jnp.take(ra_var.value, index, axis=0)
                ra_mean.value = jnp.asarray(ra_mean.value).at[index].set(m * old_mean + (1.0 - m) * mean)
                ra_var.value = jnp.asarray(ra_var.value).at[index].set(m * old_var + (1.0 - m) * unbiased)
        else:
            mean = jnp.take(ra_mean.value, index, axis=0)
            var = jnp.take(ra_var.value, index, axis=0)
        mul = jnp.take(scale, index, axis=0) * jax.lax.rsqrt(var + self.epsilon)
        add = jnp.take(bias, index, axis=0) - mean * mul
        dtype = self.dtype or x.dtype
        return x.astype(dtype) * mul.astype(dtype) + add.astype(dtype)


def depth_to_space(x: jax.Array, factor: int = 2) -> jax.Array:
    """Sub-pixel shuffle (TensorFlow `depth_to_space`, NHWC): (B, H, W, f*f*C) -> (B, f*H, f*W, C).

    Output pixel (f*h + i, f*w + j), channel c is input pixel (h, w), channel (i*f + j)*C + c.
    """
    b, h, w, depth = x.shape
    if depth % (factor * factor):
        raise ValueError(f"depth_to_space needs channels divisible by {factor * factor}, got {depth}")
    c = depth // (factor * factor)
    x = x.reshape(b, h, w, factor, factor, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * factor, w * factor, c)


class Conv(nn.Module):
    """Square "SAME" convolution with `nn.Conv`'s parameters (`kernel` HWIO, zero-init `bias`
    if `use_bias`) and Keras `he_uniform` init, run by `kernels.conv_same`; stride s samples
    the stride-1 result where TensorFlow's SAME stride-s windows lie (sizes divisible by s).
    `dtype`: computation dtype (parameters stay float32); `impl`: `'auto'` (chosen per
    device), `'xla'` or `'cpu'` (`affectjax.models.kernels`)."""

    features: int
    kernel_size: int
    stride: int = 1
    use_bias: bool = False
    dtype: Dtype | None = None
    impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, s = self.kernel_size, self.stride
        kernel = self.param("kernel", he_uniform, (k, k, x.shape[-1], self.features), jnp.float32)
        dtype = self.dtype or x.dtype
        y = kernels.conv_same(x.astype(dtype), kernel.astype(dtype), self.impl)
        if s > 1:
            start = (k - 1) // 2 - max(k - s, 0) // 2  # where SAME stride-s windows start
            y = y[:, start::s, start::s][:, : x.shape[1] // s, : x.shape[2] // s]
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(dtype)
        return y


class DenseBlock(nn.Module):
    """`num_layers` x (TaskBatchNorm -> ReLU -> 3x3 conv(growth_rate)), each output concatenated
    to the running input: (B, H, W, C) -> (B, H, W, C + num_layers * growth_rate)."""

    num_layers: int
    growth_rate: int
    num_bn_sets: int = 1
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, bn_set: Any, train: bool) -> jax.Array:
        for i in range(self.num_layers):
            y = TaskBatchNorm(self.num_bn_sets, dtype=self.dtype, name=f"layer{i}_bn")(x, bn_set, train)
            y = Conv(self.growth_rate, 3, dtype=self.dtype, name=f"layer{i}_conv")(nn.relu(y))
            x = jnp.concatenate([x, y.astype(x.dtype)], axis=-1)
        return x


class FCDenseNet(nn.Module):
    """Fully convolutional DenseNet with per-data-set BatchNorm and multi-resolution feedback.

    Attributes:
        num_blocks: dense blocks on the down path (the same number up); the input size must
            be divisible by 2**num_blocks.
        layers_per_block: layers of every dense block (bottleneck included).
        growth_rate: channels each dense layer adds.
        stem_features: channels of the initial convolution (no bias, stride 1).
        stem_kernel: its kernel size.
        upsample_features: channels of the two 3x3 convolutions (ReLU, no bias) around each
            sub-pixel shuffle of the transition up (divisible by 4).
        num_bn_sets: BN sets of every `TaskBatchNorm` (one per data set).
        num_classes: > 0 adds a final 1x1 convolution (with bias) to per-pixel logits.
        dtype: computation dtype (parameters and BN statistics stay float32).

    Transition down is TaskBatchNorm -> ReLU -> 1x1 conv -> 2x2 average pool, the convolution
    keeping the channel count of the dense block it follows (feedback channels, if any, are
    mapped back to that count, as in the authors' code). Every convolution uses Keras'
    `he_uniform` initialisation.
    """

    num_blocks: int = 5
    layers_per_block: int = 3
    growth_rate: int = 12
    stem_features: int = 48
    stem_kernel: int = 7
    upsample_features: int = 128
    num_bn_sets: int = 1
    num_classes: int = 0
    dtype: Dtype | None = None

    def _merge(self, x: jax.Array, feedback: Mapping[int, jax.Array] | None) -> jax.Array:
        if feedback is None or x.shape[1] not in feedback:
            return x
        return jnp.concatenate([x, jnp.asarray(feedback[x.shape[1]]).astype(x.dtype)], axis=-1)

    def _check(self, x: jax.Array, feedback: Mapping[int, jax.Array] | None) -> None:
        if x.ndim != 4:
            raise ValueError(f"images must be NHWC (B, H, W, C), got shape {x.shape}")
        size = x.shape[1]
        step = 2**self.num_blocks
        if x.shape[2] != size or size % step:
            raise ValueError(f"FCDenseNet with {self.num_blocks} blocks needs a square input whose size is "
                             f"divisible by {step}, got {x.shape[1]}x{x.shape[2]}")
        if self.upsample_features % 4:
            raise ValueError(f"upsample_features must be divisible by 4, got {self.upsample_features}")
        allowed = {size // 2**k for k in range(self.num_blocks + 1)}
        for r, f in (feedback or {}).items():
            if r not in allowed:
                raise ValueError(f"no feedback merge point at resolution {r}; choose among {sorted(allowed)}")
            if tuple(f.shape[:3]) != (x.shape[0], r, r) or f.ndim != 4:
                raise ValueError(f"feedback at resolution {r} must be (B={x.shape[0]}, {r}, {r}, C), got {f.shape}")

    @nn.compact
    def __call__(self, x: jax.Array, *, feedback: Mapping[int, jax.Array] | None = None, bn_set: Any = 0,
                 train: bool = False) -> tuple[dict, dict]:
        """Runs the network on NHWC images; see the module docstring for the outputs.

        Args:
            x: (B, S, S, C) images, S divisible by 2**num_blocks.
            feedback: None or `{resolution: (B, r, r, c)}` maps concatenated at that resolution's
                merge points (parameter shapes depend on the resolutions and channel counts given).
            bn_set: index of the BN set (int, may be traced).
            train: batch statistics (update needs `mutable=["batch_stats"]`).
        """
        self._check(x, feedback)
        dtype = self.dtype or x.dtype
        inter: dict[str, jax.Array] = {}
        bn = dict(num_bn_sets=self.num_bn_sets, dtype=self.dtype)
        x = self._merge(x.astype(dtype), feedback)
        x = Conv(self.stem_features, self.stem_kernel, dtype=self.dtype, name="stem")(x)
        skips = []
        for b in range(self.num_blocks):
            x = DenseBlock(self.layers_per_block, self.growth_rate, **bn, name=f"down{b}")(x, bn_set, train)
            inter[f"down_{x.shape[1]}"] = x
            skips.append(x)
            channels = x.shape[-1]
            x = self._merge(x, feedback)
            x = TaskBatchNorm(self.num_bn_sets, dtype=self.dtype, name=f"transition_down{b}_bn")(x, bn_set, train)
            x = Conv(channels, 1, dtype=self.dtype, name=f"transition_down{b}_conv")(nn.relu(x))
            x = nn.avg_pool(x, (2, 2), strides=(2, 2))
        x = DenseBlock(self.layers_per_block, self.growth_rate, **bn, name="bottleneck")(x, bn_set, train)
        inter["bottleneck"] = x
        for b in range(self.num_blocks):
            x = self._merge(x, feedback)
            x = nn.relu(Conv(self.upsample_features, 3, dtype=self.dtype, name=f"transition_up{b}_conv0")(x))
            x = depth_to_space(x, 2)
            x = nn.relu(Conv(self.upsample_features, 3, dtype=self.dtype, name=f"transition_up{b}_conv1")(x))
            x = jnp.concatenate([x, skips.pop()], axis=-1)
            x = DenseBlock(self.layers_per_block, self.growth_rate, **bn, name=f"up{b}")(x, bn_set, train)
            inter[f"up_{x.shape[1]}"] = x
        x = self._merge(x, feedback)
        inter["features"] = x
        if self.num_classes <= 0:
            return {}, inter
        logits = Conv(self.num_classes, 1, use_bias=True, dtype=self.dtype, name="classifier")(x)
        return {"logits": logits.astype(jnp.float32)}, inter


def fcdensenet(**kwargs: Any) -> FCDenseNet:
    """`FCDenseNet` with the iFAN configuration (5 blocks of 3 layers, growth 12, stem 48)."""
    return FCDenseNet(**kwargs)
