"""Orbax checkpoints: periodic retention, best kept apart, exact restore of a SAM state;
damaged checkpoints skipped (resume) or named in one line (restore_stored)."""

import glob
import os
import shutil

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from affectjax import balancing
from affectjax.train import optim
from affectjax.train import checkpoint as ckpt_lib
from affectjax.train.checkpoint import Checkpointer
from affectjax.train.errors import ConfigError, DataError
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


def corrupt(step_dir, how="overwrite arrays"):
    """Damages the checkpoint directory `step_dir` as a bad disk or a careless user would."""
    arrays = glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True)
    assert arrays
    if how == "truncate arrays":
        for path in arrays:
            open(path, "wb").close()
    elif how == "overwrite arrays":
        for path in arrays:
            size = os.path.getsize(path)
            with open(path, "wb") as f:
                f.write(b"\x07" * size)
    elif how == "delete arrays":
        for path in arrays:
            os.remove(path)
    elif how == "delete state metadata":
        os.remove(os.path.join(step_dir, "state", "_METADATA"))
    elif how == "delete meta":
        os.remove(os.path.join(step_dir, "meta", "metadata"))
    elif how == "delete state":
        shutil.rmtree(os.path.join(step_dir, "state"))
    else:
        raise ValueError(how)


def _two_checkpoints(workdir):
    checkpointer = Checkpointer(workdir, max_to_keep=2)
    states = {}
    for step in (10, 20):
        states[step] = _state(step).replace(step=jnp.asarray(step, jnp.int32))
        checkpointer.save(states[step], {"phase": step // 10})
    return checkpointer, states


@pytest.mark.parametrize("how", ["truncate arrays", "overwrite arrays", "delete arrays",
                                 "delete state metadata", "delete meta", "delete state"])
def test_restore_latest_skips_a_damaged_newest_checkpoint(tmp_path, capfd, how):
    checkpointer, states = _two_checkpoints(str(tmp_path))
    damaged = os.path.join(str(tmp_path), "checkpoints", "20")
    corrupt(damaged, how)
    capfd.readouterr()
    step, restored, meta = checkpointer.restore_latest(lambda meta: _state(0))
    assert step == 10 and meta["phase"] == 1
    chex.assert_trees_all_equal(restored.params, states[10].params)
    chex.assert_trees_all_equal(restored.opt_state, states[10].opt_state)
    # One warning line naming the damaged checkpoint; no traceback from Orbax's readers.
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"warning: skipped the damaged checkpoint {damaged} (")
    assert "Traceback" not in err
    # Moved aside, so the run writes step 20 again.
    aside = os.path.join(str(tmp_path), ckpt_lib.CORRUPT_DIR, "20")
    assert os.path.isdir(aside) and not os.path.exists(damaged)
    assert checkpointer.latest.all_steps() == [10]
    checkpointer.save(states[20], {"phase": 2})
    assert checkpointer.latest_step() == 20 and checkpointer.restore_meta(20)["phase"] == 2
    checkpointer.close()


def test_restore_latest_when_nothing_restores_or_fits(tmp_path, capfd):
    empty = Checkpointer(str(tmp_path / "empty"))
    assert empty.restore_latest(lambda meta: _state(0)) is None
    empty.close()
    checkpointer, _ = _two_checkpoints(str(tmp_path / "run"))
    # Another model: Orbax reads the stored tree and it differs from the target.
    wider = _state(0)
    wider = wider.replace(params=dict(wider.params, backbone={"w": jnp.zeros((4, 2))}))
    with pytest.raises(ConfigError, match=r"checkpoints/20 does not fit this config"):
        checkpointer.restore_latest(lambda meta: wider)
    with pytest.raises(ConfigError, match=r"checkpoints/20 does not fit this config"):
        checkpointer.restore_latest(lambda meta: [][meta["phase"]])  # a phase it lacks
    # Every checkpoint damaged: one line naming the directory; nothing is moved.
    for step in ("10", "20"):
        corrupt(str(tmp_path / "run" / "checkpoints" / step))
    capfd.readouterr()
    with pytest.raises(DataError) as info:
        checkpointer.restore_latest(lambda meta: _state(0))
    message = str(info.value)
    # One short line: the reason is cut to 200 characters; the directory appears twice.
    assert "\n" not in message and len(message) < 320 + 2 * len(str(tmp_path))
    assert message.startswith(f"no checkpoint in {tmp_path / 'run' / 'checkpoints'} can be "
                              "restored (the newest, 20: state: DATA_LOSS")
    assert "new --workdir" in message
    assert checkpointer.latest.all_steps() == [10, 20]
    assert not os.path.exists(tmp_path / "run" / ckpt_lib.CORRUPT_DIR)
    assert "Traceback" not in capfd.readouterr().err
    checkpointer.close()


def test_restore_stored_names_a_damaged_checkpoint(tmp_path):
    checkpointer, states = _two_checkpoints(str(tmp_path))
    checkpointer.save(states[10], {"phase": 1}, best=True)
    checkpointer.close()
    step, stored = ckpt_lib.restore_stored(str(tmp_path / "best"))
    assert step == 10
    np.testing.assert_array_equal(stored["params"]["backbone"]["w"],
                                  states[10].params["backbone"]["w"])
    assert ckpt_lib.restore_stored(str(tmp_path / "nothing")) is None
    assert not os.path.exists(tmp_path / "nothing")
    corrupt(str(tmp_path / "best" / "10"), "truncate arrays")
    with pytest.raises(DataError, match=r"^the checkpoint .*/best/10 is damaged and cannot be "
                                        r"restored \(OUT_OF_RANGE: .*\); do this$"):
        ckpt_lib.restore_stored(str(tmp_path / "best"), hint="do this")
