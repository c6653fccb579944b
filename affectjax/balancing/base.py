"""The `Balancer` type shared by every loss-balancing method, and input checks.

A balancer is a NamedTuple of four pure functions, in the spirit of an optax
`GradientTransformation`:

* `init(num_tasks) -> state`: a NamedTuple of fixed-shape arrays, so it can live in a
  jitted `TrainState` and in the carry of `jax.lax.scan`.
* `update(state, losses, *, epoch=None, present=None) -> (weights, new_state)`: `losses`
  is the (K,) vector of this step's task losses, which the caller passes through
  `jax.lax.stop_gradient` (the weights are treated as constants by backpropagation, as in
  every method here); `epoch` is an int32 scalar, possibly traced, giving the current
  0-based epoch: the epoch-based balancers (DWA, REMA, DWEMA, and GradNorm with
  ``initial_losses="first_epoch"``) require it and raise a TypeError naming `epoch`
  without it, the others accept and ignore it (checking its type when given);
  `present` is an optional (K,) bool vector, possibly traced, marking the
  tasks that have at least one labelled sample in this batch (None: all of them). An
  absent task's loss is a placeholder (0 for a fully masked batch) and leaves every
  per-task statistic of the state unchanged, as if the step had not happened for it
  (cross-dataset hybrid training, PAPERS.md §4; masked ABAW labels).
* `init_params(num_tasks) -> params`: the trainable part (`{}` for non-trainable
  balancers), updated by the train step's optimiser alongside the model parameters.
* `combine(params, weights, losses) -> total`: the scalar total loss. For most balancers
  it is sum_k w_k L_k; uncertainty weighting adds its learned terms here.
* `param_loss` (optional, None for most): `(params, grad_norms, losses, state, *,
  present=None) -> scalar`, a loss of the balancer's own whose gradient w.r.t. `params`
  the train step adds to theirs, given the (K,) norms of the gradients of the
  unweighted task losses w.r.t. the shared parameters (GradNorm's L_grad). `combine`
  gives such parameters no gradient; this is how they learn
  (`affectjax.train.steps.make_train_step`).
"""

import operator
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
PyTree = Any

STATE_DTYPE = jnp.float32


class Balancer(NamedTuple):
    """A loss-balancing method as four pure functions (see the module docstring)."""

    init: Callable[[int], NamedTuple]
    update: Callable[..., tuple[Array, NamedTuple]]
    init_params: Callable[[int], PyTree]
    combine: Callable[[PyTree, Array, Array], Array]
    param_loss: Callable[..., Array] | None = None


def check_num_tasks(num_tasks: int) -> int:
    """Returns `num_tasks` as an int, or raises if it is not a positive integer."""
    try:
        value = None if isinstance(num_tasks, bool) else operator.index(num_tasks)
    except TypeError:
        value = None
    if value is None or value < 1:
        raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
    return value


def check_losses(losses: Array, num_tasks: int, name: str = "losses") -> Array:
    """Checks that `losses` is a float vector of length `num_tasks`.

    Args:
      losses: the (K,) task losses.
      num_tasks: K as fixed by the balancer state (or parameters).
      name: the argument name used in error messages.

    Returns:
      `losses` as an array.
    """
    losses = jnp.asarray(losses)
    if losses.ndim != 1:
        raise ValueError(
            f"{name} must have rank 1 and shape (num_tasks,), got shape {losses.shape}")
    if losses.shape[0] != num_tasks:
        raise ValueError(
            f"{name} has {losses.shape[0]} tasks but the balancer was initialised with "
            f"num_tasks={num_tasks}")
    if not jnp.issubdtype(losses.dtype, jnp.floating):
        raise TypeError(f"{name} must be a float array, got dtype {losses.dtype}")
    return losses


def check_epoch(epoch: Any) -> Array | None:
    """Checks that `epoch` is None or an integer scalar; returns None or it as int32."""
    if epoch is None:
        return None
    epoch = jnp.asarray(epoch)
    if epoch.ndim != 0:
        raise ValueError(f"epoch must be a scalar, got shape {epoch.shape}")
    if not jnp.issubdtype(epoch.dtype, jnp.integer):
        raise TypeError(f"epoch must be an integer, got dtype {epoch.dtype}")
    return epoch.astype(jnp.int32)


def require_epoch(epoch: Any, balancer: str) -> Array:
    """`check_epoch` for a balancer that needs the epoch: None raises a TypeError.

    Args:
      epoch: the `epoch` argument of `update`.
      balancer: the balancer's name, for the message.
    """
    if epoch is None:
        raise TypeError(
            f"{balancer}.update needs epoch=: the current 0-based epoch as an int scalar "
            f"(it works on per-epoch loss means), e.g. update(state, losses, epoch=epoch)")
    return check_epoch(epoch)


def check_present(present: Any, num_tasks: int) -> Array:
    """Checks the optional task-presence vector of `update`.

    Args:
      present: None (every task present) or a (num_tasks,) bool array, possibly traced.
      num_tasks: K as fixed by the balancer state.

    Returns:
      A (num_tasks,) bool array (all True for None).

    Raises:
      ValueError: if `present` is not a bool array of shape (num_tasks,).
    """
    if present is None:
        return jnp.ones((num_tasks,), bool)
    present = jnp.asarray(present)
    if present.shape != (num_tasks,):
        raise ValueError(f"present must have shape (num_tasks,) = ({num_tasks},), got "
                         f"shape {present.shape}")
    if present.dtype != jnp.bool_:
        raise ValueError(f"present must be a bool array, got dtype {present.dtype}")
    return present


def no_params(num_tasks: int) -> dict:
    """`init_params` of a non-trainable balancer: an empty pytree."""
    check_num_tasks(num_tasks)
    return {}


def weighted_sum(params: PyTree, weights: Array, losses: Array) -> Array:
    """`combine` of a non-trainable balancer: sum_k weights_k * losses_k.

    Args:
      params: unused (`{}`), kept so every balancer has the same `combine` signature.
      weights: (K,) task weights from `update`.
      losses: (K,) task losses, not stopped: gradients flow to the model through them.

    Returns:
      The scalar total loss.
    """
    del params
    weights, losses = check_combine_inputs(weights, losses)
    return jnp.sum(weights * losses)


def check_combine_inputs(weights: Array, losses: Array) -> tuple[Array, Array]:
    """Checks that `weights` and `losses` are float vectors of the same length."""
    losses = jnp.asarray(losses)
    if losses.ndim != 1:
        raise ValueError(
            f"losses must have rank 1 and shape (num_tasks,), got shape {losses.shape}")
    weights = jnp.asarray(weights)
    if weights.shape != losses.shape:
        raise ValueError(
            f"weights must have the shape of losses {losses.shape}, got {weights.shape}")
    return weights, check_losses(losses, losses.shape[0])
