"""Hard parameter sharing: a registered backbone without its classifier and a head per task."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import models


def test_heads_read_the_backbones_embedding():
    model = models.create("hard_sharing", backbone="efficientnet_tiny",
                          heads={"va": 2, "expr": 8, "au": 12}, backbone_kwargs={"drop_rate": 0.0})
    x = jax.random.normal(jax.random.key(0), (3, 32, 32, 3))
    variables = jax.jit(lambda k: model.init(k, x, train=False))(jax.random.key(1))
    assert set(variables["params"]) == {"backbone", "head_va", "head_expr", "head_au"}
    assert "classifier" not in variables["params"]["backbone"]  # built with num_classes=0
    outputs, inter = jax.jit(lambda v: model.apply(v, x, train=False))(variables)
    assert {k: v.shape for k, v in outputs.items()} == {"va": (3, 2), "expr": (3, 8),
                                                        "au": (3, 12)}
    head = variables["params"]["head_expr"]
    expected = np.asarray(inter["embedding"]) @ np.asarray(head["kernel"]) + np.asarray(
        head["bias"])
    np.testing.assert_allclose(np.asarray(outputs["expr"]), expected, rtol=1e-5, atol=1e-5)


def test_resnet_backbone_shapes_without_compiling():
    model = models.create("hard_sharing", backbone="resnet18", heads=(("attr", 40),))
    x = jnp.zeros((2, 48, 48, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    assert set(variables) == {"params", "batch_stats"}
    outputs, inter = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
    assert outputs["attr"].shape == (2, 40) and inter["embedding"].shape == (2, 512)
    assert variables["params"]["head_attr"]["kernel"].shape == (512, 40)


@pytest.mark.parametrize("kwargs, match", [
    (dict(backbone="fusion", heads={"va": 2}), r"backbone='fusion': choose an image classifier"),
    (dict(backbone="resnet18", heads={}), r"heads=\(\): give \(name, width >= 1\) pairs"),
    (dict(backbone="resnet18", heads={"va": 0}), r"give \(name, width >= 1\) pairs"),
])
def test_bad_arguments_are_one_line(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create("hard_sharing", **kwargs)
