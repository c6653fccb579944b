"""Summaries of a sweep: per-point mean ± std over seeds as CSV, Markdown and PNG.

`affectjax.sweep` runs the training runs; this module only reads their results. A run's
metrics are the float scalars of ``final["eval"]`` in its ``final_metrics.json`` (nested
dicts are flattened with ``/`` in the key; integers, strings and lists are ignored). The
headline metric is the sweep's ``--metric``, else the runs' ``final["best"]["metric"]``;
its direction is ``final["best"]["mode"]`` ("max": higher is better, "min": lower is
better; "max" when absent). Other metrics are "max" unless the run declares otherwise in
an optional top-level ``"modes": {metric: "min" | "max"}`` of ``final_metrics.json``.

``std`` is the sample standard deviation over seeds (ddof=1), and 0 for a single seed.
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np


class PointSummary(NamedTuple):
    """One grid point: its finished runs' statistics per metric."""
    point: str
    n: int  # finished runs (done or skipped as finished).
    failed: int
    stats: dict[str, dict[str, Any]]  # metric -> mean, std, n, min, max, values.


class Summary(NamedTuple):
    """What `summarise` returns; every writer below reads only this."""
    metric: str | None  # the headline metric (None: no run finished and no --metric).
    mode: str  # "max" or "min": the headline's direction.
    metrics: list[str]  # every column, the headline first.
    modes: dict[str, str]  # metric -> "max" | "min".
    points: list[PointSummary]
    failed: list[dict[str, Any]]  # point, seed, error, log of every failed run.


def run_metrics(final: Mapping[str, Any]) -> dict[str, float]:
    """The float scalars of ``final["eval"]``, nested dicts flattened with ``/``."""
    flat: dict[str, float] = {}

    def visit(prefix: str, tree: Mapping[str, Any]) -> None:
        for key, value in tree.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                visit(name + "/", value)
            elif isinstance(value, float):
                flat[name] = value
    visit("", final.get("eval") or {})
    return flat


def _modes(final: Mapping[str, Any]) -> dict[str, str]:
    modes = {k: v for k, v in (final.get("modes") or {}).items() if v in ("max", "min")}
    best = final.get("best") or {}
    if best.get("metric"):
        modes[best["metric"]] = "min" if best.get("mode") == "min" else "max"
    return modes


def stats(values: Sequence[float]) -> dict[str, Any]:
    """mean, std (ddof=1; 0 for one value), n, min, max and the values themselves."""
    x = np.asarray(values, np.float64)
    return {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
            "n": len(x), "min": float(x.min()), "max": float(x.max()), "values": list(values)}


def summarise(records: Sequence[Mapping[str, Any]], *, metric: str | None = None,
              mode: str | None = None) -> Summary:
    """Per-point statistics of the finished runs among `records`.

    Args:
      records: one dict per run, in the order points should be listed: ``point``,
        ``seed``, ``status`` ("done", "skipped" or "failed"), ``final`` (the parsed
        ``final_metrics.json`` of a finished run), ``error`` and ``log`` (failed runs).
      metric: the headline metric; None = the runs' ``final["best"]["metric"]``.
      mode: its direction, "max" or "min"; None = what the runs say (else "max").

    Returns:
      A `Summary`.
    """
    finals = [r["final"] for r in records if r["status"] != "failed"]
    modes: dict[str, str] = {}
    for final in reversed(finals):  # the first run's word wins
        modes.update(_modes(final))
    if metric is None:
        metric = next(((f.get("best") or {}).get("metric") for f in finals
                       if (f.get("best") or {}).get("metric")), None)
    if metric is not None:
        modes[metric] = mode or modes.get(metric, "max")
    names = list(dict.fromkeys(k for f in finals for k in run_metrics(f)))
    metrics = ([metric] if metric else []) + [k for k in names if k != metric]
    points: list[PointSummary] = []
    for point in dict.fromkeys(r["point"] for r in records):
        mine = [r for r in records if r["point"] == point]
        done = [run_metrics(r["final"]) for r in mine if r["status"] != "failed"]
        per_metric = {m: stats([d[m] for d in done if m in d]) for m in metrics
                      if any(m in d for d in done)}
        points.append(PointSummary(point, len(done), len(mine) - len(done), per_metric))
    failed = [{k: r.get(k) for k in ("point", "seed", "error", "log")}
              for r in records if r["status"] == "failed"]
    return Summary(metric, modes.get(metric, "max") if metric else "max", metrics,
                   {m: modes.get(m, "max") for m in metrics}, points, failed)


