"""affectjax.bench runs end to end on a tiny model (no timing assertions)."""

import json
import math

import jax
import pytest

from affectjax import bench


@pytest.fixture(autouse=True)
def _fast_compile():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


def _check_summary(summary):
    assert summary["images_per_s"] > 0 and math.isfinite(summary["images_per_s"])
    assert 0 < summary["min_step_s"] <= summary["median_step_s"]
    assert summary["peak_memory_mb"] > 0


def test_bench_cli_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main([
        "--model", "efficientnet_tiny", "--batch-size", "2", "--image-size", "32",
        "--steps", "1", "--warmup", "1", "--optimizer", "adam", "--json", str(out),
    ])
    printed = capsys.readouterr().out
    assert "| forward |" in printed and "| train_step |" in printed
    assert "efficientnet_tiny" in printed and ("device cpu" in printed or "device gpu" in printed)
    record = json.loads(out.read_text())
    assert record["config"]["model"] == "efficientnet_tiny"
    for side in ("affectjax", "torch"):
        for phase in ("forward", "train_step"):
            _check_summary(record[side][phase])
    assert record["affectjax"]["train_step"]["compile_s"] > 0
    assert record["ratio"]["train_step"] > 0


def test_bench_without_torch_and_bfloat16():
    record = bench.run("efficientnet_tiny", batch_size=2, image_size=32, dtype="bfloat16", steps=1, warmup=0,
                       torch_reference_too=False)
    assert "torch" not in record
    _check_summary(record["affectjax"]["train_step"])
    assert "| - |" in bench.format_table(record)


def test_torch_reference_matches_tiny_architecture():
    """The PyTorch reference built from affectjax's block strings has the same parameter count."""
    from affectjax import models

    module = models.create("efficientnet_tiny")
    reference = bench.torch_reference("efficientnet_tiny", module)
    shapes = jax.eval_shape(module.init, jax.random.key(0), jax.numpy.zeros((1, 32, 32, 3)))
    assert sum(p.numel() for p in reference.parameters()) == sum(x.size for x in jax.tree.leaves(shapes["params"]))


def test_bad_arguments_are_clear():
    with pytest.raises(KeyError, match="efficientnet_b0"):
        bench.run("vit", steps=1)
    with pytest.raises(ValueError, match="--dtype"):
        bench.run("efficientnet_tiny", dtype="float16", steps=1)
