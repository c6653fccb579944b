"""The ``ifan`` method: iFAN's model trained across data sets (paper 4, Sec. 3, Algorithm 1).

One run is a two-stage pipeline (`affectjax.methods.ifan.pipeline`), each stage the
generic loop with this method's contract:

* the model is `affectjax.models.ifan.IFAN` over ``config.ifan.tasks`` (any of
  ``landmarks``, ``parsing``, ``emotion``) with ``ifan.num_iterations`` (ITER) feedback
  iterations; the backbone has one BatchNorm set per data set (``ifan.task_batchnorm``;
  False = shared BN, the ablation);
* every batch comes from ONE task's data set (`affectjax.methods.ifan.data`); its
  ``source`` index selects the BatchNorm set, and only that task's decoder is updated
  (eq. 6: a batch of task t updates theta_S, theta_t and the re-encoders theta_e^1..T):
  the other decoders' parameters enter the forward pass through ``stop_gradient``, so
  their predictions still feed the integrator but get no gradient;
* the loss is eq. 5, each task's loss summed over iterations 0..ITER, with presence flags
  for the balancer (`affectjax.methods.ifan.objectives`);
* evaluation: every metric of every task at every iteration.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import labels
from affectjax import models as models_lib
from affectjax.methods.ifan import data as data_lib
from affectjax.methods.ifan import objectives
from affectjax.train import inference
from affectjax.train.errors import ConfigError
from affectjax.train.method import Method

TASKS = ("landmarks", "parsing", "emotion")
GROUPS = ("backbone", "decoder_landmarks", "decoder_parsing", "decoder_emotion", "reencoders")


def get_tasks(config: Any) -> tuple[str, ...]:
    """``config.ifan.tasks`` ("landmarks,parsing" or a sequence), checked, in TASKS order."""
    value = config.ifan.tasks
    names = [t.strip() for t in value.split(",")] if isinstance(value, str) else list(value)
    unknown = [t for t in names if t not in TASKS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"config.ifan.tasks={value!r}: give distinct tasks from "
                          f"{list(TASKS)}")
    return tuple(t for t in TASKS if t in names)


def num_iterations(config: Any) -> int:
    value = config.ifan.num_iterations
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"config.ifan.num_iterations must be an integer >= 0, got {value!r}")
    return int(value)


def build_model(config: Any):
    """`models.create("ifan", ...)` from ``config.model`` and ``config.ifan``."""
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name", "ifan")
    if name != "ifan":
        raise ConfigError(f"config.model.name: the ifan method trains the 'ifan' model, got "
                          f"{name!r}")
    c, tasks = config.ifan, get_tasks(config)
    prior = config.ifan.get("landmark_prior", "none")
    if prior not in ("mean", "none"):
        raise ConfigError(f"config.ifan.landmark_prior={prior!r}; choose 'mean' or 'none'")
    if prior == "mean" and "landmarks" in tasks:
        mean = data_lib.mean_predictions(config, ("landmarks",))["landmarks"]
        kwargs["landmark_prior"] = tuple(float(v) for v in
                                         (mean / float(config.ifan.image_size)).ravel())
    kwargs.update(tasks=tasks, num_iterations=num_iterations(config),
                  num_bn_sets=len(tasks) if c.task_batchnorm else 1,
                  reencoders=bool(c.reencoders), integration=c.integration,
                  initial_feedback=c.initial_feedback, loop=c.loop)
    try:
        return models_lib.create("ifan", **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config.model / config.ifan: {exc}") from None


def inputs(batch: Any) -> tuple[Any, ...]:
    """The model inputs: the images and the batch's data-set index (its BatchNorm set)."""
    return batch["image"], batch["source"][0]


def gate_decoders(params: Any, tasks: tuple[str, ...], source: Any) -> Any:
    """`params` with every decoder but ``tasks[source]``'s behind ``stop_gradient``."""
    out = dict(params)
    for index, task in enumerate(tasks):
        name = f"decoder_{task}"
        if name in out:
            keep = source == index
            out[name] = jax.tree.map(
                lambda p, keep=keep: jax.numpy.where(keep, p, jax.lax.stop_gradient(p)),
                out[name])
    return out


def make_apply(model: Any, *, initial: Any = None):
    """The forward pass: BatchNorm set and decoder gate from the batch's ``source``.

    `initial`: the predictions iteration 0 is fed when the model's ``initial_feedback``
    is ``mean`` (`affectjax.methods.ifan.data.mean_predictions`).
    """
    tasks, shared_bn = tuple(model.tasks), model.num_bn_sets == 1

    def apply(variables, image, source, *, train: bool, rng=None):
        variables = dict(variables, params=gate_decoders(variables["params"], tasks, source))
        bn_set = 0 if shared_bn else source
        if not train:
            return model.apply(variables, image, bn_set, initial=initial, train=False), {}
        rngs = {"dropout": rng} if rng is not None else {}
        out, mutated = model.apply(variables, image, bn_set, initial=initial, train=True,
                                   mutable=["batch_stats"], rngs=rngs)
        return out, dict(mutated)

    return apply


