"""Teachers for weak labels, and the student run that uses them (paper 3, Sec. 5).

For every task T2 in ``config.fusion.weak`` the student's config names either a finished
labels file (``file``) or a teacher: the data set D2 it trains on (``data``: overrides of
the student's data section; ``builder_kwargs`` is replaced whole) and what differs from
the student (``model``: default EF-LF-LSTM, the paper's teacher; ``seed``, ``epochs``,
``learning_rate``, ``batch_size``, ``num_emotions``). The teacher is an ordinary
``fusion`` run on D2 for T2 alone; its best checkpoint then predicts T2 on every split of
the student's data set D1 (`affectjax.methods.fusion.weak_labels`).

Teachers and labels live next to D1's prepared data (``config.fusion.weak_dir``, default
``<data_dir>/<data set>/<config>/weak_labels``), named by a hash of the teacher's config
(and of D1's), so every student of a sweep shares one teacher, trained once; parallel
runs take turns through a lock file. Two commands do the same as one student run:

    python -m affectjax.methods.fusion.teachers --config configs/fusion_synthaffect.py:quick
    python train.py --config configs/fusion_synthaffect.py:quick
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import sys
from typing import Any

import jax
import ml_collections
import numpy as np

from affectjax.methods.fusion import method as method_lib
from affectjax.methods.fusion import tasks as tasks_lib
from affectjax.methods.fusion import weak_labels as weak_lib
from affectjax.train.errors import ConfigError

TEACHER_MODEL = {"fusion": "eflf", "encoder": "lstm"}
_TEACHER_KEYS = ("file", "data", "model", "seed", "epochs", "learning_rate", "batch_size",
                 "num_emotions")


def _copy(config: Any) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(config.to_dict() if hasattr(config, "to_dict")
                                     else dict(config))


def _as_dict(value: Any) -> dict:
    return value.to_dict() if hasattr(value, "to_dict") else dict(value or {})


# Keys that change how a run is shown or saved, not what it learns: left out of the
# teacher's name, so a student run with another progress display reuses the teacher.
_NOT_LEARNED = ("progress_bar", "log_every_steps", "checkpoint_every_steps",
                "checkpoint_every_epochs", "keep_checkpoints", "max_plot_points")


def _learned(config: Any) -> dict:
    d = _as_dict(config)
    return {k: v for k, v in d.items() if k not in _NOT_LEARNED}


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def teacher_config(config: Any, task: str) -> ml_collections.ConfigDict:
    """The config of `task`'s teacher (module docstring)."""
    entry = _as_dict(config.fusion.weak[task])
    unknown = sorted(set(entry) - set(_TEACHER_KEYS))
    if unknown:
        raise ConfigError(f"config.fusion.weak.{task}: unknown keys {unknown}; choose from "
                          f"{list(_TEACHER_KEYS)}")
    c = _copy(config)
    data = _as_dict(entry.get("data"))
    if "builder_kwargs" in data:
        c.data.builder_kwargs = ml_collections.ConfigDict(data.pop("builder_kwargs"))
    try:
        c.data.update(data)
    except (KeyError, AttributeError, TypeError) as exc:
        raise ConfigError(f"config.fusion.weak.{task}.data: {exc}") from None
    c.model.update({**TEACHER_MODEL, **_as_dict(entry.get("model"))})
    c.fusion.tasks, c.fusion.main_task = task, task
    c.fusion.weak, c.fusion.weights = ml_collections.ConfigDict(), {task: 1.0}
    c.fusion.num_emotions = int(entry.get("num_emotions", config.fusion.num_emotions))
    c.fusion.emotion_names = tuple(entry.get("emotion_names", ()) or
                                   config.fusion.get("emotion_names", ()) or ())
    c.balancer = ml_collections.ConfigDict({"name": "ew"})
    c.seed = int(entry.get("seed", 0))
    full = c.phases[c.phase_order[0]]
    if "epochs" in entry:
        full.epochs = int(entry["epochs"])
    if "learning_rate" in entry:
        full.learning_rate = float(entry["learning_rate"])
    if "batch_size" in entry:
        c.batch_size = int(entry["batch_size"])
    return c


def weak_dir(config: Any) -> str:
    """``config.fusion.weak_dir``, else ``weak_labels/`` next to D1's prepared data."""
    given = config.fusion.get("weak_dir", "")
    if given:
        return os.path.expanduser(given)
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    builder = pipeline.prepare(config.data)
    return os.path.join(os.path.dirname(os.path.normpath(builder.data_dir)), "weak_labels")


