"""Block-string decoding and scaling rules against timm's own builder."""

import pytest
from timm.models._efficientnet_builder import decode_arch_def, round_channels as timm_round_channels

from affectjax.models import efficientnet_builder as eb


@pytest.mark.parametrize("channels", [16, 24, 32, 40, 80, 112, 192, 320, 1280])
@pytest.mark.parametrize("multiplier", [0.5, 1.0, 1.1, 1.2, 1.4])
def test_round_channels_matches_timm(channels, multiplier):
    assert eb.round_channels(channels, multiplier) == timm_round_channels(channels, multiplier)


def test_decode_block_str():
    args, repeats = eb.decode_block_str("ir_r3_k5_s2_e6_c112_se0.25")
    assert repeats == 3
    assert args == dict(block_type="ir", kernel_size=5, stride=2, exp_ratio=6.0, out_chs=112, se_ratio=0.25, noskip=False)
    args, _ = eb.decode_block_str("ds_r1_k3_s1_c16_noskip")
    assert args["noskip"] and args["se_ratio"] == 0.0 and args["exp_ratio"] == 1.0


@pytest.mark.parametrize("bad", ["xx_r1_k3_s1_c16", "ir_k3_s1_c16"])
def test_bad_block_strings_name_the_string(bad):
    with pytest.raises(ValueError, match=bad):
        eb.decode_block_str(bad)


@pytest.mark.parametrize("depth", [1.0, 1.1, 1.2, 1.4, 1.8, 3.1])
def test_depth_scaling_matches_timm(depth):
    arch = [list(stage) for stage in eb.EFFICIENTNET_B0_ARCH]
    expected = [len(stage) for stage in decode_arch_def(arch, depth)]
    stages = eb.build_blocks(eb.EFFICIENTNET_B0_ARCH, stem_chs=32, depth_multiplier=depth)
    assert [len(stage) for stage in stages] == expected


def test_b0_block_shapes_and_drop_path_schedule():
    stages = eb.build_blocks(eb.EFFICIENTNET_B0_ARCH, stem_chs=32, drop_path_rate=0.2)
    blocks = [b for stage in stages for b in stage]
    assert len(blocks) == 16
    first, second = blocks[0], blocks[1]
    assert (first.block_type, first.in_chs, first.out_chs, first.se_chs, first.skip) == ("ds", 32, 16, 8, False)
    assert (second.in_chs, second.mid_chs, second.out_chs, second.se_chs, second.stride) == (16, 96, 24, 4, 2)
    assert blocks[2].skip and blocks[2].stride == 1  # repeats keep stride 1 and get the residual
    assert [b.drop_path_rate for b in blocks] == pytest.approx([0.2 * i / 16 for i in range(16)])
