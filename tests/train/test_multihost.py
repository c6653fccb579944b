"""Several processes: two `train.py` processes joined by `jax.distributed` on this host.

The README's "Several hosts" commands, run: process 0 and process 1 of ``python train.py
--config configs/quickstart.py --config.distributed=True
--config.coordinator_address=localhost:PORT --config.num_processes=2
--config.process_id=I`` with two CPU devices each
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``; between processes JAX's CPU
collectives are Gloo's, its default), sharing one workdir as on a shared file system.
The quickstart is shrunk as in ``test_loop.py`` (`TINY_FLAGS`). SAM is off: its second
gradient would double the all-reduces between the processes (about 10 ms each over Gloo
on two busy cores) and test nothing that the first one does not. The pair is compared
with ONE process of four CPU devices, which has the same global mesh in one address space:

* the pair trains `PAIR_STEPS` steps. At the same time the single process trains
  `RESUMED_STEPS` steps of the same config without a break. The learning rate is constant,
  so up to step `PAIR_STEPS` the single process's records are those of a run of
  `PAIR_STEPS` steps. One run serves as the reference for both comparisons;
* only process 0 prints and writes the logs;
* the pair's last checkpoint resumes in one process of four devices (on a copy of the
  pair's workdir) up to `RESUMED_STEPS`, and ends where the uninterrupted run ends. One
  process also reads the pair's weights, as prediction and ``init_from`` do.

Tolerances. Training metrics (losses, gradient norm) agree to `TRAIN_RTOL` = 1e-5. The
pair and the single process add the same per-device gradients in another order (Gloo's
all-reduce against XLA's in-process one); the measured gap stays below 1e-6 over these
steps. Evaluation metrics agree to `EVAL_ATOL` = 5e-3, with the counts of examples exact.
Some parameters drift apart: the biases of BatchNorms that another BatchNorm follows. Their
gradient is zero up to rounding, and Adam scales that rounding to full steps, so these
biases, and the running means that follow them, differ between the two runs. In training
the next BatchNorm's batch statistics cancel them (hence the 1e-6 above). Evaluation uses
the running statistics, which lag behind, so the CCCs differ by up to 1.5e-3 here
(test_loop.py's 1-vs-4-device test allows 2e-3 after 9 steps). A wrong split of the data
between the processes changes the training losses far beyond 1e-5, and an evaluation
that counts some process's rows twice or not at all changes the counts.

Cost: four `train.py` processes on two CPU cores, 95 to 120 s in all. Hence `slow`.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from affectjax.data import pipeline
from affectjax.train import checkpoint

pytestmark = pytest.mark.slow

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

STEPS_PER_EPOCH = 8
PAIR_EPOCHS, RESUMED_EPOCHS = 3, 4
PAIR_STEPS, RESUMED_STEPS = PAIR_EPOCHS * STEPS_PER_EPOCH, RESUMED_EPOCHS * STEPS_PER_EPOCH
LOG_EVERY = 4
# test_loop.py's tiny quickstart on the command line. It has one phase, because flags
# cannot add the head-only phase. It checkpoints only at the phase's end.
IMAGE_SIZE, SIZES = 32, {"train": 48, "validation": 20}
TINY_FLAGS = (
    "--config.model.backbone=efficientnet_tiny", "--config.model.width_multiplier=1.0",
    f"--config.data.image_size={IMAGE_SIZE}",
    f"--config.data.builder_kwargs.image_size={IMAGE_SIZE}",
    *(f"--config.data.builder_kwargs.sizes.{split}={n}" for split, n in SIZES.items()),
    "--config.batch_size=8", f"--config.steps_per_epoch={STEPS_PER_EPOCH}",
    "--config.optimizer.schedule=constant", f"--config.log_every_steps={LOG_EVERY}",
    "--config.checkpoint_every_epochs=100", "--config.progress_bar=False",
    "--config.optimizer.sam_rho=0.0",
)
TRAIN_RTOL = 1e-5
EVAL_ATOL = 5e-3
TIMEOUT_S = 400
# Fast compilation as in test_loop.py (the same numerics), and the CPU even where an
# accelerator is present.
ENV = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1", "JAX_PLATFORMS": "cpu"}
RUN_FILES = ["best", "checkpoints", "config.json", "final_metrics.json", "metrics.jsonl",
             "plots", "tensorboard"]
# What Gloo, the library under JAX's CPU collectives, prints on stdout in every process.
GLOO = "[Gloo] "


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


class _Process:
    """One `train.py` process. Its stdout and stderr go to files, which `_wait_all` reads."""

    def __init__(self, name, logs, *, devices, workdir, data_dir, epochs, flags=()):
        self.name = name
        self.args = ["train.py", "--config", "configs/quickstart.py", f"--workdir={workdir}",
                     f"--config.data.data_dir={data_dir}", *TINY_FLAGS,
                     f"--config.phases.full.epochs={epochs}", *flags]
        env = dict(os.environ, **ENV,
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        self.stdout_path, self.stderr_path = logs / f"{name}.out", logs / f"{name}.err"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, *self.args], stdout=out,
                                         stderr=err, cwd=REPO, env=env)
        self.stdout = self.stderr = ""


def _wait_all(*processes):
    """Waits for every process. A failure, or the time limit, ends the others."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.proc.poll() is None for p in processes):
            if time.monotonic() > deadline or any(p.proc.poll() for p in processes):
                break
            time.sleep(0.2)
    finally:
        for p in processes:
            if p.proc.poll() is None:
                p.proc.kill()
            p.proc.wait()
            p.stdout, p.stderr = p.stdout_path.read_text(), p.stderr_path.read_text()
    for p in processes:
        if p.proc.returncode != 0:
            raise AssertionError(f"{p.name} ({' '.join(p.args)}) ended with "
                                 f"{p.proc.returncode}:\n{p.stderr[-3000:]}")


