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

On the CPU the stem's 3x3/2 max pool runs as `max_pool_shift` (maximum of shifted strided
slices, with a custom VJP routing each output gradient to the first maximum of its
window, as PyTorch does): XLA's CPU lowering of the `select_and_scatter` gradient of
`nn.max_pool` builds four index tensors of the padded input and took 16% of the train step.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import functools

import jax
import jax.numpy as jnp
import flax.linen as nn

from affectjax.models.layers import BatchNorm, dense_init_uniform

Dtype = Any

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu") on every conv.
_conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _window_tap(xp: jax.Array, i: int, j: int, stride: int, out_hw: tuple[int, int]) -> jax.Array:
    """xp[:, stride * o + i, stride * q + j, :] for all output positions (o, q)."""
    h_out, w_out = out_hw
    limit = (xp.shape[0], i + stride * (h_out - 1) + 1, j + stride * (w_out - 1) + 1, xp.shape[3])
    return jax.lax.slice(xp, (0, i, j, 0), limit, (1, stride, stride, 1))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool_shift(x: jax.Array, window: int, stride: int, pad: int) -> jax.Array:
    """Square max pool (NHWC, `-inf` padding) as a running maximum of k*k strided slices.

    The same values as `nn.max_pool(x, (k, k), (s, s), [(p, p), (p, p)])` (which computes
    them when no gradient is taken) and `torch.nn.functional.max_pool2d(x, k, s, p)`. Under
    differentiation the forward pass also records, per output,
    the window position of the first maximum in row-major order (int8); the custom VJP sends
    the output gradient there only (PyTorch's rule, the same as XLA's `select_and_scatter`
    with `>=`), building each of the s*s stride phases of the input gradient from shifted
    copies and interleaving them with one reshape.

    Args:
        x: (B, H, W, C).
        window: kernel size k (k*k <= 127).
        stride: stride s.
        pad: padding p on every side.

    Returns:
        (B, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1, C).
    """
    # Outside differentiation XLA's reduce_window is the faster forward (25 vs 35 ms at
    # 32x112x112x64 on 2 cores); the values are the same (a maximum is exact).
    _check_window(window)
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=[(pad, pad), (pad, pad)])


def _check_window(window: int) -> None:
    if window * window > 127:
        raise ValueError(f"max_pool_shift window must satisfy window**2 <= 127, got {window}")


def _max_pool_shift_fwd(x, window, stride, pad):
    _check_window(window)
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-jnp.inf)
    out_hw = ((xp.shape[1] - window) // stride + 1, (xp.shape[2] - window) // stride + 1)
    y = argmax = None
    for i in range(window):
        for j in range(window):
            tap = _window_tap(xp, i, j, stride, out_hw)
            if y is None:
                y, argmax = tap, jnp.zeros(tap.shape, jnp.int8)
            else:
                better = tap > y
                y = jnp.where(better, tap, y)
                argmax = jnp.where(better, jnp.int8(i * window + j), argmax)
    return y, (argmax, x.shape)


def _max_pool_shift_bwd(window, stride, pad, residuals, g):
    argmax, (batch, h, w, channels) = residuals
    # Padded-input row stride * o + i lies in stride phase i % stride, phase row o + i // stride.
    reach = (window - 1) // stride
    phase_hw = (g.shape[1] + reach, g.shape[2] + reach)
    zero = jnp.zeros((), g.dtype)
    phases: list[list[Any]] = [[None] * stride for _ in range(stride)]
    for i in range(window):
        for j in range(window):
            part = jnp.where(argmax == i * window + j, g, zero)
            di, dj = i // stride, j // stride
            part = jnp.pad(part, ((0, 0), (di, reach - di), (dj, reach - dj), (0, 0)))
            old = phases[i % stride][j % stride]
            phases[i % stride][j % stride] = part if old is None else old + part
    rows = [
        jnp.stack([p if p is not None else jnp.zeros((batch,) + phase_hw + (channels,), g.dtype) for p in row], axis=3)
        for row in phases
    ]
    full = jnp.stack(rows, axis=2).reshape(batch, phase_hw[0] * stride, phase_hw[1] * stride, channels)
    short_h, short_w = max(0, pad + h - full.shape[1]), max(0, pad + w - full.shape[2])
    if short_h or short_w:
        full = jnp.pad(full, ((0, 0), (0, short_h), (0, short_w), (0, 0)))
    return (full[:, pad : pad + h, pad : pad + w, :],)


max_pool_shift.defvjp(_max_pool_shift_fwd, _max_pool_shift_bwd)


# Output-gradient elements per batch chunk of the kernel gradient (0.8 MB in float32: one
# example in the stem and layer1, 2 in layer2, 4 in layer3, 8 in layer4). Train step of
# ResNet-18 at batch 32 on 2 cores for 16x / 4x / 1x / 0.5x this: 1818 / 1774 / 1588 / 1634 ms.
_KERNEL_GRAD_CHUNK_ELEMENTS = 56 * 56 * 64


def _conv_nhwc(x: jax.Array, kernel: jax.Array, stride: int, pad: int) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), [(pad, pad), (pad, pad)], dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_chunked_kernel_grad(x: jax.Array, kernel: jax.Array, stride: int, pad: int, chunk: int) -> jax.Array:
    """Convolution (NHWC, HWIO) whose kernel gradient is summed over batch chunks.

    The forward pass and the input gradient are XLA's; the kernel gradient is XLA's own
    (a convolution over the batch) computed separately on each `chunk` examples and summed,
    so that the layout copies it needs and its operands stay in cache (ResNet-18 train step
    on 2 CPU cores: 2156 -> 1588 ms; README, performance section).

    Args:
        x: (B, H, W, C).
        kernel: (k, k, C, O).
        stride: spatial stride.
        pad: zero padding on every side.
        chunk: examples per kernel-gradient chunk (the last chunk may be shorter).

    Returns:
        (B, H_out, W_out, O), the same as `lax.conv_general_dilated`.
    """
    return _conv_nhwc(x, kernel, stride, pad)


