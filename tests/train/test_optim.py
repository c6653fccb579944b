"""Optimizer construction: frozen groups, per-group learning rates, SAM, schedules."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from affectjax.train import optim
from affectjax.train.errors import ConfigError


def _cfg(**kw):
    base = dict(name="adam", b1=0.9, b2=0.999, eps=1e-8, momentum=0.0, weight_decay=0.0,
                sam_rho=0.0, grad_clip_norm=0.0, schedule="constant", decay=0.95,
                warmup_steps=0, balancer_learning_rate=1e-3)
    base.update(kw)
    return ml_collections.ConfigDict(base)


def _tree():
    params = {"backbone": {"w": jnp.array([1.0, -2.0, 0.5])}, "classifier": {"b": jnp.array([0.3, -0.1])}}
    groups = {"backbone": {"w": "backbone"}, "classifier": {"b": "head"}}
    return params, groups


def test_frozen_group_gets_zero_update_and_no_state():
    params, groups = _tree()
    labels = optim.trainable_labels(groups, {}, ["head"])
    tx, _ = optim.build_optimizer(_cfg(), learning_rate=0.1, labels=labels,
                                  steps_per_epoch=10, total_steps=10)
    trainable = {"model": params, "balancer": {}}
    state = tx.init(trainable)
    grads = jax.tree.map(jnp.ones_like, trainable)
    updates, _ = tx.update(grads, state, trainable)
    np.testing.assert_array_equal(updates["model"]["backbone"]["w"], 0.0)
    # First Adam step: -lr * g / (|g| + eps) = -0.1.
    np.testing.assert_allclose(updates["model"]["classifier"]["b"], -0.1, rtol=1e-5)
    # The frozen leaf has no Adam moments (a masked node), the head has them.
    leaves = jax.tree.leaves(state)
    assert sum(leaf.size for leaf in leaves if leaf.ndim == 1) == 2 * 2


def test_lr_multipliers_scale_one_group():
    params, groups = _tree()
    labels = optim.trainable_labels(groups, {}, ["backbone", "head"])
    tx, _ = optim.build_optimizer(_cfg(name="sgd"), learning_rate=0.1, labels=labels,
                                  steps_per_epoch=10, total_steps=10,
                                  lr_multipliers={"head": 10.0})
    trainable = {"model": params, "balancer": {}}
    grads = jax.tree.map(lambda x: jnp.full_like(x, 2.0), trainable)
    updates, _ = tx.update(grads, tx.init(trainable), trainable)
    np.testing.assert_allclose(updates["model"]["backbone"]["w"], -0.2, rtol=1e-6)
    np.testing.assert_allclose(updates["model"]["classifier"]["b"], -2.0, rtol=1e-6)


def test_sam_adam_matches_float64_reference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=4)
    w0 = rng.normal(size=3)

    def grad64(w):
        return a.T @ (a @ w - b)

    rho, lr = 0.05, 0.1
    g1 = grad64(w0)
    g2 = grad64(w0 + rho * g1 / np.linalg.norm(g1))
    # Adam's first step from zero moments: m_hat = g, v_hat = g^2.
    expected = w0 - lr * g2 / (np.abs(g2) + 1e-8)

    a32, b32 = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    loss = lambda t: 0.5 * jnp.sum((a32 @ t["model"]["w"] - b32) ** 2)
    labels = {"model": {"w": "all"}, "balancer": {}}
    tx, _ = optim.build_optimizer(_cfg(sam_rho=rho), learning_rate=lr, labels=labels,
                                  steps_per_epoch=1, total_steps=1)
    trainable = {"model": {"w": jnp.asarray(w0, jnp.float32)}, "balancer": {}}
    grads = jax.grad(loss)(trainable)
    updates, _ = jax.jit(lambda g, s, p: tx.update(
        g, s, p, grad_fn=lambda q, _: jax.grad(loss)(q)))(grads, tx.init(trainable), trainable)
    new = optax.apply_updates(trainable, updates)
    np.testing.assert_allclose(new["model"]["w"], expected, rtol=1e-5, atol=1e-6)


def test_sam_does_not_perturb_frozen_groups():
    params, groups = _tree()
    labels = optim.trainable_labels(groups, {}, ["head"])
    tx, _ = optim.build_optimizer(_cfg(sam_rho=0.5), learning_rate=0.1, labels=labels,
                                  steps_per_epoch=1, total_steps=1)
    trainable = {"model": params, "balancer": {}}
    seen = []

    def grad_fn(p, _):
        seen.append(p)
        return jax.tree.map(jnp.ones_like, p)

    grads = jax.tree.map(jnp.ones_like, trainable)
    tx.update(grads, tx.init(trainable), trainable, grad_fn=grad_fn)
    perturbed = seen[0]["model"]
    np.testing.assert_array_equal(perturbed["backbone"]["w"], params["backbone"]["w"])
    # Only the head (2 entries, gradient 1 each) is perturbed: by rho / sqrt(2) each.
    np.testing.assert_allclose(perturbed["classifier"]["b"] - params["classifier"]["b"],
                               0.5 / np.sqrt(2), rtol=1e-5)


def test_plain_optimizer_accepts_and_ignores_grad_fn():
    params, groups = _tree()
    labels = optim.trainable_labels(groups, {}, ["backbone", "head"])
    tx, _ = optim.build_optimizer(_cfg(name="rmsprop"), learning_rate=0.01, labels=labels,
                                  steps_per_epoch=1, total_steps=1)
    trainable = {"model": params, "balancer": {}}
    grads = jax.tree.map(jnp.ones_like, trainable)
    called = []
    tx.update(grads, tx.init(trainable), trainable, grad_fn=lambda p, _: called.append(1))
    assert not called


def test_exponential_epoch_schedule_and_warmup():
    sched = optim.make_schedule(_cfg(schedule="exponential_epoch", decay=0.5), 1.0,
                                steps_per_epoch=4, total_steps=12)
    np.testing.assert_allclose([sched(0), sched(3), sched(4), sched(8)], [1, 1, 0.5, 0.25],
                               rtol=1e-6)
    warm = optim.make_schedule(_cfg(warmup_steps=4), 2.0, steps_per_epoch=4, total_steps=12)
    np.testing.assert_allclose([warm(0), warm(2), warm(4), warm(10)], [0, 1, 2, 2], rtol=1e-6)


def test_exponential_schedule_reaches_the_end_rate():
    sched = optim.make_schedule(_cfg(schedule="exponential", end_learning_rate=1e-6), 1e-3,
                                steps_per_epoch=10, total_steps=300)
    lr = np.array([sched(k) for k in (0, 100, 150, 300, 400)])
    np.testing.assert_allclose(lr, [1e-3, 1e-4, 10 ** -4.5, 1e-6, 1e-6], rtol=1e-4)
    with pytest.raises(ConfigError, match="end_learning_rate"):
        optim.make_schedule(_cfg(schedule="exponential"), 1e-3, steps_per_epoch=1,
                            total_steps=10)


def test_bad_names_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown parameter group"):
        optim.parse_trainable("head,neck", ("backbone", "head"))
    assert optim.parse_trainable("all", ("backbone", "head")) == ("backbone", "head")
    labels = {"model": {"w": "all"}, "balancer": {}}
    with pytest.raises(KeyError, match="adam"):
        optim.build_optimizer(_cfg(name="lamb"), learning_rate=0.1, labels=labels,
                              steps_per_epoch=1, total_steps=1)
    with pytest.raises(KeyError, match="cosine"):
        optim.make_schedule(_cfg(schedule="step"), 0.1, steps_per_epoch=1, total_steps=1)
