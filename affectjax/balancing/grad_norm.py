"""GradNorm: learn task weights that equalise per-task gradient norms.

Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: gradient normalization for adaptive
loss balancing in deep multitask networks", ICML 2018, eqs. 1-2, in LibMTL's form (the
EMA paper's baseline, PAPERS.md §5). With trainable logits a_k, the task weights are
w_k = K softmax(a)_k (positive, summing to K), and

    G_k = || grad_W (w_k L_k) ||_2 = w_k || grad_W L_k ||_2        (W: shared parameters)
    Ltilde_k = L_k / L_k(0),   r_k = Ltilde_k / mean_j Ltilde_j
    L_grad = sum_k | G_k - stop_gradient(mean_j G_j * r_k^alpha) |,   alpha = 1.5.

The model is trained on sum_k stop_gradient(w_k) L_k; the logits a are trained on
L_grad only. `L_k(0)`, the first observed losses (or, as LibMTL, the mean losses of
epoch 0, with the weights held at 1 during that epoch), live in the balancer state.

Absent tasks (`present`, see `affectjax.balancing.base`): L_k(0) is taken at the first
step where task k is present (`"first_epoch"`: the mean over the epoch-0 steps where it
is present, or its first present step if it has none in epoch 0), and
`gradnorm_loss(..., present=...)` leaves absent tasks out of mean_j G_j, of the mean
ratio and of the sum, so their zero losses and zero gradient norms do not pull the
targets of the other tasks.

How a jitted train step uses it (the model parameters split into the shared part W and
the rest; `task_losses(shared, rest, batch) -> (K,)`)::

    def loss_fn(model_params, bparams):
        losses = task_losses(model_params["shared"], model_params["rest"], batch)
        weights, new_bstate = balancer.update(
            bstate, jax.lax.stop_gradient(losses), epoch=epoch)       # ones
        total = balancer.combine(bparams, weights, losses)  # sum_k sg(w_k) L_k
        return total, (losses, new_bstate)

    (total, (losses, bstate)), (g_model, _) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True)(model_params, bparams)
    norms = per_task_grad_norms(
        lambda w: task_losses(w, model_params["rest"], batch), model_params["shared"])
    g_b = jax.grad(gradnorm_loss)(
        bparams, norms, jax.lax.stop_gradient(losses), bstate.initial_losses, alpha=1.5,
        present=present)                                           # None: all tasks
    g_b = jax.tree_util.tree_map(lambda g: jnp.where(bstate.active, g, 0.0), g_b)
    # then optax updates of model_params with g_model and of bparams with g_b

`combine` gives the logits a zero gradient, so a generic step that differentiates it
with respect to the balancer parameters only needs `g_b` added. As in the paper, W may
be just the last shared layer, which keeps the K-row Jacobian cheap.
"""

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from affectjax.balancing import base

PyTree = Any


class GradNormState(NamedTuple):
    """State of GradNorm.

    Attributes:
      initial_losses: (K,) the reference losses L(0) (1 for a task not seen yet).
      loss_sum: (K,) sum of the losses averaged into `initial_losses`.
      count: (K,) float32, the number of steps averaged into each task's
        `initial_losses` (steps where the task was present).
      active: bool scalar, whether the weights should learn at this step (always True
        for `initial_losses="first_step"`; from epoch 1 on for `"first_epoch"`).
    """

    initial_losses: jax.Array
    loss_sum: jax.Array
    count: jax.Array
    active: jax.Array


INITIAL_LOSSES = ("first_step", "first_epoch")


def gradnorm_weights(params: dict) -> jax.Array:
    """The task weights w = K softmax(a) from the balancer parameters."""
    logits = params["logits"]
    return logits.shape[0] * jax.nn.softmax(logits)


def per_task_grad_norms(task_losses_fn: Callable[[PyTree], jax.Array],
                        shared_params: PyTree) -> jax.Array:
    """|| grad_W L_k ||_2 for every task k, from one `jax.jacrev` of the loss vector.

    Args:
      task_losses_fn: maps the shared parameters W to the (K,) unweighted task losses.
      shared_params: the pytree W.

    Returns:
      (K,) gradient norms over all leaves of W, with gradients stopped.
    """
    jacobian = jax.jacrev(task_losses_fn)(shared_params)
    leaves = jax.tree_util.tree_leaves(jacobian)
    if not leaves:
        raise ValueError("shared_params must contain at least one array")
    num_tasks = leaves[0].shape[0]
    squares = sum(jnp.sum(jnp.reshape(leaf, (num_tasks, -1)) ** 2, axis=1)
                  for leaf in leaves)
    return jax.lax.stop_gradient(jnp.sqrt(squares))


