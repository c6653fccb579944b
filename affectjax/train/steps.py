"""Step factories: pure ``step(state, batch, rng) -> (state, metrics)`` functions.

`make_train_step` is written once for every method and balancer:

1. forward with ``train=True`` (dropout rng = ``fold_in(rng, state.step)``), BatchNorm
   statistics as a mutable collection;
2. the method's task losses ``{task: scalar}`` stacked in ``task_names`` order;
3. ``weights, bstate = balancer.update(bstate, stop_gradient(losses), epoch=epoch)`` and
   ``total = balancer.combine(balancer_params, weights, losses)``. A loss function may
   also report which tasks have labels in the batch by returning
   ``({task: loss}, {task: bool scalar})``; the presence vector, in ``task_names``
   order, then goes to ``balancer.update(..., present=present)``, so a task with no
   labelled sample in the batch (cross-dataset training, masked labels) leaves the
   balancer's statistics for it unchanged (`affectjax.balancing.base`);
4. gradients of ``total`` w.r.t. ``{"model": params, "balancer": balancer_params}``;
   the optimizer update gets ``grad_fn`` so SAM can re-evaluate the gradient at its
   perturbed point (`affectjax.train.optim`);
5. metrics stay on device (no host sync): the loop fetches them on log steps.

The factories return plain functions; `affectjax.train.loop` jits them once per phase with
the state donated (``donate_argnums=(0,)``) and explicit shardings (`jit_train_step`).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from affectjax.train.state import TrainState

Batch = Mapping[str, jax.Array]
TaskValues = Mapping[str, jax.Array]
LossFn = Callable[[Mapping[str, jax.Array], Mapping[str, jax.Array], Batch],
                  TaskValues | tuple[TaskValues, TaskValues]]
InputsFn = Callable[[Batch], tuple[jax.Array, ...]]


def image_inputs(batch: Batch) -> tuple[jax.Array, ...]:
    """The default model inputs: ``(batch["image"],)``."""
    return (batch["image"],)


def _presence_vector(presence: TaskValues, task_names: tuple[str, ...]) -> jax.Array:
    """Stacks the loss function's ``{task: bool scalar}`` in ``task_names`` order."""
    missing = [name for name in task_names if name not in presence]
    if missing:
        raise ValueError(f"loss_fn presence dict lacks tasks {missing}; it must have a "
                         f"bool scalar for every task of {list(task_names)}")
    values = []
    for name in task_names:
        value = jnp.asarray(presence[name])
        if value.shape != () or value.dtype != jnp.bool_:
            raise ValueError(f"loss_fn presence of task {name!r} must be a bool scalar, "
                             f"got shape {value.shape} dtype {value.dtype}")
        values.append(value)
    return jnp.stack(values)


def make_train_step(loss_fn: LossFn, balancer: Any, *, task_names: Sequence[str],
                    steps_per_epoch: int, schedule: optax.Schedule | None = None,
                    phase_start: int = 0, inputs_fn: InputsFn = image_inputs,
                    ) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict]]:
    """Builds the train step of a multi-task method.

    Args:
      loss_fn: ``(outputs, intermediates, batch) -> {task: scalar loss}`` (the method's
        masked task losses; it must fold ``batch["valid"]`` into its masks when present),
        or ``-> ({task: scalar loss}, {task: bool scalar})`` whose second dict marks the
        tasks with at least one labelled sample in the batch; it is passed to the
        balancer as ``present`` (one entry per task of `task_names`).
      balancer: an `affectjax.balancing` ``Balancer(init, update, init_params, combine)``.
      task_names: order of the tasks in the loss vector the balancer sees.
      steps_per_epoch: optimizer steps per epoch; ``epoch = step // steps_per_epoch``.
      schedule: the phase's learning-rate schedule, only for the ``lr`` metric.
      phase_start: global step at which the phase (and its schedule count) started.
      inputs_fn: ``batch -> model positional inputs``.

    Returns:
      ``step(state, batch, rng) -> (state, metrics)`` with metrics ``loss`` (the balanced
      total), ``loss/<task>``, ``weight/<task>``, ``grad_norm`` and ``lr``; `rng` is the
      run's base key (the step folds in ``state.step``).
    """
    task_names = tuple(task_names)

    def objective(trainable, state: TrainState, batch: Batch, rng, epoch):
        variables = {"params": trainable["model"]}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        (outputs, intermediates), new_vars = state.apply_fn(
            variables, *inputs_fn(batch), train=True, mutable=["batch_stats"],
            rngs={"dropout": rng})
        losses = loss_fn(outputs, intermediates, batch)
        presence = {}
        if isinstance(losses, tuple):
            losses, presence_dict = losses
            presence = {"present": _presence_vector(presence_dict, task_names)}
        vector = jnp.stack([jnp.asarray(losses[name], jnp.float32) for name in task_names])
        weights, balancer_state = balancer.update(
            state.balancer_state, jax.lax.stop_gradient(vector), epoch=epoch, **presence)
        total = balancer.combine(trainable["balancer"], weights, vector)
        aux = (new_vars.get("batch_stats", state.batch_stats), balancer_state, vector, weights)
        return total, aux

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        epoch = (state.step // steps_per_epoch).astype(jnp.int32)
        (total, (batch_stats, balancer_state, vector, weights)), grads = jax.value_and_grad(
            objective, has_aux=True)(state.trainable, state, batch, rng, epoch)

        def grad_fn(trainable, _):  # SAM's gradient at the perturbed point.
            return jax.grad(lambda t: objective(t, state, batch, rng, epoch)[0])(trainable)

        updates, opt_state = state.tx.update(grads, state.opt_state, state.trainable,
                                             grad_fn=grad_fn)
        new_state = state.apply_updates(updates, opt_state, batch_stats=batch_stats,
                                        balancer_state=balancer_state)
        metrics = {"loss": total, "grad_norm": optax.tree.norm(grads["model"])}
        for i, name in enumerate(task_names):
            metrics[f"loss/{name}"] = vector[i]
            metrics[f"weight/{name}"] = weights[i]
        if schedule is not None:
            metrics["lr"] = jnp.asarray(schedule(state.step - phase_start), jnp.float32)
        return new_state, metrics

    return step


def make_eval_step(stats_fn: Callable[..., Any], *, inputs_fn: InputsFn = image_inputs,
                   ) -> Callable[[TrainState, Batch], tuple[Any, Any]]:
    """Builds the evaluation step.

    Args:
      stats_fn: ``(outputs, intermediates, batch) -> pytree`` of per-batch sufficient
        statistics (padding excluded via ``batch["valid"]``).
      inputs_fn: ``batch -> model positional inputs``.

    Returns:
      ``eval_step(state, batch) -> (stats, outputs)`` with the model in inference mode.
    """
    def eval_step(state: TrainState, batch: Batch):
        variables = {"params": state.params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        outputs, intermediates = state.apply_fn(variables, *inputs_fn(batch), train=False)
        return stats_fn(outputs, intermediates, batch), outputs

    return eval_step


def jit_train_step(step: Callable[..., Any], *, state_sharding: Any, data_sharding: Any):
    """Jits a train step once: state donated, batch sharded, state replicated."""
    return jax.jit(step, donate_argnums=(0,),
                   in_shardings=(state_sharding, data_sharding, state_sharding),
                   out_shardings=(state_sharding, state_sharding))


def jit_eval_step(step: Callable[..., Any], *, state_sharding: Any, data_sharding: Any):
    """Jits an eval step: statistics replicated, outputs sharded like the batch."""
    return jax.jit(step, in_shardings=(state_sharding, data_sharding),
                   out_shardings=(state_sharding, data_sharding))
