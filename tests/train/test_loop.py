"""End to end: the quickstart config, shrunk, through `run`; resume after SIGKILL; 4 devices.

One in-process run (the reference) is shared by the tests of this module; the resume and
multi-device tests run the same config in subprocesses and compare their final metrics
with it.
"""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import quickstart  # noqa: E402  pylint: disable=wrong-import-position

import jax  # noqa: E402  pylint: disable=wrong-import-position
import orbax.checkpoint as ocp  # noqa: E402  pylint: disable=wrong-import-position

from affectjax import methods  # noqa: E402
from affectjax.train import loop  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train import setup  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.checkpoint import Checkpointer, restore_stored  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.errors import DataError  # noqa: E402  pylint: disable=wrong-import-position

TOTAL_STEPS = 9  # 1 epoch head-only + 2 epochs all weights, 3 steps per epoch.

DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    import ml_collections
    from affectjax import methods
    from affectjax.train import checkpoint

    config = ml_collections.ConfigDict(json.load(open(sys.argv[1])))
    kill_at = int(sys.argv[3])
    if kill_at:
        save = checkpoint.Checkpointer.save
        def save_then_die(self, state, meta, *, best=False):
            save(self, state, meta, best=best)
            if not best and int(state.step) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        checkpoint.Checkpointer.save = save_then_die
    methods.run(config, sys.argv[2])
