"""Orbax checkpoints: periodic retention, best kept apart, exact restore of a SAM state."""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from affectjax import balancing
from affectjax.train import optim
from affectjax.train.checkpoint import Checkpointer
from affectjax.train.state import create_train_state


def _state(seed):
    r = np.random.default_rng(seed)
    params = {"backbone": {"w": jnp.asarray(r.normal(size=(3, 2)), jnp.float32)},
              "classifier": {"b": jnp.asarray(r.normal(size=2), jnp.float32)}}
    groups = {"backbone": {"w": "backbone"}, "classifier": {"b": "head"}}
    balancer = balancing.create("uw")
    bparams = balancer.init_params(2)
    labels = optim.trainable_labels(groups, bparams, ["head"])
    cfg = ml_collections.ConfigDict(dict(name="adam", sam_rho=0.05))
    tx, _ = optim.build_optimizer(cfg, learning_rate=1e-3, labels=labels, steps_per_epoch=1,
                                  total_steps=1)
    state = create_train_state(
        variables={"params": params, "batch_stats": {"bn": {"mean": jnp.ones(2)}}},
        apply_fn=None, tx=tx, balancer_state=balancer.init(2), balancer_params=bparams)
    trainable = state.trainable
    grads = jax.tree.map(jnp.ones_like, trainable)
    updates, opt_state = tx.update(grads, state.opt_state, trainable,
                                   grad_fn=lambda p, _: jax.tree.map(jnp.ones_like, p))
    return state.apply_updates(updates, opt_state)


def test_save_restore_roundtrip_and_retention(tmp_path):
    checkpointer = Checkpointer(str(tmp_path), max_to_keep=2)
    assert checkpointer.latest_step() is None
    states = {}
    for seed in (1, 2, 3):
        state = _state(seed).replace(step=jnp.asarray(seed * 10, jnp.int32))
        states[seed * 10] = state
        checkpointer.save(state, {"phase": seed})
    checkpointer.save(states[20], {"phase": 2, "best": {"value": 0.5}}, best=True)
    assert checkpointer.latest_step() == 30
    assert sorted(checkpointer.latest.all_steps()) == [20, 30]
    assert checkpointer.best.all_steps() == [20]
    assert checkpointer.restore_meta(30)["phase"] == 3
    target = _state(0)
    restored = checkpointer.restore(30, target)
    for name in ("step", "params", "batch_stats", "opt_state", "balancer_state",
                 "balancer_params"):
        chex.assert_trees_all_equal(getattr(restored, name), getattr(states[30], name))
    assert restored.tx is target.tx
    checkpointer.close()
    # A second manager over the same directory sees the same checkpoints.
    again = Checkpointer(str(tmp_path))
    assert again.latest_step() == 30
    again.close()
