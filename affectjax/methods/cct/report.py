"""CCT sweep reports: the ablation tables and the members' accuracy against a swept value.

    python -m affectjax.methods.cct.report runs/sweeps/cct_networks
    python -m affectjax.methods.cct.report runs/sweeps/cct_noise --plot docs/cct_noise.png

Reads a sweep's ``summary.csv`` (`affectjax.sweep`; mean and sample std over seeds per grid
point and metric) and prints a markdown table of the CCT scores on the clean validation
labels: the ensemble's (argmax of the mean softmax) F1, accuracy and CCT score (0.67 F1 +
0.33 accuracy, the paper's "overall"), the members' mean CCT score and their disagreement.
``--plot`` draws the clean-label accuracy of every member, of their mean and of the
ensemble against the swept value (mean ± std over seeds): the miniature of the CCT paper's
noisy-label curves.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from affectjax.methods.sweep_tables import point_value, read_summary
from affectjax.train import plots

COLUMNS = (("f1", "F1"), ("acc", "accuracy"), ("cct_score", "overall (CCT score)"),
           ("members_mean/cct_score", "members' mean overall"),
           ("disagreement", "disagreement"))


def format_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """A markdown table, one row per grid point (in the order of the sweep's grid)."""
    lines = ["| point | seeds | " + " | ".join(name for _, name in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for point, metrics in table.items():
        cells = [f"{metrics[k]['mean']:.3f} ± {metrics[k]['std']:.3f}" if k in metrics else "–"
                 for k, _ in COLUMNS]
        seeds = max((m["n"] for m in metrics.values()), default=0)
        lines.append(f"| {point} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_accuracy(table: dict[str, dict[str, dict[str, float]]], path: str) -> str:
    """Clean-label accuracy of each member, their mean and the ensemble against the value."""
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    points = sorted(table, key=lambda p: point_value(p)[1])
    key = point_value(points[0])[0]
    x = np.array([point_value(p)[1] for p in points], float)
    members = sorted({m.split("/")[0] for p in points for m in table[p]
                      if re.fullmatch(r"member\d+/acc", m)}, key=lambda m: int(m[6:]))
    fig, ax = plt.subplots(figsize=(6, 4))
    series = [(m + "/acc", m, dict(lw=1, alpha=0.7)) for m in members]
    series += [("members_mean/acc", "members' mean", dict(lw=2, ls="--")),
               ("acc", "ensemble", dict(lw=2.5))]
    for metric, label, style in series:
        keep = [i for i, p in enumerate(points) if metric in table[p]]
        mean = np.array([table[points[i]][metric]["mean"] for i in keep])
        std = np.array([table[points[i]][metric]["std"] for i in keep])
        ax.errorbar(x[keep], mean, yerr=std, marker="o", ms=4, capsize=3, label=label, **style)
    ax.set(xlabel=key, ylabel="accuracy on the clean validation labels",
           title="CCT members and ensemble (mean ± std over seeds)")
    return plots.save_figure(fig, path, axes=(ax,))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m affectjax.methods.cct.report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="the --workdir of an affectjax.sweep run")
    parser.add_argument("--plot", default="", help="also write this PNG (accuracy vs value)")
    args = parser.parse_args(argv)
    try:
        table = read_summary(args.sweep_dir)
    except FileNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    text = format_table(table)
    print(text)
    if args.plot:
        print(f"wrote {plot_accuracy(table, args.plot)}")
    return text


if __name__ == "__main__":
    main()
