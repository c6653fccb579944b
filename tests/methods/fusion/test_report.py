"""Fusion sweep reports: Table 3 (emotions) and Table 4 (sarcasm) rows from a summary.csv."""

import csv

import pytest
from PIL import Image

from affectjax.methods.fusion import report


def _write_summary(path, rows):
    with open(path / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "metric", "mean", "std", "n", "min", "max"])
        for point, metric, mean, std in rows:
            writer.writerow([point, metric, repr(mean), repr(std), 5, repr(mean), repr(mean)])


def test_table3_rows_per_emotion_in_percent(tmp_path):
    rows = []
    for point, base in (("model.encoder=avg", 0.6), ("model.encoder=lstm", 0.7)):
        for i, name in enumerate(("Neutral", "Happy")):
            rows += [(point, f"emotion/wacc/{name}", base + 0.01 * i, 0.01),
                     (point, f"emotion/f1/{name}", base - 0.1, 0.02)]
        rows += [(point, "emotion/avg_wacc", base + 0.005, 0.004),
                 (point, "emotion/avg_f1", base - 0.1, 0.02), (point, "score", base, 0.0)]
    _write_summary(tmp_path, rows)
    text = report.format_table(report.read_summary(str(tmp_path)))
    lines = text.splitlines()
    assert lines[0] == ("| point | seeds | Neutral WAcc | Neutral F1 | Happy WAcc | Happy F1 | "
                        "Avg. WAcc | Avg. F1 |")
    assert lines[2] == ("| model.encoder=avg | 5 | 60.0 ± 1.0 | 50.0 ± 2.0 | 61.0 ± 1.0 | "
                        "50.0 ± 2.0 | 60.5 ± 0.4 | 50.0 ± 2.0 |")
    assert len(lines) == 4


def test_table4_sarcasm_rows_and_plot(tmp_path):
    rows = []
    for point, acc in (("fusion.tasks=sarcasm", 0.68), ("fusion.tasks=emotion+sarcasm", 0.71)):
        rows += [(point, "sarcasm/acc", acc, 0.02), (point, "sarcasm/f1", acc - 0.01, 0.03),
                 (point, "score", acc, 0.02)]
    _write_summary(tmp_path, rows)
    table = report.read_summary(str(tmp_path))
    lines = report.format_table(table).splitlines()
    assert lines[0] == "| point | seeds | accuracy | F1 |"
    assert lines[3] == "| fusion.tasks=emotion+sarcasm | 5 | 71.0 ± 2.0 | 70.0 ± 3.0 |"
    out = report.plot_table(table, str(tmp_path / "table4.png"))
    assert Image.open(out).format == "PNG"


def test_a_sweep_without_fusion_metrics_or_summary_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit, match="error: .*summary.csv not found"):
        report.main([str(tmp_path / "nowhere")])
    _write_summary(tmp_path, [("base", "cct_score", 0.5, 0.0)])
    with pytest.raises(SystemExit, match="error: the sweep's runs have no fusion task metrics"):
        report.main([str(tmp_path)])
