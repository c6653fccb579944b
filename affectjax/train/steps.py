"""Step factories: pure ``step(state, batch, rng) -> (state, metrics)`` functions.

`make_train_step` is written once for every method and balancer:

1. forward with ``train=True`` through the method's apply (`default_apply`: dropout rng
   = ``fold_in(rng, state.step)``, BatchNorm statistics as a mutable collection);
2. the method's task losses ``{task: scalar}`` stacked in ``task_names`` order; a loss
   function that declares ``step`` or ``epoch`` keyword parameters receives the global
   step and the 0-based epoch (CCT's lambda ramp);
3. ``weights, bstate = balancer.update(bstate, stop_gradient(losses), epoch=epoch)`` and
   ``total = balancer.combine(balancer_params, weights, losses)``. A loss function may
   also report which tasks have labels in the batch by returning
   ``({task: loss}, {task: bool scalar})``; the presence vector, in ``task_names``
   order, then goes to ``balancer.update(..., present=present)``, so a task with no
   labelled sample in the batch (cross-dataset training, masked labels) leaves the
   balancer's statistics for it unchanged (`affectjax.balancing.base`);
4. gradients of ``total`` w.r.t. ``{"model": params, "balancer": balancer_params}``;
   a balancer with a loss of its own (``Balancer.param_loss``: GradNorm) also gets the
   gradient of that loss w.r.t. its parameters, from the per-task gradient norms of the
   shared parameters (``shared_mask``), in the same jitted step;
5. the optimizer update gets ``grad_fn`` so SAM can re-evaluate the gradient at its
   perturbed point (`affectjax.train.optim`); SAM steps with that gradient alone, so
   ``grad_fn`` adds the balancer's own gradient of step 4 to it;
6. metrics stay on device (no host sync): the loop fetches them on log steps. The
   logged ``weight/<task>`` is the effective weight of the task, d total / d L_k: the
   factor each task loss is multiplied by, whatever the balancer (UW's 1/(2 e^s_k),
   GradNorm's K softmax(a)_k).

The factories return plain functions; `affectjax.train.loop` jits them once per phase with
the state donated (``donate_argnums=(0,)``) and explicit shardings (`jit_train_step`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import optax

from affectjax import balancing
from affectjax.train.state import TrainState

Batch = Mapping[str, jax.Array]
TaskValues = Mapping[str, jax.Array]
LossFn = Callable[..., TaskValues | tuple[TaskValues, TaskValues]]
InputsFn = Callable[[Batch], tuple[jax.Array, ...]]
ApplyFn = Callable[..., tuple[tuple[Any, Any], dict[str, Any]]]


def image_inputs(batch: Batch) -> tuple[jax.Array, ...]:
    """The default model inputs: ``(batch["image"],)``."""
    return (batch["image"],)


def default_apply(model: Any) -> ApplyFn:
    """The plain forward pass of a flax `model` (or of its ``apply`` function).

    Returns:
      ``apply(variables, *inputs, train, rng=None) -> ((outputs, intermediates),
      mutated)``: in training BatchNorm statistics are the mutable collection
      (``mutated = {"batch_stats": ...}``, ``{}`` for a model without BatchNorm) and
      `rng` is the dropout key; in inference nothing is mutated.
    """
    model_apply = getattr(model, "apply", model)

    def apply(variables, *inputs, train: bool, rng=None):
        if not train:
            return model_apply(variables, *inputs, train=False), {}
        rngs = {"dropout": rng} if rng is not None else {}
        out, mutated = model_apply(variables, *inputs, train=True, mutable=["batch_stats"],
                                   rngs=rngs)
        return out, dict(mutated)

    return apply


def _step_keywords(loss_fn: LossFn) -> tuple[str, ...]:
    """Which of ``step``/``epoch`` the loss function declares (``**kwargs``: both)."""
    try:
        params = inspect.signature(loss_fn).parameters
    except (TypeError, ValueError):
        return ()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return ("step", "epoch")
    return tuple(k for k in ("step", "epoch") if k in params)


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


def _split(tree: Any, mask: Any) -> tuple[list, Callable[[list], Any]]:
    """The leaves of `tree` where `mask` is True, and a function putting them back."""
    leaves, treedef = jax.tree.flatten(tree)
    keep = jax.tree.leaves(mask)
    if len(keep) != len(leaves):
        raise ValueError(f"shared_mask has {len(keep)} leaves but the parameters have "
                         f"{len(leaves)}")
    chosen = [leaf for leaf, k in zip(leaves, keep) if k]
    if not chosen:
        raise ValueError("shared_mask selects no parameter: GradNorm needs the shared "
                         "parameters of the tasks")

    def merge(new: list) -> Any:
        it = iter(new)
        return jax.tree.unflatten(treedef, [next(it) if k else leaf
                                            for leaf, k in zip(leaves, keep)])

    return chosen, merge


def make_train_step(loss_fn: LossFn, balancer: Any, *, task_names: Sequence[str],
                    steps_per_epoch: int, schedule: optax.Schedule | None = None,
                    phase_start: int = 0, inputs_fn: InputsFn = image_inputs,
                    apply: ApplyFn | None = None, shared_mask: Any = None,
                    ) -> Callable[[TrainState, Batch, jax.Array], tuple[TrainState, dict]]:
    """Builds the train step of a multi-task method.

    Args:
      loss_fn: ``(outputs, intermediates, batch) -> {task: scalar loss}`` (the method's
        masked task losses; it must fold ``batch["valid"]`` into its masks when present),
        or ``-> ({task: scalar loss}, {task: bool scalar})`` whose second dict marks the
        tasks with at least one labelled sample in the batch; it is passed to the
        balancer as ``present`` (one entry per task of `task_names`). If it declares
        keyword parameters ``step`` and/or ``epoch`` it receives them (int32 scalars).
      balancer: an `affectjax.balancing` ``Balancer``.
      task_names: order of the tasks in the loss vector the balancer sees.
      steps_per_epoch: optimizer steps per epoch; ``epoch = step // steps_per_epoch``.
      schedule: the phase's learning-rate schedule, only for the ``lr`` metric.
      phase_start: global step at which the phase (and its schedule count) started.
      inputs_fn: ``batch -> model positional inputs``.
      apply: the method's forward ``apply(variables, *inputs, train, rng)``
        (`default_apply` of ``state.apply_fn`` when None).
      shared_mask: a tree of bools over the model parameters marking the parameters
        shared by the tasks, for a balancer with a ``param_loss`` (GradNorm); None =
        all parameters.

    Returns:
      ``step(state, batch, rng) -> (state, metrics)`` with metrics ``loss`` (the balanced
      total), ``loss/<task>``, ``weight/<task>`` (the effective weight d total / d L_k),
      ``grad_norm`` and ``lr``; `rng` is the run's base key (the step folds in
      ``state.step``).
    """
    task_names = tuple(task_names)
    step_keywords = _step_keywords(loss_fn)
    param_loss = getattr(balancer, "param_loss", None)

    def task_losses(params, state: TrainState, batch: Batch, rng, step, epoch):
        forward = apply or default_apply(state.apply_fn)
        variables = {"params": params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        (outputs, intermediates), mutated = forward(variables, *inputs_fn(batch), train=True,
                                                    rng=rng)
        extra = {k: v for k, v in (("step", step), ("epoch", epoch)) if k in step_keywords}
        losses = loss_fn(outputs, intermediates, batch, **extra)
        presence = None
        if isinstance(losses, tuple):
            losses, presence_dict = losses
            presence = _presence_vector(presence_dict, task_names)
        vector = jnp.stack([jnp.asarray(losses[name], jnp.float32) for name in task_names])
        return vector, (mutated.get("batch_stats", state.batch_stats), presence)

    def objective(trainable, state: TrainState, batch: Batch, rng, step, epoch):
        vector, (batch_stats, presence) = task_losses(trainable["model"], state, batch, rng,
                                                      step, epoch)
        kwargs = {} if presence is None else {"present": presence}
        weights, balancer_state = balancer.update(
            state.balancer_state, jax.lax.stop_gradient(vector), epoch=epoch, **kwargs)
        total = balancer.combine(trainable["balancer"], weights, vector)
        return total, (batch_stats, balancer_state, vector, weights, presence)

    def balancer_grads(state: TrainState, batch, rng, step, epoch, vector, presence,
                       balancer_state):
        """The gradient of the balancer's own loss (GradNorm) w.r.t. its parameters."""
        mask = shared_mask if shared_mask is not None else jax.tree.map(
            lambda _: True, state.params)
        shared, merge = _split(state.params, mask)
        norms = balancing.per_task_grad_norms(
            lambda w: task_losses(merge(w), state, batch, rng, step, epoch)[0], shared)
        return jax.grad(param_loss)(state.balancer_params, norms,
                                    jax.lax.stop_gradient(vector), balancer_state,
                                    present=presence)

    def step(state: TrainState, batch: Batch, rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        epoch = (state.step // steps_per_epoch).astype(jnp.int32)
        (total, aux), grads = jax.value_and_grad(objective, has_aux=True)(
            state.trainable, state, batch, rng, state.step, epoch)
        batch_stats, balancer_state, vector, weights, presence = aux
        own = None
        if param_loss is not None:
            own = balancer_grads(state, batch, rng, state.step, epoch, vector, presence,
                                 balancer_state)
            grads = dict(grads, balancer=jax.tree.map(jnp.add, grads["balancer"], own))

        def grad_fn(trainable, _):  # SAM's gradient at the perturbed point.
            g = jax.grad(lambda t: objective(t, state, batch, rng, state.step,
                                             epoch)[0])(trainable)
            # SAM steps with this gradient alone: it must carry the balancer's own
            # gradient too (taken at the unperturbed point; SAM leaves the balancer's
            # parameters unperturbed), or GradNorm under SAM would stay EW.
            if own is not None:
                g = dict(g, balancer=jax.tree.map(jnp.add, g["balancer"], own))
            return g

        updates, opt_state = state.tx.update(grads, state.opt_state, state.trainable,
                                             grad_fn=grad_fn)
        new_state = state.apply_updates(updates, opt_state, batch_stats=batch_stats,
                                        balancer_state=balancer_state)
        effective = jax.grad(lambda v: balancer.combine(state.balancer_params, weights, v))(
            jax.lax.stop_gradient(vector))
        metrics = {"loss": total, "grad_norm": optax.tree.norm(grads["model"])}
        for i, name in enumerate(task_names):
            metrics[f"loss/{name}"] = vector[i]
            metrics[f"weight/{name}"] = effective[i]
        if schedule is not None:
            metrics["lr"] = jnp.asarray(schedule(state.step - phase_start), jnp.float32)
        return new_state, metrics

    return step


def make_eval_step(stats_fn: Callable[..., Any], *, inputs_fn: InputsFn = image_inputs,
                   apply: ApplyFn | None = None,
                   ) -> Callable[[TrainState, Batch], tuple[Any, Any]]:
    """Builds the evaluation step.

    Args:
      stats_fn: ``(outputs, intermediates, batch) -> pytree`` of per-batch sufficient
        statistics (padding excluded via ``batch["valid"]``).
      inputs_fn: ``batch -> model positional inputs``.
      apply: the method's forward (`default_apply` of ``state.apply_fn`` when None).

    Returns:
      ``eval_step(state, batch) -> (stats, outputs)`` with the model in inference mode.
    """
    def eval_step(state: TrainState, batch: Batch):
        forward = apply or default_apply(state.apply_fn)
        variables = {"params": state.params}
        if state.batch_stats:
            variables["batch_stats"] = state.batch_stats
        (outputs, intermediates), _ = forward(variables, *inputs_fn(batch), train=False)
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