def _conv_chunked_fwd(x, kernel, stride, pad, chunk):
    return _conv_nhwc(x, kernel, stride, pad), (x, kernel)


def _conv_chunked_bwd(stride, pad, chunk, residuals, g):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda a: _conv_nhwc(a, kernel, stride, pad), x)
    (dx,) = input_vjp(g)
    dkernel = None
    for start in range(0, x.shape[0], chunk):
        _, kernel_vjp = jax.vjp(lambda w: _conv_nhwc(x[start : start + chunk], w, stride, pad), kernel)
        (part,) = kernel_vjp(g[start : start + chunk])
        dkernel = part if dkernel is None else dkernel + part
    return dx, dkernel


conv_chunked_kernel_grad.defvjp(_conv_chunked_fwd, _conv_chunked_bwd)


class Conv(nn.Module):
    """Bias-free square convolution with `nn.Conv`'s parameter (`kernel`, HWIO).

    Attributes:
        features: output channels.
        kernel_size: k.
        stride: spatial stride; the padding is (k - 1) // 2 on every side (torchvision).
        impl: `'xla'` (`lax.conv_general_dilated`), `'chunked'` (`conv_chunked_kernel_grad`
            with chunks of about `_KERNEL_GRAD_CHUNK_ELEMENTS` output-gradient elements) or
            `'auto'` (`'chunked'` when JAX's default backend is the CPU, else `'xla'`).
        dtype: computation dtype.
    """

    features: int
    kernel_size: int
    stride: int = 1
    impl: str = "auto"
    dtype: Dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", _conv_init, (k, k, x.shape[-1], self.features), jnp.float32)
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        pad = (k - 1) // 2
        impl = self.impl
        if impl == "auto":
            impl = "chunked" if jax.default_backend() == "cpu" else "xla"
        if impl == "xla":
            return _conv_nhwc(x, kernel, self.stride, pad)
        if impl != "chunked":
            raise ValueError(f"conv_impl must be 'auto', 'xla' or 'chunked', got {self.impl!r}")
        out_hw = (x.shape[1] + 2 * pad - k) // self.stride + 1, (x.shape[2] + 2 * pad - k) // self.stride + 1
        chunk = max(1, _KERNEL_GRAD_CHUNK_ELEMENTS // (out_hw[0] * out_hw[1] * self.features))
        return conv_chunked_kernel_grad(x, kernel, self.stride, pad, chunk)


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
        pool_impl: stem max pool: `'xla'` (`nn.max_pool`), `'shift'` (`max_pool_shift`)
            or `'auto'` (`'shift'` when JAX's default backend is the CPU, else `'xla'`).
        conv_impl: every convolution: `'xla'`, `'chunked'` (kernel gradient summed over
            batch chunks, see `Conv`) or `'auto'` (`'chunked'` on the CPU, else `'xla'`).
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
        pool_impl = self.pool_impl
        if pool_impl == "auto":
            pool_impl = "shift" if jax.default_backend() == "cpu" else "xla"
        if pool_impl == "shift":
            x = max_pool_shift(x, 3, 2, 1)
        elif pool_impl == "xla":
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
        else:
            raise ValueError(f"pool_impl must be 'auto', 'xla' or 'shift', got {self.pool_impl!r}")
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
