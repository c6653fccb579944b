"""The train state: every mutable quantity of a run in one pytree.

`TrainState` follows the Flax examples' ``TrainState`` (``apply_fn`` and ``tx`` are static
fields) and adds what multi-task training needs: BatchNorm statistics, the loss balancer's
state and its trainable parameters (uncertainty weighting, GradNorm). The base PRNG key is
not part of it: the step takes it as an argument and folds in the step number.

The optimizer acts on the *trainable* tree ``{"model": params, "balancer": balancer_params}``
so balancers with parameters need no special code in the step.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
    """Everything a train step reads and writes.

    Attributes:
      step: int32 scalar, number of optimizer updates done so far (the global step).
      params: model parameters.
      batch_stats: BatchNorm running statistics (``{}`` for models without BatchNorm).
      opt_state: optimizer state over `trainable` (depends on the current phase).
      balancer_state: the loss balancer's state (a NamedTuple of arrays).
      balancer_params: the balancer's trainable parameters (``{}`` when it has none).
      apply_fn: the model's ``apply`` (static).
      tx: the optimizer of the current phase (static).
    """

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    balancer_state: Any
    balancer_params: Any
    apply_fn: Callable[..., Any] = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    @property
    def trainable(self) -> dict[str, Any]:
        """The tree the optimizer updates: model and balancer parameters."""
        return {"model": self.params, "balancer": self.balancer_params}

    def apply_updates(self, updates: Any, opt_state: Any, **changes: Any) -> "TrainState":
        """Applies optimizer updates to `trainable` and advances the step by one."""
        new = optax.apply_updates(self.trainable, updates)
        return self.replace(step=self.step + 1, params=new["model"],
                            balancer_params=new["balancer"], opt_state=opt_state, **changes)

    def with_optimizer(self, tx: optax.GradientTransformation) -> "TrainState":
        """Switches to a new optimizer (a new phase) with a freshly initialised state."""
        return self.replace(tx=tx, opt_state=tx.init(self.trainable))


def create_train_state(*, variables: dict[str, Any], apply_fn: Callable[..., Any],
                       tx: optax.GradientTransformation, balancer_state: Any,
                       balancer_params: Any, step: int = 0) -> TrainState:
    """Builds a `TrainState` from initialised model variables.

    Args:
      variables: ``{"params": ..., "batch_stats": ...}`` from ``model.init`` (or a
        converted checkpoint); ``batch_stats`` may be absent.
      apply_fn: the model's ``apply``.
      tx: the optimizer of the first phase.
      balancer_state: ``balancer.init(num_tasks)``.
      balancer_params: ``balancer.init_params(num_tasks)``.
      step: the initial global step.

    Returns:
      The state, with ``opt_state = tx.init(trainable)``.
    """
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    trainable = {"model": params, "balancer": balancer_params}
    return TrainState(step=jnp.asarray(step, jnp.int32), params=params,
                      batch_stats=batch_stats, opt_state=tx.init(trainable),
                      balancer_state=balancer_state, balancer_params=balancer_params,
                      apply_fn=apply_fn, tx=tx)
