"""Seeds × a grid of config overrides -> training runs -> mean ± std per grid point.

    python -m affectjax.sweep --config configs/mtl_heads_synthfaces.py:simultaneous \\
        --seeds 0,1,2 --grid balancer.name=ew,dwa,uw \\
        --set features.workdir=runs/quickstart --workdir runs/sweeps/mtl_balancers

Every grid point (the cartesian product of the ``--grid`` values) and seed is an ordinary
training run, the command a user would type::

    python train.py --config CONFIG --workdir WORKDIR/POINT/seedK --config.seed=K \\
        --config.KEY=VALUE ...   # the --set overrides, then the point's

run as a subprocess from the current directory, ``--jobs`` at a time. On disk::

    WORKDIR/sweep.json                 the spec: config, seeds, grid, sets
    WORKDIR/POINT/seedK/               the run's workdir (checkpoints, final_metrics.json)
    WORKDIR/POINT/seedK/sweep.log      its stdout and stderr (appended on each attempt)
    WORKDIR/summary.csv                point, metric, mean, std, n, min, max
    WORKDIR/summary.md                 the command, a table of mean ± std, failed runs
    WORKDIR/summary.png                the headline metric per point, seeds as dots

POINT names the point's overrides, keys sorted: ``balancer.name=dwa,optimizer.
learning_rate=0.001`` (characters other than letters, digits and ``._,=+-`` become ``_``,
and such a name, or one over 120 characters, ends with a hash of the overrides); ``base``
without a grid. Grid values are split at commas outside brackets and quotes, so
``--grid model.hidden=(128,),(256,)`` has two values.

Rerunning the same command resumes: a run with ``final_metrics.json`` is skipped (its
metrics are read), an unfinished one is started again in its workdir (``train.py``
resumes from its checkpoint). A rerun may add seeds or grid values; a different
``--config`` or ``--set`` in the same workdir is an error (the run directories do not
name them). A failed run (non-zero exit) is reported with its ``error:`` line and the
others go on; the exit status is 1 if any run failed.

The runs go through `affectjax.sweep_runner`, the statistics through
`affectjax.sweep_summary`: std is the sample std over seeds (ddof=1), 0 for one seed. The
headline metric is ``--metric``, else the runs' best-checkpoint metric (``final["best"]``,
whose ``mode`` "min" marks lower-is-better metrics such as NME).
Every method config's docstring gives the sweep command that reproduces its table.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import shlex
import sys
from typing import Any, Sequence

from affectjax import sweep_runner
from affectjax import sweep_summary

_KEY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")


class UsageError(Exception):
    """Bad command-line input: printed as one ``error:`` line, exit status 2."""


def split_values(text: str) -> list[str]:
    """Splits at commas outside (), [], {} and quotes: ``"(1,2),3"`` -> ``["(1,2)", "3"]``."""
    values, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i])
            start = i + 1
    return values + [text[start:]]


def parse_assignment(text: str, flag: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``(KEY, VALUE)``; a missing ``=`` or bad key is a UsageError."""
    key, eq, value = text.partition("=")
    if not eq or not _KEY.match(key.strip()):
        raise UsageError(f"{flag} {text!r}: expected KEY=VALUE with KEY a config path such "
                         "as optimizer.learning_rate")
    if key.strip() == "seed":
        raise UsageError(f"{flag} {text!r}: give seeds with --seeds")
    return key.strip(), value


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``; empty, non-integer or repeated seeds are UsageErrors."""
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: expected comma-separated integers, e.g. "
                         "0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: a seed is repeated")
    return seeds


def expand_grid(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    """The cartesian product of `grid`, in its key and value order; ``[{}]`` if empty."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*grid.values())]


def point_name(overrides: dict[str, str]) -> str:
    """A readable, filesystem-safe, deterministic directory name for a grid point."""
    raw = ",".join(f"{k}={overrides[k]}" for k in sorted(overrides)) or "base"
    safe = _UNSAFE.sub("_", raw)
    if safe != raw or len(safe) > 120:
        safe = f"{safe[:120]}-{hashlib.sha1(raw.encode()).hexdigest()[:8]}"
    return safe


def run_command(train_script: str, config: str, workdir: str, seed: int,
                overrides: Sequence[tuple[str, str]]) -> list[str]:
    """The ``train.py`` command line of one run (overrides in the order given)."""
    return [sys.executable, train_script, "--config", config, "--workdir", workdir,
            f"--config.seed={seed}"] + [f"--config.{k}={v}" for k, v in overrides]


