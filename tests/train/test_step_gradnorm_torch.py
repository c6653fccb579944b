"""GradNorm through the generic train step against a LibMTL-style PyTorch GradNorm.

The same two-task net on both sides: a shared trunk Linear(4 -> 8) + ReLU and two
heads, Linear(8 -> 1) for a regression task (MSE) and Linear(8 -> 3) for a
classification task (cross-entropy). The torch modules get the flax initial weights, both
sides see the same `_STEPS` fixed batches and take plain SGD steps (no momentum) at one
learning rate for the model and for the GradNorm logits.

The PyTorch side follows LibMTL's `GradNorm.backward` (Chen et al. 2018; PAPERS.md §5),
with the shared parameters W = the trunk:

    w = K softmax(loss_scale),  loss_scale initialised to 0 (LibMTL: equal values),
    G_k = || w_k grad_W L_k ||,  r_k = (L_k / L_k(0)) / mean_j (L_j / L_j(0)),
    L_grad = sum_k | G_k - detach(mean(G) r_k^alpha) |,  alpha = 1.5,

loss_scale's gradient from L_grad alone, the model's from sum_k detach(w_k) L_k. Two
deliberate departures from LibMTL, matching affectjax's ``initial_losses="first_step"``
(the paper's form): L(0) is the first step's losses (LibMTL: the mean losses of epoch 0,
with the weights held at 1 during that epoch), and the heads' gradients are those of the
weighted total, as in the paper (LibMTL's per-task ``backward`` calls leave each head
the gradient of its unweighted loss).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from affectjax import balancing
from affectjax.train import optim
from affectjax.train import steps
from affectjax.train.state import create_train_state

pytestmark = pytest.mark.usefixtures("fast_compiled")
torch = pytest.importorskip("torch")
F = torch.nn.functional

_K = 2
_TASKS = ("reg", "cls")
_STEPS = 10
_LR = 0.05
_ALPHA = 1.5
RNG = jax.random.PRNGKey(1)  # the base key the steps receive
_N = 16


class _TwoTaskNet(nn.Module):
    """Shared Linear(4 -> 8) + ReLU trunk, a regression head and a 3-class head."""

    @nn.compact
    def __call__(self, x, train=False):
        del train
        h = nn.relu(nn.Dense(8, name="trunk")(x))
        return {"reg": nn.Dense(1, name="head_reg")(h)[:, 0],
                "cls": nn.Dense(3, name="head_cls")(h)}, {}


def _batches():
    r = np.random.default_rng(0)
    out = []
    for _ in range(_STEPS):
        x = r.normal(size=(_N, 4)).astype(np.float32)
        y = (2.0 * x[:, 0] - x[:, 1] + 0.5 * r.normal(size=_N)).astype(np.float32)
        c = r.integers(0, 3, _N).astype(np.int32)
        out.append({"x": x, "y": y, "c": c})
    return out


def _loss_fn(outputs, intermediates, batch):
    del intermediates
    return {"reg": jnp.mean((outputs["reg"] - batch["y"]) ** 2),
            "cls": optax.softmax_cross_entropy_with_integer_labels(
                outputs["cls"], batch["c"]).mean()}


def _run_affectjax(variables, batches):
    """GradNorm through `make_train_step` with `build_optimizer`'s SGD; per-step weights."""
    balancer = balancing.create("gradnorm", alpha=_ALPHA, initial_losses="first_step")
    model = _TwoTaskNet()
    bparams = balancer.init_params(_K)
    labels = optim.trainable_labels(jax.tree.map(lambda _: "all", variables["params"]),
                                    bparams, ["all"])
    cfg = ml_collections.ConfigDict(dict(name="sgd", momentum=0.0,
                                         balancer_learning_rate=_LR))
    tx, _ = optim.build_optimizer(cfg, learning_rate=_LR, labels=labels,
                                  steps_per_epoch=_STEPS, total_steps=_STEPS)
    state = create_train_state(variables=variables, apply_fn=model.apply, tx=tx,
                               balancer_state=balancer.init(_K), balancer_params=bparams)
    shared_mask = {name: jax.tree.map(lambda _: name == "trunk", sub)
                   for name, sub in variables["params"].items()}
    step = jax.jit(steps.make_train_step(
        _loss_fn, balancer, task_names=_TASKS, steps_per_epoch=_STEPS,
        inputs_fn=lambda b: (b["x"],), shared_mask=shared_mask))
    rng = jnp.array(RNG)
    weights, task_losses = [], []
    for batch in batches:
        state, metrics = step(state, jax.tree.map(jnp.asarray, batch), rng)
        weights.append([float(metrics[f"weight/{k}"]) for k in _TASKS])
        task_losses.append([float(metrics[f"loss/{k}"]) for k in _TASKS])
    final = _K * jax.nn.softmax(state.balancer_params["logits"])
    return (np.asarray(weights), np.asarray(task_losses), np.asarray(final),
            jax.tree.map(np.asarray, state.params))


