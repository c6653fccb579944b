"""Every balancer through the jitted generic train step: logged weights vs their definition.

Each balancer of `balancing.BALANCERS` trains a tiny two-task net (Dense + BatchNorm +
two heads) for `_STEPS` steps of `_STEPS_PER_EPOCH` steps per epoch, so the epoch-based
balancers (DWA, REMA, DWEMA) cross into the epochs where their rates act. The logged
``weight/<task>`` of every step (the effective weight d total / d L_k) is recomputed in
float64 NumPy from the logged per-step ``loss/<task>`` values and, for the balancers with
trainable parameters, from ``state.balancer_params`` as they were when the step ran (the
state after the previous step):

* EW: ones; fixed: the given weights;
* EMA: 1 / Lbar(t), Lbar(0) = L(0), Lbar(t) = beta L(t) + (1 - beta) Lbar(t - 1);
* DWA: ones in epochs 0 and 1, then K softmax(r / T), r = Lbar^ep(e-1) / Lbar^ep(e-2)
  from the epoch-mean losses;
* REMA: r / Lbar(t) (r = 1 in epochs 0 and 1); DWEMA: DWA's factor / Lbar(t);
* UW: 1 / (2 exp(s)), and the learned s moves;
* GradNorm: K softmax(a), the logits a move away from 0, and the weights sum to K.

The logged ``loss`` must equal sum_k w_k L_k (UW: plus sum_k s_k / 2). A balancer whose
trainable parameters got no gradient through the step (GradNorm before the step trained
its logits) fails here: its weights stay at 1. So does GradNorm under SAM, whose outer
step uses the gradient of ``grad_fn`` only (`test_gradnorm_logits_learn_under_sam`).
"""

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
from affectjax.train import optim
from affectjax.train import steps
from affectjax.train.state import create_train_state

pytestmark = pytest.mark.usefixtures("fast_compiled")

_TASKS = ("va", "expr")
_K = len(_TASKS)
_STEPS = 10
_STEPS_PER_EPOCH = 2          # epochs 0..4: rates act from epoch 2 (steps 4..9)
_LR = 0.1
RNG = jax.random.PRNGKey(1)  # the base key the steps receive
_FIXED = (0.3, 2.0)
_BETA = 0.3
_T = 2.0

_KWARGS = {"fixed": {"weights": _FIXED}, "ema": {"beta": _BETA},
           "rema": {"beta": _BETA}, "dwema": {"beta": _BETA, "temperature": _T},
           "dwa": {"temperature": _T}}


class _Net(nn.Module):
    """Dense + BatchNorm + two heads, returning (outputs, intermediates) like the models."""

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.Dense(6)(x.reshape(x.shape[0], -1))
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        h = nn.relu(h)
        return {"expr_logits": nn.Dense(4)(h), "va": nn.Dense(2)(h)}, {"embedding": h}


def _batch(seed, n=8):
    r = np.random.default_rng(seed)
    return {"image": jnp.asarray(r.normal(size=(n, 2, 2, 3)), jnp.float32),
            "expr": jnp.asarray(r.integers(0, 4, n), jnp.int32),
            "va": jnp.asarray(r.uniform(-1, 1, (n, 2)), jnp.float32)}


def _loss_fn(outputs, intermediates, batch):
    del intermediates
    # Two losses of different scales, so the balancers give the tasks different weights.
    return {"va": 3.0 * jnp.mean((outputs["va"] - batch["va"]) ** 2),
            "expr": losses.weighted_cross_entropy(outputs["expr_logits"], batch["expr"])}


def _run(name):
    """Trains `_STEPS` jitted steps; returns (losses, weights, totals, params_before)."""
    balancer = balancing.create(name, **_KWARGS.get(name, {}))
    model = _Net()
    variables = model.init(jax.random.PRNGKey(0), _batch(0)["image"], train=False)
    state = create_train_state(variables=variables, apply_fn=model.apply,
                               tx=optax.with_extra_args_support(optax.sgd(_LR)),
                               balancer_state=balancer.init(_K),
                               balancer_params=balancer.init_params(_K))
    chex.clear_trace_counter()  # every factory-made step shares one counter key
    step = jax.jit(chex.assert_max_traces(
        steps.make_train_step(_loss_fn, balancer, task_names=_TASKS,
                              steps_per_epoch=_STEPS_PER_EPOCH), n=1),
        donate_argnums=(0,))
    rng = jnp.array(RNG)
    task_losses, weights, totals, params = [], [], [], []
    for t in range(_STEPS):
        params.append(jax.tree.map(lambda a: np.asarray(a, np.float64),
                                   state.balancer_params))
        state, metrics = step(state, _batch(t), rng)
        metrics = jax.device_get(metrics)
        task_losses.append([metrics[f"loss/{k}"] for k in _TASKS])
        weights.append([metrics[f"weight/{k}"] for k in _TASKS])
        totals.append(metrics["loss"])
    params.append(jax.tree.map(lambda a: np.asarray(a, np.float64), state.balancer_params))
    assert int(state.step) == _STEPS
    return (np.asarray(task_losses, np.float64), np.asarray(weights, np.float64),
            np.asarray(totals, np.float64), params)


def _softmax(x):
    z = np.exp(x - np.max(x))
    return z / z.sum()


