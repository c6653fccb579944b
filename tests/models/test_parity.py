"""affectjax backbones against timm / torchvision: parameter counts and numerical parity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import timm
import torch
import torchvision

from affectjax import convert, models


def _num_params(name: str, **kwargs) -> int:
    model = models.create(name, **kwargs)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
    return sum(x.size for x in jax.tree.leaves(shapes["params"]))


@pytest.mark.parametrize(
    "name", ["efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "tf_efficientnet_b0", "tf_efficientnet_b1", "tf_efficientnet_b2"]
)
def test_efficientnet_param_count_equals_timm(name):
    expected = sum(p.numel() for p in timm.create_model(name, num_classes=1000).parameters())
    assert _num_params(name, num_classes=1000) == expected


def test_efficientnet_b0_param_count_is_published_value():
    assert _num_params("efficientnet_b0", num_classes=1000) == 5_288_548


def test_resnet18_param_count_equals_torchvision():
    expected = sum(p.numel() for p in torchvision.models.resnet18().parameters())
    assert expected == 11_689_512
    assert _num_params("resnet18", num_classes=1000) == expected


def test_emotieffnet_param_count_equals_timm_with_10_outputs():
    expected = sum(p.numel() for p in timm.create_model("tf_efficientnet_b0", num_classes=10).parameters())
    assert _num_params("emotieffnet") == expected


def _randomise_batchnorm(module: torch.nn.Module, gen: torch.Generator) -> None:
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=gen)
                m.bias.normal_(0.0, 0.1, generator=gen)
                m.running_mean.normal_(0.0, 0.1, generator=gen)
                m.running_var.uniform_(0.5, 1.5, generator=gen)


def _rel_err(actual, expected) -> float:
    """max |actual - expected| / max |expected|, in float64."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def _torch_reference(name: str, num_classes: int) -> torch.nn.Module:
    if name == "resnet18":
        return torchvision.models.resnet18(num_classes=num_classes)
    return timm.create_model(name, num_classes=num_classes, drop_rate=0.0, drop_path_rate=0.0)


def _embedding(ref: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled pre-classifier features of a timm EfficientNet or a torchvision ResNet."""
    if isinstance(ref, torchvision.models.ResNet):
        h = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
        h = ref.layer4(ref.layer3(ref.layer2(ref.layer1(h))))
        return torch.flatten(ref.avgpool(h), 1)
    return ref.forward_head(ref.forward_features(x), pre_logits=True)


@pytest.mark.parametrize("name", ["efficientnet_b0", "tf_efficientnet_b0", "resnet18"])
def test_parity_eval_and_train(name):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    ref = _torch_reference(name, num_classes=10)
    _randomise_batchnorm(ref, gen)
    # 66 px: odd intermediate sizes exercise the asymmetric TF "same" padding.
    x = torch.randn(3, 3, 66, 66, generator=gen)
    x_nhwc = jnp.asarray(x.numpy().transpose(0, 2, 3, 1))
    to_flax = convert.from_torchvision if name == "resnet18" else convert.from_timm
    variables = to_flax(ref.state_dict(), name)
    kwargs = {} if name == "resnet18" else {"drop_rate": 0.0, "drop_path_rate": 0.0}
    model = models.create(name, num_classes=10, **kwargs)

    # Eval mode: running statistics.
    ref.eval()
    with torch.no_grad():
        ref_logits = ref(x).numpy()
        ref_embedding = _embedding(ref, x).numpy()
    outputs, inter = jax.jit(lambda v, im: model.apply(v, im, train=False))(variables, x_nhwc)
    assert _rel_err(outputs["logits"], ref_logits) <= 1e-4
    assert _rel_err(inter["embedding"], ref_embedding) <= 1e-4

    # Train mode: batch statistics, and the running statistics after one update.
    ref.train()
    with torch.no_grad():
        ref_train_logits = ref(x).numpy()
    expected_stats = to_flax(ref.state_dict(), name)["batch_stats"]
    (train_out, _), new_state = jax.jit(
        lambda v, im: model.apply(v, im, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})
    )(variables, x_nhwc)
    assert _rel_err(train_out["logits"], ref_train_logits) <= 1e-4
    flat_new = jax.tree_util.tree_leaves_with_path(new_state["batch_stats"])
    flat_expected = dict(jax.tree_util.tree_leaves_with_path(expected_stats))
    assert len(flat_new) == len(flat_expected) > 0
    worst = max(_rel_err(value, flat_expected[path]) for path, value in flat_new)
    assert worst <= 1e-4
    # The update really moved the statistics (so the comparison above is not vacuous).
    before = dict(jax.tree_util.tree_leaves_with_path(variables["batch_stats"]))
    assert max(_rel_err(value, before[path]) for path, value in flat_new) > 1e-3
