"""affectjax.bench.timing: interleaving, round bookkeeping, the bootstrap interval, overlap."""

import statistics

import numpy as np
import pytest

from affectjax.bench import timing


def _recorder(log, name):
    return lambda: log.append(name)


def test_interleave_alternates_the_order_from_round_to_round():
    log = []
    fns = {"a": _recorder(log, "a"), "b": _recorder(log, "b")}
    times = timing.interleave(fns, rounds=4, steps_per_round=2)
    assert log == list("aabb" "bbaa" "aabb" "bbaa")
    assert {name: [len(r) for r in rounds] for name, rounds in times.items()} == {
        "a": [2, 2, 2, 2], "b": [2, 2, 2, 2]}


def test_interleave_reverses_three_functions_too():
    log = []
    fns = {name: _recorder(log, name) for name in "abc"}
    timing.interleave(fns, rounds=3, steps_per_round=1)
    assert log == list("abc" "cba" "abc")


def test_interleave_keeps_each_step_in_its_round():
    """With a fake clock, step k of round r of each function is the time that call took."""
    now = [0.0]
    durations = {"a": iter(range(1, 100)), "b": iter(range(100, 200))}

    def step(name):
        def run():
            now[0] += next(durations[name])
        return run

    times = timing.interleave({"a": step("a"), "b": step("b")}, rounds=3, steps_per_round=2,
                              clock=lambda: now[0])
    assert times == {"a": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                     "b": [[100.0, 101.0], [102.0, 103.0], [104.0, 105.0]]}


def test_repeat_rounds_runs_each_group_and_records_the_load():
    log = []
    groups = {"forward": {"a": _recorder(log, "fa"), "b": _recorder(log, "fb")},
              "train_step": {"a": _recorder(log, "ta"), "b": _recorder(log, "tb")}}
    repeats = timing.repeat_rounds(groups, rounds=2, steps_per_round=1, repeat=3)
    assert log == ["fa", "fb", "fb", "fa", "ta", "tb", "tb", "ta"] * 3
    assert len(repeats) == 3
    for rep in repeats:
        assert len(rep["load_average_before"]) == 3 and len(rep["load_average_after"]) == 3
        assert set(rep["rounds_s"]) == {"forward", "train_step"}
        assert all(len(rounds) == 2 and all(len(r) == 1 for r in rounds)
                   for by_name in rep["rounds_s"].values() for rounds in by_name.values())


def test_warm_up_calls_then_reads_the_peak():
    log = []
    prepared = timing.warm_up(_recorder(log, "a"), 3, lambda: float(len(log)), compile_s=2.5)
    assert log == ["a"] * 3
    assert prepared.peak_memory_mb == 3.0 and prepared.compile_s == 2.5
    prepared.step()
    assert len(log) == 4


def test_summary_pools_all_rounds():
    s = timing.summary([[3.0, 1.0], [2.0, 4.0], [5.0, 0.5]], batch=10)
    assert s == {"images_per_s": 10 / 2.5, "median_step_s": 2.5, "min_step_s": 0.5}


def test_ratio_interval_of_a_twice_slower_reference_is_exactly_two():
    rng = np.random.default_rng(3)
    a = rng.uniform(1.0, 2.0, size=(7, 3))
    assert timing.ratio_interval(a.tolist(), (2 * a).tolist()) == (2.0, 2.0, 2.0)


def test_ratio_interval_of_identical_times_is_one_and_of_like_times_contains_one():
    rng = np.random.default_rng(1)
    a = rng.lognormal(0.0, 0.1, size=(7, 3)).tolist()
    assert timing.ratio_interval(a, a) == (1.0, 1.0, 1.0)
    b = rng.lognormal(0.0, 0.1, size=(7, 3)).tolist()
    ratio, lo, hi = timing.ratio_interval(a, b)
    assert lo <= 1.0 <= hi and lo <= ratio <= hi and hi - lo < 0.3


