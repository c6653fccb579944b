"""The ``cct`` method: stacked members, the CCT loss with its ramp, member and ensemble scores."""

import os
import sys

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.special
from sklearn.metrics import accuracy_score, f1_score

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import cct_synthfaces  # noqa: E402  pylint: disable=wrong-import-position

from affectjax import ensemble  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import losses  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import methods  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import schedules  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.cct import method as cct  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train import checkpoint  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train import setup  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train import steps as steps_lib  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.errors import UserError  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.state import create_train_state  # noqa: E402  pylint: disable=wrong-import-position


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(8)(x)))
        h = nn.Dropout(0.3, deterministic=not train)(h)
        return {"logits": nn.Dense(4, name="classifier")(h)}, {"embedding": h}


def _config(**cct_changes):
    cct_cfg = dict(num_networks=3, consensus=True, lambda_max=0.9, beta=4.0, ramp_epochs=4.0,
                   clamp=True, scale=1.0, task="expr", reinit_heads=True)
    cct_cfg.update(cct_changes)
    return ml_collections.ConfigDict(dict(cct=cct_cfg, model=dict(num_classes=4)))


def test_ensemble_model_stacks_members_and_applies_each():
    model = cct.Ensemble(_Net(), 3)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 6)), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x, train=False)
    assert all(leaf.shape[0] == 3 for leaf in jax.tree.leaves(variables))
    (outputs, inter), _ = model.apply(variables, x, train=True, mutable=["batch_stats"],
                                      rngs={"dropout": jax.random.PRNGKey(1)})
    assert outputs["logits"].shape == (3, 5, 4) and inter["embedding"].shape == (3, 5, 8)
    outputs, _ = model.apply(variables, x, train=False)
    for i in range(3):
        alone, _ = _Net().apply(ensemble.member(variables, i), x, train=False)
        np.testing.assert_allclose(outputs["logits"][i], alone["logits"], atol=1e-6)
    groups = cct.CCT.param_groups(variables["params"])
    assert set(jax.tree.leaves(groups["classifier"])) == {"head"}
    assert {g for k, v in groups.items() if k != "classifier"
            for g in jax.tree.leaves(v)} == {"backbone"}


def _reference_terms(logits, labels):
    """Eqs. 2-3 in float64: sum_j mean CE_j and sum_{j != k} mean KL(p_k || p_j)."""
    logits = np.asarray(logits, np.float64)
    logp = scipy.special.log_softmax(logits, -1)
    keep = labels >= 0
    ce = sum(-np.mean(lp[keep, labels[keep]]) for lp in logp)
    kl = 0.0
    for j in range(len(logits)):
        for k in range(len(logits)):
            if j != k:
                kl += np.mean(np.sum(np.exp(logp[k]) * (logp[k] - logp[j]), -1))
    return ce, kl


@pytest.mark.parametrize("epoch", [0, 2, 4, 7])
def test_terms_and_ramp_balancer_give_eqs_1_to_4(epoch):
    rng = np.random.default_rng(epoch)
    logits = jnp.asarray(rng.normal(size=(3, 10, 4)), jnp.float32)
    labels = rng.integers(-1, 4, 10).astype(np.int32)
    batch = {"expr": jnp.asarray(labels), "valid": jnp.ones((10,), bool)}
    terms = cct.CCT.make_loss(_config(), None)({"logits": logits}, {}, batch)
    ce, kl = _reference_terms(logits, labels)
    np.testing.assert_allclose(terms["supervised"], ce, rtol=1e-5)
    np.testing.assert_allclose(terms["consensus"], kl, rtol=1e-5)
    vector = jnp.stack([terms[name] for name in cct.TERMS])
    lam = float(schedules.cct_lambda(epoch, ramp_epochs=4.0, lambda_max=0.9, beta=4.0))
    for cfg, want in ((_config(), (1 - lam) * ce + lam * kl),
                      (_config(scale=0.33), 0.33 * ((1 - lam) * ce + lam * kl)),
                      (_config(consensus=False), ce)):
        balancer = cct.CCT.make_balancer(cfg)
        weights, _ = balancer.update(balancer.init(2), vector, epoch=jnp.int32(epoch))
        total = balancer.combine(balancer.init_params(2), weights, vector)
        np.testing.assert_allclose(total, want, rtol=1e-5)
    # The same total as the library's one-call loss.
    np.testing.assert_allclose(
        losses.cct_loss(logits, jnp.asarray(labels), lam=lam), (1 - lam) * ce + lam * kl,
        rtol=1e-5)


