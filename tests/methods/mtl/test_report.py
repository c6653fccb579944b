"""Balancing sweep reports: the balancer table and the task-weight panels."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from affectjax.methods.mtl import report


def _sweep(tmp_path, balancers=("ew", "ema")):
    rows = []
    for i, name in enumerate(balancers):
        point = f"balancer.name={name}"
        for key, value in (("va/ccc", 0.4 + i / 10), ("expr/f1", 0.5), ("au/f1", 0.3 - i / 20),
                           ("score", 1.2 + i / 20)):
            rows.append([point, key, repr(value), repr(0.01), 2, repr(value), repr(value)])
        for seed in (0, 1):
            run = tmp_path / point / f"seed{seed}"
            run.mkdir(parents=True)
            with open(run / "metrics.jsonl", "w") as f:
                for step in (10, 20, 30):
                    weights = {"va": 1.0 + i * step / 30, "expr": 1.0, "au": 1.0 + seed}
                    record = {"step": step, "split": "train", "loss": 1.0,
                              **{f"weight/{k}": v for k, v in weights.items()}}
                    f.write(json.dumps(record) + "\n")
                f.write(json.dumps({"step": 30, "split": "eval", "score": 1.0}) + "\n")
    with open(tmp_path / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "metric", "mean", "std", "n", "min", "max"])
        writer.writerows(rows)


def test_table_marks_the_best_balancer_per_column(tmp_path):
    _sweep(tmp_path)
    lines = report.format_table(report.read_summary(str(tmp_path))).splitlines()
    assert lines[0] == "| balancer | seeds | VA CCC | EXPR F1 | AU F1 | overall |"
    assert lines[2] == ("| ew | 2 | 0.400 ± 0.010 | **0.500 ± 0.010** | **0.300 ± 0.010** | "
                        "1.200 ± 0.010 |")
    assert lines[3].startswith("| ema | 2 | **0.500 ± 0.010** |")
    assert lines[3].endswith("**1.250 ± 0.010** |")


def test_weights_are_averaged_over_seeds_and_drawn(tmp_path):
    _sweep(tmp_path)
    steps, weights = report.read_weights(str(tmp_path / "balancer.name=ema" / "seed1"))
    np.testing.assert_array_equal(steps, [10, 20, 30])
    np.testing.assert_allclose(weights["au"], [2.0, 2.0, 2.0])
    out = report.plot_weights(str(tmp_path), str(tmp_path / "weights.png"))
    assert Image.open(out).format == "PNG"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "summary.csv").write_text((tmp_path / "summary.csv").read_text())
    with pytest.raises(SystemExit, match="error: .*no run has a metrics.jsonl"):
        report.main([str(empty), "--weights", str(tmp_path / "x.png")])
