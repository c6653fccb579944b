"""Timing and memory helpers shared by `affectjax.bench` and `affectjax.bench.torch_reference`.

A measurement runs `warmup` untimed calls, then `steps` timed ones; the summary gives
images/s from the median step time. Peak memory on CPU is the process's peak resident set
size (``VmHWM``), reset before each measurement through ``/proc/self/clear_refs``.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


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


def time_steps(fn: Callable[[], Any], steps: int, warmup: int) -> list[float]:
    """Calls `fn` `warmup` times untimed, then returns the seconds of `steps` timed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def summary(
    times: list[float], batch: int, compile_s: float | None, peak_mb: float
) -> dict[str, Any]:
    """images/s (from the median), median and min step seconds, compile time, peak MiB."""
    median = statistics.median(times)
    return {
        "images_per_s": batch / median,
        "median_step_s": median,
        "min_step_s": min(times),
        "compile_s": compile_s,
        "peak_memory_mb": peak_mb,
    }