def plan(args: argparse.Namespace) -> list[sweep_runner.Run]:
    """Every (point, seed) run of the sweep, points in grid order, then seeds."""
    runs = []
    for overrides in expand_grid(args.grid):
        point = point_name(overrides)
        for seed in args.seeds:
            workdir = os.path.join(args.workdir, point, f"seed{seed}")
            command = run_command(args.train_script, args.config, workdir, seed,
                                  list(args.set.items()) + list(overrides.items()))
            runs.append(sweep_runner.Run(point, seed, workdir, command))
    return runs


def check_spec(workdir: str, spec: dict[str, Any]) -> None:
    """Writes ``sweep.json``; raises UsageError if an earlier sweep there had another
    ``--config`` or ``--set`` (more seeds or grid values are fine)."""
    path = os.path.join(workdir, "sweep.json")
    if os.path.exists(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--workdir: {path} is not valid JSON ({exc}); "
                             "delete it or use another --workdir") from None
        for key, flag in (("config", "--config"), ("set", "--set")):
            if old.get(key) != spec[key]:
                raise UsageError(f"{flag}: {path} was written by a sweep with {flag} "
                                 f"{old.get(key)!r}, not {spec[key]!r}; use another --workdir")
    os.makedirs(workdir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parses and checks the flags (module docstring); raises UsageError on bad input."""
    p = _Parser(prog="python -m affectjax.sweep", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="config file (configs/NAME.py[:arg]).")
    p.add_argument("--seeds", required=True, help="comma-separated seeds, e.g. 0,1,2.")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="config key and its values (repeatable; cartesian product).")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every run (repeatable).")
    p.add_argument("--workdir", required=True, help="sweep directory, e.g. runs/sweeps/NAME.")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel (default 1).")
    p.add_argument("--metric", default=None, help="headline metric (default: the runs' "
                   "best-checkpoint metric).")
    p.add_argument("--mode", choices=("max", "min"), default=None,
                   help="direction of --metric (default: what the runs say, else max).")
    p.add_argument("--train-script", default="train.py", help="default: train.py.")
    args = p.parse_args(argv)
    args.seeds = parse_seeds(args.seeds)
    grid: dict[str, list[str]] = {}
    for text in args.grid:
        key, values = parse_assignment(text, "--grid")
        if key in grid:
            raise UsageError(f"--grid {text!r}: {key} is given twice")
        grid[key] = split_values(values)
        if "" in grid[key] or len(set(grid[key])) != len(grid[key]):
            raise UsageError(f"--grid {text!r}: a value is empty or repeated")
    sets: dict[str, str] = {}
    for text in args.set:
        key, value = parse_assignment(text, "--set")
        if key in sets or key in grid:
            raise UsageError(f"--set {text!r}: {key} is also given by another --set or --grid")
        sets[key] = value
    args.grid, args.set = grid, sets
    if not os.path.isfile(args.config.split(":")[0]):
        raise UsageError(f"--config: no such file: {args.config.split(':')[0]}")
    if not os.path.isfile(args.train_script):
        raise UsageError(f"--train-script: no such file: {args.train_script} (run from the "
                         "repository root or pass --train-script)")
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: must be at least 1")
    return args


def main(argv: Sequence[str]) -> int:
    """Parses `argv` (without the program name), runs the sweep; returns the exit status."""
    try:
        args = parse_args(argv)
        check_spec(args.workdir, {"config": args.config, "seeds": args.seeds,
                                  "grid": args.grid, "set": args.set})
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs = plan(args)
    print(f"{len(runs)} runs (grid points: {len(runs) // len(args.seeds)}, seeds: "
          f"{len(args.seeds)}) in {args.workdir}", flush=True)
    try:
        records = sweep_runner.run_all(runs, jobs=args.jobs, metric=args.metric)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    summary = sweep_summary.summarise(records, metric=args.metric, mode=args.mode)
    command = "python -m affectjax.sweep " + shlex.join(argv)
    paths = sweep_summary.write_summary(summary, args.workdir, command)
    if summary.metric and not any(summary.metric in p.stats for p in summary.points) \
            and len(summary.failed) < len(records):
        print(f"warning: no finished run has the metric {summary.metric!r} (they have: "
              f"{', '.join(summary.metrics[1:])})", file=sys.stderr)
    print("wrote " + ", ".join(paths))
    if summary.failed:
        print(f"{len(summary.failed)} of {len(records)} runs failed (listed in {paths[1]})")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
