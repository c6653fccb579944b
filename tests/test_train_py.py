"""`train.py`: flags only; bad flags, a missing config file and a workdir that cannot be
created are one line on stderr with exit status 2."""

import os
import re
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


def _run(*args, cwd=REPO):
    return subprocess.run([sys.executable, os.path.join(REPO, "train.py"), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def _assert_one_error_line(proc, *names):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args", [
    ("--config=configs/nothere.py",),
    ("--config", "configs/nothere.py"),
    ("--config=configs/nothere.py:smoke",),
    ("--config=configs/nothere.py", "--config.batch_size=3"),
])
def test_missing_config_file_is_one_line_naming_it(tmp_path, args):
    proc = _run(*args, f"--workdir={tmp_path / 'run'}")
    line = _assert_one_error_line(proc, "configs/nothere.py")
    assert "does not exist" in line
    assert not (tmp_path / "run").exists()


def test_config_path_that_is_a_directory_is_one_line(tmp_path):
    _assert_one_error_line(_run(f"--config={tmp_path}"), str(tmp_path))


def _workdir_error(tmp_path, workdir):
    proc = _run("--config=configs/quickstart.py", f"--workdir={workdir}",
                f"--config.data.data_dir={tmp_path / 'data'}")
    line = _assert_one_error_line(proc, str(workdir), "workdir")
    assert not (tmp_path / "data").exists()  # checked before any data is prepared
    return line


def test_workdir_under_a_regular_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = _workdir_error(tmp_path, blocker / "runs" / "quickstart")
    assert f"{blocker} is a file" in line
    assert "exists and is not a directory" in _workdir_error(tmp_path, blocker)


def test_read_only_workdir_is_a_user_error_naming_it(tmp_path, monkeypatch):
    """The read-only cases without needing a non-root user: the OS answers are simulated."""
    from affectjax.train import UserError, loop  # pylint: disable=import-outside-toplevel

    def denied(path, mode=0o777, exist_ok=False):
        raise PermissionError(13, "Permission denied", path)

    workdir = str(tmp_path / "ro" / "run")
    with monkeypatch.context() as patch:
        patch.setattr(loop.os, "makedirs", denied)
        with pytest.raises(UserError, match=re.escape(f"cannot create the workdir {workdir}: "
                                                      "Permission denied")):
            loop.make_workdir(workdir)
    with monkeypatch.context() as patch:
        patch.setattr(loop.os, "access", lambda path, mode: False)
        with pytest.raises(UserError, match=re.escape(f"the workdir {tmp_path} is not writable")):
            loop.make_workdir(str(tmp_path))