""")


def tiny_config(data_dir):
    """configs/quickstart.py shrunk: 32 px, efficientnet_tiny, 9 steps in two phases."""
    c = quickstart.get_config()
    c.model.backbone = "efficientnet_tiny"
    c.model.width_multiplier = 1.0
    c.data.data_dir = str(data_dir)
    c.data.image_size = 32
    c.data.builder_kwargs = dict(domain="studio", image_size=32,
                                 sizes=dict(train=48, validation=20))
    c.batch_size = 8
    c.steps_per_epoch = 3
    c.phase_order = ("head", "full")
    c.phases.head = dict(epochs=1, learning_rate=1e-2, trainable="head")
    c.phases.full.epochs = 2
    c.phases.full.learning_rate = 3e-3
    c.optimizer.schedule = "constant"
    c.log_every_steps = 2
    c.checkpoint_every_steps = 2
    c.progress_bar = False
    return c


# Faster compilation, in the subprocesses and around each in-process run (same numerics;
# restored right after, so other tests in this worker never see it).
FAST_COMPILE = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}




@pytest.fixture(scope="module")
def reference(tmp_path_factory, fast_compile):
    with fast_compile():
        return _reference_run(tmp_path_factory)


def _reference_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_e2e")
    config = tiny_config(root / "data")
    workdir = str(root / "reference")
    final = methods.run(config, workdir)
    return {"root": root, "config": config, "workdir": workdir, "final": final}


def _subprocess(args, env=None, check=True):
    env = dict(os.environ, **FAST_COMPILE, **(env or {}))
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stderr[-3000:]}")
    return proc


def test_writes_checkpoints_logs_metrics_and_plots(reference):
    workdir, final = reference["workdir"], reference["final"]
    assert final["step"] == TOTAL_STEPS
    # Periodic checkpoints (the last 2 kept) and the best one.
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                   if s.isdigit())
    assert steps[-1] == TOTAL_STEPS and len(steps) == 2
    assert [s for s in os.listdir(os.path.join(workdir, "best")) if s.isdigit()]
    # metrics.jsonl: train records every 2 steps and at epoch ends, eval per epoch.
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    train = [r for r in records if r["split"] == "train"]
    evals = [r for r in records if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6, 9]
    assert all(np.isfinite(r["loss"]) and r["images_per_s"] > 0 for r in train)
    assert all(r["lr"] == pytest.approx(1e-2) for r in train if r["step"] <= 3)
    assert all(r["lr"] == pytest.approx(3e-3) for r in train if r["step"] > 3)
    # final_metrics.json mirrors the returned dict and has sane metrics.
    on_disk = json.load(open(os.path.join(workdir, "final_metrics.json")))
    assert on_disk["eval"] == final["eval"]
    ev = final["eval"]
    assert 0 <= ev["expr_f1"] <= 1 and 0 <= ev["expr_acc"] <= 1
    assert -1 <= ev["ccc_valence"] <= 1 and -1 <= ev["ccc_arousal"] <= 1
    assert ev["num_expr"] <= 20 and ev["num_va"] <= 20  # padding excluded
    assert final["best"]["value"] == max(r["score"] for r in evals)
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    for name in ("curves.png", "confusion_matrix.png", "va_scatter.png"):
        with Image.open(os.path.join(workdir, "plots", name)) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 100


def test_rerun_after_the_end_reproduces_the_metrics(reference, capsys, fast_compile):
    with fast_compile():
        final = methods.run(reference["config"], reference["workdir"])
    assert final["eval"] == reference["final"]["eval"]
    assert "done: 9 steps" in capsys.readouterr().out


def test_sigkill_then_rerun_resumes_to_the_same_result(reference, tmp_path):
    config_path = tmp_path / "config.json"
    config_path.write_text(reference["config"].to_json())
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    workdir = str(tmp_path / "run")
    # Killed right after the checkpoint of step 2, in the head-only phase; the rerun
    # resumes there and switches to the all-weights phase at step 3.
    killed = _subprocess([str(driver), str(config_path), workdir, "2"], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(workdir, "final_metrics.json"))
    resumed = _subprocess([str(driver), str(config_path), workdir, "0"])
    assert "resuming from" in resumed.stderr
    final = json.load(open(os.path.join(workdir, "final_metrics.json")))
    assert final["eval"] == reference["final"]["eval"]
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in records if r["split"] == "eval"] == [3, 6, 9]


def test_four_cpu_devices_match_one_device(reference, tmp_path):
    config = reference["config"].copy_and_resolve_references()
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json())
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    workdir = str(tmp_path / "run")
    _subprocess([str(driver), str(config_path), workdir, "0"],
                env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    final = json.load(open(os.path.join(workdir, "final_metrics.json")))
    ref = reference["final"]
    assert final["num_devices"] == 4 and ref["num_devices"] == 1
    np.testing.assert_allclose(final["train"]["loss"], ref["train"]["loss"], rtol=1e-3)
    for key in ("ccc_valence", "ccc_arousal", "expr_acc"):
        np.testing.assert_allclose(final["eval"][key], ref["eval"][key], rtol=2e-3, atol=2e-3)
    # Its checkpoint, written on 4 devices, reads back in this 1-device process (prediction,
    # init_from and feature extraction read runs this way).
    step, state = restore_stored(os.path.join(workdir, "checkpoints"))
    assert step == final["step"] and state["params"]
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state["params"]))


def test_non_finite_loss_stops_at_its_step_and_keeps_the_last_checkpoint(
        reference, tmp_path, monkeypatch, capsys, fast_compile):
    config = reference["config"]
    workdir = str(tmp_path / "nan")
    with fast_compile():
        run = setup.setup_run(config, workdir, methods.get_method(config.method))
    clean = run.train_loader.iterate

    def poisoned(start_step=0):
        for step, batch in enumerate(clean(start_step), start=start_step + 1):
            if step == 3:  # the batch of step 3 makes that step's loss NaN
                batch = dict(batch, image=np.full_like(batch["image"], np.nan))
            yield batch

    run.train_loader.iterate = poisoned
    monkeypatch.setattr(loop, "setup_run", lambda *_: run)
    with pytest.raises(SystemExit) as info, fast_compile():
        methods.run(config, workdir)
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: non-finite loss") and "at step 3" in err
    checkpointer = Checkpointer(workdir)
    assert checkpointer.latest_step() == 2  # saved before the NaN; step 3 never saved
    saved = checkpointer.latest.restore(2, args=ocp.args.Composite(
        state=ocp.args.StandardRestore()))["state"]
    assert int(saved["step"]) == 2
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(saved["params"]))
    checkpointer.close()


def _copy_of_reference(reference, workdir, damage_steps):
    """The finished reference run, copied, with the array files of `damage_steps` overwritten."""
    shutil.copytree(reference["workdir"], workdir)
    os.remove(os.path.join(workdir, "final_metrics.json"))
    for step in damage_steps:
        arrays = glob.glob(os.path.join(workdir, "checkpoints", str(step), "state", "**", "d",
                                        "*"), recursive=True)
        assert arrays
        for path in arrays:
            size = os.path.getsize(path)
            with open(path, "wb") as f:
                f.write(b"\x07" * size)


def test_damaged_newest_checkpoint_resumes_from_the_older_one_to_the_same_result(
        reference, tmp_path, capsys, fast_compile):
    workdir = str(tmp_path / "run")
    _copy_of_reference(reference, workdir, [TOTAL_STEPS])  # checkpoints 8 and 9 are kept
    damaged = os.path.join(workdir, "checkpoints", str(TOTAL_STEPS))
    with fast_compile():
        final = methods.run(reference["config"], workdir)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"warning: skipped the damaged checkpoint {damaged} "
                                  "(state: DATA_LOSS: ")
    assert "Traceback" not in err and "Event loop" not in err
    assert f"resuming from {workdir}/checkpoints/8 (step 8 of {TOTAL_STEPS})" in err
    # Step 9 is trained again from step 8 and reaches the uninterrupted run's result.
    assert final["step"] == TOTAL_STEPS
    assert final["eval"] == reference["final"]["eval"]
    assert final["train"]["loss"] == reference["final"]["train"]["loss"]
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    assert [r["step"] for r in records if r["split"] == "eval"] == [3, 6, 9]
    # The damaged step was moved aside and saved anew.
    assert os.path.isdir(os.path.join(workdir, "corrupt_checkpoints", str(TOTAL_STEPS)))
    checkpointer = Checkpointer(workdir)
    assert checkpointer.latest.all_steps() == [8, TOTAL_STEPS]
    assert checkpointer.restore_meta(TOTAL_STEPS)["data_step"] == TOTAL_STEPS
    checkpointer.close()


def test_all_checkpoints_damaged_is_one_error_line(reference, tmp_path, capsys, fast_compile):
    workdir = str(tmp_path / "run")
    _copy_of_reference(reference, workdir, [8, TOTAL_STEPS])
    directory = os.path.join(workdir, "checkpoints")
    with pytest.raises(DataError) as info, fast_compile():
        methods.train_and_evaluate(reference["config"], workdir)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"no checkpoint in {directory} can be restored (the newest, "
                              f"{TOTAL_STEPS}: state: DATA_LOSS: ")
    assert "new --workdir" in message and f"delete {directory}" in message
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info, fast_compile():
        methods.run(reference["config"], workdir)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith(("error:", "warning:"))] == [
        f"error: {message}"]
    assert "Traceback" not in err and "Event loop" not in err
    # Nothing was moved: the checkpoints stay for the user to inspect or delete.
    assert sorted(os.listdir(directory)) == ["8", str(TOTAL_STEPS)]
    assert not os.path.exists(os.path.join(workdir, "corrupt_checkpoints"))
