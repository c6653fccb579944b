"""The ``mtl`` method: every balancer in its jitted step with donated state and absent tasks,
the task kinds against float64 references, the overall score, per-balancer arguments and
the shared initialisation."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.special
import torch

from affectjax import balancing
from affectjax import labels
from affectjax.methods.mtl import method as mtl
from affectjax.methods.mtl import tasks
from affectjax.models.hard_sharing import HardSharing
from affectjax.train import setup
from affectjax.train import steps
from affectjax.train.errors import ConfigError
from affectjax.train.state import create_train_state

pytestmark = pytest.mark.usefixtures("fast_compiled")

ATTRS = ("Smiling", "Young", "Bald")


def _config(kinds="va+expr+au", **mtl_changes):
    c = ml_collections.ConfigDict()
    c.model = dict(name="hard_sharing", backbone="efficientnet_tiny",
                   backbone_kwargs=dict(width_multiplier=0.5, drop_rate=0.0))
    c.mtl = dict(tasks=kinds, num_expressions=8, attributes=ATTRS, loss_scale={})
    c.mtl.update(mtl_changes)
    return c


def _batch(seed, n=6, drop=()):
    """A SynthFaces-like batch; the kinds in `drop` are unlabelled in it."""
    r = np.random.default_rng(seed)
    batch = {"image": r.normal(size=(n, 16, 16, 3)).astype(np.float32),
             "va": r.uniform(-1, 1, (n, 2)).astype(np.float32), "va_mask": np.ones(n, bool),
             "expr": r.integers(0, 8, n).astype(np.int32),
             "au": r.integers(0, 2, (n, 12)).astype(np.int32),
             "attr": r.integers(0, 2, (n, len(ATTRS))).astype(np.int32),
             "valid": np.ones(n, bool)}
    if "va" in drop:
        batch["va_mask"][:] = False
    if "expr" in drop:
        batch["expr"][:] = -1
    if "au" in drop:
        batch["au"][:] = -1
    return batch


class _TinyBackbone(nn.Module):
    """Conv + BatchNorm + pooling: a backbone with the models' output contract that
    compiles in a moment (the registered backbones have their own tests)."""

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Conv(4, (3, 3), strides=2)(x)
        h = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(h))
        embedding = jnp.mean(h, axis=(1, 2))
        return {"logits": embedding}, {"embedding": embedding}


@pytest.fixture(scope="module")
def model_and_variables():
    config = _config()
    built = mtl.build_model(config)  # the registered hard_sharing model, with its heads
    model = HardSharing(_TinyBackbone(), built.heads)
    variables = jax.jit(lambda k, x: model.init(k, x, train=False))(
        jax.random.PRNGKey(0), _batch(0)["image"])
    forward = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
    return config, model, jax.device_get(variables), forward


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_every_balancer_trains_with_donated_state_and_absent_tasks(model_and_variables, name):
    config, model, variables, _ = model_and_variables
    method = mtl.specialize(config)
    kwargs = {"fixed": {"weights": (0.5, 1.0, 2.0)}}.get(name, {})
    balancer = balancing.create(name, **kwargs)
    state = create_train_state(variables=variables, apply_fn=model.apply,
                               tx=optax.with_extra_args_support(optax.adam(1e-3)),
                               balancer_state=balancer.init(3),
                               balancer_params=balancer.init_params(3))
    chex.clear_trace_counter()
    step = jax.jit(chex.assert_max_traces(steps.make_train_step(
        method.make_loss(config, None), balancer, task_names=method.task_names,
        steps_per_epoch=2, shared_mask=setup_shared_mask(method, variables)), n=1),
        donate_argnums=(0,))
    before = None
    for t, drop in enumerate(((), ("va",), ("au", "expr"), (), ("va",))):
        previous = jax.tree.map(np.asarray, state.balancer_state)
        state, metrics = step(state, _batch(t, drop=drop), jnp.array(jax.random.PRNGKey(3)))
        metrics = jax.device_get(metrics)
        assert np.isfinite(metrics["loss"]), (name, t)
        for task in drop:  # an absent task adds nothing and its loss is 0
            assert metrics[f"loss/{task}"] == 0.0, (name, t, task)
        if name == "ema" and drop:
            now = jax.tree.map(np.asarray, state.balancer_state)
            k = method.task_names.index(drop[0])
            assert now.average[k] == previous.average[k], "an absent task moved its EMA"
        before = metrics
    assert int(state.step) == 5 and before is not None


def setup_shared_mask(method, variables):
    groups = method.param_groups(variables["params"])
    return jax.tree.map(lambda g: g == method.shared_group, groups)


def test_attribute_tasks_are_separate_bce_losses_and_f1_is_their_mean():
    config = _config("attr")
    assert mtl.task_names(config) == tuple(f"attr/{a}" for a in ATTRS)
    r = np.random.default_rng(5)
    logits = r.normal(size=(9, 3)).astype(np.float32)
    y = r.integers(0, 2, (9, 3)).astype(np.int32)
    y[2, 1] = -1  # CelebA has no missing values; another data set may
    batch = {"attr": y, "valid": np.ones(9, bool)}
    values, present = tasks.kind_losses("attr", jnp.asarray(logits), batch, ATTRS)
    for k, a in enumerate(ATTRS):
        keep = y[:, k] >= 0
        ref = torch.nn.functional.binary_cross_entropy_with_logits(
            torch.tensor(logits[keep, k], dtype=torch.float64),
            torch.tensor(y[keep, k], dtype=torch.float64)).item()
        np.testing.assert_allclose(float(values[f"attr/{a}"]), ref, rtol=1e-5)
        assert bool(present[f"attr/{a}"])
    scalars, part, _ = tasks.kind_finalize("attr", tasks.kind_stats(
        "attr", jnp.asarray(logits), batch), ATTRS)
    f1s = []
    for k, a in enumerate(ATTRS):
        keep, pred = y[:, k] >= 0, (logits[:, k] >= 0).astype(int)
        tp = np.sum((pred == 1) & (y[:, k] == 1) & keep)
        fp = np.sum((pred == 1) & (y[:, k] == 0) & keep)
        fn = np.sum((pred == 0) & (y[:, k] == 1) & keep)
        f1s.append(2 * tp / max(2 * tp + fp + fn, 1))
        np.testing.assert_allclose(scalars[f"attr/f1/{a}"], f1s[-1], rtol=1e-6)
    np.testing.assert_allclose(part, np.mean(f1s), rtol=1e-6)
    np.testing.assert_allclose(scalars["attr/f1"], np.mean(f1s), rtol=1e-6)


def test_score_is_abaw_p_mtl(model_and_variables):
    config, _, variables, forward = model_and_variables
    method = mtl.specialize(config)
    batch = _batch(7, n=12)
    outputs = forward(variables, batch["image"])
    halves = [{k: v[s] for k, v in batch.items()} for s in (slice(0, 5), slice(5, None))]
    scalars, arrays = method.eval_finalize(method.eval_merge(*(
        method.eval_stats(forward(variables, h["image"]), None, h)
        for h in halves)))
    assert scalars["score"] == pytest.approx(scalars["va/ccc"] + scalars["expr/f1"]
                                             + scalars["au/f1"], rel=1e-9)
    assert arrays["confusion_matrix"].shape == (8, 8)
    assert arrays["confusion_matrix"].sum() == 12
    pred = np.tanh(np.asarray(outputs["va"], np.float64))
    v, t = pred[:, 0], batch["va"][:, 0].astype(np.float64)
    ccc_v = 2 * np.cov(v, t, bias=True)[0, 1] / (v.var() + t.var() + (v.mean() - t.mean()) ** 2)
    assert scalars["va/ccc_valence"] == pytest.approx(ccc_v, rel=1e-4, abs=1e-6)
    assert method.task_names == ("va", "expr", "au")
    assert method.class_names(config) == labels.EXPRESSIONS


def test_loss_scale_multiplies_one_task(model_and_variables):
    config, _, variables, forward = model_and_variables
    batch = _batch(2)
    outputs = forward(variables, batch["image"])
    plain, _ = mtl.make_loss(config, None)(outputs, None, batch)
    scaled_cfg = _config(loss_scale={"au": 100.0})
    scaled, _ = mtl.make_loss(scaled_cfg, None)(outputs, None, batch)
    np.testing.assert_allclose(float(scaled["au"]), 100 * float(plain["au"]), rtol=1e-6)
    assert float(scaled["va"]) == float(plain["va"])
    with pytest.raises(ConfigError, match=r"config.mtl.loss_scale: unknown tasks \['aus'\]"):
        mtl.make_loss(_config(loss_scale={"aus": 2.0}), None)


def test_balancer_sub_sections_and_bad_arguments():
    section = {"name": "ema", "ema": {"beta": 0.2}, "dwa": {"temperature": 3.0}}
    ema = setup.create_balancer(section)
    state = ema.init(2)
    _, state = ema.update(state, jnp.array([1.0, 4.0]))
    _, state = ema.update(state, jnp.array([3.0, 4.0]))
    np.testing.assert_allclose(np.asarray(state.average), [0.2 * 3 + 0.8 * 1, 4.0], rtol=1e-6)
    setup.create_balancer(dict(section, name="ew"))  # the sub-sections of others are unused
    with pytest.raises(ConfigError, match=r"config.balancer: ew takes no such argument"):
        setup.create_balancer({"name": "ew", "beta": 0.2})


def test_init_seed_fixes_the_initial_weights_whatever_the_seed():
    a = ml_collections.ConfigDict(dict(seed=0, init_seed=7))
    b = ml_collections.ConfigDict(dict(seed=3, init_seed=7))
    plain = ml_collections.ConfigDict(dict(seed=3, init_seed=-1))
    (ia, ra), (ib, rb), (ip, rp) = (setup.init_keys(c) for c in (a, b, plain))
    np.testing.assert_array_equal(jax.random.key_data(ia), jax.random.key_data(ib))
    assert not np.array_equal(jax.random.key_data(ra), jax.random.key_data(rb))
    # Without init_seed the keys are the seed's, as before.
    expected = jax.random.split(jax.random.PRNGKey(3))
    np.testing.assert_array_equal(np.asarray(ip), np.asarray(expected[0]))
    np.testing.assert_array_equal(np.asarray(rp), np.asarray(expected[1]))


@pytest.mark.parametrize("change, match", [
    (dict(tasks="va+emotion"), r"config.mtl.tasks='va\+emotion'"),
    (dict(tasks="attr", attributes=()), r"config.mtl.attributes is empty"),
])
def test_bad_settings_are_one_line(change, match):
    with pytest.raises(ConfigError, match=match):
        mtl.build_model(_config(**change))


def test_a_converted_backbone_goes_under_backbone(model_and_variables):
    _, _, variables, _ = model_and_variables
    backbone = jax.tree.map(lambda a: np.full_like(a, 0.5), {
        "params": variables["params"]["backbone"],
        "batch_stats": variables["batch_stats"]["backbone"]})
    backbone["params"]["classifier"] = {"kernel": np.zeros((4, 1000), np.float32)}
    merged, used, kept = mtl.merge_pretrained(None, variables, backbone)
    assert all("backbone" in p for p in used) and used
    assert all("head_" in p for p in kept) and len(kept) == 6  # three heads' kernel and bias
    leaves = jax.tree.leaves(merged["params"]["backbone"])
    assert all(np.all(np.asarray(x) == 0.5) for x in leaves)
    # A run of the method itself is copied path by path.
    again, used_again, _ = mtl.merge_pretrained(None, variables, merged)
    assert len(used_again) == len(jax.tree.leaves(variables))


def test_predictions_are_each_heads_link_with_named_classes(model_and_variables):
    config, _, variables, forward = model_and_variables
    outputs = forward(variables, _batch(3, n=4)["image"])
    fields, names = mtl.predict_fields(config)
    got = jax.device_get(fields(outputs, None))
    va = np.tanh(np.asarray(outputs["va"], np.float64))
    np.testing.assert_allclose(got["valence"], va[:, 0], atol=1e-6)
    np.testing.assert_allclose(got["arousal"], va[:, 1], atol=1e-6)
    np.testing.assert_allclose(got["expr_probs"], scipy.special.softmax(
        np.asarray(outputs["expr"], np.float64), -1), atol=1e-6)
    np.testing.assert_allclose(got["au_probs"], scipy.special.expit(
        np.asarray(outputs["au"], np.float64)), atol=1e-6)
    assert names == {"expr_probs": labels.EXPRESSIONS, "au_probs": labels.AUS}
    assert mtl.specialize(config).predictor is not None
