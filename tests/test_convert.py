"""affectjax.convert: key mapping errors, head permutation and the command-line round trip."""

import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import timm
import torch
import torchvision
from flax import traverse_util

from affectjax import convert, labels, models
from affectjax.data import readers


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


def test_resnet50_cli_round_trip_fills_every_variable_from_its_torchvision_array(tmp_path):
    """`python -m affectjax.convert --arch resnet50` on a state dict, read back: every
    torchvision array lands, transposed, under its name (written out here independently of
    the converter: `.<digits>` -> `_<digits>`, conv weight -> kernel, BN weight -> scale)."""
    torch.manual_seed(0)
    ref = torchvision.models.resnet50(weights=None, num_classes=5)
    state = ref.state_dict()
    torch.save(state, tmp_path / "resnet50.pth")
    convert.main([str(tmp_path / "resnet50.pth"), "--arch", "resnet50", "--out", str(tmp_path / "out")])
    variables, meta = convert.load_converted(str(tmp_path / "out"))
    assert meta["arch"] == "resnet50" and meta["model_kwargs"] == {"num_classes": 5}
    n_params = sum(x.size for x in jax.tree.leaves(variables["params"]))
    assert n_params == sum(p.numel() for p in ref.parameters()) == 25_557_032 - 995 * 2049

    flat = traverse_util.flatten_dict(variables, sep="/")
    arrays = {k: v.numpy() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert len(flat) == len(arrays) == 267  # 53 conv kernels, 53 BN x 4, fc kernel and bias
    leaves = {"running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var"), "bias": ("params", "bias")}
    for key, value in arrays.items():
        module, leaf = re.sub(r"\.(\d+)", r"_\1", key).rsplit(".", 1)
        collection, name = leaves.get(leaf, ("params", "kernel" if value.ndim > 1 else "scale"))
        expected = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value.T
        np.testing.assert_array_equal(flat[f"{collection}/{module.replace('.', '/')}/{name}"], expected, err_msg=key)
    assert flat["params/layer2_0/conv2/kernel"].shape == (3, 3, 128, 128)  # stride-2 3x3 ("v1.5")
    assert flat["params/layer4_0/downsample_0/kernel"].shape == (1, 1, 1024, 2048)


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


# The released checkpoints' expression order, written out here independently of
# affectjax.convert: the authors' hsemotion / EmotiEffLib idx_to_class (alphabetical).
RELEASED_8 = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
RELEASED_7 = ["Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
ABAW = list(labels.EXPRESSIONS)


def _tagged_emotieffnet_state(num_expressions):
    """A tf_efficientnet_b0 state dict whose classifier output k has weight row k filled
    with k and bias k: every converted head column says which source logit it came from."""
    torch.manual_seed(0)
    state = timm.create_model("tf_efficientnet_b0", num_classes=num_expressions + 2).state_dict()
    n = num_expressions + 2
    state["classifier.weight"] = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 1280).clone()
    state["classifier.bias"] = torch.arange(n, dtype=torch.float32)
    return state


def _source_logits(head):
    """Source logit of every converted column, checked against the whole kernel column."""
    bias = np.asarray(head["bias"])
    np.testing.assert_array_equal(np.asarray(head["kernel"]), np.broadcast_to(bias, head["kernel"].shape))
    return [int(b) for b in bias]


def test_released_order_constants_match_the_authors_idx_to_class():
    assert list(convert.RELEASED_EXPRESSIONS) == RELEASED_8
    assert list(convert.RELEASED_EXPRESSIONS_7) == RELEASED_7
    assert convert.ABAW_EXPRESSIONS is labels.EXPRESSIONS is readers.ABAW_EXPRESSIONS


def test_head_to_abaw_puts_each_released_class_under_its_abaw_name():
    variables = convert.from_timm(_tagged_emotieffnet_state(8), "emotieffnet")
    np.testing.assert_array_equal(variables["params"]["classifier"]["bias"], np.arange(10))
    new = convert.head_to_abaw(variables)
    source = _source_logits(new["params"]["classifier"])
    names = [RELEASED_8[k] for k in source[:8]]
    assert names == [{"Other": "Contempt"}.get(n, n) for n in ABAW]
    assert source[8:] == [8, 9]  # valence, arousal untouched
    # Everything but the head is untouched.
    assert new["params"]["blocks_1_0"] is variables["params"]["blocks_1_0"]
    assert new["batch_stats"] is variables["batch_stats"]


def test_head_to_abaw_maps_a_seven_class_head_onto_the_abaw_classes_before_other():
    variables = convert.from_timm(_tagged_emotieffnet_state(7), "emotieffnet")
    new = convert.head_to_abaw(variables)
    source = _source_logits(new["params"]["classifier"])
    assert len(source) == 9  # no column invented for Other
    assert [RELEASED_7[k] for k in source[:7]] == ABAW[:7]
    assert source[7:] == [7, 8]


def test_head_to_abaw_rejects_other_head_sizes():
    variables = {"params": {"classifier": {"kernel": jnp.zeros((4, 8)), "bias": jnp.zeros(8)}}}
    with pytest.raises(ValueError, match="8 \\+ 2 or 7 \\+ 2 output head, got 8 outputs"):
        convert.head_to_abaw(variables)


def test_meta_head_order_reads_current_and_earlier_values():
    assert convert.meta_head_order({"arch": "resnet18"}) is None
    assert convert.meta_head_order({"head_order": None}) is None
    assert convert.meta_head_order({"head_order": "alphabetical", "expressions": RELEASED_8}) == "alphabetical"
    assert convert.meta_head_order({"head_order": "affectnet"}) == "alphabetical"  # earlier name, unpermuted
    assert convert.meta_head_order({"head_order": "abaw", "expressions": None}) == "abaw"
    with pytest.raises(ValueError, match="reconvert"):
        convert.meta_head_order({"head_order": "abaw"})  # permuted by the earlier, wrong mapping
    with pytest.raises(ValueError, match="head_order='sorted'"):
        convert.meta_head_order({"head_order": "sorted"})


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
    assert meta["head_order"] == "abaw" and convert.meta_head_order(meta) == "abaw"
    assert meta["expressions"] == [{"Other": "Contempt"}.get(n, n) for n in ABAW]
    assert json.loads((out_dir / "meta.json").read_text()) == meta
    assert set(variables) == {"params", "batch_stats"}

    model = models.create(meta["arch"], **meta["model_kwargs"])
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        expected = ref(x).numpy()
    outputs, _ = jax.jit(model.apply)(variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)))
    order = [RELEASED_8.index({"Other": "Contempt"}.get(n, n)) for n in ABAW]
    np.testing.assert_allclose(outputs["expr_logits"], expected[:, order], rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    np.testing.assert_allclose(outputs["va"], expected[:, 8:], rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_load_converted_names_the_bad_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="meta.json"):
        convert.load_converted(str(tmp_path))


def test_cli_default_keeps_the_released_order(tmp_path):
    torch.save(_tagged_emotieffnet_state(7), tmp_path / "enet_b0_7.pt")
    convert.main([str(tmp_path / "enet_b0_7.pt"), "--arch", "emotieffnet", "--out", str(tmp_path / "out")])
    variables, meta = convert.load_converted(str(tmp_path / "out"))
    assert meta["head_order"] == "alphabetical" and meta["expressions"] == RELEASED_7
    assert meta["model_kwargs"] == {"num_expressions": 7}
    assert _source_logits(variables["params"]["classifier"]) == list(range(9))
