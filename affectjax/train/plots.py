"""PNG plots of a run: learning curves, confusion matrix, valence/arousal scatter.

Matplotlib with the non-interactive Agg backend, so plots work on headless machines.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position


def _series(records: Sequence[Mapping[str, Any]], split: str, key: str):
    points = [(r["step"], r[key]) for r in records
              if r.get("split") == split and isinstance(r.get(key), (int, float))]
    return ([p[0] for p in points], [p[1] for p in points]) if points else None


def save_figure(fig: Any, path: str, *, axes: Sequence[Any] = ()) -> str:
    """Grids and legends (where labelled) on `axes`, tight layout, PNG at 100 dpi, closed.

    The one way every plot of affectjax is finished and written; returns `path`.
    """
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_RECORD_KEYS = ("step", "split", "time")  # what `affectjax.train.logs.RunLog` adds


def eval_metric_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The float metrics of the ``eval`` records drawn by default.

    Not counts (``num_*``), step or time, nor an ensemble's single members
    (``member<i>/...``: their mean, ``members_mean/...``, stands for them).
    """
    return sorted({k for r in records if r.get("split") == "eval" for k, v in r.items()
                   if isinstance(v, float) and k not in _RECORD_KEYS
                   and not k.startswith("num_") and not re.match(r"member\d+/", k)})


def _varying_weight_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The ``weight/<task>`` keys of the train records whose value changes over training."""
    keys = sorted({k for r in records if r.get("split") == "train" for k in r
                   if k.startswith("weight/")})
    return [k for k in keys
            if len({round(float(r[k]), 6) for r in records
                    if r.get("split") == "train" and k in r}) > 1]


def plot_curves(records: Sequence[Mapping[str, Any]], path: str, *,
                eval_keys: Sequence[str] | None = None) -> str:
    """Training losses (left) and evaluation metrics (right) against the step.

    When a task weight changes during training (a dynamic balancer, CCT's consensus
    ramp), a middle panel draws the logged ``weight/<task>`` curves.

    Args:
      records: ``metrics.jsonl`` records.
      path: output PNG.
      eval_keys: evaluation metrics to draw (those present); None = every float metric
        of the evaluations except counts (``num_*``) and the records' own ``step`` and
        ``time``.

    Returns:
      `path`.
    """
    weight_keys = _varying_weight_keys(records)
    if weight_keys:
        fig, (ax_loss, ax_weight, ax_eval) = plt.subplots(1, 3, figsize=(15, 3.8))
        for key in weight_keys:
            ax_weight.plot(*_series(records, "train", key), label=key)
        ax_weight.set(xlabel="step", title="task weights")
    else:
        fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(10, 3.8))
    loss_keys = sorted({k for r in records if r.get("split") == "train" for k in r
                        if k == "loss" or k.startswith("loss/")})
    for key in loss_keys:
        series = _series(records, "train", key)
        if series:
            ax_loss.plot(*series, label=key, lw=2 if key == "loss" else 1)
    ax_loss.set(xlabel="step", ylabel="training loss", title="training loss")
    if eval_keys is None:
        eval_keys = eval_metric_keys(records)
    for key in eval_keys:
        series = _series(records, "eval", key)
        if series:
            ax_eval.plot(*series, marker="o", ms=3, label=key)
    ax_eval.set(xlabel="step", title="validation")
    axes = (ax_loss, ax_weight, ax_eval) if weight_keys else (ax_loss, ax_eval)
    return save_figure(fig, path, axes=axes)


def plot_confusion(cm: np.ndarray, class_names: Sequence[str] | None, path: str) -> str:
    """Row-normalised confusion matrix (rows true, columns predicted) with counts.

    `class_names` must name every row (the method's ``class_names``); None labels the
    rows by class index.
    """
    cm = np.asarray(cm)
    names = [str(k) for k in range(cm.shape[0])] if class_names is None else list(class_names)
    if len(names) != cm.shape[0]:
        raise ValueError(f"{len(names)} class names {names} for a {cm.shape[0]}-class "
                         "confusion matrix")
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(6, 5.2))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return save_figure(fig, path)


def plot_va_scatter(pred: np.ndarray, true: np.ndarray, path: str, *,
                    ccc: Sequence[float] | None = None) -> str:
    """Predicted against true valence and arousal, with the identity line."""
    pred, true = np.asarray(pred), np.asarray(true)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    for k, (ax, name) in enumerate(zip(axes, ("valence", "arousal"))):
        ax.scatter(true[:, k], pred[:, k], s=4, alpha=0.4)
        ax.plot([-1, 1], [-1, 1], "k--", lw=1)
        title = name if ccc is None else f"{name} (CCC {ccc[k]:.3f})"
        ax.set(xlabel=f"true {name}", ylabel=f"predicted {name}", title=title,
               xlim=(-1.1, 1.1), ylim=(-1.1, 1.1), aspect="equal")
    return save_figure(fig, path, axes=axes)


def write_plots(workdir: str, records: Sequence[Mapping[str, Any]],
                scalars: Mapping[str, float], arrays: Mapping[str, np.ndarray],
                class_names: Sequence[str] | None) -> list[str]:
    """Writes every plot the run has data for into ``workdir/plots``; returns the paths."""
    out = os.path.join(workdir, "plots")
    os.makedirs(out, exist_ok=True)
    paths = [plot_curves(records, os.path.join(out, "curves.png"))]
    if "confusion_matrix" in arrays:
        paths.append(plot_confusion(arrays["confusion_matrix"], class_names,
                                    os.path.join(out, "confusion_matrix.png")))
    if "va_pred" in arrays and len(arrays["va_pred"]):
        ccc = (scalars["ccc_valence"], scalars["ccc_arousal"]) if "ccc_valence" in scalars else None
        paths.append(plot_va_scatter(arrays["va_pred"], arrays["va_true"],
                                     os.path.join(out, "va_scatter.png"), ccc=ccc))
    return paths
