"""`python -m affectjax.sweep`: grid × seeds -> runs -> summary, with a fake train script.

The fake ``train.py`` below trains nothing: it records its command line, then writes
``final_metrics.json`` with metrics that are simple functions of the seed and
``--config.x``. A ``control.json`` beside it makes chosen seeds fail or die unfinished.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from affectjax import sweep
from affectjax import sweep_summary

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

FAKE_TRAIN = r'''
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
control = json.load(open(os.path.join(here, "control.json")))
args, config, workdir, over = sys.argv[1:], None, None, {}
while args:
    a = args.pop(0)
    if a == "--config": config = args.pop(0)
    elif a == "--workdir": workdir = args.pop(0)
    elif a.startswith("--config."): k, v = a[len("--config."):].split("=", 1); over[k] = v
    else: print("error: unexpected " + a); sys.exit(2)
with open(os.path.join(here, "calls.jsonl"), "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd()}) + "\n")
seed, x = int(over["seed"]), float(over.get("x", 0))
os.makedirs(workdir, exist_ok=True)
resumed = os.path.exists(os.path.join(workdir, "checkpoint"))
print("training" + (" (resumed)" if resumed else ""))
if seed in control.get("fail", []):
    print("error: boom"); print("  (cleanup)"); sys.exit(2)
if seed in control.get("die", []) and not resumed:
    open(os.path.join(workdir, "checkpoint"), "w").write("half"); sys.exit(137)
acc = 0.5 + 0.1 * x + 0.01 * seed ** 2
final = {"eval": {"acc": acc, "loss": 2.0 - acc, "count": 7, "name": "fake",
                  "va": {"ccc": acc / 2}},
         "best": {"metric": control.get("best", "acc"), "mode": control.get("mode", "max"),
                  "value": acc}}
json.dump(final, open(os.path.join(workdir, "final_metrics.json"), "w"))
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A fake train script and config in `tmp_path` (also the current directory)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fake_train.py").write_text(FAKE_TRAIN)
    (tmp_path / "cfg.py").write_text("def get_config(): pass\n")
    control = tmp_path / "control.json"
    control.write_text("{}")

    class Fake:
        path = tmp_path

        @staticmethod
        def set_control(**kwargs):
            control.write_text(json.dumps(kwargs))

        @staticmethod
        def calls():
            log = tmp_path / "calls.jsonl"
            return ([json.loads(l) for l in log.read_text().splitlines()]
                    if log.exists() else [])

        @staticmethod
        def sweep(*extra, seeds="0,1,2", workdir="sw"):
            return sweep.main(["--config", "cfg.py:arg", "--seeds", seeds, "--workdir",
                               workdir, "--train-script", "fake_train.py", *extra])
    return Fake


def _csv(path):
    with open(path) as f:
        return {(r["point"], r["metric"]): r for r in csv.DictReader(f)}


def _acc(x, seed):
    return 0.5 + 0.1 * x + 0.01 * seed ** 2


def test_pure_helpers():
    grid = {"b.name": ["ew", "dwa"], "x": ["1", "2", "3"]}
    points = sweep.expand_grid(grid)
    assert len(points) == 6 and points[0] == {"b.name": "ew", "x": "1"}
    assert sweep.expand_grid({}) == [{}]
    assert sweep.point_name({}) == "base"
    assert sweep.point_name({"x": "1", "a.b": "dwa"}) == "a.b=dwa,x=1"
    odd = sweep.point_name({"p": "runs/a b"})
    assert odd.startswith("p=runs_a_b-") and "/" not in odd
    assert odd != sweep.point_name({"p": "runs_a_b"})
    assert len(sweep.point_name({"k": "v" * 500})) < 140
    assert sweep.split_values("(128,),(256, 64),'a,b',3") == ["(128,)", "(256, 64)",
                                                               "'a,b'", "3"]
    assert sweep.parse_seeds("0,1,5") == [0, 1, 5]


def test_grid_runs_commands_and_summary(fake, capsys):
    assert fake.sweep("--grid", "x=0,1", "--grid", "tag=a,b", "--set", "lr=0.5") == 0
    out = capsys.readouterr().out
    points = ["tag=a,x=0", "tag=b,x=0", "tag=a,x=1", "tag=b,x=1"]
    for point in points:
        for seed in range(3):
            run = fake.path / "sw" / point / f"seed{seed}"
            assert (run / "final_metrics.json").exists() and (run / "sweep.log").exists()
    calls = fake.calls()
    assert len(calls) == 12
    argv = calls[0]["argv"]
    assert argv == ["--config", "cfg.py:arg", "--workdir", os.path.join("sw", "tag=a,x=0",
                    "seed0"), "--config.seed=0", "--config.lr=0.5", "--config.x=0",
                    "--config.tag=a"]
    assert {c["cwd"] for c in calls} == {str(fake.path)}
    assert sorted(c["argv"][4] for c in calls) == sorted(
        f"--config.seed={s}" for s in range(3) for _ in range(4))
    lines = [l for l in out.splitlines() if l.startswith("[")]
    assert len(lines) == 12 and lines[-1].startswith("[12/12] ")
    assert "done in" in lines[0] and "acc=" in lines[0]

    rows = _csv(fake.path / "sw" / "summary.csv")
    for point in points:
        x = float(point.split("x=")[1])
        values = [_acc(x, s) for s in range(3)]
        row = rows[(point, "acc")]
        np.testing.assert_allclose(float(row["mean"]), np.mean(values), rtol=1e-12)
        np.testing.assert_allclose(float(row["std"]), np.std(values, ddof=1), rtol=1e-12)
        assert int(row["n"]) == 3 and float(row["max"]) == max(values)
        assert (point, "va/ccc") in rows and (point, "count") not in rows
    md = (fake.path / "sw" / "summary.md").read_text().splitlines()
    assert md[:3] == ["```", "python -m affectjax.sweep --config cfg.py:arg --seeds 0,1,2 "
                      "--workdir sw --train-script fake_train.py --grid x=0,1 --grid tag=a,b "
                      "--set lr=0.5", "```"]
    table = [l for l in md if l.startswith("| `")]
    assert len(table) == 4
    header = next(l for l in md if l.startswith("| point"))
    assert header.split(" | ")[2].startswith("acc")  # the headline comes first
    best = np.mean([_acc(1, s) for s in range(3)])
    for line in table:  # x=1 is best in acc (max); loss is "max" too unless declared
        assert (f"**{best:.4f} ±" in line) == ("x=1" in line)
    png = fake.path / "sw" / "summary.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spec = json.loads((fake.path / "sw" / "sweep.json").read_text())
    assert spec["grid"] == {"x": ["0", "1"], "tag": ["a", "b"]} and spec["seeds"] == [0, 1, 2]


def test_min_direction_and_metric_flag(fake, capsys):
    fake.set_control(best="loss", mode="min")
    assert fake.sweep("--grid", "x=0,1", seeds="0,1") == 0
    md = (fake.path / "sw" / "summary.md").read_text()
    low = np.mean([2.0 - _acc(1, s) for s in range(2)])
    assert "`loss` (lower is better)" in md and "loss ↓" in md
    line = next(l for l in md.splitlines() if l.startswith("| `x=1`"))
    assert f"**{low:.4f} ± " in line
    capsys.readouterr()
    # --metric/--mode pick another headline: the runs are finished, so only re-summarised.
    assert fake.sweep("--grid", "x=0,1", "--metric", "va/ccc", seeds="0,1") == 0
    assert "skipped (finished)  va/ccc=" in capsys.readouterr().out
    md = (fake.path / "sw" / "summary.md").read_text()
    assert "`va/ccc` (higher is better)" in md
    assert len(fake.calls()) == 4


def test_failed_seed_is_listed_and_others_finish(fake, capsys):
    fake.set_control(fail=[1])
    assert fake.sweep("--grid", "x=0,1", "--jobs", "2") == 1
    out = capsys.readouterr().out
    assert out.count("FAILED: error: boom") == 2
    rows = _csv(fake.path / "sw" / "summary.csv")
    assert rows[("x=0", "acc")]["n"] == "2"
    np.testing.assert_allclose(float(rows[("x=0", "acc")]["std"]),
                               np.std([_acc(0, 0), _acc(0, 2)], ddof=1))
    md = (fake.path / "sw" / "summary.md").read_text()
    assert "Failed runs (2)" in md and "`x=1` seed 1: `error: boom`" in md


def test_rerun_skips_finished_and_resumes_unfinished(fake, capsys):
    fake.set_control(die=[2])
    assert fake.sweep() == 1  # seed 2 died without final metrics
    assert "FAILED: training" in capsys.readouterr().out  # no error: line -> the last line
    assert len(fake.calls()) == 3
    assert fake.sweep() == 0
    out = capsys.readouterr().out
    assert out.count("skipped (finished)") == 2 and out.count("done in") == 1
    calls = fake.calls()
    assert len(calls) == 4 and "--config.seed=2" in calls[-1]["argv"]
    log = (fake.path / "sw" / "base" / "seed2" / "sweep.log").read_text()
    assert "training (resumed)" in log and log.count("$ ") == 2
    # More seeds in the same workdir extend the sweep; another --set does not.
    assert fake.sweep(seeds="0,1,2,3") == 0 and len(fake.calls()) == 5
    assert _csv(fake.path / "sw" / "summary.csv")[("base", "acc")]["n"] == "4"
    capsys.readouterr()
    assert fake.sweep("--set", "lr=1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --set") and "sweep.json" in err[0]


def test_jobs_two_gives_the_same_summary(fake):
    assert fake.sweep("--grid", "x=0,1,2", workdir="one") == 0
    assert fake.sweep("--grid", "x=0,1,2", "--jobs", "2", workdir="two") == 0
    assert (_csv(fake.path / "one" / "summary.csv")
            == _csv(fake.path / "two" / "summary.csv"))


@pytest.mark.parametrize("extra, flag", [
    (["--grid", "x"], "--grid"),
    (["--grid", "x="], "--grid"),
    (["--grid", "x=1,2,1"], "--grid"),
    (["--grid", "x=1", "--grid", "x=2"], "--grid"),
    (["--seeds", "0,0"], "--seeds"),
    (["--set", "lr"], "--set"),
    (["--set", "seed=3"], "--set"),
    (["--grid", "x=1", "--set", "x=2"], "--set"),
    (["--seeds", ""], "--seeds"),
    (["--seeds", "0,a"], "--seeds"),
    (["--config", "nope.py"], "--config"),
    (["--train-script", "nope.py"], "--train-script"),
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "two"], "--jobs"),
])
def test_bad_flags_are_one_line(fake, capsys, extra, flag):
    assert fake.sweep(*extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and flag in err[0]
    assert fake.calls() == []


def test_summarise_records_without_runs():
    records = [{"point": "base", "seed": 0, "status": "failed", "final": None,
                "error": "error: boom", "log": "sw/base/seed0/sweep.log"}]
    summary = sweep_summary.summarise(records)
    assert summary.metric is None and summary.points[0].n == 0
    assert "Failed runs (1)" in sweep_summary.format_markdown(summary, "cmd")


def test_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "affectjax.sweep", "--config", "nope.py",
                           "--seeds", "0", "--workdir", str(tmp_path / "sw")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --config: no such file: nope.py"
