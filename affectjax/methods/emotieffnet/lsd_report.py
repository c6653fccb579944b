"""The LSD fine-tune's report: ``report.md`` (paper 1, Table 8) and plots (Fig. 3)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from affectjax.methods.emotieffnet.lsd_data import LSD_CLASSES

_TITLES = {"head": "head", "full": "all"}


def markdown(final: dict[str, Any]) -> str:
    """``report.md``: Table 8's rows (pre-trained, fine-tuned, blended) for this run."""
    lines = ["# LSD: pre-trained vs fine-tuned vs blended (macro-F1 over 6 classes)", "",
             f"Validation faces: {final['num_validation']} ({final['validation']}); "
             f"training faces: {sum(final['train_counts'].values())} "
             f"(super-resolution {final['super_resolution']!r}, scores "
             f"{final['scores']!r}). w weights the fine-tuned scores "
             "(the paper's w is 1 - w).", "",
             "| model | w | macro-F1 | accuracy |", "|---|---|---|---|",
             f"| Pre-trained | - | {final['pretrained']['f1']:.4f} | "
             f"{final['pretrained']['accuracy']:.4f} |"]
    for phase, res in final["finetuned"].items():
        t = _TITLES[phase]
        lines.append(f"| Fine-tuned ({t}) | - | {res['f1']:.4f} | {res['accuracy']:.4f} |")
        b = res["blend"]
        lines.append(f"| Pre-trained + fine-tuned ({t}) | {b['weight']:.2f} | "
                     f"{b['f1']:.4f} | {b['accuracy']:.4f} |")
    lines += ["", "Per-class F1 of the final blend:", "",
              "| " + " | ".join(LSD_CLASSES) + " |", "|" + "---|" * len(LSD_CLASSES),
              "| " + " | ".join(f"{v:.3f}" for v in final["blended"]["f1_per_class"].values())
              + " |", ""]
    return "\n".join(lines)


def write_plots(out: str, final: dict[str, Any]) -> list[str]:
    """``blend_curve.png`` (F1 against w) and the confusion matrices (Fig. 3 a and b)."""
    from affectjax.train import plots  # pylint: disable=import-outside-toplevel

    os.makedirs(out, exist_ok=True)
    fig, ax = plots.plt.subplots(figsize=(5.5, 4))
    for phase, res in final["finetuned"].items():
        b = res["blend"]
        line, = ax.plot(b["grid"], b["curve"], "o-", ms=3,
                        label=f"pre-trained + fine-tuned ({_TITLES[phase]})")
        ax.plot([b["weight"]], [b["f1"]], "*", ms=12, color=line.get_color())
    ax.set(xlabel="w (weight of the fine-tuned scores)", ylabel="validation macro-F1",
           title="blend s = w s_ft + (1 - w) s_pre")
    paths = [plots.save_figure(fig, os.path.join(out, "blend_curve.png"), axes=(ax,))]
    for name in ("pretrained", "blended"):
        paths.append(plots.plot_confusion(np.asarray(final[name]["confusion_matrix"]),
                                          LSD_CLASSES, os.path.join(out, f"confusion_{name}.png")))
    return paths