def test_members_and_ensemble_scores_against_sklearn():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 40, 4)).astype(np.float32)
    clean = rng.integers(0, 4, 40).astype(np.int32)
    batch = {"expr": jnp.asarray(rng.integers(0, 4, 40), jnp.int32),  # noisy: not scored
             "expr_clean": jnp.asarray(clean), "valid": jnp.asarray(np.arange(40) < 35)}
    stats = cct.CCT.eval_stats({"logits": jnp.asarray(logits)}, {}, batch)
    half = cct.CCT.eval_merge(jax.tree.map(lambda x: x * 0, stats), stats)
    scalars, arrays = cct.CCT.eval_finalize(jax.device_get(half))
    y = clean[:35]
    for i in range(3):
        pred = logits[i, :35].argmax(-1)
        f1 = f1_score(y, pred, average="macro", labels=range(4), zero_division=0)
        np.testing.assert_allclose(scalars[f"member{i}/f1"], f1, rtol=1e-5)
        np.testing.assert_allclose(scalars[f"member{i}/acc"], accuracy_score(y, pred), rtol=1e-6)
    ens = scipy.special.softmax(logits[:, :35].astype(np.float64), -1).mean(0).argmax(-1)
    f1 = f1_score(y, ens, average="macro", labels=range(4), zero_division=0)
    acc = accuracy_score(y, ens)
    np.testing.assert_allclose(scalars["f1"], f1, rtol=1e-5)
    np.testing.assert_allclose(scalars["cct_score"], 0.67 * f1 + 0.33 * acc, rtol=1e-5)
    preds = logits[:, :35].argmax(-1)
    np.testing.assert_allclose(scalars["disagreement"], np.mean(np.any(preds != preds[0], 0)))
    assert arrays["confusion_matrix"].sum() == 35 == scalars["num_eval"]


def _task_method(task):
    return cct.CCT.specialize(_config(task=task))


def test_au_task_terms_and_scores_against_numpy_and_sklearn():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 30, 12)).astype(np.float32)
    au = rng.integers(-1, 2, (30, 12)).astype(np.int32)
    batch = {"au": jnp.asarray(au), "valid": jnp.asarray(np.arange(30) < 28)}
    method = _task_method("au")
    assert method.best_metric == "f1" and "au" in method.batch_keys
    terms = method.make_loss(_config(task="au"), None)({"logits": jnp.asarray(logits)}, {},
                                                       batch)
    z = logits.astype(np.float64)[:, :28]
    y = au[:28]
    bce = 0.0
    for j in range(2):
        keep = y >= 0
        per = np.logaddexp(0, z[j]) - y * z[j]
        bce += per[keep].mean()
    np.testing.assert_allclose(terms["supervised"], bce, rtol=1e-5)
    p = scipy.special.expit(z)
    kl = lambda a, b: np.mean(np.sum(a * np.log(a / b) + (1 - a) * np.log((1 - a) / (1 - b)),
                                     -1))
    np.testing.assert_allclose(terms["consensus"], kl(p[0], p[1]) + kl(p[1], p[0]), rtol=1e-4)
    scalars, _ = method.eval_finalize(jax.device_get(
        method.eval_stats({"logits": jnp.asarray(logits)}, {}, batch)))

    def au_f1(pred):
        return np.mean([f1_score(y[y[:, a] >= 0, a], pred[y[:, a] >= 0, a], zero_division=0)
                        for a in range(12)])

    np.testing.assert_allclose(scalars["member1/f1"], au_f1(p[1] >= 0.5), rtol=1e-5)
    np.testing.assert_allclose(scalars["f1"], au_f1(p.mean(0) >= 0.5), rtol=1e-5)
    decided = p >= 0.5
    np.testing.assert_allclose(scalars["disagreement"],
                               np.mean((decided[0] != decided[1])[y >= 0]), rtol=1e-6)


