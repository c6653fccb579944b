"""Timing, memory and statistics shared by `affectjax.bench.core` and `affectjax.bench.cct`.

The method. Each step function is built (a JAX one compiled, its compile time measured
apart) and warmed up with `warmup` untimed calls; its peak memory is read after its warm-up
(`warm_up`). Then `interleave` runs `rounds` rounds; in each round every function runs
`steps_per_round` timed steps, one function after the other, in the given order in even
rounds and in the reverse order in odd rounds (A B, B A, A B, ...). A drift of the machine
(load, clock speed, caches) thus falls on all functions alike, and the effect of going first
or second cancels. `repeat_rounds` reruns the timed part `repeat` times (no new compilation
or warm-up) and records the load average before and after each repeat.

A `summary` pools a function's step times over its rounds: the median and minimum step
seconds, and images/s from the median. `ratio_interval` gives the throughput ratio of two
functions and a paired bootstrap 95 % interval over rounds; `intervals_overlap` says whether
the intervals of several repeats share a point. Peak memory on CPU is the process's peak
resident set size (``VmHWM``), reset before each compilation or warm-up through
``/proc/self/clear_refs``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

Rounds = list[list[float]]
"""The step seconds of one function: one list of `steps_per_round` floats per round."""

BOOTSTRAP = {"resamples": 2000, "seed": 0, "level": 0.95}
"""The settings of `ratio_interval` that the benchmark uses; recorded in its config."""


def reset_peak_rss() -> bool:
    """Resets the peak RSS counter (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """The process's peak resident set size in MiB since the last reset."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_average() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages (`os.getloadavg`)."""
    return list(os.getloadavg())


def check_settings(*, rounds: int, steps_per_round: int, warmup: int, repeat: int) -> None:
    """Raises a one-line ValueError naming the flag unless rounds, steps per round and
    repeat are integers >= 1 and warmup one >= 0."""
    for flag, value, least in (("--rounds", rounds, 1), ("--steps-per-round", steps_per_round, 1),
                               ("--warmup", warmup, 0), ("--repeat", repeat, 1)):
        if type(value) is not int or value < least:
            raise ValueError(f"{flag} must be an integer >= {least}, got {value!r}")


class Prepared(NamedTuple):
    """A step function ready to time, with what its build and warm-up measured.

    Attributes:
        step: runs one step and blocks until its results exist; returns what the step returns.
        compile_s: seconds the JAX compilation took; None for PyTorch.
        peak_memory_mb: peak memory in MiB since the caller's reset (before the
            compilation of a JAX step, after the build of a PyTorch one) through the warm-up.
    """

    step: Callable[[], Any]
    compile_s: float | None
    peak_memory_mb: float


def warm_up(step: Callable[[], Any], warmup: int, peak_mb: Callable[[], float],
            compile_s: float | None = None) -> Prepared:
    """Calls `step` `warmup` times untimed, then reads `peak_mb()` (the peak since the
    caller's reset) and returns the `Prepared` step."""
    for _ in range(warmup):
        step()
    return Prepared(step, compile_s, peak_mb())


def compile_timed(jitted: Any, *args: Any) -> tuple[Any, float]:
    """`jitted.lower(*args).compile()` and the seconds it took."""
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def interleave(fns: dict[str, Callable[[], Any]], rounds: int, steps_per_round: int,
               clock: Callable[[], float] = time.perf_counter) -> dict[str, Rounds]:
    """Times `fns` in interleaved rounds.

    Round r runs `steps_per_round` timed calls of each function, the functions in the order of
    `fns` when r is even and in the reverse order when r is odd: with two functions A, B and
    K steps, A×K B×K, then B×K A×K, then A×K B×K, ...

    Args:
        fns: name -> a function that runs one step and blocks until it is done.
        rounds: the number of rounds.
        steps_per_round: timed calls of each function per round.
        clock: the time source in seconds (`time.perf_counter`).

    Returns:
        name -> `rounds` lists of `steps_per_round` step seconds, in the order they ran.
    """
    names = list(fns)
    times: dict[str, Rounds] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            steps = []
            for _ in range(steps_per_round):
                start = clock()
                fns[name]()
                steps.append(clock() - start)
            times[name].append(steps)
    return times


def repeat_rounds(groups: dict[str, dict[str, Callable[[], Any]]], *, rounds: int,
                  steps_per_round: int, repeat: int) -> list[dict[str, Any]]:
    """Runs `interleave` on each group in turn (e.g. the forward steps, then the train steps),
    `repeat` times.

    Returns:
        One dict per repeat: `load_average_before` and `load_average_after` (`load_average`
        around the repeat) and `rounds_s`, group -> name -> `Rounds`.
    """
    repeats = []
    for _ in range(repeat):
        before = load_average()
        rounds_s = {group: interleave(fns, rounds, steps_per_round)
                    for group, fns in groups.items()}
        repeats.append({"load_average_before": before, "load_average_after": load_average(),
                        "rounds_s": rounds_s})
    return repeats


def pooled_rounds(repeats: list[dict[str, Any]], group: str, name: str) -> Rounds:
    """The rounds of `name` in `group` of all repeats (`repeat_rounds`), one after another."""
    return [steps for rep in repeats for steps in rep["rounds_s"][group][name]]


def summary(rounds: Rounds, batch: int) -> dict[str, float]:
    """Over all steps of all rounds: images/s (from the median), median and min step seconds."""
    steps = [t for steps in rounds for t in steps]
    median = statistics.median(steps)
    return {"images_per_s": batch / median, "median_step_s": median, "min_step_s": min(steps)}


def ratio_interval(a_rounds: Rounds, b_rounds: Rounds, *, resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """The throughput ratio of A over B and its paired percentile-bootstrap interval over rounds.

    The statistic is B's median step time over A's, the medians of the pooled step times
    (every step of every round), i.e. the ratio of the images/s that `summary` reports.
    Round r of A and round r of B ran side by side (`interleave`), so they are resampled
    together: a resample is R round indices drawn with replacement, all at once as
    ``numpy.random.default_rng(seed).integers(0, R, size=(resamples, R))``; it pools the
    steps of those rounds of A and of B and computes the statistic. The interval is the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the `resamples` statistics
    (`numpy.percentile`, linear interpolation). The same times and seed give the same
    interval.

    Args:
        a_rounds, b_rounds: the `Rounds` of A and B, both R rounds of K steps.
        resamples: the number of bootstrap resamples.
        seed: the seed of the resampling.
        level: the interval's coverage.

    Returns:
        `(ratio, lo, hi)`; a ratio > 1 means A is faster.

    Raises:
        ValueError: the rounds are not both R x K with R, K >= 1.
    """
    a, b = np.asarray(a_rounds, dtype=np.float64), np.asarray(b_rounds, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"need two equal R x K sets of rounds, got {a.shape} and {b.shape}")
    ratio = float(np.median(b) / np.median(a))
    idx = np.random.default_rng(seed).integers(0, a.shape[0], size=(resamples, a.shape[0]))
    stats = (np.median(b[idx].reshape(resamples, -1), axis=1)
             / np.median(a[idx].reshape(resamples, -1), axis=1))
    lo, hi = np.percentile(stats, [50 * (1 - level), 50 * (1 + level)])
    return ratio, float(lo), float(hi)


def compare(rounds_s: dict[str, dict[str, Rounds]], batch: int,
            pairs: dict[str, dict[str, tuple[str, str]]]) -> dict[str, Any]:
    """Summaries of each function's rounds and the throughput ratios of the given pairs.

    Args:
        rounds_s: group -> name -> `Rounds`; the names of a group interleaved together.
        batch: images per step.
        pairs: group -> ratio name -> (A, B) for `ratio_interval(A, B)` with the settings
            `BOOTSTRAP`; ratio names are unique over all groups, and pairs that name a
            function missing from the group are left out.

    Returns:
        `{"summary": {group: {name: summary}}, "ratio": {ratio name: ratio},
        "ratio_interval": {ratio name: [lo, hi]}}`.
    """
    out: dict[str, Any] = {"summary": {}, "ratio": {}, "ratio_interval": {}}
    for group, by_name in rounds_s.items():
        out["summary"][group] = {name: summary(r, batch) for name, r in by_name.items()}
        for key, (a, b) in pairs.get(group, {}).items():
            if a in by_name and b in by_name:
                ratio, lo, hi = ratio_interval(by_name[a], by_name[b], **BOOTSTRAP)
                out["ratio"][key], out["ratio_interval"][key] = ratio, [lo, hi]
    return out


def results(repeats: list[dict[str, Any]], batch: int,
            pairs: dict[str, dict[str, tuple[str, str]]],
            prepared: dict[str, dict[str, Prepared]]) -> dict[str, Any]:
    """The summaries and ratios of `repeat_rounds`' output, pooled and per repeat.

    Args:
        repeats: `repeat_rounds`' list.
        batch: images per step.
        pairs: as in `compare`.
        prepared: group -> name -> the `Prepared` step (for compile time and peak memory).

    Returns:
        `compare` of all repeats' rounds pooled, each summary with `compile_s` and
        `peak_memory_mb` added; ``intervals_overlap`` (ratio name -> whether the repeats'
        intervals overlap; true for one repeat); and ``repeats``: per repeat its
        `load_average_before`, `load_average_after` and `compare`, each summary with its
        `Rounds` added as ``rounds_s``.
    """
    pooled = {group: {name: pooled_rounds(repeats, group, name) for name in by_name}
              for group, by_name in prepared.items()}
    out = compare(pooled, batch, pairs)
    for group, by_name in out["summary"].items():
        for name, s in by_name.items():
            s.update(compile_s=prepared[group][name].compile_s,
                     peak_memory_mb=prepared[group][name].peak_memory_mb)
    out["repeats"] = []
    for rep in repeats:
        part = compare(rep["rounds_s"], batch, pairs)
        for group, by_name in part["summary"].items():
            for name, s in by_name.items():
                s["rounds_s"] = rep["rounds_s"][group][name]
        out["repeats"].append({"load_average_before": rep["load_average_before"],
                               "load_average_after": rep["load_average_after"], **part})
    out["intervals_overlap"] = {
        key: intervals_overlap([rep["ratio_interval"][key] for rep in out["repeats"]])
        for key in out["ratio"]}
    return out


def measure(prepared: dict[str, dict[str, Prepared]], *, batch: int,
            pairs: dict[str, dict[str, tuple[str, str]]], rounds: int, steps_per_round: int,
            repeat: int) -> dict[str, Any]:
    """`repeat_rounds` over the `Prepared` steps (group -> name -> prepared), then `results`."""
    repeats = repeat_rounds({group: {name: p.step for name, p in by_name.items()}
                             for group, by_name in prepared.items()},
                            rounds=rounds, steps_per_round=steps_per_round, repeat=repeat)
    return results(repeats, batch, pairs, prepared)


def intervals_overlap(intervals: Sequence[Sequence[float]]) -> bool:
    """Whether all `[lo, hi]` intervals share a point (on a line: whether every two overlap)."""
    return max(lo for lo, _ in intervals) <= min(hi for _, hi in intervals)
