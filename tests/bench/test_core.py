"""affectjax.bench runs end to end on a tiny model (no timing assertions)."""

import json
import math

import jax
import pytest

from affectjax import bench
from affectjax.bench import torch_reference as bench_torch


pytestmark = pytest.mark.usefixtures("fast_compiled")


def _check_summary(summary):
    assert summary["images_per_s"] > 0 and math.isfinite(summary["images_per_s"])
    assert 0 < summary["min_step_s"] <= summary["median_step_s"]
    assert summary["peak_memory_mb"] > 0


def test_bench_cli_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main([  # the settings of test_cct.py's single network: its programs are compiled once
        "--model", "efficientnet_tiny", "--batch-size", "4", "--image-size", "32",
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
    record = bench.run("efficientnet_tiny", batch_size=2, image_size=32, dtype="bfloat16", steps=1,
                       warmup=0, torch_reference_too=False)
    assert "torch" not in record
    _check_summary(record["affectjax"]["train_step"])
    assert "| - |" in bench.format_table(record)


def test_torch_reference_matches_tiny_architecture():
    """The PyTorch reference built from affectjax's block strings has the same parameter count."""
    from affectjax import models

    module = models.create("efficientnet_tiny")
    reference = bench_torch.torch_reference("efficientnet_tiny", module)
    shapes = jax.eval_shape(module.init, jax.random.key(0), jax.numpy.zeros((1, 32, 32, 3)))
    ours = sum(x.size for x in jax.tree.leaves(shapes["params"]))
    assert sum(p.numel() for p in reference.parameters()) == ours


def test_bad_arguments_are_clear():
    with pytest.raises(KeyError, match="efficientnet_b0"):
        bench.run("vit", steps=1)
    with pytest.raises(ValueError, match="--dtype"):
        bench.run("efficientnet_tiny", dtype="float16", steps=1)


def test_make_affectjax_train_step_matches_reference_loss():
    """The shared train step's loss is float64 cross-entropy of the train-mode logits."""
    import numpy as np
    from scipy.special import log_softmax

    setup = bench.make_affectjax_train_step(
        "efficientnet_tiny", batch_size=3, image_size=32, optimizer="sgd",
        model_kwargs={"depthwise_impl": "shift"},
    )
    assert setup.model.depthwise_impl == "shift"
    assert setup.images.shape == (3, 32, 32, 3) and setup.labels.shape == (3,)
    assert 0 <= int(setup.labels.min()) and int(setup.labels.max()) < setup.model.num_classes
    variables = {"params": setup.state["params"], "batch_stats": setup.state["batch_stats"]}
    apply = jax.jit(lambda v, x, key: setup.model.apply(  # jitted: one compile, not op by op
        v, x, train=True, mutable=["batch_stats"], rngs={"dropout": key}))
    (outputs, _), _ = apply(variables, setup.images, setup.key)
    logits = np.asarray(outputs["logits"], dtype=np.float64)
    expected = -log_softmax(logits, axis=-1)[np.arange(3), np.asarray(setup.labels)].mean()
    old_params = jax.tree.map(np.asarray, setup.state["params"])
    old_stats = jax.tree.map(np.asarray, setup.state["batch_stats"])
    state, loss = setup.step(setup.state, setup.images, setup.labels, setup.key)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-4)
    assert jax.tree.structure(state["params"]) == jax.tree.structure(old_params)
    # Every parameter gets an update and every BatchNorm running statistic moves.
    for old, new in ((old_params, state["params"]), (old_stats, state["batch_stats"])):
        changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), old, new)
        assert all(jax.tree.leaves(changed))


def test_make_affectjax_train_step_bad_names():
    with pytest.raises(KeyError, match="bfloat16"):
        bench.make_affectjax_train_step("efficientnet_tiny", batch_size=1, image_size=32,
                                        dtype="float16")
    with pytest.raises(KeyError, match="sgd"):
        bench.make_affectjax_train_step("efficientnet_tiny", batch_size=1, image_size=32,
                                        optimizer="lamb")
