"""iFAN's pictures: metrics against the iteration, and every iteration's predictions.

* ``iterations.png``: for each task, its metrics at iterations 0..ITER (landmarks: mean
  and per-landmark NME; parsing: the overall F-score and each group's; emotion accuracy),
  the paper's Tables 1, 2, 4 and Fig. 5 as one run sees them;
* ``predictions.png``: validation faces of every data set (rows), at each iteration
  (columns): predicted landmarks (white; targets red where labelled) over the face and
  the predicted parsing mask beside it;
* ``curves.png``: stage 2's training losses and headline validation metrics.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from affectjax.methods.ifan import data as data_lib  # pylint: disable=wrong-import-position
from affectjax.methods.ifan import objectives  # pylint: disable=wrong-import-position
from affectjax.metrics import parsing as parsing_lib  # pylint: disable=wrong-import-position
from affectjax.train import plots as train_plots  # pylint: disable=wrong-import-position

HEADLINE = ("landmarks/nme", "parsing/overall", "emotion/accuracy", "score")
# Helen classes: background, skin, brows, eyes, nose, lips, inner mouth, hair.
PARSING_COLOURS = np.array([
    [0, 0, 0], [230, 190, 160], [120, 60, 20], [120, 60, 20], [40, 120, 255],
    [40, 120, 255], [250, 220, 40], [230, 40, 60], [120, 0, 60], [230, 40, 60],
    [90, 200, 90]], np.uint8)


def _iterations(scalars: Mapping[str, float]) -> int:
    found = [int(k.rsplit("/", 1)[1]) for k in scalars
             if k.rsplit("/", 1)[-1].isdigit()]
    return max(found) if found else 0


def plot_iterations(scalars: Mapping[str, float], path: str) -> str:
    """Each task's metrics at iterations 0..ITER (``<task>/<metric>/<I>`` scalars)."""
    top = _iterations(scalars)
    its = np.arange(top + 1)
    panels = []
    if "landmarks/nme/0" in scalars:
        keys = ["landmarks/nme"] + [f"landmarks/nme_{n}" for n in objectives.LANDMARK_NAMES]
        panels.append(("landmarks: NME (lower is better)", keys))
    if "parsing/overall/0" in scalars:
        keys = ["parsing/overall"] + [f"parsing/{g}" for g in parsing_lib.HELEN_GROUPS]
        panels.append(("parsing: F-score", keys))
    if "emotion/accuracy/0" in scalars:
        panels.append(("emotion: accuracy", ["emotion/accuracy"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels):
        for j, key in enumerate(keys):
            values = [scalars.get(f"{key}/{i}", np.nan) for i in its]
            ax.plot(its, values, marker="o", lw=2.5 if j == 0 else 1,
                    label=key.split("/", 1)[1])
        ax.set(xlabel="iteration (ITER)", title=title, xticks=its)
        ax.legend(fontsize=6, ncol=2)
    return train_plots.save_figure(fig, path, axes=axes[0])


def _denormalise(image: np.ndarray, mean: Any, std: Any) -> np.ndarray:
    return np.clip(image * np.asarray(std) + np.asarray(mean), 0, 1)


def _faces(config: Any, tasks: tuple[str, ...], per_set: int) -> list[dict[str, np.ndarray]]:
    """`per_set` validation faces of every task's data set: one batch per data set."""
    _, evaluation, _ = data_lib.make_loaders(config, tasks, seed=int(config.seed),
                                             order="alternate")
    rows = []
    for index, task in enumerate(tasks):
        batch = next(iter(evaluation.loaders[task].eval_batches()))
        batch = {k: np.asarray(v)[:per_set] for k, v in
                 data_lib.mask_other_tasks(batch, task).items() if k in data_lib.BATCH_KEYS}
        batch["source"] = np.full((len(batch["image"]),), index, np.int32)
        rows.append(batch)
    return rows


def plot_predictions(config: Any, method: Any, state: Any, path: str, *,
                     per_set: int = 3) -> str:
    """Predicted landmarks and parsing masks at every iteration over validation faces."""
    tasks = tuple(method.task_names)
    model = method.build_model(config)
    apply = jax.jit(method.apply_fn(model), static_argnames="train")
    variables = {"params": state.params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    top = int(config.ifan.num_iterations)
    rows = _faces(config, tasks, per_set)
    n_rows = sum(len(b["image"]) for b in rows)
    per_iter = 2 if "parsing" in tasks else 1
    fig, axes = plt.subplots(n_rows, (top + 1) * per_iter, squeeze=False,
                             figsize=(1.6 * (top + 1) * per_iter, 1.6 * n_rows))
    r = 0
    for batch in rows:
        (outputs, _), _ = apply(variables, *method.inputs_fn(batch), train=False)
        outputs = jax.device_get(outputs)
        task = tasks[int(batch["source"][0])]
        data = data_lib.source_config(config, task)
        for k in range(len(batch["image"])):
            face = _denormalise(batch["image"][k], data.mean, data.std)
            for i in range(top + 1):
                ax = axes[r, i * per_iter]
                ax.imshow(face)
                if "landmarks" in tasks:
                    pts = np.asarray(outputs[f"landmarks/{i}"][k])
                    ax.scatter(pts[:, 0] - 0.5, pts[:, 1] - 0.5, s=6, c="white",
                               edgecolors="black", linewidths=0.3)
                    if batch["landmarks_mask"][k]:
                        t = batch["landmarks"][k]
                        ax.scatter(t[:, 0] - 0.5, t[:, 1] - 0.5, s=5, c="red")
                if r == 0:
                    ax.set_title(f"iter {i}", fontsize=7)
                if per_iter == 2:
                    mask = np.argmax(np.asarray(outputs[f"parsing/{i}"][k]), -1)
                    axes[r, i * per_iter + 1].imshow(PARSING_COLOURS[mask])
                    if r == 0:
                        axes[r, i * per_iter + 1].set_title(f"parsing {i}", fontsize=7)
            axes[r, 0].set_ylabel(f"{task} set", fontsize=7)
            r += 1
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return train_plots.save_figure(fig, path)


def write_plots(workdir: str, config: Any, method: Any, state: Any,
                scalars: Mapping[str, float], *, logs_path: str) -> list[str]:
    """Writes the three pictures into ``workdir/plots``; returns their paths."""
    out = os.path.join(workdir, "plots")
    os.makedirs(out, exist_ok=True)
    paths = [plot_iterations(scalars, os.path.join(out, "iterations.png")),
             plot_predictions(config, method, state, os.path.join(out, "predictions.png"))]
    records = []
    if os.path.exists(logs_path):
        with open(logs_path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    if records:
        keys = [k for k in HEADLINE if any(k in r for r in records if r.get("split") == "eval")]
        paths.append(train_plots.plot_curves(records, os.path.join(out, "curves.png"),
                                             eval_keys=keys))
    return paths
