"""Registry, output contract, determinism, dtype and training behaviour of affectjax.models."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import models
from affectjax.models.emotieffnet import make_feature_fn

EMBEDDING = {
    "efficientnet_b0": 1280,
    "efficientnet_b1": 1280,
    "efficientnet_b2": 1408,
    "tf_efficientnet_b0": 1280,
    "tf_efficientnet_b1": 1280,
    "tf_efficientnet_b2": 1408,
    "efficientnet_tiny": 64,
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "emotieffnet": 1280,
}


DENSE_PREDICTION = {"fcdensenet", "ifan"}  # no embedding: tests/models/test_fcdensenet.py, test_ifan.py
SEQUENCE = {"fusion"}  # text/audio/visual sequences, not images: tests/models/test_fusion.py
MULTI_TASK = {"hard_sharing"}  # a backbone above + heads: tests/models/test_hard_sharing.py


def test_registry_is_documented_set():
    assert set(models.MODELS) == set(EMBEDDING) | DENSE_PREDICTION | SEQUENCE | MULTI_TASK


def test_unknown_name_lists_choices():
    with pytest.raises(KeyError, match="unknown model 'efficientnet_b9'; choose one of") as err:
        models.create("efficientnet_b9")
    for name in models.MODELS:
        assert name in str(err.value)


def test_unknown_emotieffnet_backbone_lists_choices():
    with pytest.raises(KeyError, match=r"unknown EfficientNet 'resnet50'; choose one of .*"
                                       r"'tf_efficientnet_b0'"):
        models.create("emotieffnet", backbone="resnet50")


@pytest.mark.parametrize("name", sorted(EMBEDDING))
def test_output_contract_shapes(name):
    """Shapes of every registered model (abstract evaluation: no compilation)."""
    model = models.create(name, num_classes=10) if name != "emotieffnet" else models.create(name)
    x = jnp.zeros((2, 64, 64, 3))
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
    assert set(variables) == {"params", "batch_stats"}
    outputs, inter = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
    assert outputs["logits"].shape == (2, 10)
    assert outputs["logits"].dtype == jnp.float32
    assert inter["embedding"].shape == (2, EMBEDDING[name])
    n_stages = 4 if name.startswith("resnet") or name == "efficientnet_tiny" else 7
    assert [k for k in inter if k.startswith("stage_")] == [f"stage_{i}" for i in range(n_stages)]
    assert inter["stem"].ndim == 4
    last = inter[f"stage_{n_stages - 1}"]
    stride = 16 if name == "efficientnet_tiny" else 32
    assert last.shape[1:3] == (64 // stride, 64 // stride)
    if name == "emotieffnet":
        assert outputs["expr_logits"].shape == (2, 8)
        assert outputs["va"].shape == (2, 2)
        assert outputs["valence"].shape == (2,) and outputs["arousal"].shape == (2,)


def test_tiny_runs_and_is_deterministic_in_eval():
    model = models.create("efficientnet_tiny")
    # The batch of the tests below: the same init and eval programs, compiled once.
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(lambda k, im: model.init(k, im, train=False))(jax.random.key(0), x)
    apply = jax.jit(lambda v, im: model.apply(v, im, train=False))
    (a, ia), (b, ib) = apply(variables, x), apply(variables, x)
    chex.assert_shape(a["logits"], (2, 10))
    chex.assert_trees_all_equal((a, ia), (b, ib))
    assert np.isfinite(np.asarray(a["logits"])).all()
    # Examples are independent in eval mode: a sub-batch gives the same rows.
    c, _ = apply(variables, x[:1])
    np.testing.assert_allclose(np.asarray(c["logits"]), np.asarray(a["logits"][:1]), rtol=1e-5, atol=1e-6)


def test_emotieffnet_outputs_split_the_joint_head():
    model = models.create("emotieffnet", backbone="efficientnet_tiny", num_expressions=8)
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(lambda k, im: model.init(k, im, train=False))(jax.random.key(0), x)
    out, inter = jax.jit(model.apply)(variables, x)
    np.testing.assert_array_equal(out["expr_logits"], out["logits"][:, :8])
    np.testing.assert_array_equal(out["va"], out["logits"][:, 8:])
    np.testing.assert_array_equal(out["valence"], out["logits"][:, 8])
    np.testing.assert_array_equal(out["arousal"], out["logits"][:, 9])
    assert np.abs(np.asarray(out["va"])).max() > 0  # raw, not squashed to zero
    feats = make_feature_fn(model)(variables, x)
    np.testing.assert_allclose(feats["embedding"], inter["embedding"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(feats["logits"], out["logits"], rtol=1e-5, atol=1e-6)


def test_emotieffnet_rejects_inconsistent_num_classes():
    model = models.create("emotieffnet", backbone="efficientnet_tiny", num_classes=7)
    with pytest.raises(ValueError, match="num_expressions"):
        model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)


def test_train_mode_updates_stats_and_uses_dropout_rng():
    model = models.create("efficientnet_tiny", drop_rate=0.5, drop_path_rate=0.5)
    x = jax.random.normal(jax.random.key(1), (4, 32, 32, 3))
    variables = jax.jit(lambda k, im: model.init(k, im, train=False))(jax.random.key(0), x)

    @jax.jit
    def step(v, key):
        return model.apply(v, x, train=True, mutable=["batch_stats"], rngs={"dropout": key})

    (out1, _), state = step(variables, jax.random.key(2))
    (out2, _), _ = step(variables, jax.random.key(3))
    (out3, _), _ = step(variables, jax.random.key(2))
    assert not np.allclose(out1["logits"], out2["logits"])
    np.testing.assert_array_equal(out1["logits"], out3["logits"])
    assert jax.tree.structure(state["batch_stats"]) == jax.tree.structure(variables["batch_stats"])
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state["batch_stats"], variables["batch_stats"])
    assert min(jax.tree.leaves(moved)) > 0


def test_grad_is_finite():
    model = models.create("efficientnet_tiny")
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(lambda k, im: model.init(k, im, train=False))(jax.random.key(0), x)

    def loss(params):
        (out, _), _ = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]},
            x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)},
        )
        return jnp.mean(out["logits"] ** 2)

    grads = jax.jit(jax.grad(loss))(variables["params"])
    leaves = jax.tree.leaves(grads)
    assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model32 = models.create("efficientnet_tiny")
    model16 = models.create("efficientnet_tiny", dtype=jnp.bfloat16)
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(lambda k, im: model32.init(k, im, train=False))(jax.random.key(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(jax.eval_shape(model16.init, jax.random.key(0), x)))
    out32, _ = jax.jit(model32.apply)(variables, x)
    out16, inter16 = jax.jit(model16.apply)(variables, x)
    assert out16["logits"].dtype == jnp.float32
    assert inter16["stage_1"].dtype == jnp.bfloat16
    np.testing.assert_allclose(out16["logits"], out32["logits"], atol=0.1 * float(jnp.abs(out32["logits"]).max()))


def test_width_and_depth_overrides_shrink_the_model():
    def count(**kw):
        m = models.create("efficientnet_b0", **kw)
        v = jax.eval_shape(lambda: m.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
        return sum(p.size for p in jax.tree.leaves(v["params"]))

    assert count(width_multiplier=0.5, depth_multiplier=0.5) < count()


def test_num_classes_zero_returns_embedding():
    model = models.create("efficientnet_tiny", num_classes=0)
    x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(model.init)(jax.random.key(0), x)
    assert "classifier" not in variables["params"]
    out, inter = jax.jit(model.apply)(variables, x)
    np.testing.assert_array_equal(out["logits"], inter["embedding"])


def test_rejects_non_nhwc_input():
    model = models.create("resnet18")
    with pytest.raises(ValueError, match="NHWC"):
        model.init(jax.random.key(0), jnp.zeros((32, 32, 3)))
