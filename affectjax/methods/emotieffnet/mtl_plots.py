"""PNG plots of the MT-EmotiEffNet MTL heads pipeline (`affectjax.methods.emotieffnet.mtl_report`).

``curves.png``: each head's task loss per step, with the phases marked (separate training
shows the heads being trained one after the other), and the balancer's task weights (or
the learning rate when the weights are constant); ``f1.png``: per-AU F1 at threshold 0.5
and at the tuned thresholds (paper 1, Table 3) and per-class expression F1 of the heads
and of the blend (Table 4), against the chance level; ``confusion_matrix.png`` and
``va_scatter.png`` as the trainer draws them (`affectjax.train.plots`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from affectjax.train import plots as train_plots

plt = train_plots.plt  # matplotlib.pyplot on the Agg backend

TASK_COLORS = {"va": "tab:red", "expr": "tab:green", "au": "tab:orange"}


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(values) < width:
        return values
    kernel = np.ones(width) / width
    padded = np.concatenate([np.full(width - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def plot_head_curves(history: Sequence[Mapping[str, Any]], path: str) -> str:
    """Per-task training losses with phase boundaries (left), task weights or lr (right).

    Args:
      history: `affectjax.methods.emotieffnet.mtl_heads.train_heads` history (one dict per step).
      path: output PNG.

    Returns:
      `path`.
    """
    steps = np.asarray([h["step"] for h in history])
    phases = [h["phase"] for h in history]
    tasks = [k[len("loss/"):] for k in history[0] if k.startswith("loss/")]
    width = max(len(history) // 100, 1)
    fig, (ax_loss, ax_right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for task in tasks:
        values = np.asarray([h[f"loss/{task}"] for h in history])
        color = TASK_COLORS.get(task)
        ax_loss.plot(steps, values, color=color, alpha=0.25, lw=0.6)
        ax_loss.plot(steps, _smooth(values, width), color=color, lw=1.6, label=task)
    starts = [i for i in range(len(phases)) if i == 0 or phases[i] != phases[i - 1]]
    for n, i in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(phases)
        if n:
            ax_loss.axvline(steps[i] - 0.5, color="0.4", ls="--", lw=0.8)
        ax_loss.text((steps[i] + steps[end - 1]) / 2, 1.01, f"phase {phases[i]}",
                     transform=ax_loss.get_xaxis_transform(), ha="center", va="bottom",
                     fontsize=8)
    ax_loss.set(xlabel="step", ylabel="task loss (moving average)")
    ax_loss.set_title("training loss per head", pad=16)
    weights = {t: np.asarray([h.get(f"weight/{t}", 1.0) for h in history]) for t in tasks}
    if any(np.ptp(w) > 1e-6 for w in weights.values()):
        for task, w in weights.items():
            ax_right.plot(steps, w, color=TASK_COLORS.get(task), lw=1.2, label=task)
        ax_right.set(xlabel="step", ylabel="task weight", title="balancer task weights")
    else:
        ax_right.plot(steps, [h.get("lr", np.nan) for h in history], color="tab:blue", lw=1.2)
        ax_right.set(xlabel="step", ylabel="learning rate",
                     title="learning rate (task weights constant)")
    return train_plots.save_figure(fig, path, axes=(ax_loss, ax_right))


def plot_f1(results: Mapping[str, Any], chance: Mapping[str, float], path: str, *,
            aus: Sequence[str], expressions: Sequence[str]) -> str:
    """Per-AU F1 before/after threshold tuning and per-class expression F1 (Tables 3-4).

    Args:
      results: `affectjax.methods.emotieffnet.mtl_report.tune_and_score` output.
      chance: `affectjax.methods.emotieffnet.mtl_report.chance_level` output (dashed lines).
      path: output PNG.
      aus, expressions: tick labels.

    Returns:
      `path`.
    """
    base, tuned = results["threshold_0.5"], results["tuned"]
    fig, (ax_au, ax_expr) = plt.subplots(1, 2, figsize=(12, 3.9))
    x = np.arange(len(aus))
    ax_au.bar(x - 0.2, results["au_f1_before"], 0.4,
              label=f"threshold 0.5 (P_AU {base['P_AU']:.3f})")
    ax_au.bar(x + 0.2, results["au_f1_after"], 0.4,
              label=f"tuned thresholds (P_AU {tuned['P_AU']:.3f})")
    ax_au.axhline(chance["P_AU"], color="k", ls="--", lw=1,
                  label=f"chance (P_AU {chance['P_AU']:.3f})")
    ax_au.set_xticks(x, aus, rotation=45, fontsize=8)
    ax_au.set_yticks(np.linspace(0, 1, 6))
    ax_au.set(ylim=(0, 1.2), ylabel="F1", title="action units (validation)")
    ax_au.legend(fontsize=7, ncol=3, loc="upper center")
    x = np.arange(len(expressions))
    blended = results.get("expert", "none") != "none"
    shift = 0.2 if blended else 0.0
    ax_expr.bar(x - shift, base["expr_f1"], 0.4 if blended else 0.6,
                label=f"heads (P_EXPR {base['P_EXPR']:.3f})")
    if blended:
        ax_expr.bar(x + shift, tuned["expr_f1"], 0.4,
                    label=f"+ {results['expert']} blend, w = {results['blend_weight']:.1f} "
                          f"(P_EXPR {tuned['P_EXPR']:.3f})")
    ax_expr.axhline(chance["P_EXPR"], color="k", ls="--", lw=1,
                    label=f"chance (P_EXPR {chance['P_EXPR']:.3f})")
    ax_expr.set_xticks(x, expressions, rotation=45, fontsize=8)
    ax_expr.set_yticks(np.linspace(0, 1, 6))
    ax_expr.set(ylim=(0, 1.2), ylabel="F1", title="expressions (validation)")
    ax_expr.legend(fontsize=7, ncol=3, loc="upper center")
    return train_plots.save_figure(fig, path)


def write_plots(out: str, history: Sequence[Mapping[str, Any]], results: Mapping[str, Any],
                chance: Mapping[str, float], pred: Mapping[str, np.ndarray],
                arrays: Mapping[str, np.ndarray], *, aus: Sequence[str],
                expressions: Sequence[str]) -> list[str]:
    """All the pipeline's plots into `out` (module docstring); returns their paths."""
    os.makedirs(out, exist_ok=True)
    paths = [plot_head_curves(history, os.path.join(out, "curves.png")),
             plot_f1(results, chance, os.path.join(out, "f1.png"), aus=aus,
                     expressions=expressions)]
    base = results["threshold_0.5"]
    paths.append(train_plots.plot_confusion(np.asarray(base["confusion_matrix"]), expressions,
                                            os.path.join(out, "confusion_matrix.png")))
    keep = np.asarray(arrays["va_mask"], bool)
    if keep.any():
        paths.append(train_plots.plot_va_scatter(
            np.asarray(pred["va"])[keep], np.asarray(arrays["va"])[keep],
            os.path.join(out, "va_scatter.png"), ccc=(base["CCC_V"], base["CCC_A"])))
    return paths
