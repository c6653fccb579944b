"""`train.py`: flags only; bad flags are one line on stderr with exit status 2."""

import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _train_py(*args, tmp_path):
    return subprocess.run([sys.executable, os.path.join(REPO, "train.py"), *args,
                           f"--workdir={tmp_path / 'run'}",
                           f"--config.data.data_dir={tmp_path / 'data'}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.mark.parametrize("flag, expected", [
    ("--config.no_such_key=1", "no_such_key"),
    ("--config.batch_size=abc", "batch_size"),
    ("--config.model.backbone=efficientnet_b9", "efficientnet_b9"),
])
def test_bad_flags_are_one_line(tmp_path, flag, expected):
    proc = _train_py("--config=configs/quickstart.py", flag, tmp_path=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]
    assert not (tmp_path / "data").exists()


def test_default_workdir_is_runs_config_stem():
    sys.path.insert(0, REPO)
    try:
        import train  # pylint: disable=import-outside-toplevel
    finally:
        sys.path.remove(REPO)
    assert train.default_workdir("configs/quickstart.py") == os.path.join("runs", "quickstart")
    assert train.default_workdir("x/y/emotieffnet_affectnet.py:smoke") == os.path.join(
        "runs", "emotieffnet_affectnet")