def _records(workdir, split, last_step=RESUMED_STEPS):
    """``{step: record}`` of `split` in ``metrics.jsonl``, up to `last_step`."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    chosen = [r for r in records if r["split"] == split and r["step"] <= last_step]
    steps = [r["step"] for r in chosen]
    assert len(set(steps)) == len(steps), f"{split} records repeat a step: {steps}"
    return {r["step"]: r for r in chosen}


def _assert_same_metrics(got, want, *, train):
    """Every number of two train (or eval) records, except the clock and the throughput."""
    skip = {"step", "time", "images_per_s"}
    keys = sorted(k for k, v in want.items()
                  if k not in skip and isinstance(v, (int, float)))
    assert keys and keys == sorted(k for k, v in got.items()
                                   if k not in skip and isinstance(v, (int, float)))
    tolerance = dict(rtol=TRAIN_RTOL) if train else dict(rtol=0, atol=EVAL_ATOL)
    np.testing.assert_allclose([got[k] for k in keys], [want[k] for k in keys],
                               err_msg=f"{keys} at step {want['step']}", **tolerance)


def _prepare_data(data_dir):
    """Prepares the runs' data set beforehand. Otherwise the process that finds it missing
    would prepare it and print TFDS's progress, which is not the run's output."""
    data = pipeline.default_config()
    data.data_dir = str(data_dir)
    data.image_size = IMAGE_SIZE
    data.builder_kwargs = dict(domain="studio", image_size=IMAGE_SIZE, sizes=SIZES)
    pipeline.prepare(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The pair (`PAIR_STEPS` steps) and one process of 4 devices (`RESUMED_STEPS`), at once."""
    root = tmp_path_factory.mktemp("multihost")
    logs = root / "logs"
    logs.mkdir()
    common = dict(data_dir=root / "data", logs=logs)
    _prepare_data(common["data_dir"])
    address = f"localhost:{_free_port()}"
    pair = [_Process(f"process{i}", devices=2, workdir=root / "pair", epochs=PAIR_EPOCHS,
                     flags=("--config.distributed=True",
                            f"--config.coordinator_address={address}",
                            "--config.num_processes=2", f"--config.process_id={i}"),
                     **common)
            for i in range(2)]
    single = _Process("single", devices=4, workdir=root / "single", epochs=RESUMED_EPOCHS,
                      **common)
    _wait_all(*pair, single)
    return {"root": root, "common": common, "pair": pair, "single": single,
            "pair_dir": str(root / "pair"), "single_dir": str(root / "single")}


@pytest.fixture(scope="module")
def resumed(runs):
    """A copy of the pair's workdir, trained on to `RESUMED_STEPS` by one process of 4
    devices. Its programs are those of the uninterrupted run, read from the compilation
    cache."""
    workdir = str(runs["root"] / "resumed")
    shutil.copytree(runs["pair_dir"], workdir)
    process = _Process("resumed", devices=4, workdir=workdir, epochs=RESUMED_EPOCHS,
                       **runs["common"])
    _wait_all(process)
    return {"process": process, "workdir": workdir}


