"""Reading a sweep's summary (`affectjax.sweep`) for the methods' report commands."""

from __future__ import annotations

import csv
import os
from typing import Any


def read_summary(sweep_dir: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{point: {metric: {"mean", "std", "n"}}}`` from ``<sweep_dir>/summary.csv``."""
    path = os.path.join(sweep_dir, "summary.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found: run the sweep first (python -m "
                                "affectjax.sweep ... --workdir " + sweep_dir + ")")
    table: dict[str, dict[str, dict[str, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["mean"]:
                table.setdefault(row["point"], {})[row["metric"]] = {
                    "mean": float(row["mean"]), "std": float(row["std"]), "n": int(row["n"])}
    return table


def point_value(point: str) -> tuple[str, Any]:
    """``"cct.beta=0.65"`` -> ``("cct.beta", 0.65)`` (a number where it parses as one)."""
    key, _, value = point.partition("=")
    try:
        return key, float(value)
    except ValueError:
        return key, value
