"""The ``fusion`` method: weakly-supervised multimodal multi-task learning (paper 3).

One shared backbone f_Wb over word-aligned text, audio and visual sequences (EF, LF or
EF-LF fusion with an AVG, bi-LSTM or Transformer encoder: `affectjax.models.fusion`) and
one linear head per task of ``config.fusion.tasks`` (any of ``emotion``, ``sentiment``,
``sarcasm``), trained with eq. 2 of the paper,

    L = sum_j lambda_j L_j(A_Wj(r_i), y_i),

where ``lambda_j`` is ``config.fusion.weights.<task>`` (the paper's searched weights,
Table 9) and ``L_j`` the task losses of `affectjax.methods.fusion.tasks`. A task that the
data set does not label gets weak labels from a teacher (``config.fusion.weak.<task>``,
`affectjax.methods.fusion.teachers`); their entries weigh the teacher's confidence
(``fusion.weak_weight = "confidence"``, the paper's other choice of lambda_j) or 1
(``"one"``). The loss reports which tasks have labels in the batch, so any
`affectjax.balancing` balancer (``config.balancer``; the paper: fixed weights, i.e.
``ew`` over the lambda-weighted losses) can weigh the terms, EMA balancing included.

Evaluation: every task that the evaluation split labels, with the paper's metrics, and
``score`` from ``fusion.main_task`` (`affectjax.methods.fusion.tasks.task_score`), which
picks the best checkpoint; a sentiment or sarcasm main task also gets its confusion matrix
(``plots/confusion_matrix.png``).

A run with weak tasks is a pipeline: the teachers are trained (once per teacher
configuration, shared by every student that uses it) and their labels written before the
student trains in ``workdir``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from affectjax import losses
from affectjax import models as models_lib
from affectjax.methods.fusion import tasks as tasks_lib
from affectjax.methods.fusion import weak_labels as weak_lib
from affectjax.train.errors import ConfigError
from affectjax.train.method import Method

MODALITIES = ("text", "audio", "visual")
WEAK_WEIGHTS = ("confidence", "one")
BATCH_KEYS = (*MODALITIES, "emotion", "sentiment", "sentiment_binary", "sarcasm", "valid",
              *(tasks_lib.weak_key(t) for t in tasks_lib.TASKS))


def get_tasks(config: Any) -> tuple[str, ...]:
    """``config.fusion.tasks`` ("emotion+sarcasm" or a sequence), checked, in TASKS order."""
    value = config.fusion.tasks
    names = ([t.strip() for t in value.replace(",", "+").split("+")] if isinstance(value, str)
             else list(value))
    unknown = [t for t in names if t not in tasks_lib.TASKS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(f"config.fusion.tasks={value!r}: give distinct tasks from "
                          f"{list(tasks_lib.TASKS)}")
    return tuple(t for t in tasks_lib.TASKS if t in names)


def main_task(config: Any) -> str:
    """``config.fusion.main_task`` (default: the first task), one of the trained tasks."""
    tasks = get_tasks(config)
    main = config.fusion.get("main_task", "") or tasks[0]
    if main not in tasks:
        raise ConfigError(f"config.fusion.main_task={main!r} is not one of config.fusion.tasks "
                          f"{list(tasks)}")
    return main


def sentiment_loss(config: Any) -> str:
    value = config.fusion.get("sentiment_loss", "binary")
    if value not in tasks_lib.SENTIMENT_LOSSES:
        raise ConfigError(f"config.fusion.sentiment_loss={value!r}; choose one of "
                          f"{list(tasks_lib.SENTIMENT_LOSSES)}")
    return value


def weak_tasks(config: Any) -> tuple[str, ...]:
    """The trained tasks with a ``config.fusion.weak.<task>`` entry (entries of tasks
    that ``fusion.tasks`` leaves out are not used, so one config serves every grid row)."""
    weak = config.fusion.get("weak") or {}
    tasks = get_tasks(config)
    unknown = sorted(set(weak) - set(tasks_lib.TASKS))
    if unknown:
        raise ConfigError(f"config.fusion.weak: unknown tasks {unknown}; choose from "
                          f"{list(tasks_lib.TASKS)}")
    if "sentiment" in weak and "sentiment" in tasks and sentiment_loss(config) == "regression":
        raise ConfigError("config.fusion.weak.sentiment: weak sentiment labels are binary; "
                          "set config.fusion.sentiment_loss='binary'")
    return tuple(t for t in tasks if t in weak)


def task_weights(config: Any) -> dict[str, float]:
    """lambda_j of eq. 2 from ``config.fusion.weights`` (missing tasks: 1)."""
    given = dict(config.fusion.get("weights") or {})
    tasks = get_tasks(config)
    unknown = sorted(set(given) - set(tasks_lib.TASKS))
    if unknown:
        raise ConfigError(f"config.fusion.weights: unknown tasks {unknown}; choose from "
                          f"{list(tasks_lib.TASKS)}")
    return {t: float(given.get(t, 1.0)) for t in tasks}


def weak_file(config: Any, task: str) -> str:
    """The resolved weak-label file of `task` (set by the pipeline, or given)."""
    path = config.fusion.weak[task].get("file", "")
    if not path:
        raise ConfigError(f"config.fusion.weak.{task}.file is empty: train the teacher first "
                          "(python -m affectjax.methods.fusion.teachers --config CONFIG)")
    return path


def build_model(config: Any):
    """`models.create("fusion", ...)` from ``config.model`` with one head per task."""
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name", "fusion")
    if name != "fusion":
        raise ConfigError(f"config.model.name: the fusion method trains the 'fusion' model, "
                          f"got {name!r}")
    if isinstance(kwargs.get("modalities"), str):  # "text+audio+visual" (a sweep value)
        kwargs["modalities"] = tuple(m.strip() for m in
                                     kwargs["modalities"].replace(",", "+").split("+"))
    num_emotions = int(config.fusion.num_emotions)
    kind = sentiment_loss(config)
    kwargs["tasks"] = tuple((t, tasks_lib.num_outputs(t, num_emotions=num_emotions,
                                                      sentiment_loss=kind))
                            for t in get_tasks(config))
    try:
        return models_lib.create("fusion", **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config.model: {exc}") from None


def inputs(batch: Any) -> tuple[Any, ...]:
    """The model inputs: the three modalities (the model reads the ones it uses)."""
    return batch["text"], batch["audio"], batch["visual"]


def param_groups(params: Any) -> Any:
    """``head`` for the task heads, ``shared`` for the backbone f_Wb (GradNorm's)."""
    return {k: jax.tree.map(lambda _, g=("head" if k.startswith("head_") else "shared"): g, v)
            for k, v in params.items()}


# --- data ----------------------------------------------------------------------------------

def _wrap(config: Any, source: Any, split: str, files: dict[str, weak_lib.WeakLabels]):
    if not files:
        return source
    extra = {tasks_lib.weak_key(t): f.split(split, expected_len=len(source))
             for t, f in files.items()}
    return weak_lib.WeakLabelSource(source, extra, where=f"config.data ({split} split)")


def _check_labels(config: Any, source: Any, split: str, tasks: tuple[str, ...],
                  weak: tuple[str, ...]) -> None:
    """Each task has labels (strong or weak) in training; the main task in evaluation."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    for task in tasks:
        if task in weak and split == config.data.train_split:
            continue
        values = np.asarray(pipeline.read_labels(source, tasks_lib.LABEL_KEY[task]))
        if task == "emotion" and values.ndim == 2 and task not in weak and (
                values.shape[1] != int(config.fusion.num_emotions)):
            raise ConfigError(f"config.fusion.num_emotions={config.fusion.num_emotions}: the "
                              f"data set {config.data.name!r} labels {values.shape[1]} emotions")
        if (values >= 0).any():
            continue
        if split == config.data.train_split:
            raise ConfigError(f"config.fusion.tasks: {task!r} has no labels in the {split} "
                              f"split of {config.data.name!r} and no config.fusion.weak."
                              f"{task} teacher")
        if task == main_task(config):
            raise ConfigError(f"config.fusion.main_task: {task!r} has no labels in the {split} "
                              f"split of {config.data.name!r}, so nothing could score a run")


def make_data(config: Any, *, seed: int):
    """The default pipeline of ``config.data``, with the weak labels' rows added."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    tasks, weak = get_tasks(config), weak_tasks(config)
    files = {t: weak_lib.WeakLabels(weak_file(config, t), where=f"config.fusion.weak.{t}.file")
             for t in weak}
    for task, f in files.items():
        if f.task != task:
            raise ConfigError(f"config.fusion.weak.{task}.file: {f.path} holds weak labels of "
                              f"{f.task!r}, not {task!r}")
    batch_size = int(config.batch_size)
    eval_batch_size = int(config.get("eval_batch_size", 0) or batch_size)
    sources = {}
    for split in (config.data.train_split, config.data.eval_split):
        source = pipeline.create_source(config.data, split)
        sources[split] = _wrap(config, source, split, files)
        _check_labels(config, sources[split], split, tasks, weak)
    train_source = sources[config.data.train_split]
    try:
        train = pipeline.Loader(train_source, batch_size=batch_size, shuffle=True, seed=seed,
                                train=True, data_config=config.data)
    except ValueError as exc:
        raise ConfigError(f"config.batch_size: {exc}") from None
    evaluation = pipeline.Loader(sources[config.data.eval_split], batch_size=eval_batch_size,
                                 shuffle=False, seed=seed, train=False, data_config=config.data)
    return train, evaluation, train_source


# --- loss and evaluation -------------------------------------------------------------------

def _pos_weight(train_source: Any) -> np.ndarray:
    """pos_weight = #negatives / #positives per emotion over the training labels used."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    labels = np.asarray(pipeline.read_labels(train_source, "emotion"))
    weak_key = tasks_lib.weak_key("emotion")
    if hasattr(train_source, "extra") and weak_key in train_source.extra:
        weak = np.asarray(train_source.extra[weak_key])
        labels = np.where(labels >= 0, labels, weak)
    return np.asarray(losses.balanced_pos_weight(labels), np.float32)


def make_loss(config: Any, train_source: Any):
    """``loss_fn(outputs, intermediates, batch) -> ({task: lambda_j L_j}, {task: present})``."""
    tasks, kind = get_tasks(config), sentiment_loss(config)
    weights = task_weights(config)
    mode = config.fusion.get("weak_weight", "confidence")
    if mode not in WEAK_WEIGHTS:
        raise ConfigError(f"config.fusion.weak_weight={mode!r}; choose one of "
                          f"{list(WEAK_WEIGHTS)}")
    confidence = {t: (weak_lib.WeakLabels(weak_file(config, t),
                                          where=f"config.fusion.weak.{t}.file").confidence
                      if mode == "confidence" else 1.0) for t in weak_tasks(config)}
    pos_weight = _pos_weight(train_source) if "emotion" in tasks else None

    def loss_fn(outputs, intermediates, batch):
        del intermediates
        values, present = {}, {}
        for task in tasks:
            loss, has = tasks_lib.task_loss(
                task, outputs[task], batch, weak_weight=confidence.get(task, 1.0),
                pos_weight=pos_weight, sentiment_loss=kind)
            values[task], present[task] = weights[task] * loss, has
        return values, present

    return loss_fn


def make_eval(config: Any):
    """``(eval_stats, eval_finalize)`` for `config`'s tasks."""
    tasks, kind, main = get_tasks(config), sentiment_loss(config), main_task(config)
    names = tuple(config.fusion.get("emotion_names", ()) or ())

    def stats(outputs, intermediates, batch):
        del intermediates
        return {t: tasks_lib.eval_stats(t, outputs[t], batch, sentiment_loss=kind)
                for t in tasks}

    def finalize(stats_tree):
        scalars = {}
        for task in tasks:
            values = tasks_lib.eval_finalize(task, stats_tree[task], emotion_names=names)
            if values[f"{task}/count"] or task == main:
                scalars.update(values)
        scalars["score"] = tasks_lib.task_score(main, scalars)
        arrays = {} if main == "emotion" else {
            "confusion_matrix": np.asarray(stats_tree[main]["cm"])}
        return scalars, arrays

    return stats, finalize


def _unspecialized(*_: Any, **__: Any):
    raise RuntimeError("the fusion method is specialised to a config first (Method.specialize)")


def specialize(config: Any, *, pipeline: Any = None) -> Method:
    """The method for `config`'s tasks (they are the balancer's terms)."""
    stats, finalize = make_eval(config)
    needs_pipeline = pipeline is not None and bool(weak_tasks(config))
    main = main_task(config)
    return dataclasses.replace(
        FUSION_STAGE, task_names=get_tasks(config), eval_stats=stats, eval_finalize=finalize,
        make_loss=make_loss, pipeline=pipeline if needs_pipeline else None, specialize=None,
        class_names=(None if main == "emotion" else
                     lambda cfg: tasks_lib.CLASS_NAMES[main_task(cfg)]))


FUSION_STAGE = Method(
    name="fusion", task_names=tasks_lib.TASKS, groups=("shared", "head"),
    build_model=build_model, param_groups=param_groups, make_loss=_unspecialized,
    eval_stats=_unspecialized, eval_merge=tasks_lib.eval_merge, eval_finalize=_unspecialized,
    collect=lambda outputs, batch: {}, best_metric="score", inputs_fn=inputs,
    batch_keys=BATCH_KEYS, make_data=make_data, shared_group="shared",
    specialize=specialize)
"""One training run of a fusion model (a teacher or a student)."""