@contextlib.contextmanager
def _locked(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as lock:  # "a": an existing lock file is left as it is
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _predict(cfg: Any, variables: Any, source: Any, task: str, *, score: bool = False):
    """(hard predictions of the valid rows, merged eval stats when `score`) of `task`."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    model = method_lib.build_model(cfg)
    kind = method_lib.sentiment_loss(cfg)
    forward = jax.jit(lambda v, t, a, x: model.apply(v, t, a, x, train=False)[0][task])
    loader = pipeline.Loader(source, batch_size=256, shuffle=False, train=False,
                             data_config=cfg.data)
    predictions, stats = [], None
    for batch in loader.eval_batches():
        logits = forward(variables, *method_lib.inputs(batch))
        valid = np.asarray(batch["valid"], bool)
        predictions.append(np.asarray(tasks_lib.predict(task, logits, sentiment_loss=kind))[valid])
        if score:
            s = tasks_lib.eval_stats(task, logits, batch, sentiment_loss=kind)
            stats = s if stats is None else tasks_lib.eval_merge(stats, s)
    return np.concatenate(predictions), stats


def _confidence(task: str, stats: Any) -> float:
    """The teacher's accuracy on D2's validation split (emotions: the mean WAcc)."""
    scalars = tasks_lib.eval_finalize(task, stats)
    return scalars["emotion/avg_wacc"] if task == "emotion" else scalars[f"{task}/acc"]


def check_widths(config: Any, task: str) -> None:
    """The teacher's data set D2 has the feature widths of the student's D1."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    tcfg = teacher_config(config, task)
    first = [pipeline.read_examples(pipeline.create_source(c.data, c.data.train_split), [0])[0]
             for c in (config, tcfg)]
    for name in method_lib.MODALITIES:
        student, teacher = (np.shape(example[name])[-1] for example in first)
        if student != teacher:
            raise ConfigError(
                f"config.fusion.weak.{task}: the teacher's data set {tcfg.data.name!r} has "
                f"{teacher}-d {name} features and the student's {config.data.name!r} "
                f"{student}-d; a teacher predicts only on features like its own")


def write_weak_labels(config: Any, task: str, teacher_dir: str, path: str) -> str:
    """Predicts `task` on every split of D1 with the teacher in `teacher_dir`."""
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    from affectjax.train import checkpoint  # pylint: disable=import-outside-toplevel
    tcfg = teacher_config(config, task)
    variables, origin = checkpoint.restore_run_variables(teacher_dir)
    _, stats = _predict(tcfg, variables, pipeline.create_source(tcfg.data, tcfg.data.eval_split),
                        task, score=True)
    builder = pipeline.prepare(config.data)
    predictions = {split: _predict(tcfg, variables, pipeline.create_source(config.data, split),
                                   task)[0] for split in sorted(builder.info.splits)}
    meta = {"teacher": os.path.abspath(teacher_dir), "checkpoint": origin,
            "teacher_data": {"name": tcfg.data.name, **_as_dict(tcfg.data.builder_kwargs)},
            "data": {"name": config.data.name, **_as_dict(config.data.builder_kwargs)},
            "sizes": {k: len(v) for k, v in predictions.items()}}
    return weak_lib.write(path, task, predictions, _confidence(task, stats), meta)


def ensure_weak_labels(config: Any) -> ml_collections.ConfigDict:
    """`config` with every ``fusion.weak.<task>.file`` resolved, teachers trained first."""
    from affectjax.train import loop  # pylint: disable=import-outside-toplevel
    out = _copy(config)
    for task in method_lib.weak_tasks(config):
        entry = _as_dict(config.fusion.weak[task])
        if entry.get("file"):
            out.fusion.weak[task].file = os.path.expanduser(entry["file"])
            continue
        tcfg = teacher_config(config, task)
        root = weak_dir(config)
        name = f"{task}-{_digest(_learned(tcfg))}"
        teacher_dir = os.path.join(root, f"teacher_{name}")
        path = os.path.join(root, f"weak_{name}-{_digest(_as_dict(config.data))}.npz")
        with _locked(os.path.join(root, f".{name}.lock")):
            if not os.path.isfile(path):
                check_widths(config, task)
                print(f"weak {task} labels: training the teacher in {teacher_dir}",
                      file=sys.stderr, flush=True)
                loop.fit(tcfg, teacher_dir, method_lib.FUSION_STAGE)
                write_weak_labels(config, task, teacher_dir, path)
        out.fusion.weak[task].file = path
    return out


def run_student(config: Any, workdir: str) -> dict[str, Any]:
    """The pipeline of a run with weak tasks: teachers and labels, then the student."""
    from affectjax.train import loop  # pylint: disable=import-outside-toplevel
    resolved = ensure_weak_labels(config)
    loop.make_workdir(workdir)
    summary = {}
    for task in method_lib.weak_tasks(resolved):
        labels = weak_lib.WeakLabels(resolved.fusion.weak[task].file,
                                     where=f"config.fusion.weak.{task}.file")
        summary[task] = {"file": labels.path, "confidence": labels.confidence,
                         "teacher": labels.meta.get("teacher", "")}
    with open(os.path.join(workdir, "weak_labels.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    _, final = loop.fit(resolved, workdir, method_lib.FUSION_STAGE)
    return dict(final, weak=summary)


FUSION = dataclasses.replace(
    method_lib.FUSION_STAGE,
    specialize=functools.partial(method_lib.specialize, pipeline=run_student))
"""The registered ``fusion`` method: teachers first when the config has weak tasks."""


def main(argv: list[str]) -> None:
    """``python -m affectjax.methods.fusion.teachers --config CONFIG``: the labels only."""
    from absl import flags  # pylint: disable=import-outside-toplevel
    from absl import logging  # pylint: disable=import-outside-toplevel
    from affectjax.train import loop  # pylint: disable=import-outside-toplevel
    if len(argv) > 1:
        raise SystemExit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.ERROR)  # as train.py: library logs off the console
    config = flags.FLAGS.config
    with loop.cli_errors():
        resolved = ensure_weak_labels(config)
        for task in method_lib.weak_tasks(resolved):
            labels = weak_lib.WeakLabels(resolved.fusion.weak[task].file,
                                         where=f"config.fusion.weak.{task}.file")
            print(f"weak_{task}: {labels.path} (confidence {labels.confidence:.3f})")


if __name__ == "__main__":
    from absl import app  # pylint: disable=ungrouped-imports
    from ml_collections import config_flags
    config_flags.DEFINE_config_file("config", None, "A fusion config with weak tasks.",
                                    lock_config=True)
    app.run(main)
