"""The ``mtl`` method: hard parameter sharing with any loss balancer (paper 5, "Experiments").

One backbone (``model.backbone``: ResNet-50 for Aff-Wild2 and AffectNet, ResNet-18 for
CelebA; any registered image classifier) feeds one linear head per task kind of
``config.mtl.tasks`` (`affectjax.methods.mtl.tasks`: ``va``, ``expr``, ``au``, ``attr``),
and the balancer of ``config.balancer`` (EW, UW, DWA, GradNorm, EMA, REMA, DWEMA, fixed;
`affectjax.balancing`) weighs the task losses: a loss per kind, and for ``attr`` one per
attribute ("we backpropagate on each task individually, based on its individual loss
coefficient"). GradNorm balances the gradients at the ``backbone`` group.

``mtl.loss_scale.<task>`` multiplies a task's raw loss by a constant before the balancer,
the setting where one task's loss is far larger than the others' (``au: 100``), which EMA
balancing is meant for. The paper trains every balancer from "the same initialization":
``config.init_seed`` fixes the model's initial weights apart from ``config.seed`` (data
order, dropout).

``config.init_from`` takes a converted backbone (`affectjax.convert`, e.g. torchvision's
ImageNet ResNet-50), whose arrays go under ``backbone`` (its classifier matches nothing),
or an ``mtl`` run.

Evaluation: each kind's metrics and ``score``, the sum of the kinds' parts (ABAW P_MTL for
Aff-Wild2, the mean F1 over the attributes for CelebA), which picks the best checkpoint.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from affectjax import labels
from affectjax import models as models_lib
from affectjax.methods.mtl import tasks as tasks_lib
from affectjax.train import inference
from affectjax.train.errors import ConfigError
from affectjax.train.method import Method


def get_kinds(config: Any) -> tuple[str, ...]:
    """``config.mtl.tasks`` ("va+expr+au", "attr", ...), checked, in KINDS order."""
    value = config.mtl.tasks
    names = ([t.strip() for t in value.split("+")] if isinstance(value, str) else list(value))
    unknown = [t for t in names if t not in tasks_lib.KINDS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"config.mtl.tasks={value!r}: give distinct task kinds from "
                          f"{list(tasks_lib.KINDS)} joined by '+'")
    return tuple(t for t in tasks_lib.KINDS if t in names)


def attributes(config: Any) -> tuple[str, ...]:
    """``config.mtl.attributes``: the attribute names of the ``attr`` kind."""
    names = tuple(config.mtl.get("attributes", ()) or ())
    if "attr" in get_kinds(config) and not names:
        raise ConfigError("config.mtl.attributes is empty: the 'attr' task kind needs the "
                          "data set's attribute names")
    return names


def num_expressions(config: Any) -> int:
    return int(config.mtl.get("num_expressions", labels.NUM_EXPRESSIONS))


def task_names(config: Any) -> tuple[str, ...]:
    return tasks_lib.task_names(get_kinds(config), attributes(config))


def loss_scale(config: Any) -> dict[str, float]:
    given = dict(config.mtl.get("loss_scale") or {})
    names = task_names(config)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ConfigError(f"config.mtl.loss_scale: unknown tasks {unknown}; the run's tasks "
                          f"are {list(names)[:8]}{' ...' if len(names) > 8 else ''}")
    return {k: float(v) for k, v in given.items()}


def build_model(config: Any):
    """`models.create("hard_sharing", ...)` with one head per task kind."""
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name", "hard_sharing")
    if name != "hard_sharing":
        raise ConfigError(f"config.model.name: the mtl method trains 'hard_sharing', got "
                          f"{name!r}")
    attrs, num_expr = attributes(config), num_expressions(config)
    kwargs["heads"] = tuple((kind, tasks_lib.head_width(kind, num_expressions=num_expr,
                                                        attributes=attrs))
                            for kind in get_kinds(config))
    try:
        return models_lib.create("hard_sharing", **kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"config.model: {exc.args[0] if exc.args else exc}") from None


def param_groups(params: Any) -> Any:
    """``backbone`` (shared: GradNorm's) and ``heads``."""
    return {k: jax.tree.map(lambda _, g=("heads" if k.startswith("head_") else "backbone"): g,
                            v) for k, v in params.items()}


def merge_pretrained(config: Any, variables: Any, loaded: Any):
    """A converted backbone (``init_from``: e.g. torchvision's ResNet-50, its classifier
    left out) goes under ``backbone``; an ``mtl`` run's variables are copied as they are."""
    del config
    from affectjax.train import setup  # pylint: disable=import-outside-toplevel
    if "backbone" not in loaded.get("params", {}):
        loaded = {collection: {"backbone": tree} for collection, tree in loaded.items()}
    return setup.merge_by_path(variables, loaded)


def make_loss(config: Any, train_source: Any):
    """``loss_fn -> ({task: scale * loss}, {task: present})``; absent tasks give 0."""
    del train_source
    kinds, attrs, scale = get_kinds(config), attributes(config), loss_scale(config)

    def loss_fn(outputs, intermediates, batch):
        del intermediates
        values, present = {}, {}
        for kind in kinds:
            v, p = tasks_lib.kind_losses(kind, outputs[kind], batch, attrs)
            # An absent task's loss is 0 (a CCC loss without labels would be 1).
            values.update({k: jnp.where(p[k], scale.get(k, 1.0) * x, 0.0)
                           for k, x in v.items()})
            present.update(p)
        return values, present

    return loss_fn


def make_eval(config: Any):
    kinds, attrs = get_kinds(config), attributes(config)

    def stats(outputs, intermediates, batch):
        del intermediates
        return {kind: tasks_lib.kind_stats(kind, outputs[kind], batch) for kind in kinds}

    def merge(a, b):
        return {kind: tasks_lib.kind_merge(kind, a[kind], b[kind]) for kind in kinds}

    def finalize(stats_tree):
        scalars, arrays, score = {}, {}, 0.0
        for kind in kinds:
            values, part, extra = tasks_lib.kind_finalize(kind, stats_tree[kind], attrs)
            scalars.update(values)
            arrays.update(extra)
            score += part
        scalars["score"] = score
        return scalars, arrays

    return stats, merge, finalize


def predict_fields(config: Any):
    """``(fields, names)`` of a run's predictions: ``fields(outputs, intermediates)`` gives
    each task head's prediction (tanh for ``va``, softmax for ``expr``, sigmoid for ``au``
    and ``attr``; `affectjax.train.inference`), ``names`` the classes of each field."""
    kinds, attrs = get_kinds(config), attributes(config)
    links = {"expr": ("expr_probs", inference.softmax), "au": ("au_probs", inference.sigmoid),
             "attr": ("attr_probs", inference.sigmoid)}
    all_names = {"expr_probs": labels.EXPRESSIONS[:num_expressions(config)],
                 "au_probs": labels.AUS, "attr_probs": attrs}

    def fields(outputs, intermediates):
        del intermediates
        out = {}
        for kind in kinds:
            if kind == "va":
                out.update(inference.split_va(jnp.tanh(outputs["va"])))
            else:
                name, link = links[kind]
                out[name] = link(outputs[kind])
        return out

    names = {links[k][0]: all_names[links[k][0]] for k in kinds if k in links}
    return fields, names


def make_predictor(config: Any):
    """The ``predictor`` of a run (`affectjax.train.inference`), see `predict_fields`."""
    fields, names = predict_fields(config)

    def predictor(cfg: Any, workdir: str, *, best: bool) -> inference.Inference:
        return inference.from_checkpoint(MTL, cfg, workdir, best=best, fields=fields,
                                         names=names,
                                         thresholds=inference.default_thresholds(names))

    return predictor


def _unspecialized(*_: Any, **__: Any):
    raise RuntimeError("the mtl method is specialised to a config first (Method.specialize)")


def specialize(config: Any) -> Method:
    kinds = get_kinds(config)
    stats, merge, finalize = make_eval(config)
    keys = ("image", "valid") + tuple(k for kind in kinds for k in tasks_lib.BATCH_KEYS[kind])
    return dataclasses.replace(
        MTL, task_names=task_names(config), make_loss=make_loss, eval_stats=stats,
        eval_merge=merge, eval_finalize=finalize, batch_keys=keys, specialize=None,
        class_names=((lambda cfg: labels.EXPRESSIONS[:num_expressions(cfg)])
                     if "expr" in kinds else None),
        predictor=make_predictor(config))


MTL = Method(
    name="mtl", task_names=tasks_lib.KINDS, groups=("backbone", "heads"),
    build_model=build_model, param_groups=param_groups, make_loss=_unspecialized,
    eval_stats=_unspecialized, eval_merge=_unspecialized, eval_finalize=_unspecialized,
    collect=lambda outputs, batch: {}, best_metric="score", shared_group="backbone",
    merge_pretrained=merge_pretrained, specialize=specialize, predictor=_unspecialized)
"""The registered ``mtl`` method (specialised to the config's tasks before training)."""
