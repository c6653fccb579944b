"""iFAN's losses (eq. 5) and evaluation per task and per iteration (Sec. 4.1.3).

Loss: for every task t of the model, the task loss summed over the iterations
I = 0..ITER (eq. 5), each masked to the batch's labelled images:

* ``landmarks``: Euclidean distance in normalised coordinates (pixels / input size),
  `affectjax.losses.landmark_distance`;
* ``parsing``: per-pixel softmax cross-entropy over the labelled pixels (255 = none);
* ``emotion``: softmax cross-entropy over the labelled faces.

The loss function returns ``({task: loss}, {task: present})``: a task without a label in
the batch (cross-data-set training: every batch comes from one task's data set) adds
nothing and tells the balancer so, so any `affectjax.balancing` balancer can replace the
paper's plain sum (``balancer.name = "ew"``).

Evaluation, for each iteration I (keys ``<task>/<metric>/<I>``) and, without the
iteration, for the last one: landmarks NME (inter-ocular) per landmark and mean, and the
failure rate (> 10 %) per landmark and per image (Table 1, Fig. 5); parsing F-score of
each Helen group and the overall score (Table 2, `affectjax.metrics.parsing`), computed at
the model's input size (the paper resizes predictions to the original image first);
emotion accuracy (Table 3). ``score`` = the mean over the model's tasks of parsing's
overall F-score, emotion accuracy and 1 - NME / 0.1 (1 at zero error, 0 at the failure
threshold), at the last iteration: the metric that picks the best checkpoint.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import losses
from affectjax import metrics
from affectjax.metrics import parsing as parsing_lib

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")
FAILURE_THRESHOLD = 0.1
IGNORE_PIXEL = 255


def labelled(task: str, batch: Any) -> jax.Array:
    """(B,) or (B, H, W) bool: where `batch` has a label of `task` (padding excluded)."""
    valid = batch["valid"].astype(bool) if "valid" in batch else None
    if task == "landmarks":
        mask = batch["landmarks_mask"].astype(bool)
    elif task == "parsing":
        mask = (batch["parsing"] >= 0) & (batch["parsing"] != IGNORE_PIXEL)
    elif task == "emotion":
        mask = batch["expr"] >= 0
    else:
        raise ValueError(f"unknown iFAN task {task!r}")
    if valid is not None:
        mask &= valid.reshape(valid.shape + (1,) * (mask.ndim - 1))
    return mask


def task_loss(task: str, output: jax.Array, batch: Any, *, image_size: int) -> jax.Array:
    """The loss of one task at one iteration (module docstring)."""
    mask = labelled(task, batch)
    if task == "landmarks":
        return losses.landmark_distance(output, batch["landmarks"], scale=image_size,
                                        where=mask)
    label = batch["parsing"] if task == "parsing" else batch["expr"]
    label = jnp.where(mask, label, -1).astype(jnp.int32)
    return losses.weighted_cross_entropy(output, label)


def make_loss_fn(tasks: Sequence[str], num_iterations: int, image_size: int):
    """``loss_fn(outputs, intermediates, batch) -> ({task: loss}, {task: present})``."""
    tasks = tuple(tasks)

    def loss_fn(outputs, intermediates, batch):
        del intermediates
        values, present = {}, {}
        for task in tasks:
            values[task] = sum(task_loss(task, outputs[f"{task}/{i}"], batch,
                                         image_size=image_size)
                               for i in range(num_iterations + 1))
            present[task] = jnp.any(labelled(task, batch))
        return values, present

    return loss_fn


def make_eval_stats(tasks: Sequence[str], num_iterations: int, *, num_parsing_classes: int,
                    num_emotions: int):
    """``(outputs, intermediates, batch) -> {"<task>/<I>": statistics}`` (jnp, jitted)."""
    tasks = tuple(tasks)

    def eval_stats(outputs, intermediates, batch):
        del intermediates
        stats = {}
        for i in range(num_iterations + 1):
            for task in tasks:
                out, mask = outputs[f"{task}/{i}"], labelled(task, batch)
                if task == "landmarks":
                    target = batch["landmarks"]
                    # Unlabelled rows get a dummy target with distinct eyes (masked anyway).
                    target = jnp.where(mask[:, None, None], target,
                                       jnp.arange(target.shape[1] * 2, dtype=target.dtype
                                                  ).reshape(target.shape[1:]))
                    stats[f"{task}/{i}"] = (
                        metrics.landmark_point_update(
                            metrics.landmark_point_init(target.shape[1]), target, out,
                            threshold=FAILURE_THRESHOLD, where=mask),
                        metrics.landmark_update(metrics.landmark_init(), target, out,
                                                threshold=FAILURE_THRESHOLD, where=mask))
                elif task == "parsing":
                    pred = jnp.argmax(out, axis=-1)
                    stats[f"{task}/{i}"] = metrics.confusion_update(
                        metrics.confusion_init(num_parsing_classes),
                        jnp.where(mask, batch["parsing"], 0), pred, where=mask)
                else:
                    stats[f"{task}/{i}"] = metrics.confusion_update(
                        metrics.confusion_init(num_emotions),
                        jnp.where(mask, batch["expr"], 0), jnp.argmax(out, -1), where=mask)
        return stats

    return eval_stats


def eval_merge(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: x + y, a, b)


def _task_scalars(task: str, stats: Any, suffix: str) -> tuple[dict[str, float], Any]:
    out = {}
    if task == "landmarks":
        point = metrics.landmark_point_finalize(stats[0])
        image = metrics.landmark_finalize(stats[1])
        out[f"landmarks/nme{suffix}"] = float(image["nme"])
        out[f"landmarks/failure_rate{suffix}"] = float(image["failure_rate"])
        for name, nme, fail in zip(LANDMARK_NAMES, np.asarray(point["nme"]),
                                   np.asarray(point["failure_rate"])):
            out[f"landmarks/nme_{name}{suffix}"] = float(nme)
            out[f"landmarks/failure_{name}{suffix}"] = float(fail)
        quality = 1.0 - float(image["nme"]) / FAILURE_THRESHOLD
        return out, (quality if int(stats[1].n) else None)
    cm = np.asarray(stats)
    if task == "parsing":
        scores = parsing_lib.parsing_finalize(jnp.asarray(cm))
        for name, value in scores["groups"].items():
            out[f"parsing/{name}{suffix}"] = float(value)
        out[f"parsing/overall{suffix}"] = float(scores["overall"])
        return out, (out[f"parsing/overall{suffix}"] if cm.sum() else None)
    out[f"emotion/accuracy{suffix}"] = float(metrics.accuracy_from_cm(jnp.asarray(cm)))
    return out, (out[f"emotion/accuracy{suffix}"] if cm.sum() else None)


def make_eval_finalize(tasks: Sequence[str], num_iterations: int):
    """``stats -> (scalars, arrays)``: every metric per iteration, the last one bare."""
    tasks = tuple(tasks)

    def finalize(stats):
        scalars, qualities = {}, []
        for i in range(num_iterations + 1):
            for task in tasks:
                values, _ = _task_scalars(task, stats[f"{task}/{i}"], f"/{i}")
                scalars.update(values)
        for task in tasks:
            values, quality = _task_scalars(task, stats[f"{task}/{num_iterations}"], "")
            scalars.update(values)
            if quality is not None:
                qualities.append(quality)
        scalars["score"] = float(np.mean(qualities)) if qualities else 0.0
        arrays = {}
        if "emotion" in tasks:
            arrays["confusion_matrix"] = np.asarray(stats[f"emotion/{num_iterations}"])
        return scalars, arrays

    return finalize
