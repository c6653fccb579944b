"""Static loss weights: equal weighting (EW) and fixed, hand-chosen weights.

EW is the baseline of every multi-task paper here (LibMTL's `EW`): L = sum_k L_k.
`fixed(weights)` gives L = sum_k lambda_k L_k with constant lambda_k, the searched task
weights of the weakly-supervised multimodal MTL paper (PAPERS.md §3, L = sum_j lambda_j
L_j).

Neither keeps per-task statistics, so `present` (see `affectjax.balancing.base`) is only
checked: an absent task keeps its weight, which multiplies its zero loss.

Step recipe (the same for every balancer)::

    weights, bstate = balancer.update(bstate, jax.lax.stop_gradient(losses), epoch=epoch)
    total = balancer.combine(bparams, weights, losses)
"""

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from affectjax.balancing import base


class StaticState(NamedTuple):
    """State of a static balancer: the (K,) constant weights."""

    weights: jax.Array


def _static_balancer(make_weights) -> base.Balancer:
    def init(num_tasks: int) -> StaticState:
        return StaticState(weights=make_weights(base.check_num_tasks(num_tasks)))

    def update(state: StaticState, losses: jax.Array, *, epoch=None,
               present=None) -> tuple:
        base.check_losses(losses, state.weights.shape[0])
        base.check_epoch(epoch)
        base.check_present(present, state.weights.shape[0])  # no per-task statistics
        return state.weights, state

    return base.Balancer(init, update, base.no_params, base.weighted_sum)


def ew() -> base.Balancer:
    """Equal weighting: every task weight is 1, so the total loss is sum_k L_k.

    Returns:
      A `Balancer` whose `update` always returns ones of shape (K,).
    """
    return _static_balancer(lambda k: jnp.ones((k,), base.STATE_DTYPE))


def fixed(weights: Sequence[float]) -> base.Balancer:
    """Constant task weights lambda_k (multimodal weak MTL, L = sum_j lambda_j L_j).

    Args:
      weights: the K non-negative task weights; `init` must be called with K tasks.

    Returns:
      A `Balancer` whose `update` always returns `weights`.
    """
    values = np.asarray(weights, dtype=np.float32)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D sequence, got {weights!r}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"weights must be finite and non-negative, got {weights!r}")

    def make_weights(num_tasks: int) -> jax.Array:
        if num_tasks != values.size:
            raise ValueError(
                f"num_tasks={num_tasks} does not match the {values.size} fixed weights")
        return jnp.asarray(values)

    return _static_balancer(make_weights)