def _ccc(x, y):
    return 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


@pytest.mark.parametrize("mask_shape", [(25, 2), (25,)])  # per value, or per face (SynthFaces)
def test_va_task_terms_and_scores_against_numpy(mask_shape):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3, 25, 2)).astype(np.float32)
    va = rng.uniform(-1, 1, (25, 2)).astype(np.float32)
    batch = {"va": jnp.asarray(va), "va_mask": jnp.ones(mask_shape, bool),
             "valid": jnp.ones((25,), bool)}
    method = _task_method("va")
    assert method.best_metric == "ccc"
    terms = method.make_loss(_config(task="va"), None)({"logits": jnp.asarray(logits)}, {},
                                                       batch)
    pred = np.tanh(logits.astype(np.float64))
    sup = sum(1 - (_ccc(pred[j, :, 0], va[:, 0]) + _ccc(pred[j, :, 1], va[:, 1])) / 2
              for j in range(3))
    np.testing.assert_allclose(terms["supervised"], sup, rtol=1e-4)
    sq = sum(np.mean(np.sum((pred[k] - pred[j]) ** 2, -1))
             for j in range(3) for k in range(3) if j != k)
    np.testing.assert_allclose(terms["consensus"], sq, rtol=1e-4)
    stats = method.eval_stats({"logits": jnp.asarray(logits)}, {}, batch)
    scalars, _ = method.eval_finalize(jax.device_get(method.eval_merge(stats, jax.tree.map(
        lambda x: x * 0, stats))))
    ens = pred.mean(0)
    np.testing.assert_allclose(scalars["ccc_valence"], _ccc(ens[:, 0], va[:, 0]), rtol=1e-4)
    np.testing.assert_allclose(scalars["member2/ccc"], (_ccc(pred[2, :, 0], va[:, 0])
                                                       + _ccc(pred[2, :, 1], va[:, 1])) / 2,
                               rtol=1e-4)
    np.testing.assert_allclose(scalars["spread"], pred.std(0).mean(), rtol=1e-4)


class _PlainNet(nn.Module):
    """BatchNorm, no dropout: member i of an ensemble sees exactly the single net's step.

    No bias before BatchNorm: its gradient is zero up to rounding, which Adam would blow up
    to full-size steps of either sign.
    """

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(8, use_bias=False)(x)))
        return {"logits": nn.Dense(4, name="classifier")(h)}, {}