def test_ratio_interval_matches_a_plain_bootstrap():
    """The same resampling written as a loop over resamples, with Python's median."""
    rng = np.random.default_rng(7)
    a = rng.uniform(1.0, 1.5, size=(5, 3)).tolist()
    b = rng.uniform(1.2, 1.8, size=(5, 3)).tolist()
    resamples, seed = 300, 11
    idx = np.random.default_rng(seed).integers(0, 5, size=(resamples, 5))
    stats = []
    for row in idx:
        pooled_a = [t for i in row for t in a[i]]
        pooled_b = [t for i in row for t in b[i]]
        stats.append(statistics.median(pooled_b) / statistics.median(pooled_a))
    expected = (statistics.median(sum(b, [])) / statistics.median(sum(a, [])),
                *np.percentile(stats, [2.5, 97.5]))
    got = timing.ratio_interval(a, b, resamples=resamples, seed=seed)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert timing.ratio_interval(a, b, resamples=resamples, seed=seed) == got
    assert got[1] < got[0] < got[2]


def test_ratio_interval_needs_equal_rounds():
    with pytest.raises(ValueError, match="R x K"):
        timing.ratio_interval([[1.0, 2.0]], [[1.0]])
    with pytest.raises(ValueError, match="R x K"):
        timing.ratio_interval([], [])


@pytest.mark.parametrize("intervals, overlap", [
    ([[1.0, 2.0]], True),
    ([[1.0, 2.0], [1.5, 3.0]], True),
    ([[1.0, 2.0], [2.0, 3.0]], True),  # touching ends share a point
    ([[1.0, 2.0], [2.1, 3.0]], False),
    ([[1.0, 3.0], [2.0, 4.0], [2.5, 5.0]], True),
    ([[1.0, 3.0], [2.0, 4.0], [3.5, 5.0]], False),  # the first and the last are apart
])
def test_intervals_overlap(intervals, overlap):
    assert timing.intervals_overlap(intervals) is overlap


def test_results_pool_repeats_and_keep_every_round():
    """Repeat 1: B exactly 2x A's time; repeat 2: exactly 3x. Intervals [2, 2] and [3, 3]."""
    a1, a2 = [[1.0, 1.0], [2.0, 2.0]], [[1.0, 3.0], [1.0, 3.0]]
    repeats = [
        {"load_average_before": [0.1] * 3, "load_average_after": [0.2] * 3,
         "rounds_s": {"train_step": {"a": a1, "b": [[2 * t for t in r] for r in a1]}}},
        {"load_average_before": [0.3] * 3, "load_average_after": [0.4] * 3,
         "rounds_s": {"train_step": {"a": a2, "b": [[3 * t for t in r] for r in a2]}}},
    ]
    prepared = {"train_step": {"a": timing.Prepared(None, 1.5, 100.0),
                               "b": timing.Prepared(None, None, 200.0)}}
    pairs = {"train_step": {"a_over_b": ("a", "b"), "a_over_c": ("a", "c")}}
    res = timing.results(repeats, 4, pairs, prepared)
    assert set(res) == {"summary", "ratio", "ratio_interval", "intervals_overlap", "repeats"}
    a = res["summary"]["train_step"]["a"]
    assert a == {"images_per_s": 4 / 1.5, "median_step_s": 1.5, "min_step_s": 1.0,
                 "compile_s": 1.5, "peak_memory_mb": 100.0}
    assert res["summary"]["train_step"]["b"]["compile_s"] is None
    assert res["ratio"] == {"a_over_b": 3.5 / 1.5}  # pooled b: 2, 2, 3, 3, 4, 4, 9, 9
    assert res["intervals_overlap"] == {"a_over_b": False}
    for rep, k, a_rounds in zip(res["repeats"], (2.0, 3.0), (a1, a2)):
        assert rep["ratio"] == {"a_over_b": k} and rep["ratio_interval"] == {"a_over_b": [k, k]}
        assert rep["summary"]["train_step"]["a"]["rounds_s"] == a_rounds
        assert "compile_s" not in rep["summary"]["train_step"]["a"]
    assert res["repeats"][1]["load_average_before"] == [0.3] * 3


def test_check_settings_names_the_flag():
    timing.check_settings(rounds=1, steps_per_round=1, warmup=0, repeat=1)
    for bad, flag in (({"rounds": 0}, "--rounds"), ({"steps_per_round": 0}, "--steps-per-round"),
                      ({"warmup": -1}, "--warmup"), ({"repeat": 1.5}, "--repeat")):
        settings = {"rounds": 2, "steps_per_round": 2, "warmup": 1, "repeat": 2, **bad}
        with pytest.raises(ValueError, match=flag):
            timing.check_settings(**settings)
