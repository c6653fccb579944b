"""Dynamic Weight Average (DWA) and the epoch-level loss history it reads.

Liu, Johns and Davison, "End-to-end multi-task learning with attention", CVPR 2019,
the Dynamic Weight Average equation of §3, reproduced here as implemented by LibMTL's
`DWA` (the EMA paper's baseline, PAPERS.md §5):

    r_k(e) = Lbar_k(e - 1) / Lbar_k(e - 2),
    w_k(e) = K exp(r_k(e) / T) / sum_j exp(r_j(e) / T),      T = 2,

where Lbar_k(e) is the mean of task k's loss over the steps of epoch e (LibMTL's
`train_loss_buffer`), and w_k = 1 during the first two epochs. The weights are positive
and sum to K.

The state accumulates the current epoch's per-task loss sums and step counts. When the
`epoch` passed to `update` differs from the one being accumulated, the finished epoch's
mean is rolled into the two-entry history; everything is done with `jnp.where`, so
`update` runs under `jax.jit` and inside `jax.lax.scan` with a traced `epoch`. The same
history gives the training rates r_k of DWEMA and REMA
(`affectjax.balancing.moving_average`).

Absent tasks (`present`, see `affectjax.balancing.base`): a step adds to task k's sum
and count only where the task is present, so Lbar_k(e) is the mean over the steps of
epoch e where task k had labels. An epoch in which task k was never present is not
rolled into task k's history (its last two epoch means stay those of the last two epochs
where it was present). Until a task has two completed epochs its rate is taken as 1;
the DWA weights are ones until some task has two.

Step recipe::

    weights, bstate = balancer.update(bstate, jax.lax.stop_gradient(losses), epoch=epoch)
    total = balancer.combine(bparams, weights, losses)      # sum_k w_k L_k
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from affectjax.balancing import base

_TINY = 1e-12


class EpochLossHistory(NamedTuple):
    """Running per-epoch loss means, per task.

    Attributes:
      epoch: int32 scalar, the epoch being accumulated.
      loss_sum: (K,) sum of this epoch's losses so far over the steps where each task
        was present.
      count: (K,) float32, the number of steps accumulated per task this epoch.
      last: (K,) mean loss of the most recently completed epoch, Lbar(e - 1).
      before_last: (K,) mean loss of the epoch before it, Lbar(e - 2).
      num_epochs: (K,) int32, the number of completed epochs rolled into each task's
        history (epochs where the task was never present are skipped).
    """

    epoch: jax.Array
    loss_sum: jax.Array
    count: jax.Array
    last: jax.Array
    before_last: jax.Array
    num_epochs: jax.Array


def init_history(num_tasks: int) -> EpochLossHistory:
    """An empty history for `num_tasks` tasks, accumulating epoch 0.

    Every field is its own buffer, so a jitted step can donate the state.
    """
    shape = (base.check_num_tasks(num_tasks),)
    zeros = lambda: jnp.zeros(shape, base.STATE_DTYPE)  # noqa: E731
    return EpochLossHistory(
        epoch=jnp.zeros((), jnp.int32), loss_sum=zeros(), count=zeros(), last=zeros(),
        before_last=zeros(), num_epochs=jnp.zeros(shape, jnp.int32))


def update_history(history: EpochLossHistory, losses: jax.Array, epoch: jax.Array,
                   present: jax.Array | None = None) -> EpochLossHistory:
    """Adds one step's losses, first closing the running epoch if `epoch` moved on.

    Args:
      history: the current history.
      losses: (K,) float32 task losses of this step.
      epoch: int32 scalar, the epoch this step belongs to.
      present: (K,) bool, the tasks whose loss counts (None: all).

    Returns:
      The updated history.
    """
    if present is None:
        present = jnp.ones(losses.shape, bool)
    new_epoch = epoch != history.epoch
    roll = new_epoch & (history.count > 0)
    mean = history.loss_sum / jnp.maximum(history.count, 1.0)
    return EpochLossHistory(
        epoch=epoch,
        loss_sum=(jnp.where(new_epoch, 0.0, history.loss_sum)
                  + jnp.where(present, losses, 0.0)),
        count=jnp.where(new_epoch, 0.0, history.count) + present.astype(base.STATE_DTYPE),
        last=jnp.where(roll, mean, history.last),
        before_last=jnp.where(roll, history.last, history.before_last),
        num_epochs=history.num_epochs + roll.astype(jnp.int32))


def training_rates(history: EpochLossHistory) -> tuple[jax.Array, jax.Array]:
    """The DWA training rates r_k = Lbar_k(e - 1) / Lbar_k(e - 2).

    Args:
      history: the history after this step's `update_history`.

    Returns:
      `(rates, ready)`: (K,) rates, 1 for a task with fewer than two completed epochs,
      and a bool scalar that is False until some task has two completed epochs (with
      every task present: the first two epochs, where DWA uses weights 1).
    """
    task_ready = history.num_epochs >= 2
    rates = history.last / jnp.maximum(history.before_last, _TINY)
    return jnp.where(task_ready, rates, 1.0), jnp.any(task_ready)


def dwa_weights(rates: jax.Array, ready: jax.Array, temperature: float) -> jax.Array:
    """K softmax(r / T) once `ready`, else ones (Liu et al. 2019, DWA)."""
    num_tasks = rates.shape[0]
    weights = num_tasks * jax.nn.softmax(rates / temperature)
    return jnp.where(ready, weights, jnp.ones_like(weights))


class DWAState(NamedTuple):
    """State of DWA: the epoch-level loss history."""

    history: EpochLossHistory


def dwa(temperature: float = 2.0) -> base.Balancer:
    """Dynamic Weight Average (Liu et al. 2019; LibMTL `DWA`).

    Args:
      temperature: the softmax temperature T (paper and LibMTL: 2).

    Returns:
      A `Balancer`; weights are 1 in epochs 0 and 1, then K softmax(r / T) with r the
      ratio of the last two epoch-mean losses.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")

    def init(num_tasks: int) -> DWAState:
        return DWAState(history=init_history(num_tasks))

    def update(state: DWAState, losses: jax.Array, *, epoch=None, present=None) -> tuple:
        epoch = base.require_epoch(epoch, "dwa")
        losses = base.check_losses(losses, state.history.last.shape[0])
        present = base.check_present(present, losses.shape[0])
        history = update_history(state.history, losses.astype(base.STATE_DTYPE),
                                 epoch, present)
        rates, ready = training_rates(history)
        return dwa_weights(rates, ready, temperature), DWAState(history=history)

    return base.Balancer(init, update, base.no_params, base.weighted_sum)
