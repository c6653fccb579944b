"""Uncertainty weighting (UW): task weights from learned homoscedastic uncertainty.

Kendall, Gal and Cipolla, "Multi-task learning using uncertainty to weigh losses for
scene geometry and semantics", CVPR 2018, eq. 7, in LibMTL's form (the EMA paper's UW
baseline, PAPERS.md §5): with one learned log-variance s_k per task,

    L = sum_k L_k / (2 exp(s_k)) + s_k / 2,        s_k initialised to -0.5.

The s_k are trainable and live in the balancer *parameters* (`{"log_vars": (K,)}`),
not in its state. The train step differentiates `combine` with respect to both the model
parameters and these balancer parameters and updates both with optax::

    def loss_fn(model_params, bparams, bstate):
        losses = task_losses(model_params, batch)                       # (K,)
        weights, bstate = balancer.update(
            bstate, jax.lax.stop_gradient(losses), epoch=epoch)         # ones for UW
        return balancer.combine(bparams, weights, losses), bstate

    (total, bstate), (g_model, g_b) = jax.value_and_grad(
        loss_fn, argnums=(0, 1), has_aux=True)(model_params, bparams, bstate)

UW keeps no per-task statistics in its state, but its learned s_k would drift: for an
absent task (loss 0) the regulariser s_k / 2 alone pushes s_k down at every step. So
`update(..., present=...)` returns weight 0 for an absent task, and `combine` multiplies
the task's whole term, regulariser included, by that weight: an absent task contributes
nothing and gives s_k a zero gradient. With every task present the weights are ones and
`combine` is eq. 7 exactly.

At the optimum of s_k, exp(s_k) = L_k, so s_k tends to the log of each task's loss
(for a squared-error loss, the log of the task's noise variance).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from affectjax.balancing import base

INIT_LOG_VAR = -0.5


class UncertaintyState(NamedTuple):
    """State of UW: the (K,) multiplicative weights of present tasks (always ones)."""

    weights: jax.Array


def uw_weights(params: dict) -> jax.Array:
    """The effective task weights 1 / (2 exp(s_k)) of UW, for logging."""
    return 0.5 * jnp.exp(-params["log_vars"])


def uw(init_log_var: float = INIT_LOG_VAR) -> base.Balancer:
    """Uncertainty weighting (Kendall et al. 2018, eq. 7; LibMTL `UW`).

    Args:
      init_log_var: initial value of every learned log-variance s_k (LibMTL: -0.5).

    Returns:
      A `Balancer`; `init_params(K)` gives `{"log_vars": full((K,), init_log_var)}` and
      `combine(params, weights, losses)` = sum_k w_k [L_k / (2 exp(s_k)) + s_k / 2] with
      `weights` from `update`: 1 for a present task, 0 for an absent one.
    """

    def init(num_tasks: int) -> UncertaintyState:
        num_tasks = base.check_num_tasks(num_tasks)
        return UncertaintyState(weights=jnp.ones((num_tasks,), base.STATE_DTYPE))

    def update(state: UncertaintyState, losses: jax.Array, *, epoch=None,
               present=None) -> tuple:
        base.check_losses(losses, state.weights.shape[0])
        base.check_epoch(epoch)
        present = base.check_present(present, state.weights.shape[0])
        return jnp.where(present, state.weights, 0.0), state

    def init_params(num_tasks: int) -> dict:
        num_tasks = base.check_num_tasks(num_tasks)
        return {"log_vars": jnp.full((num_tasks,), init_log_var, base.STATE_DTYPE)}

    def combine(params: dict, weights: jax.Array, losses: jax.Array) -> jax.Array:
        weights, losses = base.check_combine_inputs(weights, losses)
        log_vars = jnp.asarray(params["log_vars"])
        if log_vars.shape != losses.shape:
            raise ValueError(
                f"params['log_vars'] has shape {log_vars.shape} but losses has shape "
                f"{losses.shape}")
        return jnp.sum(weights * (losses * 0.5 * jnp.exp(-log_vars) + 0.5 * log_vars))

    return base.Balancer(init, update, init_params, combine)
