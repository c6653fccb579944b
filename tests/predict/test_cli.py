"""``python -m affectjax.predict`` end to end with a fake predictor (no trained run)."""

import csv
import json
import os
import sys

import numpy as np
import pytest
from PIL import Image

from affectjax.data.synthfaces import SynthFaces
from affectjax.predict import __main__ as cli
from affectjax.train.errors import UserError


@pytest.fixture
def folder(tmp_path, media_helpers):
    """in/: two images (one in a sub-folder), a 10-frame 10 fps video, a corrupt image
    and a corrupt video."""
    write_image, write_video = media_helpers
    root = tmp_path / "in"
    write_image(str(root / "b.png"), size=(48, 40))
    write_image(str(root / "sub" / "a.jpg"), size=(64, 64), color=(20, 200, 20))
    write_video(str(root / "clip.avi"), frames=10, fps=10.0)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "broken.mp4").write_bytes(b"\x00" * 1000)
    return str(root)


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_to_csv_with_a_video_and_bad_files(tmp_path, folder, fake_load, fake, capsys):
    out = str(tmp_path / "preds.csv")
    status = cli.main(["--run", "runs/x", folder, "--out", out, "--fps", "2"], load=fake_load)
    assert status == 0 and fake.loaded == ("runs/x", True)
    rows = _csv(out)
    names = [os.path.relpath(r["file"], folder) for r in rows]
    assert names == ["b.png", "clip.avi", "clip.avi", os.path.join("sub", "a.jpg")]
    assert [(r["frame"], r["time_s"]) for r in rows] == [("", ""), ("0", "0.0"), ("5", "0.5"),
                                                         ("", "")]
    assert [(r["face"], r["box_w"], r["box_h"]) for r in rows] == [
        ("0", "48", "40"), ("0", "64", "48"), ("0", "64", "48"), ("0", "64", "64")]
    assert rows[0]["expr_label"] and float(rows[0]["landmark0_x"]) == pytest.approx(0.3 * 48)
    assert list(rows[0])[:8] == ["file", "frame", "time_s", "face", "box_x", "box_y", "box_w",
                                 "box_h"]
    err = capsys.readouterr().err
    assert f"warning: cannot read {os.path.join(folder, 'broken.jpg')}: " in err
    assert f"warning: cannot read {os.path.join(folder, 'broken.mp4')}: " in err
    assert "2 file(s) could not be read" in err
    assert "predicted 4 face(s) in 2 image(s) and 2 video frame(s)" in err
    (video,) = _csv(str(tmp_path / "preds_videos.csv"))
    assert video["file"].endswith("clip.avi") and video["frames"] == "2"
    mean_v = np.mean([float(r["valence"]) for r in rows[1:3]])
    assert float(video["valence"]) == pytest.approx(mean_v, abs=1e-5)


def test_jsonl_out_and_latest_checkpoint(tmp_path, folder, fake_load, fake):
    out = str(tmp_path / "preds.jsonl")
    assert cli.main(["--run", "r", folder, "--out", out, "--latest"], load=fake_load) == 0
    assert fake.loaded == ("r", False)
    lines = [json.loads(line) for line in open(out)]
    assert len(lines) == 3 and lines[0]["frame"] is None and lines[1]["time_s"] == 0.0
    assert "au_prob/AU1" in lines[0] and "expr_prob/Neutral" in lines[0]
    assert os.path.exists(str(tmp_path / "preds_videos.jsonl"))


def test_table_on_stdout_without_out(folder, fake_load, capsys):
    assert cli.main(["--run", "r", os.path.join(folder, "b.png"),
                     os.path.join(folder, "clip.avi")], load=fake_load) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["file", "time_s", "face"]
    # header, the image, the video's one frame at 1 fps; a blank line, the video table
    assert len(out) == 6 and out[3] == "" and out[4].split()[:2] == ["video", "frames"]
    assert out[2].split()[1] == "0.00" and out[5].split()[1:3] == ["1", "1"]


def test_every_model_call_has_one_batch_shape(tmp_path, media_helpers, fake_load, fake):
    write_image, _ = media_helpers
    paths = [write_image(str(tmp_path / f"{i}.png"), color=(i * 40, 0, 0)) for i in range(5)]
    out = str(tmp_path / "p.csv")
    assert cli.main(["--run", "r", *paths, "--batch-size", "2", "--out", out],
                    load=fake_load) == 0
    assert fake.calls == [2, 2, 2]                  # the last batch padded with its last crop
    rows = _csv(out)
    assert [os.path.basename(r["file"]) for r in rows] == [f"{i}.png" for i in range(5)]
    assert float(rows[4]["valence"]) > float(rows[3]["valence"])  # redder: the fake's valence
    fake.calls.clear()
    assert cli.main(["--run", "r", paths[0], "--out", out], load=fake_load) == 0
    assert fake.calls == [1]                        # one image: a batch of one, not of 32


