"""EfficientNet architecture as data: block strings, channel rounding, depth scaling.

Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs" (ICML 2019), Table 1 (the B0
stages) and eq. (3) (compound scaling of width and depth). The notation and the rounding
rules are timm's (`timm.models._efficientnet_builder`), so that a model built here has the
same shapes, parameter count and parameter order as the timm model of the same name.

A block string such as `ir_r2_k3_s2_e6_c24_se0.25` reads: inverted-residual block (`ir`;
`ds` = depthwise-separable), repeated 2 times, depthwise kernel 3, stride 2 (first repeat
only), expansion ratio 6, 24 output channels, squeeze-excite ratio 0.25 of the block's
*input* channels. `noskip` removes the residual connection.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

# EfficientNet-B0, Tan & Le (2019) Table 1: one list of block strings per stage.
EFFICIENTNET_B0_ARCH: tuple[tuple[str, ...], ...] = (
    ("ds_r1_k3_s1_e1_c16_se0.25",),
    ("ir_r2_k3_s2_e6_c24_se0.25",),
    ("ir_r2_k5_s2_e6_c40_se0.25",),
    ("ir_r3_k3_s2_e6_c80_se0.25",),
    ("ir_r3_k5_s1_e6_c112_se0.25",),
    ("ir_r4_k5_s2_e6_c192_se0.25",),
    ("ir_r1_k3_s1_e6_c320_se0.25",),
)

# A four-stage, one-block-per-stage network for fast tests (not in timm).
EFFICIENTNET_TINY_ARCH: tuple[tuple[str, ...], ...] = (
    ("ds_r1_k3_s1_e1_c8_se0.25",),
    ("ir_r1_k3_s2_e4_c16_se0.25",),
    ("ir_r1_k5_s2_e4_c24_se0.25",),
    ("ir_r1_k3_s2_e4_c32_se0.25",),
)


@dataclasses.dataclass(frozen=True)
class BlockArgs:
    """One resolved block: everything a block module needs, in channels after rounding.

    Attributes:
        block_type: `'ds'` (DepthwiseSeparable) or `'ir'` (InvertedResidual).
        in_chs, out_chs, mid_chs: input, output and expanded channels.
        kernel_size: depthwise kernel size.
        stride: depthwise stride.
        se_chs: squeeze-excite reduced channels (0 = no SE).
        skip: whether the block has a residual connection.
        drop_path_rate: stochastic-depth rate of this block (linear in block index).
    """

    block_type: str
    in_chs: int
    out_chs: int
    mid_chs: int
    kernel_size: int
    stride: int
    se_chs: int
    skip: bool
    drop_path_rate: float


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Rounds `value` to the nearest multiple of `divisor`, never below `round_limit * value`."""
    min_value = min_value or divisor
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < round_limit * value:
        new_value += divisor
    return new_value


def round_channels(channels: int, multiplier: float = 1.0, divisor: int = 8) -> int:
    """Width scaling (Tan & Le eq. 3): `channels * multiplier` rounded to a multiple of 8."""
    if not multiplier:
        return channels
    return make_divisible(channels * multiplier, divisor)


def decode_block_str(block_str: str) -> tuple[dict, int]:
    """Parses one block string into (options, repeats).

    Args:
        block_str: e.g. `'ir_r2_k3_s2_e6_c24_se0.25'`.

    Returns:
        A dict with `block_type, kernel_size, stride, exp_ratio, out_chs, se_ratio, noskip`
        and the number of repeats.

    Raises:
        ValueError: unknown block type or a missing r/k/s/c field, naming the string.
    """
    ops = block_str.split("_")
    block_type, ops = ops[0], ops[1:]
    if block_type not in ("ds", "ir"):
        raise ValueError(f"block string {block_str!r}: block type must be 'ds' or 'ir', got {block_type!r}")
    options: dict[str, str] = {}
    noskip = False
    for op in ops:
        if op == "noskip":
            noskip = True
            continue
        key, value = re.split(r"(\d.*)", op)[:2]
        options[key] = value
    missing = [k for k in ("r", "k", "s", "c") if k not in options]
    if missing:
        raise ValueError(f"block string {block_str!r}: missing field(s) {missing}")
    args = dict(
        block_type=block_type,
        kernel_size=int(options["k"]),
        stride=int(options["s"]),
        exp_ratio=float(options.get("e", 1.0)),
        out_chs=int(options["c"]),
        se_ratio=float(options.get("se", 0.0)),
        noskip=noskip,
    )
    return args, int(options["r"])


def scale_stage_depth(stage: Sequence[tuple[dict, int]], depth_multiplier: float) -> list[dict]:
    """Depth scaling of one stage (Tan & Le eq. 3; timm's `'ceil'` truncation).

    The total repeat count is multiplied and rounded up, then shared among the stage's
    block strings from the last one backwards.
    """
    repeats = [r for _, r in stage]
    num_repeat = sum(repeats)
    num_scaled = int(math.ceil(num_repeat * depth_multiplier))
    scaled = []
    for r in repeats[::-1]:
        rs = max(1, round(r / num_repeat * num_scaled))
        scaled.append(rs)
        num_repeat -= r
        num_scaled -= rs
    blocks = []
    for (args, _), rep in zip(stage, scaled[::-1]):
        blocks.extend(dict(args) for _ in range(rep))
    return blocks


def build_blocks(
    arch: Sequence[Sequence[str]],
    *,
    stem_chs: int,
    width_multiplier: float = 1.0,
    depth_multiplier: float = 1.0,
    drop_path_rate: float = 0.0,
) -> list[list[BlockArgs]]:
    """Resolves an architecture definition into per-stage lists of `BlockArgs`.

    Args:
        arch: one sequence of block strings per stage.
        stem_chs: channels out of the stem (already rounded).
        width_multiplier: channel multiplier (B0 1.0, B1 1.0, B2 1.1).
        depth_multiplier: repeat multiplier (B0 1.0, B1 1.1, B2 1.2).
        drop_path_rate: maximum stochastic-depth rate; block i of n gets `rate * i / n`.

    Returns:
        A list (stages) of lists (blocks) of `BlockArgs`.
    """
    stages = [scale_stage_depth([decode_block_str(s) for s in strings], depth_multiplier) for strings in arch]
    total = sum(len(s) for s in stages)
    in_chs, index, out = stem_chs, 0, []
    for stage in stages:
        resolved = []
        for j, args in enumerate(stage):
            out_chs = round_channels(args["out_chs"], width_multiplier)
            stride = args["stride"] if j == 0 else 1
            exp_ratio = args["exp_ratio"] if args["block_type"] == "ir" else 1.0
            mid_chs = make_divisible(in_chs * exp_ratio) if args["block_type"] == "ir" else in_chs
            # timm: SE reduction ratio is relative to the block input, applied to mid_chs.
            se_chs = round(mid_chs * args["se_ratio"] / exp_ratio) if args["se_ratio"] else 0
            skip = stride == 1 and in_chs == out_chs and not args["noskip"]
            resolved.append(
                BlockArgs(
                    block_type=args["block_type"],
                    in_chs=in_chs,
                    out_chs=out_chs,
                    mid_chs=mid_chs,
                    kernel_size=args["kernel_size"],
                    stride=stride,
                    se_chs=se_chs,
                    skip=skip,
                    drop_path_rate=drop_path_rate * index / total,
                )
            )
            in_chs, index = out_chs, index + 1
        out.append(resolved)
    return out