def param_groups(params: Any) -> Any:
    """``backbone``, ``decoder_<task>`` (each its own: their learning rates differ) or
    ``reencoders``, for ``trainable`` and ``lr_multipliers``."""
    def group(name: str) -> str:
        if name.startswith("decoder_"):
            return name
        return "reencoders" if name.startswith("reencoder_") else "backbone"
    return {k: jax.tree.map(lambda _, g=group(k): g, v) for k, v in params.items()}


def make_data(config: Any, *, seed: int):
    """Stage data: ``ifan.order`` over the tasks' own data sets (`data.make_loaders`)."""
    return data_lib.make_loaders(config, get_tasks(config), seed=seed,
                                 order=config.ifan.get("order", "alternate"),
                                 epochs=int(config.ifan.get("order_epochs", 1)))


def _task_fields(task: str, output: jax.Array) -> dict[str, jax.Array]:
    if task == "landmarks":
        return {"landmarks": output.astype(jnp.float32)}  # (B, L, 2) input pixels
    if task == "parsing":
        return {"parsing": jnp.argmax(output, axis=-1).astype(jnp.int32)}
    return {"expr_probs": inference.softmax(output)}


def make_predictor(make_apply_fn: Any, *, subdir: str = ""):
    """``predictor`` of a run (`affectjax.train.inference`): the last iteration's landmarks,
    parsing and expression probabilities. With task-specific BatchNorm each task's output
    comes from a pass with its own BN set (the set its data set trained), so one image
    runs once per task; with shared BatchNorm once. `subdir`: the stage directory that
    holds the weights (``finetune`` for the two-stage pipeline)."""

    def predictor(config: Any, workdir: str, *, best: bool) -> inference.Inference:
        tasks = get_tasks(config)
        model = build_model(config)
        apply = make_apply_fn(model)
        variables, origin = inference.restore_variables(
            f"{workdir}/{subdir}" if subdir else workdir, best=best)
        passes = [(0, tasks)] if model.num_bn_sets == 1 else [(i, (t,)) for i, t in
                                                               enumerate(tasks)]

        def run(variables, images):
            fields = {}
            for source, names in passes:
                (outputs, _), _ = apply(variables, images, jnp.int32(source), train=False)
                for task in names:
                    fields.update(_task_fields(task, outputs[task]))
            return fields

        _, mean, std = inference.data_normalisation(data_lib.source_config(config, tasks[0]))
        names = ({"expr_probs": labels.EXPRESSIONS[:int(config.model.get(
            "num_emotions", labels.NUM_EXPRESSIONS))]} if "emotion" in tasks else {})
        return inference.Inference(apply=run, variables=variables,
                                   image_size=int(config.ifan.image_size), mean=mean,
                                   std=std, names=names, thresholds={}, origin=origin)

    return predictor


def specialize(config: Any, *, pipeline: Any = None) -> Method:
    """The method for `config`'s tasks and ITER (tasks are the balancer's terms)."""
    tasks, iters = get_tasks(config), num_iterations(config)
    size = int(config.ifan.image_size)
    make_apply_fn = make_apply
    if config.ifan.initial_feedback == "mean":
        initial = data_lib.mean_predictions(config, tasks)
        make_apply_fn = functools.partial(make_apply, initial=initial)
    return dataclasses.replace(
        IFAN_STAGE, task_names=tasks, make_apply=make_apply_fn,
        make_loss=lambda cfg, source: objectives.make_loss_fn(tasks, iters, size),
        eval_stats=objectives.make_eval_stats(
            tasks, iters, num_parsing_classes=int(config.model.get("num_parsing_classes", 11)),
            num_emotions=int(config.model.get("num_emotions", labels.NUM_EXPRESSIONS))),
        eval_finalize=objectives.make_eval_finalize(tasks, iters),
        class_names=((lambda cfg: labels.EXPRESSIONS[:int(cfg.model.get(
            "num_emotions", labels.NUM_EXPRESSIONS))]) if "emotion" in tasks else None),
        pipeline=pipeline, specialize=None,
        predictor=make_predictor(make_apply_fn, subdir="finetune" if pipeline else ""))


def _unspecialized(*_: Any, **__: Any):
    raise RuntimeError("the ifan method is specialised to a config first (Method.specialize)")


IFAN_STAGE = Method(
    name="ifan", task_names=TASKS, groups=GROUPS, build_model=build_model,
    param_groups=param_groups, make_loss=_unspecialized, eval_stats=_unspecialized,
    eval_merge=objectives.eval_merge, eval_finalize=_unspecialized,
    collect=lambda outputs, batch: {}, best_metric="score", inputs_fn=inputs,
    batch_keys=data_lib.BATCH_KEYS, make_apply=make_apply, make_data=make_data,
    shared_group="backbone", specialize=specialize, predictor=_unspecialized)
"""One stage of the pipeline (the generic loop; `affectjax.methods.ifan.pipeline` builds
its config and registers the two-stage method)."""
