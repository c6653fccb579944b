"""The CPU kernels: custom-VJP formulations of the operations XLA's CPU backend runs slowly.

Every operation here comes in one naming scheme: `<op>_xla` is the plain XLA operation,
`<op>_cpu` our formulation of the same values and gradients (a custom VJP), and `<op>(...,
impl)` chooses between them:

* `impl="auto"` chooses per device, when the program is lowered for its device
  (`jax.lax.platform_dependent`): `<op>_cpu` where the program runs on a CPU, `<op>_xla`
  on a GPU or TPU, whatever `jax.default_backend()` says when the model is traced. Both
  are traced; the compiled program holds only the chosen one.
* `impl="xla"` / `impl="cpu"` force one of them (benchmarks, tests, export).

| op | `_cpu` formulation | why (2-core CPU; docs/performance.md) |
|---|---|---|
| `depthwise_conv` | k*k shifted multiply-adds; input gradient one transposed shift sum; kernel gradient one reduction per tap, accumulated over batch chunks in a `lax.scan` | XLA's grouped convolution is 3-10x slower |
| `max_pool` | the gradient goes to the first maximum of each window (recorded as int8 in the forward pass), PyTorch's rule, built from shifted copies | the `select_and_scatter` gradient builds four index tensors of the padded input |
| `conv` | XLA's forward and input gradient; the kernel gradient summed over batch chunks in a `lax.scan`, written as an NHWC/HWIO convolution | operands and layout copies stay in cache |
| `conv_same` | gradients as NHWC/HWIO convolutions (flipped kernel; batch and channels swapped) | inside a `scan`, autodiff's transposed convolutions run ~30x slower |

The values are the XLA operation's (sums in another order: float32 rounding); the tests
compare values and gradients with `<op>_xla`, under `jit`, `vmap` and in the models.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

Padding = str | Sequence[tuple[int, int]]

IMPLS = ("auto", "xla", "cpu")


def choose(op: str, impl: str, cpu: Callable[..., Any], xla: Callable[..., Any], *operands: Any) -> Any:
    """Runs `cpu(*operands)` or `xla(*operands)` as `impl` says (module docstring).

    Raises:
        ValueError: `impl` is not one of `IMPLS` (the message names `op` and the choices).
    """
    check_impl(f"{op} impl", impl)
    if impl == "auto":
        return jax.lax.platform_dependent(*operands, cpu=cpu, default=xla)
    return cpu(*operands) if impl == "cpu" else xla(*operands)


def check_impl(attribute: str, impl: str) -> None:
    """One error line naming a module `attribute` whose value is not one of `IMPLS`."""
    if impl not in IMPLS:
        raise ValueError(f"{attribute} must be one of {', '.join(map(repr, IMPLS))}, got {impl!r}")


def _tap(xp: jax.Array, i: int, j: int, stride: int, out_hw: tuple[int, int]) -> jax.Array:
    """xp[:, stride * o + i, stride * q + j, :] for all output positions (o, q)."""
    h_out, w_out = out_hw
    limit = (xp.shape[0], i + stride * (h_out - 1) + 1, j + stride * (w_out - 1) + 1, xp.shape[3])
    return jax.lax.slice(xp, (0, i, j, 0), limit, (1, stride, stride, 1))


def _batch_chunks(arrays: Sequence[jax.Array], chunk: int) -> tuple[jax.Array, ...]:
    """Each (B, ...) array as (ceil(B / chunk), chunk, ...), zero-padded at the end: the
    zero examples add nothing to a sum of products over the batch."""
    batch = arrays[0].shape[0]
    n = -(-batch // chunk)
    out = []
    for a in arrays:
        a = jnp.pad(a, ((0, n * chunk - batch),) + ((0, 0),) * (a.ndim - 1))
        out.append(a.reshape((n, chunk) + a.shape[1:]))
    return tuple(out)


# ---------------------------------------------------------------------------------------
# depthwise_conv

# Examples per step of the depthwise kernel-gradient scan (2: fastest on a 2-core CPU,
# batch 32, B0 shapes).
DEPTHWISE_KERNEL_GRAD_CHUNK = 2


def explicit_pads(shape_hw: tuple[int, int], kernel_hw: tuple[int, int], stride: int,
                  padding: Padding) -> tuple[tuple[int, int], ...]:
    """`padding` ('SAME', 'VALID' or pairs) as ((top, bottom), (left, right)) ints."""
    if isinstance(padding, str):
        padding = jax.lax.padtype_to_pads(shape_hw, kernel_hw, (stride, stride), padding)
    return tuple(tuple(int(p) for p in pair) for pair in padding)


def _shift_sum(xp: jax.Array, kernel: jax.Array, stride: int, out_hw: tuple[int, int]) -> jax.Array:
    """sum_ij xp[:, s*o + i, s*p + j, :] * kernel[i, j, 0, :] over an already padded input."""
    kh, kw = kernel.shape[:2]
    out = None
    for i in range(kh):
        for j in range(kw):
            term = _tap(xp, i, j, stride, out_hw) * kernel[i, j, 0]
            out = term if out is None else out + term
    return out


def depthwise_conv_xla(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """XLA's grouped convolution: (B, H, W, C) x (kh, kw, 1, C) -> (B, H_out, W_out, C)."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        feature_group_count=x.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise_cpu(x: jax.Array, kernel: jax.Array, stride: int, pads: tuple) -> jax.Array:
    (pt, pb), (pl, pr) = pads
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = kernel.shape[:2]
    out_hw = ((xp.shape[1] - kh) // stride + 1, (xp.shape[2] - kw) // stride + 1)
    return _shift_sum(xp, kernel, stride, out_hw)


def _depthwise_cpu_fwd(x, kernel, stride, pads):
    return _depthwise_cpu(x, kernel, stride, pads), (x, kernel)


def _depthwise_cpu_bwd(stride, pads, residuals, g):
    x, kernel = residuals
    kh, kw = kernel.shape[:2]
    (pt, pb), (pl, pr) = pads
    h, w = x.shape[1:3]
    h_out, w_out = g.shape[1:3]
    # Input gradient: the transposed convolution, i.e. the stride-dilated output gradient,
    # padded (negative pads crop) and correlated with the flipped kernel, as one shift sum.
    gp = jax.lax.pad(g, jnp.zeros((), g.dtype), (
        (0, 0, 0),
        (kh - 1 - pt, h + pt - (h_out - 1) * stride - 1, stride - 1),
        (kw - 1 - pl, w + pl - (w_out - 1) * stride - 1, stride - 1),
        (0, 0, 0),
    ))
    dx = _shift_sum(gp, kernel[::-1, ::-1].astype(g.dtype), 1, (h, w))
    # Kernel gradient: one reduction per tap, accumulated over the batch in chunks (a scan),
    # so that the k*k passes over each chunk's input and output gradient hit the cache.
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    chunks = _batch_chunks((xp, g), DEPTHWISE_KERNEL_GRAD_CHUNK)

    def accumulate(total, xg):
        xc, gc = xg
        gc = gc.astype(jnp.float32)
        taps = [jnp.sum(_tap(xc, i, j, stride, (h_out, w_out)).astype(jnp.float32) * gc, axis=(0, 1, 2))
                for i in range(kh) for j in range(kw)]
        return total + jnp.stack(taps), None

    taps, _ = jax.lax.scan(accumulate, jnp.zeros((kh * kw, x.shape[3]), jnp.float32), chunks)
    return dx.astype(x.dtype), taps.reshape(kh, kw, 1, -1).astype(kernel.dtype)


_depthwise_cpu.defvjp(_depthwise_cpu_fwd, _depthwise_cpu_bwd)


def depthwise_conv_cpu(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """Depthwise convolution as a sum of k*k shifted, per-channel-scaled copies of the input.

    The values of `depthwise_conv_xla` (cross-correlation, NHWC, HWIO kernel `(k, k, 1, C)`)
    with pad / strided slice / multiply / add only, which XLA fuses into one loop on CPU.
    The custom VJP computes the input gradient the same way (the transposed convolution:
    dilated, padded output gradient correlated with the flipped kernel) instead of the k*k
    separate pads that differentiating the slices produces; the kernel gradient (one
    reduction per tap) is accumulated over the batch `DEPTHWISE_KERNEL_GRAD_CHUNK` examples
    at a time, which keeps the k*k passes in cache.
    """
    pads = explicit_pads(x.shape[1:3], kernel.shape[:2], stride, padding)
    return _depthwise_cpu(x, kernel, stride, pads)


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, padding: Padding,
                   impl: str = "auto") -> jax.Array:
    """Depthwise convolution (B, H, W, C) x (kh, kw, 1, C): `depthwise_conv_cpu` or `_xla`."""
    return choose("depthwise_conv", impl,
                  functools.partial(depthwise_conv_cpu, stride=stride, padding=padding),
                  functools.partial(depthwise_conv_xla, stride=stride, padding=padding),
                  x, kernel)


# ---------------------------------------------------------------------------------------
# max_pool

def max_pool_xla(x: jax.Array, window: int, stride: int, pad: int) -> jax.Array:
    """`nn.max_pool` with a square window and `-inf` padding `pad` on every side."""
    return nn.max_pool(x, (window, window), strides=(stride, stride), padding=[(pad, pad), (pad, pad)])


def _check_window(window: int) -> None:
    if window * window > 127:
        raise ValueError(f"max_pool_cpu window must satisfy window**2 <= 127, got {window}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool_cpu(x: jax.Array, window: int, stride: int, pad: int) -> jax.Array:
    """Square max pool (NHWC, `-inf` padding) whose gradient goes to each window's first maximum.

    The values of `max_pool_xla` and `torch.nn.functional.max_pool2d(x, k, s, p)` (XLA's
    `reduce_window` computes them outside differentiation: 25 vs 35 ms at 32x112x112x64).
    Under differentiation the forward pass is a running maximum of k*k strided slices that
    also records, per output, the window position of the first maximum in row-major order
    (int8); the custom VJP sends the output gradient there only (PyTorch's rule, the same
    as XLA's `select_and_scatter` with `>=`), building each of the s*s stride phases of the
    input gradient from shifted copies and interleaving them with one reshape.

    Args:
        x: (B, H, W, C).
        window: kernel size k (k*k <= 127).
        stride: stride s.
        pad: padding p on every side.

    Returns:
        (B, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1, C).
    """
    _check_window(window)
    return max_pool_xla(x, window, stride, pad)


def _max_pool_cpu_fwd(x, window, stride, pad):
    _check_window(window)
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-jnp.inf)
    out_hw = ((xp.shape[1] - window) // stride + 1, (xp.shape[2] - window) // stride + 1)
    y = argmax = None
    for i in range(window):
        for j in range(window):
            tap = _tap(xp, i, j, stride, out_hw)
            if y is None:
                y, argmax = tap, jnp.zeros(tap.shape, jnp.int8)
            else:
                better = tap > y
                y = jnp.where(better, tap, y)
                argmax = jnp.where(better, jnp.int8(i * window + j), argmax)
    return y, (argmax, x.shape)


def _max_pool_cpu_bwd(window, stride, pad, residuals, g):
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


max_pool_cpu.defvjp(_max_pool_cpu_fwd, _max_pool_cpu_bwd)


def max_pool(x: jax.Array, window: int, stride: int, pad: int, impl: str = "auto") -> jax.Array:
    """Square max pool with `-inf` padding: `max_pool_cpu` or `max_pool_xla`."""
    return choose("max_pool", impl, lambda a: max_pool_cpu(a, window, stride, pad),
                  lambda a: max_pool_xla(a, window, stride, pad), x)


# ---------------------------------------------------------------------------------------
# conv

# Output-gradient elements per batch chunk of `conv_cpu`'s kernel gradient (0.8 MB in
# float32: one example in ResNet-18's stem and layer1, 2 in layer2, 4 in layer3, 8 in layer4).
CONV_KERNEL_GRAD_CHUNK_ELEMENTS = 56 * 56 * 64
# Chunks per iteration of that scan: 4 made the ResNet-18 train step 1.05x [1.03, 1.07] faster
# than 1 (8: 1.02x) at a program size that does not grow with the batch.
CONV_KERNEL_GRAD_UNROLL = 4

_DN = ("NHWC", "HWIO", "NHWC")


def conv_xla(x: jax.Array, kernel: jax.Array, stride: int, pad: int) -> jax.Array:
    """`lax.conv_general_dilated` (NHWC, HWIO) with zero padding `pad` on every side."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), [(pad, pad), (pad, pad)],
                                        dimension_numbers=_DN)


def conv_kernel_grad(x: jax.Array, g: jax.Array, kernel_hw: tuple[int, int], stride: int,
                     pad: tuple[tuple[int, int], tuple[int, int]]) -> jax.Array:
    """The kernel gradient of a convolution, written as one NHWC/HWIO convolution.

    dk[i, j, c, o] = sum_{b, h, w} x_pad[b, s*h + i, s*w + j, c] g[b, h, w, o]: the input with
    batch and channels swapped (C, H, W, B) correlated with the output gradient (h, w, B, O)
    dilated by the stride, cropped to the kernel's size.
    """
    kh, kw = kernel_hw
    dk = jax.lax.conv_general_dilated(x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3).astype(x.dtype),
                                      (1, 1), pad, rhs_dilation=(stride, stride), dimension_numbers=_DN)
    return dk[:, :kh, :kw, :].transpose(1, 2, 0, 3)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_cpu(x: jax.Array, kernel: jax.Array, stride: int, pad: int) -> jax.Array:
    return conv_xla(x, kernel, stride, pad)


def _conv_cpu_fwd(x, kernel, stride, pad):
    return conv_xla(x, kernel, stride, pad), (x, kernel)


def _conv_cpu_bwd(stride, pad, residuals, g):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda a: conv_xla(a, kernel, stride, pad), x)
    (dx,) = input_vjp(g)
    chunk = max(1, CONV_KERNEL_GRAD_CHUNK_ELEMENTS // (g.shape[1] * g.shape[2] * g.shape[3]))
    kernel_hw = kernel.shape[:2]

    def accumulate(total, xg):
        xc, gc = xg
        part = conv_kernel_grad(xc, gc, kernel_hw, stride, ((pad, pad), (pad, pad)))
        return total + part.astype(jnp.float32), None

    dk, _ = jax.lax.scan(accumulate, jnp.zeros(kernel.shape, jnp.float32), _batch_chunks((x, g), chunk),
                         unroll=CONV_KERNEL_GRAD_UNROLL)
    return dx, dk.astype(kernel.dtype)


_conv_cpu.defvjp(_conv_cpu_fwd, _conv_cpu_bwd)


def conv_cpu(x: jax.Array, kernel: jax.Array, stride: int, pad: int) -> jax.Array:
    """`conv_xla`, whose kernel gradient is summed over batch chunks in a `lax.scan`.

    The forward pass and the input gradient are XLA's; the kernel gradient is computed on
    chunks of about `CONV_KERNEL_GRAD_CHUNK_ELEMENTS` output-gradient elements at a time
    (`conv_kernel_grad`, an NHWC/HWIO convolution: inside a scan, autodiff's own transposed
    convolution runs in its raw dimension order, far slower), so that its operands stay in
    cache. The scan keeps the program (and its compile time) the same size at any batch.
    """
    return _conv_cpu(x, kernel, stride, pad)


def conv(x: jax.Array, kernel: jax.Array, stride: int, pad: int, impl: str = "auto") -> jax.Array:
    """Convolution (NHWC, HWIO, zero padding `pad`): `conv_cpu` or `conv_xla`."""
    return choose("conv", impl, lambda a, b: conv_cpu(a, b, stride, pad),
                  lambda a, b: conv_xla(a, b, stride, pad), x, kernel)


# ---------------------------------------------------------------------------------------
# conv_same

def conv_same_xla(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 "SAME" convolution (NHWC, HWIO)."""
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DN)


@jax.custom_vjp
def conv_same_cpu(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`conv_same_xla` whose gradients are NHWC/HWIO convolutions too.

    Inside a `scan`, XLA's CPU backend runs autodiff's transposed convolutions in their raw
    dimension orders, the kernel gradient ~30x slower than outside; written as plain
    convolutions (input gradient: flipped, in/out-swapped kernel; kernel gradient:
    `conv_kernel_grad`) both run fast (iFAN train step, 64 px: scan 13.5 -> 1.7 s,
    unrolled 2.9 -> 1.5 s).
    """
    return conv_same_xla(x, kernel)


def _conv_same_cpu_fwd(x, kernel):
    return conv_same_xla(x, kernel), (x, kernel)


def _conv_same_cpu_bwd(residuals, g):
    x, kernel = residuals
    k = kernel.shape[0]
    low = (k - 1) // 2  # XLA's SAME padding: (k - 1) // 2 before, the rest after
    flipped = jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2)
    dx = jax.lax.conv_general_dilated(g, flipped.astype(g.dtype), (1, 1), [(k - 1 - low, low)] * 2,
                                      dimension_numbers=_DN)
    dk = conv_kernel_grad(x, g, kernel.shape[:2], 1, ((low, k - 1 - low),) * 2)
    return dx.astype(x.dtype), dk.astype(kernel.dtype)


conv_same_cpu.defvjp(_conv_same_cpu_fwd, _conv_same_cpu_bwd)


def conv_same(x: jax.Array, kernel: jax.Array, impl: str = "auto") -> jax.Array:
    """Stride-1 "SAME" convolution (NHWC, HWIO): `conv_same_cpu` or `conv_same_xla`."""
    return choose("conv_same", impl, conv_same_cpu, conv_same_xla, x, kernel)
