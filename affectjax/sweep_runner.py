"""Runs the training runs of a sweep as subprocesses: resume, parallel jobs, progress lines.

`affectjax.sweep` parses the command line and plans the runs; `run_all` runs them. A run
whose ``final_metrics.json`` exists is skipped (its metrics are read); any other is started
with its command in its workdir (``train.py`` resumes from a checkpoint there), its stdout
and stderr appended to ``<run workdir>/sweep.log``. A failed run (non-zero exit) is
reported with the last ``error:`` line of its log (else the last non-empty line) and does
not stop the others.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shlex
import subprocess
import threading
import time
from typing import Any, NamedTuple, Sequence

from affectjax import sweep_summary


class Run(NamedTuple):
    """One training run of the sweep."""
    point: str
    seed: int
    workdir: str
    command: list[str]


def _error_line(text: str, returncode: int) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    if errors or lines:
        return (errors or lines)[-1][:300]
    return f"exit status {returncode}"


class _Runner:
    """Runs `Run`s as subprocesses; `stop` terminates those still running."""

    def __init__(self):
        self.live: set[subprocess.Popen] = set()
        self.lock = threading.Lock()

    def __call__(self, run: Run) -> dict[str, Any]:
        os.makedirs(run.workdir, exist_ok=True)
        log = os.path.join(run.workdir, "sweep.log")
        start = time.perf_counter()
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(run.command)}\n")
            f.flush()
            offset = f.tell()
            proc = subprocess.Popen(run.command, stdout=f, stderr=subprocess.STDOUT)
            with self.lock:
                self.live.add(proc)
            returncode = proc.wait()
            with self.lock:
                self.live.discard(proc)
        record = {"point": run.point, "seed": run.seed, "workdir": run.workdir, "log": log,
                  "seconds": time.perf_counter() - start, "returncode": returncode}
        final = _read_final(run.workdir)
        if returncode == 0 and final is not None:
            return {**record, "status": "done", "final": final}
        with open(log, errors="replace") as f:
            f.seek(offset)
            error = _error_line(f.read(), returncode)
        if returncode == 0:
            error = "exited with status 0 but wrote no final_metrics.json"
        return {**record, "status": "failed", "final": None, "error": error}

    def stop(self) -> None:
        with self.lock:
            for proc in self.live:
                proc.terminate()


def _read_final(workdir: str) -> dict[str, Any] | None:
    path = os.path.join(workdir, "final_metrics.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):  # absent or cut short: run it again
        return None


def _progress(i: int, total: int, record: dict[str, Any], metric: str | None) -> str:
    head = f"[{i}/{total}] {record['point']} seed{record['seed']}"
    if record["status"] == "failed":
        return f"{head}  FAILED: {record['error']}  (log: {record['log']})"
    what = ("skipped (finished)" if record["status"] == "skipped"
            else f"done in {record['seconds']:.0f} s")
    values = sweep_summary.run_metrics(record["final"])
    name = metric or (record["final"].get("best") or {}).get("metric")
    shown = f"  {name}={values[name]:.4g}" if name in values else ""
    return f"{head}  {what}{shown}"


def run_all(runs: Sequence[Run], *, jobs: int, metric: str | None) -> list[dict[str, Any]]:
    """Runs the unfinished `runs` (`jobs` at a time); one progress line per run.

    Returns one record per run, in the order of `runs` (see `sweep_summary.summarise`).
    """
    records: dict[int, dict[str, Any]] = {}
    count = 0
    for index, run in enumerate(runs):
        final = _read_final(run.workdir)
        if final is not None:
            records[index] = {"point": run.point, "seed": run.seed, "workdir": run.workdir,
                              "status": "skipped", "final": final}
            count += 1
            print(_progress(count, len(runs), records[index], metric), flush=True)
    runner = _Runner()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(runner, run): i for i, run in enumerate(runs)
                   if i not in records}
        try:
            for future in concurrent.futures.as_completed(futures):
                records[futures[future]] = future.result()
                count += 1
                print(_progress(count, len(runs), records[futures[future]], metric),
                      flush=True)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            runner.stop()
            raise
    return [records[i] for i in range(len(runs))]
