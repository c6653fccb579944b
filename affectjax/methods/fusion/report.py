"""Fusion sweep reports: the paper's Tables 3 and 4 in miniature, and a bar plot.

    python -m affectjax.methods.fusion.report runs/sweeps/fusion_table4 \\
        --plot docs/fusion_table4.png
    python -m affectjax.methods.fusion.report runs/sweeps/fusion_table3

Reads a sweep's ``summary.csv`` (`affectjax.sweep`: mean and sample std over seeds per
grid point and metric) and prints one markdown row per grid point with the metrics of
the task the sweep's runs score (``score``'s task): for emotions each emotion's WAcc and
F1 and their averages (Table 3), for sarcasm or sentiment accuracy and weighted F1
(Table 4). ``--plot`` draws the headline metrics per point with the seeds' std.
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from affectjax.methods.sweep_tables import read_summary
from affectjax.train import plots

TASK_COLUMNS = {
    "emotion": (("emotion/avg_wacc", "Avg. WAcc"), ("emotion/avg_f1", "Avg. F1")),
    "sarcasm": (("sarcasm/acc", "accuracy"), ("sarcasm/f1", "F1")),
    "sentiment": (("sentiment/acc", "accuracy"), ("sentiment/f1", "F1")),
}


def _task(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """The task whose metrics every point has (emotion first, as the paper's Table 3)."""
    for task, columns in TASK_COLUMNS.items():
        if all(columns[0][0] in metrics for metrics in table.values()):
            return task
    raise ValueError("the sweep's runs have no fusion task metrics (emotion/avg_wacc, "
                     "sarcasm/acc or sentiment/acc)")


def _columns(table, task: str) -> list[tuple[str, str]]:
    columns = list(TASK_COLUMNS[task])
    if task == "emotion":
        names = []  # in the order of the runs' metrics (the data set's emotion order)
        for metrics in table.values():
            names += [m.split("/")[-1] for m in metrics
                      if re.fullmatch(r"emotion/wacc/[^/]+", m) and m.split("/")[-1] not in names]
        per = [(f"emotion/{k}/{n}", f"{n} {label}") for n in names
               for k, label in (("wacc", "WAcc"), ("f1", "F1"))]
        columns = per + columns
    return columns


def _cell(metrics: dict[str, dict[str, float]], key: str, scale: float) -> str:
    if key not in metrics:
        return "–"
    return f"{scale * metrics[key]['mean']:.1f} ± {scale * metrics[key]['std']:.1f}"


def format_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """A markdown table in percent, one row per grid point (the sweep's order)."""
    task = _task(table)
    columns = _columns(table, task)
    lines = ["| point | seeds | " + " | ".join(name for _, name in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for point, metrics in table.items():
        seeds = max((m["n"] for m in metrics.values()), default=0)
        lines.append(f"| {point} | {seeds} | "
                     + " | ".join(_cell(metrics, k, 100.0) for k, _ in columns) + " |")
    return "\n".join(lines)


def _parts(point: str) -> list[tuple[str, str]]:
    """``"a.b=1,c=x,y"`` -> ``[("a.b", "1"), ("c", "x,y")]`` (a point's overrides)."""
    return [(k, v) for k, _, v in (p.partition("=") for p in
                                  re.split(r",(?=[A-Za-z_][\w.]*=)", point))]


def _label(point: str, keys: set[str]) -> str:
    """A tick label: the value alone when the sweep varies one key, else short pairs."""
    parts = _parts(point)
    if len(keys) == 1:
        return parts[0][1].replace("+", "+\n")
    return "\n".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in parts)


def plot_table(table: dict[str, dict[str, dict[str, float]]], path: str) -> str:
    """The headline metrics of every point with the seeds' std (the axis spans the data)."""
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    task = _task(table)
    columns = TASK_COLUMNS[task]
    points = list(table)
    keys = {k for p in points for k, _ in _parts(p)}
    x = np.arange(len(points))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(points) + 2), 4))
    for i, (key, label) in enumerate(columns):
        mean = [100 * table[p].get(key, {}).get("mean", np.nan) for p in points]
        std = [100 * table[p].get(key, {}).get("std", 0.0) for p in points]
        ax.errorbar(x + (i - (len(columns) - 1) / 2) * 0.15, mean, yerr=std, fmt="o",
                    capsize=4, label=label)
    ax.set_xticks(x, [_label(p, keys) for p in points], fontsize=8)
    title = f"{task}: " + (next(iter(keys)) if len(keys) == 1 else "grid")
    ax.set(ylabel="% (mean ± std over seeds)", title=title)
    ax.grid(axis="y", alpha=0.3)
    return plots.save_figure(fig, path, axes=(ax,))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m affectjax.methods.fusion.report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="the --workdir of an affectjax.sweep run")
    parser.add_argument("--plot", default="", help="also write this PNG (metrics per point)")
    args = parser.parse_args(argv)
    try:
        table = read_summary(args.sweep_dir)
        text = format_table(table)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    print(text)
    if args.plot:
        print(f"wrote {plot_table(table, args.plot)}")
    return text


if __name__ == "__main__":
    main()