def gradnorm_loss(params: dict, grad_norms: jax.Array, losses: jax.Array,
                  initial_losses: jax.Array, *, alpha: float = 1.5,
                  present: jax.Array | None = None) -> jax.Array:
    """The GradNorm loss L_grad (Chen et al. 2018, eq. 2) as a function of the logits.

    Args:
      params: `{"logits": (K,)}`, the balancer parameters.
      grad_norms: (K,) norms || grad_W L_k || of the *unweighted* losses
        (`per_task_grad_norms`).
      losses: (K,) current task losses (stopped).
      initial_losses: (K,) the losses L(0) (`GradNormState.initial_losses`).
      alpha: the restoring-force exponent (paper and LibMTL: 1.5).
      present: optional (K,) bool, the tasks present in this batch (None: all); the
        means and the sum run over present tasks only (0 when none is present).

    Returns:
      The scalar sum_k |G_k - sg(mean(G) r_k^alpha)|.
    """
    losses = jax.lax.stop_gradient(base.check_losses(losses, params["logits"].shape[0]))
    grad_norms = base.check_losses(grad_norms, losses.shape[0], name="grad_norms")
    initial_losses = base.check_losses(initial_losses, losses.shape[0],
                                       name="initial_losses")
    g = gradnorm_weights(params) * jax.lax.stop_gradient(grad_norms)
    ratios = losses / initial_losses
    present = base.check_present(present, losses.shape[0])
    num_present = jnp.maximum(jnp.sum(present), 1).astype(g.dtype)
    ratios = jnp.where(present, ratios, 0.0)
    mean_ratio = jnp.sum(ratios) / num_present
    rates = jnp.where(present, ratios / jnp.where(mean_ratio > 0, mean_ratio, 1.0), 0.0)
    mean_g = jnp.sum(jnp.where(present, g, 0.0)) / num_present
    target = jax.lax.stop_gradient(mean_g * rates ** alpha)
    return jnp.sum(jnp.where(present, jnp.abs(g - target), 0.0))


def gradnorm(alpha: float = 1.5, initial_losses: str = "first_step") -> base.Balancer:
    """GradNorm (Chen et al. 2018; LibMTL `GradNorm`).

    Args:
      alpha: the restoring-force exponent; pass the same value to `gradnorm_loss`.
      initial_losses: `"first_step"` (the paper: L(0) is the loss of the first step,
        and the weights learn from the first step on) or `"first_epoch"` (LibMTL: L(0)
        is the mean loss of epoch 0, and the weights stay at 1 during epoch 0; the step
        then scales the GradNorm gradient by `bstate.active`).

    Returns:
      A `Balancer`: `init_params(K)` = `{"logits": zeros(K)}` (weights start at 1);
      `update` records L(0) and returns ones; `combine(params, weights, losses)` =
      sum_k weights_k sg(K softmax(a))_k L_k. The logits are trained by `gradnorm_loss`,
      which `param_loss(params, grad_norms, losses, state, present=None)` wraps (0 while
      `state.active` is False), so `affectjax.train.steps.make_train_step` trains them.
    """
    if not alpha >= 0:
        raise ValueError(f"alpha must be non-negative, got {alpha!r}")
    if initial_losses not in INITIAL_LOSSES:
        raise ValueError(f"initial_losses must be one of {INITIAL_LOSSES}, got "
                         f"{initial_losses!r}")
    first_epoch = initial_losses == "first_epoch"

    def init(num_tasks: int) -> GradNormState:
        num_tasks = base.check_num_tasks(num_tasks)
        ones = jnp.ones((num_tasks,), base.STATE_DTYPE)
        return GradNormState(initial_losses=ones, loss_sum=jnp.zeros_like(ones),
                             count=jnp.zeros_like(ones),
                             active=jnp.array(not first_epoch))

    def update(state: GradNormState, losses: jax.Array, *, epoch=None,
               present=None) -> tuple:
        if first_epoch:
            epoch = base.require_epoch(epoch, "gradnorm(initial_losses='first_epoch')")
        else:
            base.check_epoch(epoch)
        losses = base.check_losses(losses, state.initial_losses.shape[0])
        losses = losses.astype(base.STATE_DTYPE)
        present = base.check_present(present, losses.shape[0])
        accumulate = state.count == 0
        if first_epoch:
            accumulate = accumulate | (epoch == 0)
        accumulate = accumulate & present
        loss_sum = jnp.where(accumulate, state.loss_sum + losses, state.loss_sum)
        count = jnp.where(accumulate, state.count + 1.0, state.count)
        initial = jnp.where(count > 0, loss_sum / jnp.maximum(count, 1.0), 1.0)
        active = epoch >= 1 if first_epoch else jnp.array(True)
        new_state = GradNormState(initial_losses=initial, loss_sum=loss_sum,
                                  count=count, active=active)
        return jnp.ones_like(loss_sum), new_state

    def init_params(num_tasks: int) -> dict:
        num_tasks = base.check_num_tasks(num_tasks)
        return {"logits": jnp.zeros((num_tasks,), base.STATE_DTYPE)}

    def combine(params: dict, weights: jax.Array, losses: jax.Array) -> jax.Array:
        weights, losses = base.check_combine_inputs(weights, losses)
        logits = jnp.asarray(params["logits"])
        if logits.shape != losses.shape:
            raise ValueError(f"params['logits'] has shape {logits.shape} but losses has "
                             f"shape {losses.shape}")
        task_weights = jax.lax.stop_gradient(gradnorm_weights(params))
        return jnp.sum(weights * task_weights * losses)

    def param_loss(params: dict, grad_norms: jax.Array, losses: jax.Array,
                   state: GradNormState, *, present=None) -> jax.Array:
        value = gradnorm_loss(params, grad_norms, losses, state.initial_losses,
                              alpha=alpha, present=present)
        return jnp.where(state.active, value, 0.0)

    return base.Balancer(init, update, init_params, combine, param_loss)
