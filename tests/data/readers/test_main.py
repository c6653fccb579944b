"""The summary command of `python -m affectjax.data.readers`."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from affectjax.data.readers.__main__ import summarise


def test_summarise_counts_labels_and_masks():
    examples = [{"expr": np.int32(e), "va_mask": np.bool_(m), "au": np.array([1] + [-1] * 11)}
                for e, m in [(4, True), (4, False), (-1, True)]]
    lines = summarise(examples)
    assert "expr: missing 1, Happiness 2" in lines
    assert "va_mask: 0.667 labelled" in lines
    assert any(line.startswith("au labelled: 0.083; active rate per AU: AU1=1.00")
               for line in lines)
    assert summarise([]) == ["no examples"]


def test_command_runs_on_a_folder(tmp_path):
    os.makedirs(tmp_path / "happy")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "happy" / "a.png")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "affectjax.data.readers", "--reader=image_folder",
         f"--path={tmp_path}"], capture_output=True, text=True, cwd=root, check=False)
    assert result.returncode == 0, result.stderr
    assert "image_folder: 1 items listed" in result.stdout
    assert "expr: Happiness 1" in result.stdout


def test_command_reports_a_bad_layout_in_one_line(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "affectjax.data.readers", "--reader=rafdb",
         f"--path={tmp_path}", "--split=test"], capture_output=True, text=True, cwd=root,
        check=False)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: RAF-DB: expected ")
    assert "Traceback" not in result.stderr
