"""The CCT ensemble benchmark (`python -m affectjax.bench --method cct`) on a tiny model."""

import json
import math

import pytest

from affectjax import bench
from affectjax.bench import cct


pytestmark = pytest.mark.usefixtures("fast_compiled")

VARIANTS = ("single", "vmapped", "unrolled", "sequential_jax", "torch")


def test_cct_cli_record_and_vmapped_loss_equals_sequential(tmp_path, capsys):
    out = tmp_path / "cct.json"
    returned = bench.main([
        "--method", "cct", "--num-networks", "2", "--model", "efficientnet_tiny",
        "--batch-size", "4", "--image-size", "32", "--steps", "2", "--warmup", "1",
        "--json", str(out),
    ])
    printed = capsys.readouterr().out
    for label in cct.VARIANTS.values():
        assert f"| {label} |" in printed
    assert "M=2" in printed and "vmapped / single step time" in printed
    record = json.loads(out.read_text())
    assert record == json.loads(json.dumps(returned))
    assert record["config"] == {
        "model": "efficientnet_tiny", "method": "cct", "num_networks": 2, "lam": 0.5,
        "batch_size": 4, "image_size": 32, "dtype": "float32", "steps": 2, "warmup": 1,
        "optimizer": "adam",
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
        cct.run("efficientnet_tiny", num_networks=int(bad), steps=1)


def test_num_networks_without_cct_is_refused():
    with pytest.raises(SystemExit, match="--method cct"):
        bench.main(["--num-networks", "2", "--model", "efficientnet_tiny"])