def _run_torch(params, batches):
    """LibMTL-style GradNorm in PyTorch (module docstring); per-step weights."""
    def linear(p):
        layer = torch.nn.Linear(*p["kernel"].shape)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.array(p["kernel"]).T))
            layer.bias.copy_(torch.from_numpy(np.array(p["bias"])))
        return layer

    trunk, head_reg, head_cls = (linear(params[n]) for n in ("trunk", "head_reg", "head_cls"))
    model = torch.nn.ModuleDict({"trunk": trunk, "head_reg": head_reg, "head_cls": head_cls})
    loss_scale = torch.nn.Parameter(torch.zeros(_K))
    opt = torch.optim.SGD(list(model.parameters()) + [loss_scale], lr=_LR, momentum=0.0)
    shared = list(trunk.parameters())
    initial = None
    weights, task_losses = [], []
    for batch in batches:
        x, y = torch.from_numpy(batch["x"]), torch.from_numpy(batch["y"])
        c = torch.from_numpy(batch["c"].astype(np.int64))
        h = torch.relu(trunk(x))
        losses = torch.stack([F.mse_loss(head_reg(h)[:, 0], y),
                              F.cross_entropy(head_cls(h), c)])
        if initial is None:
            initial = losses.detach().clone()           # L(0): the first step's losses
        w = _K * torch.softmax(loss_scale, dim=-1)
        grads = torch.stack([                            # (K, |W|), LibMTL's _get_grads
            torch.cat([g.reshape(-1) for g in torch.autograd.grad(
                losses[k], shared, retain_graph=True)]) for k in range(_K)]).detach()
        g_per_loss = torch.norm(w.unsqueeze(1) * grads, p=2, dim=-1)
        ratios = losses.detach() / initial
        rates = ratios / ratios.mean()
        constant_term = (g_per_loss.mean() * rates ** _ALPHA).detach()
        l_grad = (g_per_loss - constant_term).abs().sum()
        opt.zero_grad()
        (loss_scale.grad,) = torch.autograd.grad(l_grad, loss_scale)
        (w.detach() * losses).sum().backward()
        opt.step()
        weights.append(w.detach().numpy().copy())
        task_losses.append(losses.detach().numpy().copy())
    final = (_K * torch.softmax(loss_scale, dim=-1)).detach().numpy()
    out = {name: {"kernel": layer.weight.detach().numpy().T,
                  "bias": layer.bias.detach().numpy()} for name, layer in model.items()}
    return np.asarray(weights), np.asarray(task_losses), final, out


def test_gradnorm_step_matches_libmtl_style_torch():
    torch.manual_seed(0)
    batches = _batches()
    variables = _TwoTaskNet().init(jax.random.PRNGKey(0), jnp.asarray(batches[0]["x"]))
    variables = jax.tree.map(np.asarray, variables)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        want_w, want_l, want_final, want_params = _run_torch(variables["params"], batches)
    finally:
        torch.set_num_threads(threads)
    got_w, got_l, got_final, got_params = _run_affectjax(variables, batches)

    np.testing.assert_allclose(got_l, want_l, rtol=1e-5)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-5)
    np.testing.assert_allclose(got_final, want_final, rtol=1e-5)
    for name, layer in want_params.items():
        for key, value in layer.items():
            np.testing.assert_allclose(got_params[name][key], value, rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name}/{key}")
    # The check has teeth: the weights left 1 and the tasks got different weights.
    assert np.max(np.abs(got_final - 1.0)) > 0.05, got_final
    np.testing.assert_allclose(got_w.sum(1), _K, rtol=1e-5)
