"""Tests for `python -m affectjax.data` (prepare, inspect, preview) at tiny sizes."""

import json

import pytest

from affectjax.data.__main__ import main


def test_prepare_inspect_preview(tmp_path, capsys):
    common = ["--dataset", "synthfaces", "--data-dir", str(tmp_path / "tfds"), "--kwargs",
              json.dumps({"image_size": 32, "sizes": {"train": 8, "validation": 4}})]
    main(["prepare", *common])
    assert "'train': 8" in capsys.readouterr().out
    main(["inspect", *common, "--split", "validation"])
    out = capsys.readouterr().out
    assert "4 examples" in out and "landmarks" in out and "expr histogram" in out
    main(["preview", *common, "--batch-size", "4", "--out", str(tmp_path / "grid.png")])
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_unknown_dataset_lists_choices(capsys):
    with pytest.raises(SystemExit):
        main(["inspect", "--dataset", "synthface"])
    assert "synthfaces" in capsys.readouterr().err
