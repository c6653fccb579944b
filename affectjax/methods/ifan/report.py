"""iFAN sweep reports: the paper's Tables 1, 2 and 4 in miniature, from sweeps.

    python -m affectjax.methods.ifan.report runs/sweeps/ifan_single runs/sweeps/ifan_2t \\
        runs/sweeps/ifan_3t [--plot docs/ifan_iterations.png]

Reads each sweep's ``summary.csv`` (`affectjax.sweep`: mean and sample std over seeds per
grid point and metric) and prints markdown tables, one row per (sweep, grid point), in
percent, mean ± std:

* landmarks (Table 1): NME of each landmark and their mean, and the failure rate;
* parsing (Table 2): the F-score of each Helen group and the overall score;
* summary (Table 4): parsing overall F-score, mean NME and emotion accuracy;
* within-run iterations: the same three at each iteration 0..ITER of one trained model
  (a model trained with ITER = 2 also predicts at iterations 0 and 1).

Each trained model is scored at its last iteration in the first three tables (a row
``ifan.num_iterations=1`` is the model trained and evaluated with ITER = 1).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from affectjax.methods.sweep_tables import read_summary
from affectjax.methods.ifan.objectives import LANDMARK_NAMES
from affectjax.metrics.parsing import HELEN_GROUPS
from affectjax.train import plots

LANDMARK_COLUMNS = tuple((f"landmarks/nme_{n}", n.replace("_", " ")) for n in LANDMARK_NAMES
                         ) + (("landmarks/nme", "mean NME"),
                              ("landmarks/failure_rate", "failure rate"))
PARSING_COLUMNS = tuple((f"parsing/{g}", g.replace("_", " ")) for g in HELEN_GROUPS) + (
    ("parsing/overall", "overall"),)
SUMMARY_COLUMNS = (("parsing/overall", "parsing F (overall)"), ("landmarks/nme", "NME"),
                   ("emotion/accuracy", "emotion accuracy"))


def _cell(metrics: dict[str, Any], key: str) -> str:
    if key not in metrics:
        return "–"
    m = metrics[key]
    return f"{100 * m['mean']:.2f} ± {100 * m['std']:.2f}"


def rows_of(sweep_dirs: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """``[(label, {metric: {mean, std, n}})]`` over the sweeps' grid points."""
    rows = []
    for sweep in sweep_dirs:
        name = os.path.basename(os.path.normpath(sweep))
        for point, metrics in read_summary(sweep).items():
            rows.append((f"{name}: {point}", metrics))
    return rows


def format_table(rows: list[tuple[str, dict[str, Any]]], columns, *,
                 suffix: str = "") -> str:
    """A markdown table of `columns` (metric key, header) for rows that have any of them."""
    lines = ["| run | seeds | " + " | ".join(h for _, h in columns) + " |",
             "|---" * (len(columns) + 2) + "|"]
    for label, metrics in rows:
        if not any(k + suffix in metrics for k, _ in columns):
            continue
        seeds = max((m["n"] for m in metrics.values()), default=0)
        lines.append(f"| {label} | {seeds} | " + " | ".join(
            _cell(metrics, k + suffix) for k, _ in columns) + " |")
    return "\n".join(lines)


def iterations_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    """The summary metrics at each iteration of each trained model."""
    lines = ["| run | iteration | " + " | ".join(h for _, h in SUMMARY_COLUMNS) + " |",
             "|---" * (len(SUMMARY_COLUMNS) + 2) + "|"]
    for label, metrics in rows:
        i = 0
        while any(f"{k}/{i}" in metrics for k, _ in SUMMARY_COLUMNS):
            lines.append(f"| {label} | {i} | " + " | ".join(
                _cell(metrics, f"{k}/{i}") for k, _ in SUMMARY_COLUMNS) + " |")
            i += 1
    return "\n".join(lines)


def plot_iterations(rows: list[tuple[str, dict[str, Any]]], path: str) -> str:
    """Mean NME and parsing F-score (± std over seeds) against the evaluated iteration."""
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (key, title) in zip(axes, (("landmarks/nme", "landmarks: mean NME"),
                                       ("parsing/overall", "parsing: overall F-score"))):
        for label, metrics in rows:
            its = []
            while f"{key}/{len(its)}" in metrics:
                its.append(metrics[f"{key}/{len(its)}"])
            if len(its) > 1:
                ax.errorbar(np.arange(len(its)), [m["mean"] for m in its],
                            yerr=[m["std"] for m in its], marker="o", capsize=3, label=label)
        ax.set(xlabel="iteration", title=title)
    return plots.save_figure(fig, path, axes=axes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", nargs="+", help="sweep directories (with summary.csv)")
    parser.add_argument("--plot", default="", help="PNG of the metrics per iteration")
    args = parser.parse_args(argv)
    try:
        rows = rows_of(args.sweeps)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print("Landmarks (NME and failure rate, %):\n")
    print(format_table(rows, LANDMARK_COLUMNS))
    print("\nParsing (F-score, %):\n")
    print(format_table(rows, PARSING_COLUMNS))
    print("\nSummary (%):\n")
    print(format_table(rows, SUMMARY_COLUMNS))
    print("\nWithin-run iterations (%):\n")
    print(iterations_table(rows))
    if args.plot:
        print(f"\nwrote {plot_iterations(rows, args.plot)}")


if __name__ == "__main__":
    main()