def test_lambda_zero_trains_members_exactly_as_independent_networks():
    """CE only (Table 7): the stacked step equals M single-network steps, clipping included."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(16, 6)), jnp.float32)
    batches = [{"image": x * (1 + 0.1 * s), "expr": jnp.asarray(rng.integers(0, 4, 16)),
                "valid": jnp.ones((16,), bool)} for s in range(4)]
    tx = ensemble.per_member(optax.chain(optax.clip_by_global_norm(0.05), optax.adam(1e-2)))

    def train(model, variables, config):
        state = create_train_state(variables=variables, apply_fn=model.apply, tx=tx,
                                   balancer_state=cct.CCT.make_balancer(config).init(2),
                                   balancer_params={})
        step = jax.jit(steps_lib.make_train_step(
            cct.CCT.make_loss(config, None), cct.CCT.make_balancer(config),
            task_names=cct.TERMS, steps_per_epoch=2))
        for batch in batches:
            state, _ = step(state, batch, jax.random.PRNGKey(1))
        return state

    config = _config(num_networks=3, consensus=False)
    stacked = cct.Ensemble(_PlainNet(), 3).init(jax.random.PRNGKey(0), x)
    together = train(cct.Ensemble(_PlainNet(), 3), stacked, config)
    alone_cfg = _config(num_networks=1, consensus=False)
    for i in range(3):
        alone = train(cct.Ensemble(_PlainNet(), 1), ensemble.stack([ensemble.member(stacked, i)]),
                      alone_cfg)
        for a, b in zip(jax.tree.leaves(ensemble.member(together.params, i)),
                        jax.tree.leaves(ensemble.member(alone.params, 0))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # With consensus the members are coupled, so they no longer match.
    coupled = train(cct.Ensemble(_PlainNet(), 3), stacked, _config(num_networks=3))
    assert not np.allclose(jax.tree.leaves(coupled.params)[0], jax.tree.leaves(together.params)[0])


def test_with_one_network_the_consensus_term_is_zero():
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(1, 6, 4)), jnp.float32)
    terms = cct.CCT.make_loss(_config(num_networks=1), None)(
        {"logits": logits}, {}, {"expr": jnp.zeros((6,), jnp.int32)})
    assert float(terms["consensus"]) == 0.0


def test_pretrained_start_shares_the_backbone_and_draws_each_head():
    x = jnp.ones((2, 6))
    single = _PlainNet().init(jax.random.PRNGKey(7), x)
    stacked = cct.Ensemble(_PlainNet(), 3).init(jax.random.PRNGKey(0), x)
    merged, used, kept = cct.CCT.merge_pretrained(_config(), stacked, single)
    assert kept == ["['params']['classifier']['bias']", "['params']['classifier']['kernel']"]
    for i in range(3):
        np.testing.assert_array_equal(ensemble.member(merged, i)["params"]["Dense_0"]["kernel"],
                                      single["params"]["Dense_0"]["kernel"])
        np.testing.assert_array_equal(ensemble.member(merged, i)["params"]["classifier"]["kernel"],
                                      ensemble.member(stacked, i)["params"]["classifier"]["kernel"])
    # A one-member run's checkpoint (leading axis 1) broadcasts the same way; without
    # reinit_heads the heads are shared too.
    one = ensemble.stack([single])
    merged, used, kept = cct.CCT.merge_pretrained(_config(reinit_heads=False), stacked, one)
    assert not kept and len(used) == len(jax.tree.leaves(stacked))
    np.testing.assert_array_equal(merged["params"]["classifier"]["kernel"][2],
                                  single["params"]["classifier"]["kernel"])


def _tiny_run_config(tmp_path, **changes):
    c = cct_synthfaces.get_config("quick")
    c.data.data_dir = str(tmp_path / "data")
    c.data.builder_kwargs.sizes = dict(train=64, validation=32)
    c.data.image_size = 32
    c.data.builder_kwargs.image_size = 32
    c.model.width_multiplier = 1.0
    c.batch_size = 16
    c.phases.full.epochs = 2
    c.cct.ramp_epochs = 2.0
    c.log_every_steps = 2
    c.progress_bar = False
    for key, value in changes.items():
        section, name = key.split(".")
        c[section][name] = value
    return c


def test_num_networks_must_be_an_integer_from_1_to_4():
    assert cct.num_networks(_config(num_networks=4)) == 4
    for bad in (0, 5, 2.5, True, "3"):
        with pytest.raises(UserError, match="num_networks must be an integer from 1 to 4"):
            cct.num_networks(_config(num_networks=bad))


@pytest.mark.parametrize("change", [{"cct.num_networks": 0}, {"cct.num_networks": 5},
                                    {"optimizer.sam_rho": 0.05}, {"cct.ramp_epochs": 0.0},
                                    {"cct.task": "landmarks"}, {"model.num_classes": 9},
                                    {"balancer.name": "uw"}])
def test_bad_settings_are_one_line(tmp_path, change, fast_compile):
    config = _tiny_run_config(tmp_path, **change)
    with fast_compile(), pytest.raises(UserError) as err:  # sam_rho is refused after init
        methods.train_and_evaluate(config, str(tmp_path / "run"))
    message = str(err.value)
    key = list(change)[0]
    assert "\n" not in message and key in message, message


class _Killed(Exception):
    pass


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, fast_compile):
    tmp = tmp_path_factory.mktemp("cct")
    config = _tiny_run_config(tmp)
    with fast_compile():
        final = methods.train_and_evaluate(config, str(tmp / "run"))
    return config, final, tmp / "run"


def test_a_run_trains_every_member_and_logs_lambda_and_both_terms(reference_run):
    config, final, workdir = reference_run
    scalars = final["eval"]
    for i in range(3):
        assert 0.0 <= scalars[f"member{i}/cct_score"] <= 1.0
    assert 0.0 <= scalars["disagreement"] <= 1.0 and scalars["num_eval"] == 32
    assert final["best"]["metric"] == "cct_score"
    assert os.path.exists(workdir / "plots" / "confusion_matrix.png")
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    train = [r for r in records if r["split"] == "train"]
    ramp = config.cct
    for r in train:
        epoch = (r["step"] - 1) // 4  # 4 steps per epoch; logged after the step
        lam = float(schedules.cct_lambda(epoch, ramp_epochs=ramp.ramp_epochs,
                                         lambda_max=ramp.lambda_max, beta=ramp.beta))
        np.testing.assert_allclose(r["weight/consensus"], lam, rtol=1e-5)
        np.testing.assert_allclose(r["weight/supervised"], 1 - lam, rtol=1e-5)
        assert r["loss/consensus"] >= 0 and r["loss/supervised"] > 0


def test_a_killed_run_resumes_to_the_same_metrics(reference_run, tmp_path, monkeypatch,
                                                  fast_compile):
    config, final, _ = reference_run
    save = checkpoint.Checkpointer.save

    def save_then_die(self, state, meta, *, best=False):
        save(self, state, meta, best=best)
        if not best and int(state.step) == 4:
            raise _Killed()

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_die)
    workdir = str(tmp_path / "killed")
    with fast_compile(), pytest.raises(_Killed):
        methods.train_and_evaluate(config, workdir)
    monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
    with fast_compile():
        resumed = methods.train_and_evaluate(config, workdir)
    assert resumed["eval"] == final["eval"]


def test_a_run_is_the_start_of_another(reference_run, fast_compile):
    """The config chain of cct_affwild2.py: ``init_from`` a cct workdir (its best/)."""
    config, _, workdir = reference_run
    loaded, origin = setup.load_pretrained(str(workdir))
    assert origin.startswith(f"workdir:{workdir}/best/")
    two = config.copy_and_resolve_references()
    two.cct.num_networks = 2
    x = jnp.zeros((1, 32, 32, 3))
    model = cct.CCT.build_model(two)
    with fast_compile():  # jitted, not op by op: only the shapes of the fresh arrays matter
        fresh = jax.device_get(jax.jit(lambda r: model.init(r, x, train=False))(
            jax.random.PRNGKey(5)))
    merged, used, kept = cct.CCT.merge_pretrained(two, fresh, loaded)
    assert kept == ["['params']['classifier']['bias']", "['params']['classifier']['kernel']"]
    stem = loaded["params"]["conv_stem"]["kernel"]
    assert stem.shape[0] == 3  # the reference run's three members: member 0 starts both
    for i in range(2):
        np.testing.assert_array_equal(merged["params"]["conv_stem"]["kernel"][i], stem[0])


def test_the_predictor_gives_each_member_and_their_mean_softmax(reference_run):
    from affectjax import predict  # pylint: disable=import-outside-toplevel
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    config, _, workdir = reference_run
    source = pipeline.create_source(config.data, "validation")
    examples = pipeline.read_examples(source, np.arange(6))
    predictor = predict.load(str(workdir))
    out = predictor([e["image"] for e in examples])
    m = cct.num_networks(config)
    assert out["member_expr_probs"].shape == (6, m, 8) and out["member_expr"].shape == (6, m)
    inputs = predictor.preprocess([e["image"] for e in examples])
    model = cct.CCT.build_model(config)
    variables, _ = checkpoint.restore_run_variables(str(workdir))
    (outputs, _), _ = cct.CCT.apply_fn(model)(variables, inputs, train=False)
    members = scipy.special.softmax(np.asarray(outputs["logits"], np.float64), axis=-1)
    np.testing.assert_allclose(out["member_expr_probs"], members.transpose(1, 0, 2), atol=1e-5)
    np.testing.assert_allclose(out["expr_probs"], members.mean(axis=0), atol=1e-5)
    np.testing.assert_array_equal(out["expr"], members.mean(axis=0).argmax(-1))
    row = predictor.rows(out)[0]
    assert {f"member{k}/expr_label" for k in range(m)} <= set(row)
