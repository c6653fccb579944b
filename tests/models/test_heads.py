"""Tests for affectjax.models.heads: MT-EmotiEffNet's MTL heads on frozen features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax.models import heads as heads_lib

B, D, L = 5, 16, 10


def _features(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(B, D)).astype(np.float32),
            rng.normal(size=(B, L)).astype(np.float32))


def _np_dense(p, x):
    return x @ np.asarray(p["kernel"], np.float64) + np.asarray(p["bias"], np.float64)


def test_outputs_match_float64_reference_with_va_wiring():
    emb, logits = _features()
    model = heads_lib.MTLHeads(va_input="logits", expr_input="both", au_input="embedding",
                               va_feeds_heads=True, hidden=(7,))
    variables = model.init(jax.random.PRNGKey(0), emb, logits)
    out, inter = model.apply(variables, emb, logits)
    p = variables["params"]
    e64, l64 = emb.astype(np.float64), logits.astype(np.float64)

    def head(name, x):
        h = np.maximum(_np_dense(p[name]["hidden_0"], x), 0.0)
        return _np_dense(p[name]["out"], h)

    va = np.tanh(head("va_head", l64))
    expr_logits = head("expr_head", np.concatenate([e64, l64, va], 1))
    au_logits = head("au_head", np.concatenate([e64, va], 1))
    expr = np.exp(expr_logits - expr_logits.max(1, keepdims=True))
    expr /= expr.sum(1, keepdims=True)
    np.testing.assert_allclose(out["va"], va, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["expr_logits"], expr_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["expr"], expr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["au"], 1 / (1 + np.exp(-au_logits)), rtol=1e-5, atol=1e-6)
    l2_va = sum(np.sum(np.square(p["va_head"][k]["kernel"])) for k in ("hidden_0", "out"))
    np.testing.assert_allclose(inter["l2"]["va"], l2_va, rtol=1e-5)


@pytest.mark.parametrize("choice,width", [("logits", L), ("embedding", D), ("both", D + L)])
def test_input_choice_sets_each_head_input(choice, width):
    emb, logits = _features()
    model = heads_lib.MTLHeads(va_input=choice, expr_input=choice, au_input=choice)
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), emb, logits)["params"]
    assert params["va_head"]["out"]["kernel"].shape == (width, 2)
    assert params["expr_head"]["out"]["kernel"].shape == (width, 8)
    assert params["au_head"]["out"]["kernel"].shape == (width, 12)


def test_ranges_shapes_and_jit_grad():
    emb, logits = _features(1)
    model = heads_lib.create_heads(hidden=(8,), dropout_rate=0.5)
    variables = model.init(jax.random.PRNGKey(1), emb, logits)
    out, _ = jax.jit(lambda v, e, l: model.apply(v, e, l))(variables, emb * 100, logits * 100)
    assert out["va"].shape == (B, 2) and out["expr"].shape == (B, 8) and out["au"].shape == (B, 12)
    assert np.all(np.abs(out["va"]) <= 1) and np.all((out["au"] >= 0) & (out["au"] <= 1))
    np.testing.assert_allclose(np.sum(out["expr"], -1), 1.0, rtol=1e-5)
    # Eval mode is deterministic; training mode applies dropout with the given rng.
    again, _ = model.apply(variables, emb * 100, logits * 100)
    np.testing.assert_allclose(out["va"], again["va"], rtol=1e-5, atol=1e-6)
    train_out, _ = model.apply(variables, emb, logits, train=True,
                               rngs={"dropout": jax.random.PRNGKey(2)})
    assert not np.allclose(train_out["au_logits"], model.apply(variables, emb, logits)[0]["au_logits"])

    def loss(params):
        o, _ = model.apply({"params": params}, emb, logits)
        return jnp.sum(o["va"]) + jnp.sum(o["au"]) + jnp.sum(o["expr"][:, 0])

    grads = jax.grad(loss)(variables["params"])
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_bad_input_choice_and_shapes_raise():
    with pytest.raises(ValueError, match=r"unknown expr_input 'pixels'; choose one of \["):
        heads_lib.create_heads(expr_input="pixels")
    emb, logits = _features()
    model = heads_lib.MTLHeads()
    with pytest.raises(ValueError, match="embedding"):
        model.init(jax.random.PRNGKey(0), emb[:3], logits)
