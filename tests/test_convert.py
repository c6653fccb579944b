"""affectjax.convert: key mapping errors, head permutation and the command-line round trip."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import timm
import torch
import torchvision

from affectjax import convert, models


pytestmark = pytest.mark.usefixtures("fast_compiled")


@pytest.fixture(scope="module")
def resnet_state():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=5).state_dict()


def test_resnet_converts_with_expected_layout(resnet_state):
    variables = convert.from_torchvision(resnet_state, "resnet18")
    params, stats = variables["params"], variables["batch_stats"]
    w = resnet_state["layer2.0.downsample.0.weight"].numpy()
    np.testing.assert_array_equal(params["layer2_0"]["downsample_0"]["kernel"], w.transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(params["fc"]["kernel"], resnet_state["fc.weight"].numpy().T)
    np.testing.assert_array_equal(stats["layer1_1"]["bn2"]["var"], resnet_state["layer1.1.bn2.running_var"].numpy())
    np.testing.assert_array_equal(params["bn1"]["scale"], resnet_state["bn1.weight"].numpy())
    assert params["fc"]["kernel"].shape == (512, 5)


def test_timm_depthwise_and_squeeze_excite_layout():
    torch.manual_seed(0)
    state = timm.create_model("efficientnet_b0", num_classes=3).state_dict()
    params = convert.from_timm(state, "efficientnet_b0")["params"]
    dw = state["blocks.1.0.conv_dw.weight"].numpy()  # (C, 1, k, k)
    assert params["blocks_1_0"]["conv_dw"]["kernel"].shape == (3, 3, 1, dw.shape[0])
    np.testing.assert_array_equal(params["blocks_1_0"]["conv_dw"]["kernel"][:, :, 0, 5], dw[5, 0])
    se = state["blocks.1.0.se.conv_reduce.weight"].numpy()  # (R, C, 1, 1)
    np.testing.assert_array_equal(params["blocks_1_0"]["se"]["conv_reduce"]["kernel"], se[:, :, 0, 0].T)


def test_numpy_state_dict_is_accepted(resnet_state):
    numpy_state = {k: v.numpy() for k, v in resnet_state.items()}
    a = convert.from_torchvision(numpy_state, "resnet18")
    b = convert.from_torchvision(resnet_state, "resnet18")
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_missing_extra_and_misshaped_keys_are_listed_together(resnet_state):
    bad = dict(resnet_state)
    del bad["layer3.1.conv2.weight"]
    bad["layer9.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)
    bad["layer1.0.bn1.running_mean"] = torch.zeros(65)
    with pytest.raises(convert.ConversionError) as err:
        convert.from_torchvision(bad, "resnet18")
    message = str(err.value)
    assert "layer3_1/conv2/kernel" in message  # missing
    assert "layer9.0.conv1.weight" in message  # unmatched
    assert "layer1.0.bn1.running_mean (65,)" in message and "(64,)" in message  # mis-shaped
    assert "missing" in message and "unmatched" in message and "shape" in message


def test_wrong_architecture_is_a_clear_error(resnet_state):
    with pytest.raises(convert.ConversionError, match="unmatched"):
        convert.from_timm(resnet_state, "efficientnet_b0")
    with pytest.raises(KeyError, match="resnet18"):
        convert.from_torchvision(resnet_state, "efficientnet_b0")


def test_head_to_abaw_permutes_expression_columns_only():
    kernel = jnp.arange(4 * 10, dtype=jnp.float32).reshape(4, 10)
    bias = jnp.arange(10, dtype=jnp.float32)
    variables = {"params": {"classifier": {"kernel": kernel, "bias": bias}, "x": 1}, "batch_stats": {}}
    new = convert.head_to_abaw(variables)
    # ABAW index 1 (Anger) is AffectNet index 6; Happiness (4) is AffectNet Happy (1).
    np.testing.assert_array_equal(new["params"]["classifier"]["bias"], [0, 6, 5, 4, 1, 2, 3, 7, 8, 9])
    np.testing.assert_array_equal(new["params"]["classifier"]["kernel"][:, 1], kernel[:, 6])
    assert sorted(convert.AFFECTNET_TO_ABAW) == list(range(8))


def test_cli_round_trip_with_whole_pickled_timm_model(tmp_path):
    """The MT-EmotiEffNet authors ship `torch.save(model)` of a tf_efficientnet_b0 with a
    10-output classifier: convert it and compare outputs with the PyTorch model."""
    torch.manual_seed(0)
    ref = timm.create_model("tf_efficientnet_b0", num_classes=10).eval()
    src = tmp_path / "enet_b0_mtl.pt"
    torch.save(ref, src)
    out_dir = tmp_path / "converted"
    convert.main([str(src), "--arch", "emotieffnet", "--out", str(out_dir), "--head-order", "abaw"])
    variables, meta = convert.load_converted(str(out_dir))
    assert meta["arch"] == "emotieffnet" and meta["model_kwargs"] == {"num_expressions": 8}
    assert meta["head_order"] == "abaw"
    assert json.loads((out_dir / "meta.json").read_text()) == meta
    assert set(variables) == {"params", "batch_stats"}

    model = models.create(meta["arch"], **meta["model_kwargs"])
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        expected = ref(x).numpy()
    outputs, _ = jax.jit(model.apply)(variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)))
    order = list(convert.AFFECTNET_TO_ABAW)
    np.testing.assert_allclose(outputs["expr_logits"], expected[:, order], rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(outputs["va"], expected[:, 8:], rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_load_converted_names_the_bad_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        convert.load_converted(str(tmp_path))
