"""iFAN sweep reports: Tables 1, 2 and 4 and the per-iteration plot from summary.csv files."""

import csv

import pytest
from PIL import Image

from affectjax.methods.ifan import report


def _write_summary(path, rows):
    path.mkdir(parents=True)
    with open(path / "summary.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["point", "metric", "mean", "std", "n", "min", "max"])
        for point, metric, mean, std in rows:
            writer.writerow([point, metric, repr(mean), repr(std), 3, repr(mean), repr(mean)])


def test_tables_and_plot_from_two_sweeps(tmp_path, capsys):
    rows = []
    for iters in (0, 2):
        point = f"ifan.num_iterations={iters}"
        for i in range(iters + 1):
            rows += [(point, f"landmarks/nme/{i}", 0.08 - 0.01 * i, 0.002),
                     (point, f"parsing/overall/{i}", 0.5 + 0.1 * i, 0.01)]
        rows += [(point, "landmarks/nme", 0.08 - 0.01 * iters, 0.002),
                 (point, "landmarks/nme_nose", 0.07, 0.001),
                 (point, "parsing/overall", 0.5 + 0.1 * iters, 0.01),
                 (point, "parsing/eyes", 0.4, 0.02)]
    _write_summary(tmp_path / "ifan_2t", rows)
    _write_summary(tmp_path / "ifan_single", [("ifan.tasks=parsing", "parsing/overall", 0.45, 0.03)])
    report.main([str(tmp_path / "ifan_single"), str(tmp_path / "ifan_2t"),
                 "--plot", str(tmp_path / "it.png")])
    out = capsys.readouterr().out
    assert "| ifan_2t: ifan.num_iterations=2 | 3 | – | – | 7.00 ± 0.10 | – | – | 6.00 ± 0.20 |" in out
    assert "| ifan_single: ifan.tasks=parsing | 3 | – | – | – | – | – | – | – | – | – | – | 45.00 ± 3.00 |" in out
    assert "| ifan_2t: ifan.num_iterations=2 | 1 | 60.00 ± 1.00 | 7.00 ± 0.20 | – |" in out
    # The landmark table has no row for the parsing-only run.
    landmarks = out.split("Parsing")[0]
    assert "ifan_single" not in landmarks
    assert Image.open(tmp_path / "it.png").format == "PNG"


def test_a_missing_sweep_is_one_error_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main([str(tmp_path / "nothing")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "summary.csv" in err[0]