def test_two_processes_log_what_one_process_of_four_devices_logs(runs):
    final = json.load(open(os.path.join(runs["pair_dir"], "final_metrics.json")))
    assert final["step"] == PAIR_STEPS
    assert final["num_devices"] == 4  # both processes' devices in one mesh
    pair_train = _records(runs["pair_dir"], "train")
    pair_eval = _records(runs["pair_dir"], "eval")
    ref_train = _records(runs["single_dir"], "train", PAIR_STEPS)
    ref_eval = _records(runs["single_dir"], "eval", PAIR_STEPS)
    assert list(pair_train) == list(ref_train) == list(range(LOG_EVERY, PAIR_STEPS + 1,
                                                             LOG_EVERY))
    assert list(pair_eval) == list(ref_eval) == list(range(STEPS_PER_EPOCH, PAIR_STEPS + 1,
                                                           STEPS_PER_EPOCH))
    for step, record in pair_train.items():
        _assert_same_metrics(record, ref_train[step], train=True)
    for step, record in pair_eval.items():
        _assert_same_metrics(record, ref_eval[step], train=False)
    # The final metrics are the last records.
    _assert_same_metrics(final["train"], ref_train[PAIR_STEPS], train=True)
    _assert_same_metrics(dict(final["eval"], step=PAIR_STEPS), ref_eval[PAIR_STEPS],
                         train=False)


def test_only_process_zero_prints_and_writes_the_logs(runs):
    process0, process1 = runs["pair"]
    # Process 1 prints nothing of its own (on stdout only Gloo's lines), on stderr nothing.
    assert process1.stderr == ""
    # Gloo's own lines may interleave with one another under load, so the check is that none
    # of the lines process 0 printed (data sets, steps, the summary) comes from process 1.
    printed0 = {line for line in (process0.stdout + process0.stderr).splitlines()
                if line.strip() and not line.startswith(GLOO)}
    printed1 = (process1.stdout + process1.stderr).splitlines()
    assert printed0 and not [line for line in printed1
                             if line in printed0 or line.startswith(("step ", "done", "error"))]
    # Process 0 prints what a single process prints.
    own = [line for line in process0.stdout.splitlines() if line.startswith(("done", "step"))]
    assert len(own) == 1 and own[0].startswith(f"done: {PAIR_STEPS} steps"), process0.stdout
    lines = process0.stderr.splitlines()
    assert lines[:2] == [f"data synthfaces {split}: {n} examples"
                         for split, n in SIZES.items()], process0.stderr
    assert [line.split(":")[0] for line in lines[2:]] == [
        f"step {step}" for step in range(STEPS_PER_EPOCH, PAIR_STEPS + 1, STEPS_PER_EPOCH)]
    # One set of logs: the files of a single process's run, each written once (and by
    # process 0: the config is process 0's).
    pair_dir = runs["pair_dir"]
    assert sorted(os.listdir(pair_dir)) == sorted(os.listdir(runs["single_dir"])) == RUN_FILES
    assert json.load(open(os.path.join(pair_dir, "config.json")))["process_id"] == 0
    assert len(os.listdir(os.path.join(pair_dir, "tensorboard"))) == 1
    assert sorted(os.listdir(os.path.join(pair_dir, "plots"))) == sorted(
        os.listdir(os.path.join(runs["single_dir"], "plots")))
    with open(os.path.join(pair_dir, "metrics.jsonl")) as f:
        splits = [json.loads(line)["split"] for line in f]
    with open(os.path.join(runs["single_dir"], "metrics.jsonl")) as f:
        ref_splits = [r["split"] for r in map(json.loads, f) if r["step"] <= PAIR_STEPS]
    assert splits == ref_splits  # every record once, in the single process's order
    # Both processes wrote the checkpoint through Orbax, as one checkpoint: it is complete
    # (no temporary directory is left) and there is no second copy.
    assert os.listdir(os.path.join(pair_dir, "checkpoints")) == [str(PAIR_STEPS)]


def test_one_process_reads_the_weights_the_pair_wrote(runs):
    variables, origin = checkpoint.restore_run_variables(runs["pair_dir"],
                                                         subdirs=("checkpoints",))
    assert origin == f"workdir:{runs['pair_dir']}/checkpoints/{PAIR_STEPS}"
    leaves = [np.asarray(x) for x in jax.tree.leaves(variables)]
    assert leaves and all(np.isfinite(x).all() for x in leaves)


def test_the_pair_checkpoint_resumes_in_one_process_to_the_uninterrupted_result(
        runs, resumed):
    workdir, process = resumed["workdir"], resumed["process"]
    assert (f"resuming from {workdir}/checkpoints/{PAIR_STEPS} "
            f"(step {PAIR_STEPS} of {RESUMED_STEPS})") in process.stderr
    final = json.load(open(os.path.join(workdir, "final_metrics.json")))
    ref = json.load(open(os.path.join(runs["single_dir"], "final_metrics.json")))
    assert final["step"] == ref["step"] == RESUMED_STEPS
    assert final["num_devices"] == ref["num_devices"] == 4
    _assert_same_metrics(final["train"], ref["train"], train=True)
    _assert_same_metrics(dict(final["eval"], step=RESUMED_STEPS),
                         dict(ref["eval"], step=RESUMED_STEPS), train=False)
    # The resumed run's log continues the pair's: every record of the uninterrupted run.
    for split in ("train", "eval"):
        assert list(_records(workdir, split)) == list(_records(runs["single_dir"], split))