def test_config_file_for_a_run_without_config_json(tmp_path, folder, fake, capsys):
    seen = {}

    def load(run_dir, *, best=True, config=None):
        seen["config"] = config
        return fake

    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "tiny.py").write_text(
        "def get_config(arg=None):\n    return {'method': 'cct', 'arg': arg}\n")
    image = os.path.join(folder, "b.png")
    assert cli.main(["--run", "r", image, "--config", str(tmp_path / "configs" / "tiny.py:quick")],
                    load=load) == 0
    assert seen["config"] == {"method": "cct", "arg": "quick"}
    with pytest.raises(SystemExit):
        cli.main(["--run", "r", image, "--config", "nope.py"], load=load)
    assert "error: config file 'nope.py' does not exist (--config)" in capsys.readouterr().err


def test_annotate_and_plot(tmp_path, folder, fake_load):
    shown = str(tmp_path / "shown")
    assert cli.main(["--run", "r", folder, "--fps", "5", "--annotate", shown, "--plot",
                     "--out", str(tmp_path / "p.csv")], load=fake_load) == 0
    written = sorted(os.path.relpath(os.path.join(d, f), shown)
                     for d, _, files in os.walk(shown) for f in files)
    assert written == ["b.png", "clip_sheet.png", "clip_va.png", os.path.join("sub", "a.png")]
    assert Image.open(os.path.join(shown, "b.png")).width == 256       # 48 px enlarged
    assert Image.open(os.path.join(shown, "sub", "a.png")).width == 256
    assert Image.open(os.path.join(shown, "clip_sheet.png")).width > 2 * 256


def test_plot_without_annotate_goes_beside_out(tmp_path, folder, fake_load):
    out = str(tmp_path / "res" / "p.csv")
    assert cli.main(["--run", "r", os.path.join(folder, "clip.avi"), "--plot", "--out", out],
                    load=fake_load) == 0
    assert os.path.exists(str(tmp_path / "res" / "clip_va.png"))


def test_detect_faces_one_row_per_face_and_no_face_rows(tmp_path, media_helpers, fake_load,
                                                         capsys):
    write_image, _ = media_helpers
    faces = SynthFaces(2, seed=0, image_size=256, domain="studio").batch([0, 1])["image"]
    Image.fromarray(np.concatenate(list(faces), axis=1)).save(str(tmp_path / "pair.png"))
    blank = write_image(str(tmp_path / "blank.png"), size=(200, 150), color=(128, 128, 128))
    out = str(tmp_path / "p.csv")
    assert cli.main(["--run", "r", str(tmp_path / "pair.png"), blank, "--detect-faces",
                     "--out", out, "--annotate", str(tmp_path / "shown")], load=fake_load) == 0
    rows = _csv(out)
    assert [(os.path.basename(r["file"]), r["face"]) for r in rows] == [
        ("pair.png", "0"), ("pair.png", "1"), ("blank.png", "-1")]
    assert rows[2]["expr_label"] == "" and rows[2]["box_x"] == ""
    x0, w0 = int(rows[0]["box_x"]), int(rows[0]["box_w"])
    assert x0 + w0 <= 300 and int(rows[1]["box_x"]) >= 200
    # the fake's landmarks are fractions of the crop, written in pixels of the whole image
    assert float(rows[1]["landmark0_x"]) == pytest.approx(int(rows[1]["box_x"]) + 0.3 * int(
        rows[1]["box_w"]))
    assert "no face found in 1 image(s)/frame(s)" in capsys.readouterr().err
    assert os.path.exists(str(tmp_path / "shown" / "blank.png"))


@pytest.mark.parametrize("argv, message", [
    (["--out", "p.txt"], "error: --out p.txt: the extension must be .csv or .jsonl"),
    (["--batch-size", "0"], "error: --batch-size must be a positive integer"),
    (["--fps", "-1"], "error: --fps must be 0"),
])
def test_bad_arguments_exit_2_before_loading(folder, fake_load, fake, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        cli.main(["--run", "r", folder, *argv], load=fake_load)
    assert info.value.code == 2 and not hasattr(fake, "loaded")
    assert capsys.readouterr().err.strip().startswith(message)


def test_missing_path_and_loader_errors_exit_2(tmp_path, folder, capsys):
    def bad_load(run_dir, *, best=True):
        raise UserError(f"{run_dir}: no checkpoint")

    with pytest.raises(SystemExit) as info:
        cli.main(["--run", "r", str(tmp_path / "nope.jpg")], load=bad_load)
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: no such file or folder: {tmp_path}/nope.jpg"
    with pytest.raises(SystemExit) as info:
        cli.main(["--run", "runs/empty", folder], load=bad_load)
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == "error: runs/empty: no checkpoint"


@pytest.mark.parametrize("what, message", [
    ("clip.avi", "reading videos needs OpenCV"), ("b.png", "--detect-faces needs OpenCV")])
def test_missing_opencv_exits_2_before_loading(folder, fake_load, fake, capsys, monkeypatch,
                                               what, message):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(SystemExit) as info:
        cli.main(["--run", "r", os.path.join(folder, what), "--detect-faces"], load=fake_load)
    assert info.value.code == 2 and not hasattr(fake, "loaded")
    assert capsys.readouterr().err.strip() == f'error: {message}: pip install -e ".[faces]"'


def test_nothing_readable_exits_2(tmp_path, fake_load, capsys):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(SystemExit) as info:
        cli.main(["--run", "r", str(tmp_path / "x.png")], load=fake_load)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "warning: cannot read" in err and "1 file(s) could not be read" in err
    assert err.strip().splitlines()[-1] == "error: none of the 1 input file(s) could be read"
