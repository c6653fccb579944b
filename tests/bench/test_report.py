"""affectjax.bench.report: the printed tables, from records of fake steps."""

import re

from affectjax.bench import cct
from affectjax.bench import core
from affectjax.bench import report

RATIO = r"\d+\.\d\d× \[\d+\.\d\d, \d+\.\d\d\]"


def test_format_ratio():
    assert report.format_ratio(1.1349, [1.0462, 1.2051]) == "1.13× [1.05, 1.21]"


def test_single_table_rows_ratio_and_footer(fake_steps):
    record = core.run("efficientnet_tiny", rounds=2, steps_per_round=1, warmup=0)
    table = report.format_table(record)
    rows = [line for line in table.splitlines() if line.startswith("| train_step")]
    assert len(rows) == 1 and re.search(rf"\| {RATIO} \|", rows[0])
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert cells[-3:] == ["1.0", "10", "10"]  # compile s, both peaks
    assert "2 interleaved rounds of 1 steps per framework" in table
    assert "repeat 1" not in table and "intervals overlap" not in table
    before = "/".join(f"{x:.1f}" for x in record["load_average_before"])
    assert f"load average (1/5/15 min) {before} before" in table
    assert f"{record['cpu_count']} CPUs" in table


def test_single_table_with_repeats_says_whether_intervals_overlap(fake_steps):
    record = core.run("efficientnet_tiny", rounds=2, steps_per_round=1, warmup=0, repeat=2)
    record["intervals_overlap"] = {"forward": True, "train_step": False}
    table = report.format_table(record)
    for phase in core.PHASES:
        for i in (1, 2):
            row = next(line for line in table.splitlines()
                       if line.startswith(f"| {phase}, repeat {i} |"))
            assert re.search(rf"\| {RATIO} \| - \| - \| - \|$", row)  # no compile, no peaks
    assert table.splitlines()[-1] == "repeats' intervals overlap: forward yes, train_step no"


def test_cct_table_has_a_ratio_column_per_repeat(fake_steps):
    record = cct.run("efficientnet_tiny", num_networks=3, rounds=2, steps_per_round=1,
                     warmup=0, repeat=2)
    table = report.format_table(record)
    assert "CCT ensemble train step, M=3" in table
    assert "| ratio | all repeats | repeat 1 | repeat 2 |" in table
    for label in report.CCT_RATIOS.values():
        row = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
        assert len(re.findall(RATIO, row)) == 3
    for label in report.VARIANTS.values():
        assert f"| {label} |" in table
    assert "repeats' intervals overlap: vmapped_cost_over_single" in table


def test_cct_table_without_torch():
    record = {
        "config": {"num_networks": 1, "lam": 0.5, "model": "m", "batch_size": 2,
                   "image_size": 8, "dtype": "float32", "optimizer": "adam", "rounds": 1,
                   "steps_per_round": 1, "warmup": 0, "repeat": 1, "method": "cct",
                   "bootstrap": {"level": 0.95}},
        "device": "cpu", "cpu_count": 2, "versions": {"jax": "x"},
        "load_average_before": [1.0, 1.0, 1.0], "load_average_after": [2.0, 2.0, 2.0],
        "cct": {name: {"images_per_s": 1.0, "median_step_s": 2.0, "min_step_s": 1.5,
                       "compile_s": 3.0, "peak_memory_mb": 4.0, "first_loss": 0.1}
                for name in ("single", "vmapped", "unrolled", "sequential_jax")},
        "ratio": {"vmapped_cost_over_single": 1.0},
        "ratio_interval": {"vmapped_cost_over_single": [1.0, 1.0]},
        "intervals_overlap": {"vmapped_cost_over_single": True}, "repeats": [{}],
    }
    table = report.format_table(record)
    assert "| torch (M models, M backward) | - | - | - | - | - |" in table
    assert "| vmapped speed-up over torch | - |" in table
    assert "| vmapped / single step time (goal <= 2.4× for M=3 on GPU) | 1.00× [1.00, 1.00] |" \
        in table
    assert "| single (1 net, CE) | 1.0 | 2000.0 / 1500.0 | 3.0 | 4 | 0.1000 |" in table
    assert table.splitlines()[-1] == (
        "load average (1/5/15 min) 1.0/1.0/1.0 before, 2.0/2.0/2.0 after; 2 CPUs")
