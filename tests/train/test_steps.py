"""Train/eval step factories: one trace, exact updates, balancer parameters, method losses."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from affectjax import balancing
from affectjax import losses
from affectjax.methods.emotieffnet import pretrain as methods
from affectjax.train import optim
from affectjax.train import steps
from affectjax.train.state import create_train_state

RNG = jax.random.PRNGKey(1)  # the base key every test step receives


class _Net(nn.Module):
    """Dense + BatchNorm + two heads, returning (outputs, intermediates) like the models."""

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Dense(6)(x.reshape(x.shape[0], -1))
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        h = nn.relu(h)
        logits = nn.Dense(4)(h)
        va = nn.Dense(2)(h)
        return {"expr_logits": logits, "va": va}, {"embedding": h}


def _batch(seed=0, n=8):
    r = np.random.default_rng(seed)
    return {"image": jnp.asarray(r.normal(size=(n, 2, 2, 3)), jnp.float32),
            "expr": jnp.asarray(r.integers(0, 4, n), jnp.int32),
            "va": jnp.asarray(r.uniform(-1, 1, (n, 2)), jnp.float32),
            "va_mask": jnp.ones((n,), bool)}


def _loss_fn(outputs, intermediates, batch):
    del intermediates
    return {"va": losses.va_ccc_loss(outputs["va"], batch["va"]),
            "expr": losses.weighted_cross_entropy(outputs["expr_logits"], batch["expr"])}


def _state(balancer, tx):
    model = _Net()
    variables = model.init(jax.random.PRNGKey(0), _batch()["image"], train=False)
    return create_train_state(variables=variables, apply_fn=model.apply, tx=tx,
                              balancer_state=balancer.init(2),
                              balancer_params=balancer.init_params(2))


def test_step_is_traced_once_and_matches_a_manual_update():
    balancer = balancing.create("ew")
    tx = optax.with_extra_args_support(optax.sgd(0.1))
    state = _state(balancer, tx)
    raw = steps.make_train_step(_loss_fn, balancer, task_names=("va", "expr"),
                                steps_per_epoch=4)
    step = jax.jit(chex.assert_max_traces(raw, n=1), donate_argnums=(0,))

    # Manual reference for the first step: SGD on the sum of both task losses.
    batch = _batch(0)
    rng = jax.random.fold_in(RNG, 0)

    def total(params):
        (out, inter), new = state.apply_fn(
            {"params": params, "batch_stats": state.batch_stats}, batch["image"], train=True,
            mutable=["batch_stats"], rngs={"dropout": rng})
        parts = _loss_fn(out, inter, batch)
        return parts["va"] + parts["expr"], new["batch_stats"]

    (expected_loss, expected_stats), grads = jax.value_and_grad(total, has_aux=True)(state.params)
    expected_params = jax.tree.map(lambda p, g: p - 0.1 * g, state.params, grads)

    base_rng = jnp.array(RNG)
    state, metrics = step(state, batch, base_rng)
    np.testing.assert_allclose(metrics["loss"], expected_loss, rtol=1e-6)
    chex.assert_trees_all_close(state.params, expected_params, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(state.batch_stats, expected_stats, rtol=1e-6)
    assert int(state.step) == 1
    for i in range(1, 4):
        state, metrics = step(state, _batch(i), base_rng)
    assert int(state.step) == 4
    assert set(metrics) >= {"loss", "loss/va", "loss/expr", "weight/va", "weight/expr",
                            "grad_norm"}


def test_trainable_balancer_parameters_are_updated():
    balancer = balancing.create("uw")
    state = _state(balancer, optax.sgd(0.0))
    labels = optim.trainable_labels(jax.tree.map(lambda _: "all", state.params),
                                    state.balancer_params, ["all"])
    cfg = ml_collections.ConfigDict(dict(name="sgd", momentum=0.0, balancer_learning_rate=0.5))
    tx, _ = optim.build_optimizer(cfg, learning_rate=0.1, labels=labels, steps_per_epoch=1,
                                  total_steps=1)
    state = state.with_optimizer(tx)
    before = jax.tree.map(np.asarray, state.balancer_params)
    step = jax.jit(steps.make_train_step(_loss_fn, balancer, task_names=("va", "expr"),
                                         steps_per_epoch=1))
    state, metrics = step(state, _batch(), jnp.array(RNG))
    after = state.balancer_params
    changed = jax.tree.map(lambda a, b: float(np.max(np.abs(np.asarray(a) - b))), after, before)
    assert max(jax.tree.leaves(changed)) > 0
    assert np.isfinite(metrics["loss"])


def test_emotieffnet_task_losses_sum_to_eq1(monkeypatch):
    counts = np.array([30, 5, 10, 8, 40, 12, 9, 6])
    weights = losses.class_balanced_weights(counts)
    r = np.random.default_rng(3)
    n = 16
    outputs = {"expr_logits": jnp.asarray(r.normal(size=(n, 8)), jnp.float32),
               "va": jnp.asarray(r.normal(size=(n, 2)) * 0.3, jnp.float32)}
    expr = r.integers(-1, 8, n).astype(np.int32)
    va_mask = r.random(n) > 0.3
    batch = {"image": jnp.zeros((n, 1, 1, 3)), "expr": jnp.asarray(expr),
             "va": jnp.asarray(r.uniform(-1, 1, (n, 2)), jnp.float32),
             "va_mask": jnp.asarray(va_mask), "valid": jnp.ones((n,), bool)}

    class _Source:  # a random-access source with these class counts
        def __len__(self):
            return int(counts.sum())

        def __getitem__(self, i):
            return {"expr": np.int32(np.repeat(np.arange(8), counts)[i])}

    cfg = ml_collections.ConfigDict(dict(model=dict(num_expressions=8),
                                         loss=dict(class_weights=True, ccc_ddof=0, ccc_eps=0.0)))
    loss_fn = methods.EMOTIEFFNET.make_loss(cfg, _Source())
    parts, present = loss_fn(outputs, {}, batch)
    assert bool(present["va"]) and bool(present["expr"])
    expected = losses.emotieffnet_loss(outputs["expr_logits"], outputs["va"],
                                       expr_labels=batch["expr"], va_target=batch["va"],
                                       va_mask=batch["va_mask"], class_weights=weights)
    np.testing.assert_allclose(parts["va"] + parts["expr"], expected, rtol=1e-6)

    # Padding rows (valid False) do not count: the same as dropping them.
    padded = dict(batch, valid=jnp.asarray(np.arange(n) < 10))
    parts_pad, _ = loss_fn(outputs, {}, padded)
    sliced = {k: v[:10] for k, v in batch.items()}
    parts_sliced, _ = loss_fn({k: v[:10] for k, v in outputs.items()}, {}, sliced)
    for key in ("va", "expr"):
        np.testing.assert_allclose(parts_pad[key], parts_sliced[key], rtol=1e-5)

    # Expressions only (the paper's Table 2 baseline): VA is absent from every batch.
    cfg.loss.tasks = "expr"
    parts_expr, present_expr = methods.EMOTIEFFNET.make_loss(cfg, _Source())(outputs, {}, batch)
    assert not bool(present_expr["va"]) and bool(present_expr["expr"])
    assert float(parts_expr["va"]) == 0.0
    np.testing.assert_allclose(parts_expr["expr"], parts["expr"], rtol=1e-6)


def test_emotieffnet_eval_stats_merge_equals_one_shot():
    r = np.random.default_rng(5)
    n = 24
    outputs = {"expr_logits": jnp.asarray(r.normal(size=(n, 8)), jnp.float32),
               "va": jnp.asarray(r.normal(size=(n, 2)), jnp.float32)}
    batch = {"image": jnp.zeros((n, 1, 1, 3)),
             "expr": jnp.asarray(r.integers(-1, 8, n), jnp.int32),
             "va": jnp.asarray(r.uniform(-1, 1, (n, 2)), jnp.float32),
             "va_mask": jnp.asarray(r.random(n) > 0.2), "valid": jnp.ones((n,), bool)}
    m = methods.EMOTIEFFNET
    whole, _ = m.eval_finalize(m.eval_stats(outputs, {}, batch))
    stats = None
    for lo, hi in ((0, 7), (7, 8), (8, 24)):
        part = m.eval_stats({k: v[lo:hi] for k, v in outputs.items()}, {},
                            {k: v[lo:hi] for k, v in batch.items()})
        stats = part if stats is None else m.eval_merge(stats, part)
    merged, arrays = m.eval_finalize(stats)
    for key, value in whole.items():
        np.testing.assert_allclose(merged[key], value, rtol=1e-5, atol=1e-6)
    # Independent references: accuracy and population-variance CCC in float64.
    keep = np.asarray(batch["expr"]) >= 0
    pred = np.argmax(np.asarray(outputs["expr_logits"]), -1)
    np.testing.assert_allclose(merged["expr_acc"],
                               np.mean(pred[keep] == np.asarray(batch["expr"])[keep]), rtol=1e-6)
    mask = np.asarray(batch["va_mask"])
    x = np.asarray(outputs["va"], np.float64)[mask, 0]
    y = np.asarray(batch["va"], np.float64)[mask, 0]
    ccc = 2 * np.cov(x, y, ddof=0)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    np.testing.assert_allclose(merged["ccc_valence"], ccc, rtol=1e-4)
    assert arrays["confusion_matrix"].sum() == keep.sum()


def test_absent_task_leaves_ema_average_unchanged():
    def loss_fn(outputs, intermediates, batch):  # presence from the batch's label mask
        return _loss_fn(outputs, intermediates, batch), {
            "va": jnp.any(batch["va_mask"]), "expr": jnp.array(True)}

    balancer = balancing.create("ema", beta=0.5)
    state = _state(balancer, optax.with_extra_args_support(optax.sgd(0.1)))
    step = jax.jit(chex.assert_max_traces(
        steps.make_train_step(loss_fn, balancer, task_names=("va", "expr"),
                              steps_per_epoch=4), n=1))
    rng = jnp.array(RNG)
    state, first = step(state, _batch(0), rng)
    seen = np.asarray(state.balancer_state.average)
    np.testing.assert_allclose(seen, [first["loss/va"], first["loss/expr"]], rtol=1e-6)
    absent = dict(_batch(1), va_mask=jnp.zeros((8,), bool))
    state, metrics = step(state, absent, rng)
    average = np.asarray(state.balancer_state.average)
    assert average[0] == seen[0]  # va: no labelled sample, average kept
    np.testing.assert_allclose(average[1], 0.5 * metrics["loss/expr"] + 0.5 * seen[1],
                               rtol=1e-6)
    np.testing.assert_array_equal(state.balancer_state.count, [1, 2])
    np.testing.assert_allclose(metrics["weight/va"], 1.0 / seen[0], rtol=1e-6)

    def partial_presence(outputs, intermediates, batch):
        return _loss_fn(outputs, intermediates, batch), {"va": jnp.array(False)}

    bad = steps.make_train_step(partial_presence, balancer, task_names=("va", "expr"),
                                steps_per_epoch=4)
    with pytest.raises(ValueError, match=r"presence dict lacks tasks \['expr'\]"):
        bad(state, _batch(2), rng)
