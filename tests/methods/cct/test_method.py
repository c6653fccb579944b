"""The ``cct`` method: stacked members, the CCT loss with its ramp, member and ensemble scores."""

import os
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.special
from sklearn.metrics import accuracy_score, f1_score

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import cct_synthfaces  # noqa: E402  pylint: disable=wrong-import-position

from affectjax import ensemble  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import methods  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import schedules  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.cct import method as cct  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.errors import UserError  # noqa: E402  pylint: disable=wrong-import-position


class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.BatchNorm(use_running_average=not train)(nn.Dense(8)(x)))
        h = nn.Dropout(0.3, deterministic=not train)(h)
        return {"logits": nn.Dense(4, name="classifier")(h)}, {"embedding": h}


def _config(**cct_changes):
    cct_cfg = dict(num_networks=3, consensus=True, lambda_max=0.9, beta=4.0, ramp_epochs=4.0,
                   clamp=True, scale=1.0)
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


def _reference_loss(logits, labels, lam):
    """Eqs. 1-3 in float64: (1 - lam) sum_j mean CE_j + lam sum_{j != k} mean KL(p_k || p_j)."""
    logits = np.asarray(logits, np.float64)
    logp = scipy.special.log_softmax(logits, -1)
    keep = labels >= 0
    ce = sum(-np.mean(lp[keep, labels[keep]]) for lp in logp)
    kl = 0.0
    for j in range(len(logits)):
        for k in range(len(logits)):
            if j != k:
                kl += np.mean(np.sum(np.exp(logp[k]) * (logp[k] - logp[j]), -1))
    return (1 - lam) * ce + lam * kl


@pytest.mark.parametrize("epoch", [0, 2, 4, 7])
def test_loss_is_eqs_1_to_3_with_the_epochs_lambda(epoch):
    rng = np.random.default_rng(epoch)
    logits = jnp.asarray(rng.normal(size=(3, 10, 4)), jnp.float32)
    labels = rng.integers(-1, 4, 10).astype(np.int32)
    batch = {"expr": jnp.asarray(labels), "valid": jnp.ones((10,), bool)}
    loss = cct.CCT.make_loss(_config(), None)({"logits": logits}, {}, batch,
                                              epoch=jnp.int32(epoch))["expr"]
    lam = float(schedules.cct_lambda(epoch, ramp_epochs=4.0, lambda_max=0.9, beta=4.0))
    np.testing.assert_allclose(loss, _reference_loss(logits, labels, lam), rtol=1e-5)
    ce_only = cct.CCT.make_loss(_config(consensus=False), None)({"logits": logits}, {}, batch,
                                                                epoch=jnp.int32(epoch))
    np.testing.assert_allclose(ce_only["expr"], _reference_loss(logits, labels, 0.0), rtol=1e-5)


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


def _tiny_run_config(tmp_path, **changes):
    c = cct_synthfaces.get_config("quick")
    c.data.data_dir = str(tmp_path / "data")
    c.data.builder_kwargs.sizes = dict(train=64, validation=32)
    c.data.image_size = 32
    c.data.builder_kwargs.image_size = 32
    c.model.width_multiplier = 1.0
    c.batch_size = 16
    c.phases.full.epochs = 1
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
                                    {"optimizer.sam_rho": 0.05}, {"cct.ramp_epochs": 0.0}])
def test_bad_settings_are_one_line(tmp_path, change):
    config = _tiny_run_config(tmp_path, **change)
    with pytest.raises(UserError) as err:
        methods.train_and_evaluate(config, str(tmp_path / "run"))
    message = str(err.value)
    assert "\n" not in message and list(change)[0].split(".")[1] in message


def test_a_run_trains_every_member_and_reports_each(tmp_path, fast_compiled):
    del fast_compiled
    final = methods.train_and_evaluate(_tiny_run_config(tmp_path), str(tmp_path / "run"))
    scalars = final["eval"]
    for i in range(3):
        assert 0.0 <= scalars[f"member{i}/cct_score"] <= 1.0
    assert 0.0 <= scalars["disagreement"] <= 1.0 and scalars["num_eval"] == 32
    assert final["best"]["metric"] == "cct_score"
    assert os.path.exists(tmp_path / "run" / "plots" / "confusion_matrix.png")