def best_points(summary: Summary, metric: str) -> set[str]:
    """The point(s) whose mean of `metric` is best in its direction (ties all count)."""
    means = {p.point: p.stats[metric]["mean"] for p in summary.points
             if metric in p.stats and not math.isnan(p.stats[metric]["mean"])}
    if not means:
        return set()
    best = (min if summary.modes[metric] == "min" else max)(means.values())
    return {p for p, v in means.items() if v == best}


def write_csv(summary: Summary, path: str) -> str:
    """``point, metric, mean, std, n, min, max``: one row per point and metric."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "metric", "mean", "std", "n", "min", "max"])
        for p in summary.points:
            for m in summary.metrics:
                s = p.stats.get(m)
                writer.writerow([p.point, m] + ([repr(s["mean"]), repr(s["std"]), s["n"],
                                                 repr(s["min"]), repr(s["max"])]
                                                if s else ["", "", 0, "", ""]))
    return path


def _direction(mode: str) -> str:
    return "lower is better" if mode == "min" else "higher is better"


def format_markdown(summary: Summary, command: str) -> str:
    """The Markdown report: the command in a code block, the table, the failed runs."""
    lines = ["```", command, "```", ""]
    if summary.metric:
        lines.append(f"Headline metric: `{summary.metric}` ({_direction(summary.mode)}).")
    lines += ["Cells are mean ± std over seeds (sample std, ddof=1; 0 for one seed); n = "
              "finished seeds. Bold: the best mean of each column (the direction of each "
              "metric is in its header: ↑ higher is better, ↓ lower is better).", ""]
    arrows = {m: "↓" if summary.modes[m] == "min" else "↑" for m in summary.metrics}
    lines.append("| point | n | " + " | ".join(f"{m} {arrows[m]}" for m in summary.metrics)
                 + " |")
    lines.append("|---|---:|" + "---:|" * len(summary.metrics))
    best = {m: best_points(summary, m) for m in summary.metrics}
    for p in summary.points:
        cells = []
        for m in summary.metrics:
            s = p.stats.get(m)
            cell = f"{s['mean']:.4f} ± {s['std']:.4f}" if s else "—"
            cells.append(f"**{cell}**" if p.point in best[m] else cell)
        lines.append(f"| `{p.point}` | {p.n} | " + " | ".join(cells) + " |")
    if summary.failed:
        lines += ["", f"Failed runs ({len(summary.failed)}):", ""]
        lines += [f"- `{f['point']}` seed {f['seed']}: `{f['error']}` (log: `{f['log']}`)"
                  for f in summary.failed]
    return "\n".join(lines) + "\n"


def plot(summary: Summary, path: str) -> str:
    """The headline metric per point: mean with ±std error bars, each seed as a dot."""
    from affectjax.train.plots import plt, save_figure  # pylint: disable=import-outside-toplevel

    labels = ["\n".join(part.replace("=", "=\n") if len(part) > 18 else part
                        for part in p.point.split(",")) for p in summary.points]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(labels) + 1.5), 4.5))
    metric = summary.metric
    rows = [(i, p.stats[metric]) for i, p in enumerate(summary.points)
            if metric and metric in p.stats]
    for i, s in rows:
        offsets = np.linspace(-0.12, 0.12, len(s["values"])) if len(s["values"]) > 1 else [0]
        ax.scatter(i + np.asarray(offsets), s["values"], s=14, color="tab:gray", zorder=2,
                   label="seeds" if i == rows[0][0] else None)
        ax.errorbar(i, s["mean"], yerr=s["std"], fmt="o", color="tab:blue", capsize=5,
                    markersize=7, zorder=3, label="mean ± std" if i == rows[0][0] else None)
    if not rows:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel(metric or "")
    ax.set_title(f"{metric or 'no metric'} ({_direction(summary.mode)}): mean ± std over seeds")
    return save_figure(fig, path, axes=(ax,))


def write_summary(summary: Summary, workdir: str, command: str) -> list[str]:
    """Writes ``summary.csv``, ``summary.md`` and ``summary.png`` into `workdir`."""
    md = os.path.join(workdir, "summary.md")
    with open(md, "w") as f:
        f.write(format_markdown(summary, command))
    return [write_csv(summary, os.path.join(workdir, "summary.csv")), md,
            plot(summary, os.path.join(workdir, "summary.png"))]
