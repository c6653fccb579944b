"""EMA, DWEMA and REMA: scale each task loss by its exponential moving average.

Lakkapragada et al., "Mitigating negative transfer in multi-task learning with
exponential moving average loss weighting strategies" (AAAI 2023 student abstract;
PAPERS.md §5, `papers/ema-loss-balancing.txt`). Eq. 1 of the paper:

    Lbar_k(t) = beta L_k(t) + (1 - beta) Lbar_k(t - 1),
    L(t) = sum_k lambda_k(t) L_k(t),      lambda_k(t) = 1 / Lbar_k(t),

where "t is the training iteration", so the average here is updated once per `update`
call (once per train step), and `lambda(t)` already includes this step's loss. The first
observed loss initialises the average: Lbar_k(0) = L_k(0), so the first weights are
1 / L_k(0). beta = 0.1 (AffWild2, AffectNet) or 0.2 (CelebA). The paper scales every loss
"to the same scale of one" and does not renormalise the weights to sum to K, so neither
do we. Division uses max(Lbar_k, eps) so that a zero loss cannot give an infinite weight.

The paper's eq. 2 (REMA) and its DWEMA equation are lost in text extraction; from the
text ("each of the losses are first scaled by their EMA and then shifted accordingly by
their training rates r_k"; DWEMA is "directly scaling the DWA coefficients by Lbar_k,
instead of just r_k") we implement, with r_k(e) = Lbar^ep_k(e-1) / Lbar^ep_k(e-2) the DWA
training rate from epoch-mean raw losses (`affectjax.balancing.dynamic`) and r_k = 1 during
the first two epochs:

    REMA:   lambda_k(t) = r_k(e) / Lbar_k(t)
    DWEMA:  lambda_k(t) = [K exp(r_k(e) / T) / sum_j exp(r_j(e) / T)] / Lbar_k(t)

with the DWA factor taken as 1 during the first two epochs (as DWA itself). In both,
Lbar_k(t) is the per-step EMA of eq. 1. So REMA multiplies the EMA-scaled losses by the
raw training rates, DWEMA by the DWA coefficients (T = 2 by default).

Absent tasks (`present`, see `affectjax.balancing.base`): eq. 1 runs per task over the
steps where the task is present. An absent task keeps its Lbar_k, and "the first
observed loss" is the first step where that task is present, so each task has its own
"seen" count. A task not yet seen has Lbar_k = 1 in the state, i.e. weight 1 (it
multiplies a zero loss); the rate factors of REMA and DWEMA use the per-task epoch means
of `affectjax.balancing.dynamic`, which count present steps only.

Step recipe::

    weights, bstate = balancer.update(bstate, jax.lax.stop_gradient(losses), epoch=epoch)
    total = balancer.combine(bparams, weights, losses)      # sum_k lambda_k L_k
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from affectjax.balancing import base
from affectjax.balancing import dynamic

DEFAULT_EPS = 1e-8


class EmaState(NamedTuple):
    """State of EMA.

    Attributes:
      average: (K,) the loss averages Lbar_k (1 for a task not seen yet).
      count: (K,) int32, the number of updates where each task was present.
    """

    average: jax.Array
    count: jax.Array


class RatedEmaState(NamedTuple):
    """State of DWEMA and REMA: the per-step EMA and the epoch-level loss history."""

    ema: EmaState
    history: dynamic.EpochLossHistory


def init_ema(num_tasks: int) -> EmaState:
    """An EMA state for `num_tasks` tasks before any loss was seen."""
    num_tasks = base.check_num_tasks(num_tasks)
    return EmaState(average=jnp.ones((num_tasks,), base.STATE_DTYPE),
                    count=jnp.zeros((num_tasks,), jnp.int32))


def update_ema(state: EmaState, losses: jax.Array, beta: float,
               present: jax.Array | None = None) -> EmaState:
    """Eq. 1 per present task: Lbar(t) = beta L(t) + (1 - beta) Lbar(t - 1), Lbar(0) = L(0).

    Args:
      state: the current averages and per-task counts.
      losses: (K,) float32 task losses of this step.
      beta: weight of the current loss.
      present: (K,) bool, the tasks whose average moves (None: all).

    Returns:
      The new state; absent tasks keep their average and count.
    """
    if present is None:
        present = jnp.ones(losses.shape, bool)
    average = jnp.where(state.count > 0,
                        beta * losses + (1.0 - beta) * state.average, losses)
    return EmaState(average=jnp.where(present, average, state.average),
                    count=state.count + present.astype(jnp.int32))


def _check_hyper(beta: float, eps: float) -> None:
    if not 0.0 < beta <= 1.0:
        raise ValueError(f"beta must be in (0, 1], got {beta!r}")
    if not eps > 0.0:
        raise ValueError(f"eps must be positive, got {eps!r}")


def ema(beta: float = 0.1, eps: float = DEFAULT_EPS) -> base.Balancer:
    """EMA loss balancing (PAPERS.md §5, eq. 1): lambda_k = 1 / Lbar_k(t).

    Args:
      beta: weight of the current loss in the per-step moving average.
      eps: lower bound on Lbar_k in the division.

    Returns:
      A `Balancer` whose weights are 1 / max(Lbar_k(t), eps).
    """
    _check_hyper(beta, eps)

    def update(state: EmaState, losses: jax.Array, *, epoch=None, present=None) -> tuple:
        losses = base.check_losses(losses, state.average.shape[0])
        base.check_epoch(epoch)
        present = base.check_present(present, losses.shape[0])
        state = update_ema(state, losses.astype(base.STATE_DTYPE), beta, present)
        return 1.0 / jnp.maximum(state.average, eps), state

    return base.Balancer(init_ema, update, base.no_params, base.weighted_sum)


def _rated_ema(name: str, beta: float, eps: float, rate_factor) -> base.Balancer:
    _check_hyper(beta, eps)

    def init(num_tasks: int) -> RatedEmaState:
        return RatedEmaState(ema=init_ema(num_tasks),
                             history=dynamic.init_history(num_tasks))

    def update(state: RatedEmaState, losses: jax.Array, *, epoch=None,
               present=None) -> tuple:
        epoch = base.require_epoch(epoch, name)
        losses = base.check_losses(losses, state.ema.average.shape[0])
        losses = losses.astype(base.STATE_DTYPE)
        present = base.check_present(present, losses.shape[0])
        ema_state = update_ema(state.ema, losses, beta, present)
        history = dynamic.update_history(state.history, losses, epoch, present)
        rates, ready = dynamic.training_rates(history)
        factor = rate_factor(rates, ready)
        weights = factor / jnp.maximum(ema_state.average, eps)
        return weights, RatedEmaState(ema=ema_state, history=history)

    return base.Balancer(init, update, base.no_params, base.weighted_sum)


def rema(beta: float = 0.1, eps: float = DEFAULT_EPS) -> base.Balancer:
    """Rated EMA (REMA): lambda_k = r_k(e) / Lbar_k(t), r_k = 1 in epochs 0 and 1.

    Args:
      beta: weight of the current loss in the per-step moving average.
      eps: lower bound on Lbar_k in the division.

    Returns:
      A `Balancer` implementing the REMA reading given in the module docstring.
    """

    def rate_factor(rates, ready):
        return jnp.where(ready, rates, jnp.ones_like(rates))

    return _rated_ema("rema", beta, eps, rate_factor)


def dwema(beta: float = 0.1, temperature: float = 2.0,
          eps: float = DEFAULT_EPS) -> base.Balancer:
    """Dynamic Weighted EMA (DWEMA): lambda_k = K softmax(r(e) / T)_k / Lbar_k(t).

    Args:
      beta: weight of the current loss in the per-step moving average.
      temperature: the DWA softmax temperature T.
      eps: lower bound on Lbar_k in the division.

    Returns:
      A `Balancer` implementing the DWEMA reading given in the module docstring; the DWA
      factor is 1 in epochs 0 and 1.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")

    def rate_factor(rates, ready):
        return dynamic.dwa_weights(rates, ready, temperature)

    return _rated_ema("dwema", beta, eps, rate_factor)
