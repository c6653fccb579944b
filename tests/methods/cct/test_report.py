"""CCT sweep reports: tables and the accuracy plot from a sweep's summary.csv."""

import csv

import pytest
from PIL import Image

from affectjax.methods.cct import report


def _write_summary(path, rows):
    with open(path / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "metric", "mean", "std", "n", "min", "max"])
        for point, metric, mean, std in rows:
            writer.writerow([point, metric, repr(mean), repr(std), 3, repr(mean), repr(mean)])


def test_table_and_plot_from_a_summary(tmp_path):
    rows = []
    for rate, acc in (("0.6", 0.3), ("0.0", 0.7), ("0.2", 0.6)):
        point = f"data.builder_kwargs.label_noise.rate={rate}"
        rows += [(point, "acc", acc, 0.01), (point, "f1", acc - 0.05, 0.02),
                 (point, "cct_score", 0.67 * (acc - 0.05) + 0.33 * acc, 0.015),
                 (point, "member0/acc", acc - 0.02, 0.01), (point, "member1/acc", acc - 0.03, 0.0),
                 (point, "members_mean/acc", acc - 0.025, 0.005)]
    _write_summary(tmp_path, rows)
    table = report.read_summary(str(tmp_path))
    assert list(table) == [f"data.builder_kwargs.label_noise.rate={r}" for r in ("0.6", "0.0", "0.2")]
    text = report.format_table(table)
    lines = text.splitlines()
    assert len(lines) == 5 and lines[2].startswith("| data.builder_kwargs.label_noise.rate=0.6 | 3 |")
    assert "0.250 ± 0.020 | 0.300 ± 0.010 | 0.267 ± 0.015 | – | –" in lines[2]
    assert report.point_value("cct.beta=0.65") == ("cct.beta", 0.65)
    assert report.point_value("cct.consensus=False") == ("cct.consensus", "False")
    out = report.plot_accuracy(table, str(tmp_path / "noise.png"))
    assert Image.open(out).format == "PNG"


def test_a_missing_sweep_is_one_error_line(tmp_path):
    with pytest.raises(SystemExit) as exc:
        report.main([str(tmp_path / "nothing")])
    assert str(exc.value).startswith("error: ") and "summary.csv not found" in str(exc.value)