def _ema(task_losses):
    average = np.empty_like(task_losses)
    average[0] = task_losses[0]
    for t in range(1, len(task_losses)):
        average[t] = _BETA * task_losses[t] + (1 - _BETA) * average[t - 1]
    return average


def _rates(task_losses):
    """(T, K) DWA training rates r(e) of each step's epoch, ones in epochs 0 and 1."""
    epochs = np.arange(len(task_losses)) // _STEPS_PER_EPOCH
    means = np.stack([task_losses[epochs == e].mean(0) for e in range(epochs.max() + 1)])
    rates = np.ones_like(task_losses)
    for t, e in enumerate(epochs):
        if e >= 2:
            rates[t] = means[e - 1] / means[e - 2]
    return rates, epochs >= 2


def _dwa_factor(task_losses):
    rates, ready = _rates(task_losses)
    return np.stack([_K * _softmax(r / _T) if ok else np.ones(_K)
                     for r, ok in zip(rates, ready)])


def _expected(name, task_losses, params):
    """float64 reference weights of every step, from the logged losses and parameters."""
    n = len(task_losses)
    if name == "ew":
        return np.ones((n, _K))
    if name == "fixed":
        return np.tile(np.asarray(_FIXED, np.float64), (n, 1))
    if name == "ema":
        return 1.0 / _ema(task_losses)
    if name == "dwa":
        return _dwa_factor(task_losses)
    if name == "rema":
        return _rates(task_losses)[0] / _ema(task_losses)
    if name == "dwema":
        return _dwa_factor(task_losses) / _ema(task_losses)
    if name == "uw":
        return np.stack([0.5 * np.exp(-p["log_vars"]) for p in params[:n]])
    if name == "gradnorm":
        return np.stack([_K * _softmax(p["logits"]) for p in params[:n]])
    raise AssertionError(f"no reference for balancer {name!r}: add one to this test")


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_logged_weights_follow_the_balancer_definition(name):
    task_losses, weights, totals, params = _run(name)
    assert np.all(np.isfinite(task_losses)) and np.all(np.isfinite(weights))
    np.testing.assert_allclose(weights, _expected(name, task_losses, params),
                               rtol=2e-5, atol=1e-7)
    assert np.all(weights > 0)

    if name == "uw":
        log_vars = np.stack([p["log_vars"] for p in params[:_STEPS]])
        np.testing.assert_allclose(
            totals, np.sum(weights * task_losses + 0.5 * log_vars, axis=1), rtol=1e-5)
        moved = np.abs(params[-1]["log_vars"] - params[0]["log_vars"])
        assert np.all(moved > 1e-3), moved
    else:
        np.testing.assert_allclose(totals, np.sum(weights * task_losses, axis=1), rtol=1e-5)

    if name == "gradnorm":
        np.testing.assert_allclose(params[0]["logits"], 0.0)
        np.testing.assert_allclose(weights.sum(1), _K, rtol=1e-5)
        assert np.max(np.abs(params[-1]["logits"])) > 1e-2, params[-1]["logits"]
        assert np.max(np.abs(weights[-1] - 1.0)) > 1e-2, weights[-1]
    if name == "dwa":
        np.testing.assert_array_equal(weights[:2 * _STEPS_PER_EPOCH], 1.0)
        np.testing.assert_allclose(weights.sum(1), _K, rtol=1e-5)
    if name in ("dwa", "rema", "dwema"):
        # The rates act from epoch 2 on: the weights there are not those of plain EMA/EW.
        base = np.ones((_STEPS, _K)) if name == "dwa" else 1.0 / _ema(task_losses)
        late = slice(2 * _STEPS_PER_EPOCH, None)
        assert np.max(np.abs(weights[late] / base[late] - 1.0)) > 1e-3


def test_gradnorm_logits_learn_under_sam():
    """SAM (opaque mode) steps with its ``grad_fn`` gradient, not the step's first one.

    With SGD and the balancer's parameters unperturbed, the logits' first update is
    the same with and without SAM: -lr times the gradient of GradNorm's own loss.
    """
    logits = {}
    for rho in (0.0, 0.05):
        balancer = balancing.create("gradnorm")
        model = _Net()
        variables = model.init(jax.random.PRNGKey(0), _batch(0)["image"], train=False)
        bparams = balancer.init_params(_K)
        labels = optim.trainable_labels(jax.tree.map(lambda _: "all", variables["params"]),
                                        bparams, ["all"])
        cfg = ml_collections.ConfigDict(dict(name="sgd", momentum=0.0, sam_rho=rho,
                                             balancer_learning_rate=_LR))
        tx, _ = optim.build_optimizer(cfg, learning_rate=_LR, labels=labels,
                                      steps_per_epoch=_STEPS_PER_EPOCH, total_steps=_STEPS)
        state = create_train_state(variables=variables, apply_fn=model.apply, tx=tx,
                                   balancer_state=balancer.init(_K), balancer_params=bparams)
        step = jax.jit(steps.make_train_step(_loss_fn, balancer, task_names=_TASKS,
                                             steps_per_epoch=_STEPS_PER_EPOCH))
        state, _ = step(state, _batch(0), jnp.array(RNG))
        logits[rho] = np.asarray(state.balancer_params["logits"])
    assert np.max(np.abs(logits[0.05])) > 1e-3, logits
    np.testing.assert_allclose(logits[0.05], logits[0.0], rtol=1e-6)
