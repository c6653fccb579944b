"""Balancing sweep reports: the EMA paper's Tables 1-2 in miniature and the task weights.

    python -m affectjax.methods.mtl.report runs/sweeps/balance_synthfaces \\
        --weights docs/balance_weights.png

Reads a sweep over ``balancer.name`` (`affectjax.sweep`): its ``summary.csv`` gives one
markdown row per balancer with every task's headline metric and the overall score (mean ±
std over seeds; P_MTL = CCC + expression F1 + AU F1 for VA + EXPR + AU, the mean F1 for
attributes), the best mean of each column in bold. ``--weights`` draws each balancer's
logged task weights (``weight/<task>``, the effective weight d total / d L_k of the train
step) against the step, averaged over the seeds' ``metrics.jsonl``: one panel per balancer
(with many tasks, the mean and the spread over tasks).
"""

from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np

from affectjax.methods.sweep_tables import read_summary
from affectjax.train import plots

METRICS = (("va/ccc", "VA CCC"), ("expr/f1", "EXPR F1"), ("au/f1", "AU F1"),
           ("attr/f1", "attributes mean F1"), ("score", "overall"))


def _balancer(point: str) -> str:
    return point.partition("balancer.name=")[2].split(",")[0] or point


def format_table(table: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per balancer; the columns the runs have; bold = the best mean."""
    columns = [(k, name) for k, name in METRICS if any(k in m for m in table.values())]
    best = {k: max(m[k]["mean"] for m in table.values() if k in m) for k, _ in columns}
    lines = ["| balancer | seeds | " + " | ".join(name for _, name in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for point, metrics in table.items():
        cells = []
        for key, _ in columns:
            if key not in metrics:
                cells.append("–")
                continue
            text = f"{metrics[key]['mean']:.3f} ± {metrics[key]['std']:.3f}"
            cells.append(f"**{text}**" if metrics[key]["mean"] == best[key] else text)
        seeds = max((m["n"] for m in metrics.values()), default=0)
        lines.append(f"| {_balancer(point)} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_weights(run_dir: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(steps, {task: weights})`` of one run's training records."""
    steps, weights = [], {}
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if record.get("split") != "train":
                continue
            steps.append(record["step"])
            for key, value in record.items():
                if key.startswith("weight/"):
                    weights.setdefault(key[len("weight/"):], []).append(value)
    return np.asarray(steps), {k: np.asarray(v, np.float64) for k, v in weights.items()}


def plot_weights(sweep_dir: str, path: str) -> str:
    """Each balancer's task weights over training, averaged over seeds (module docstring)."""
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    points = [p for p in sorted(os.listdir(sweep_dir))
              if os.path.isdir(os.path.join(sweep_dir, p))]
    runs = {p: sorted(glob.glob(os.path.join(sweep_dir, p, "seed*", "metrics.jsonl")))
            for p in points}
    points = [p for p in points if runs[p]]
    if not points:
        raise FileNotFoundError(f"{sweep_dir}: no run has a metrics.jsonl yet")
    cols = min(4, len(points))
    rows = -(-len(points) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, point in zip(axes.ravel(), points):
        curves = [read_weights(os.path.dirname(r)) for r in runs[point]]
        n = min(len(s) for s, _ in curves)
        steps = curves[0][0][:n]
        tasks = list(curves[0][1])
        mean = {t: np.mean([w[t][:n] for _, w in curves], axis=0) for t in tasks}
        if len(tasks) <= 6:
            for t in tasks:
                ax.plot(steps, mean[t], label=t)
            ax.legend(fontsize=7)
        else:
            stack = np.stack([mean[t] for t in tasks])
            ax.plot(steps, stack.mean(0), label=f"mean of {len(tasks)} tasks")
            ax.fill_between(steps, stack.min(0), stack.max(0), alpha=0.3, label="min-max")
            ax.legend(fontsize=7)
        ax.set(title=_balancer(point), xlabel="step", ylabel="task weight")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(points):]:
        ax.axis("off")
    return plots.save_figure(fig, path, axes=tuple(axes.ravel()[:len(points)]))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m affectjax.methods.mtl.report",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", help="the --workdir of an affectjax.sweep run")
    parser.add_argument("--weights", default="", help="also write this PNG (task weights)")
    args = parser.parse_args(argv)
    try:
        text = format_table(read_summary(args.sweep_dir))
        print(text)
        if args.weights:
            print(f"wrote {plot_weights(args.sweep_dir, args.weights)}")
    except FileNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    return text


if __name__ == "__main__":
    main()
