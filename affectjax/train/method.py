"""The `Method` contract: everything the generic trainer needs to know about a method.

A method (one paper's training recipe, `affectjax.methods`) hands the trainer a `Method`.
The trainer (`affectjax.train.loop`) names no method, no task and no class: every choice
that differs between methods is a field here, and every field beyond the core has a
default that reproduces plain single-model multi-task training:

* the forward pass: ``make_apply(model)`` (default: ``model.apply`` with BatchNorm
  statistics as the mutable collection and one dropout key; CCT's vmapped ensemble gives
  each member its own key, iFAN selects a task's BatchNorm set);
* the loss: ``make_loss(config, train_source)``; a loss function that declares ``step``
  or ``epoch`` keyword parameters receives them (CCT's lambda ramp,
  `affectjax.train.steps.make_train_step`);
* the data: ``make_data(config, ...)`` (default: one TFDS/grain source per split,
  `affectjax.data.pipeline`; iFAN alternates three data sets);
* the optimizer: ``build_optimizer`` (default `affectjax.train.optim.build_optimizer`;
  CCT clips each member on its own);
* the shared parameters for GradNorm: ``shared_group``;
* the class names of its confusion matrices: ``class_names``;
* which way its best metric improves: ``best_mode`` (``"max"``; ``"min"`` for NME);
* a multi-stage run: ``pipeline`` (features -> heads -> tuning -> report) whose stages
  call the same loop;
* inference on new faces: ``predictor`` (`affectjax.train.inference`, used by
  `affectjax.predict`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from affectjax.train.steps import ApplyFn, InputsFn, LossFn, default_apply, image_inputs

Batch = Mapping[str, Any]
BEST_MODES = ("max", "min")


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method, as the generic trainer sees it.

    Attributes:
      name: registry key (`affectjax.methods.METHODS`).
      task_names: order of the task losses given to the balancer.
      groups: parameter group names (for ``trainable`` and ``lr_multipliers``).
      build_model: ``config -> model`` with flax ``init``/``apply``.
      param_groups: ``params -> tree of group names`` (same structure as params).
      make_loss: ``(config, train_source) -> loss_fn(outputs, intermediates, batch)``
        returning ``{task: scalar}``, or ``({task: scalar}, {task: bool scalar})`` to
        tell the balancer which tasks have labels in the batch. A loss function that
        declares keyword parameters ``step`` and/or ``epoch`` receives the global step
        and the 0-based epoch (int32 scalars, traced).
      eval_stats: ``(outputs, intermediates, batch) -> stats`` (jnp, under jit).
      eval_merge: ``(stats, stats) -> stats``.
      eval_finalize: ``stats -> (scalars, arrays)``: metric floats, and arrays for plots
        (e.g. ``confusion_matrix``).
      collect: ``(outputs, batch) -> {name: np.ndarray}`` predictions kept for plots.
      best_metric: the eval metric that picks the best checkpoint.
      best_mode: ``"max"`` (higher is better) or ``"min"`` (lower is better, e.g. NME).
      class_names: ``config -> names`` of the classes of the ``confusion_matrix`` that
        ``eval_finalize`` returns (plots label its rows with them); None = no names.
      inputs_fn: ``batch -> model positional inputs``.
      batch_keys: the batch entries the method reads (others are not sent to the
        devices); None = all.
      make_apply: ``model -> apply(variables, *inputs, train, rng)`` returning
        ``((outputs, intermediates), mutated)``, where ``mutated`` holds the updated
        non-parameter collections (``{"batch_stats": ...}``; ``{}`` when none). None =
        `affectjax.train.steps.default_apply`.
      make_data: ``(config, *, seed) -> (train_loader, eval_loader, train_source)``
        for a method with its own data sources (e.g. batches alternating between data
        sets). The train loader has ``iterate(start_step)`` (an endless stream of host
        batches, the same for the same start step) and ``steps_per_epoch``; the eval
        loader has ``eval_batches()`` (host batches padded to one size with a ``valid``
        row mask). None = `affectjax.data.pipeline` from ``config.data``.
      build_optimizer: ``(cfg, *, learning_rate, labels, steps_per_epoch, total_steps,
        lr_multipliers) -> (tx, schedule)``, as `affectjax.train.optim.build_optimizer`
        (the default when None).
      shared_group: the parameter group shared by all tasks, whose per-task gradient
        norms GradNorm balances (`affectjax.balancing.gradnorm`); None = every model
        parameter. Only read when the balancer is GradNorm.
      make_balancer: ``config -> Balancer`` for a method that weighs its loss terms
        itself (CCT's consensus ramp: ``task_names`` are its terms and the balancer's
        weights follow the epoch); ``config.balancer`` must then be left at ``ew``.
        None = the balancer of ``config.balancer``.
      merge_pretrained: ``(config, variables, loaded) -> (variables, loaded_paths,
        kept_paths)``: puts the arrays of a pretrained variable set (``config.init_from``)
        into the freshly initialised `variables` (an ensemble broadcasts one network to
        its members). None = copy every array whose path and shape match.
      specialize: ``config -> Method`` for a method whose contract depends on its
        config (CCT's ``cct.task``: expressions, AUs or valence/arousal need other
        labels, evaluations and best metrics); the entry points call it once before
        training. None = the method as it is.
      pipeline: ``(config, workdir) -> final_metrics`` for a method that is a
        multi-stage pipeline; it writes ``workdir/final_metrics.json`` (with ``eval``
        scalars and ``best``) and raises `affectjax.train.errors.UserError` for the
        user's mistakes. None = the generic loop.
      predictor: ``(config, workdir, *, best) -> affectjax.train.inference.Inference``:
        the run's inference function on face images, its weights and preprocessing
        (`affectjax.predict.load` calls it on the ``specialize``d method). None = the
        method's runs cannot predict from images (a clear error in `affectjax.predict`).
    """

    name: str
    task_names: tuple[str, ...]
    groups: tuple[str, ...]
    build_model: Callable[[Any], Any]
    param_groups: Callable[[Any], Any]
    make_loss: Callable[[Any, Any], LossFn]
    eval_stats: Callable[..., Any]
    eval_merge: Callable[[Any, Any], Any]
    eval_finalize: Callable[[Any], tuple[dict[str, float], dict[str, np.ndarray]]]
    collect: Callable[[Any, Batch], dict[str, np.ndarray]]
    best_metric: str = "score"
    best_mode: str = "max"
    class_names: Callable[[Any], tuple[str, ...]] | None = None
    inputs_fn: InputsFn = image_inputs
    batch_keys: tuple[str, ...] | None = None
    make_apply: Callable[[Any], ApplyFn] | None = None
    make_data: Callable[..., tuple[Any, Any, Any]] | None = None
    build_optimizer: Callable[..., Any] | None = None
    shared_group: str | None = None
    make_balancer: Callable[[Any], Any] | None = None
    merge_pretrained: Callable[[Any, Any, Any], tuple[Any, list[str], list[str]]] | None = None
    specialize: Callable[[Any], "Method"] | None = None
    pipeline: Callable[[Any, str], dict[str, Any]] | None = None
    predictor: Callable[..., Any] | None = None

    def __post_init__(self):
        if self.best_mode not in BEST_MODES:
            raise ValueError(f"Method {self.name!r}: best_mode={self.best_mode!r}; choose "
                             f"one of {list(BEST_MODES)}")
        if self.shared_group is not None and self.shared_group not in self.groups:
            raise ValueError(f"Method {self.name!r}: shared_group={self.shared_group!r} is "
                             f"not one of its groups {list(self.groups)}")

    def apply_fn(self, model: Any) -> ApplyFn:
        """The method's forward pass over `model` (`make_apply` or the default)."""
        return (self.make_apply or default_apply)(model)

    def is_better(self, value: float, best: float | None) -> bool:
        """Whether metric `value` beats `best` (None: nothing yet) under `best_mode`."""
        if best is None:
            return True
        return value < best if self.best_mode == "min" else value > best


def valid_mask(batch: Batch) -> jax.Array:
    """The batch's ``valid`` rows (all True when the key is absent, e.g. in training)."""
    n = batch["image"].shape[0] if "image" in batch else next(iter(batch.values())).shape[0]
    return batch["valid"].astype(bool) if "valid" in batch else jnp.ones((n,), bool)
