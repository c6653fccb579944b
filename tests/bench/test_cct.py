"""The CCT ensemble benchmark (`python -m affectjax.bench --method cct`) on a tiny model."""

import json
import math

import pytest

from affectjax import bench
from affectjax.bench import cct
from affectjax.bench import report


pytestmark = pytest.mark.usefixtures("fast_compiled")

VARIANTS = ("single", "vmapped", "unrolled", "sequential_jax", "torch")


def test_cct_cli_record_and_vmapped_loss_equals_sequential(tmp_path, capsys):
    out = tmp_path / "cct.json"
    returned = bench.main([
        "--method", "cct", "--num-networks", "2", "--model", "efficientnet_tiny",
        "--batch-size", "4", "--image-size", "32", "--rounds", "2", "--steps-per-round", "1",
        "--warmup", "1", "--json", str(out),
    ])
    printed = capsys.readouterr().out
    for label in report.VARIANTS.values():
        assert f"| {label} |" in printed
    assert "M=2" in printed and "| vmapped / single step time" in printed
    record = json.loads(out.read_text())
    assert record == json.loads(json.dumps(returned))
    assert record["config"] == {
        "model": "efficientnet_tiny", "method": "cct", "num_networks": 2, "lam": 0.5,
        "batch_size": 4, "image_size": 32, "dtype": "float32", "warmup": 1, "optimizer": "adam",
        "rounds": 2, "steps_per_round": 1, "repeat": 1,
        "bootstrap": {"resamples": 2000, "seed": 0, "level": 0.95},
    }
    assert set(record["cct"]) == set(VARIANTS)
    for name in VARIANTS:
        summary = record["cct"][name]
        assert summary["images_per_s"] > 0 and math.isfinite(summary["images_per_s"])
        assert 0 < summary["min_step_s"] <= summary["median_step_s"]
        assert summary["peak_memory_mb"] > 0
        assert summary["first_loss"] > 0 and math.isfinite(summary["first_loss"])
    assert record["cct"]["torch"]["compile_s"] is None
    assert record["cct"]["vmapped"]["compile_s"] > 0
    t = {name: record["cct"][name]["median_step_s"] for name in VARIANTS}
    assert set(record["ratio_interval"]) == set(record["ratio"]) == set(cct.RATIOS)
    assert [len(r) for r in record["repeats"][0]["cct"]["torch"]["rounds_s"]] == [1, 1]
    assert record["ratio"] == pytest.approx({
        "vmapped_cost_over_single": t["vmapped"] / t["single"],
        "unrolled_cost_over_single": t["unrolled"] / t["single"],
        "vmapped_speedup_over_unrolled": t["unrolled"] / t["vmapped"],
        "vmapped_speedup_over_sequential_jax": t["sequential_jax"] / t["vmapped"],
        "vmapped_speedup_over_torch": t["torch"] / t["vmapped"],
    })
    # Same initialisation and dropout keys: the stacked cct_loss and the sum of the members'
    # (CE + KL to the others' constant outputs) losses agree on the first step.
    vmapped, sequential = record["cct"]["vmapped"], record["cct"]["sequential_jax"]
    assert vmapped["first_loss"] == pytest.approx(sequential["first_loss"], rel=1e-4)
    assert record["cct"]["unrolled"]["first_loss"] == pytest.approx(vmapped["first_loss"],
                                                                    rel=1e-5)


@pytest.mark.parametrize("bad", ["0", "5"])
def test_bad_num_networks_is_one_clear_line(bad):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--method", "cct", "--num-networks", bad, "--model", "efficientnet_tiny"])
    message = str(exc.value.code)
    assert "--num-networks" in message and bad in message and "\n" not in message
    with pytest.raises(ValueError, match="--num-networks"):
        cct.run("efficientnet_tiny", num_networks=int(bad), rounds=1)


def test_num_networks_without_cct_is_refused():
    with pytest.raises(SystemExit, match="--method cct"):
        bench.main(["--num-networks", "2", "--model", "efficientnet_tiny"])


def test_cct_interleaves_all_variants_and_keeps_every_round(fake_steps):
    record = cct.run("efficientnet_tiny", num_networks=2, rounds=2, steps_per_round=1,
                     warmup=0, repeat=2)
    assert record == json.loads(json.dumps(record))
    order = [f"{name}/train_step" for name in VARIANTS]
    assert fake_steps == (order + order[::-1]) * 2
    assert len(record["repeats"]) == 2 and set(record["intervals_overlap"]) == set(cct.RATIOS)
    for rep in record["repeats"]:
        assert set(rep) == {"load_average_before", "load_average_after", "cct", "ratio",
                            "ratio_interval"}
        assert all(len(rep["cct"][name]["rounds_s"]) == 2 for name in VARIANTS)
    assert all(record["cct"][name]["first_loss"] == 0.5 for name in VARIANTS)
