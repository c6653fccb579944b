"""Aff-Wild2 expression-track reader: header mapping, -1 frames, missing images, bad files."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax.data import readers
from affectjax.data.readers import (AffWild2ExprExamples, DataFormatError, count_affwild2_expr,
                                    read_affwild2_expr)

HEADER7 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise"
HEADER8 = HEADER7 + ",Other"


def _labels(root, video, header, codes, split="Train_Set"):
    folder = os.path.join(root, "annotations", "EXPR_Set", split)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, video + ".txt")
    with open(path, "w") as f:
        f.write("\n".join([header] + [str(v) for v in codes]) + "\n")
    return path


def _frames(root, video, frames):
    folder = os.path.join(root, "cropped_aligned", video)
    os.makedirs(folder, exist_ok=True)
    for frame in frames:
        value = (len(video) * 10 + frame) % 256
        Image.new("RGB", (8, 6), (value, 0, 0)).save(os.path.join(folder, f"{frame:05d}.jpg"),
                                                     format="JPEG", quality=95)


def _dataset(root):
    """Two videos: one with the ABAW2/3 header, one (two subjects) with the 8-class header."""
    _labels(root, "10-60-1280x720", HEADER7, [4, -1, 0, 6, 5])
    _frames(root, "10-60-1280x720", [1, 2, 3, 5])  # frame 4 has no image
    _labels(root, "video59_left", HEADER8, [7, 1])
    _labels(root, "video59_right", HEADER8, [-1, 2])
    _frames(root, "video59_left", [1, 2])
    _frames(root, "video59_right", [1, 2])


def test_labels_in_abaw_order_unlabelled_dropped(tmp_path, caplog):
    _dataset(tmp_path)
    reader = read_affwild2_expr(tmp_path, "train")
    assert isinstance(reader, AffWild2ExprExamples)
    with caplog.at_level("WARNING"):
        out = list(reader)
    got = [(e["video"], int(e["frame"]), int(e["expr"])) for e in out]
    assert got == [("10-60-1280x720", 1, 4), ("10-60-1280x720", 3, 0),
                   ("10-60-1280x720", 5, 5), ("video59_left", 1, 7), ("video59_left", 2, 1),
                   ("video59_right", 2, 2)]
    assert out[0]["file"] == "cropped_aligned/10-60-1280x720/00001.jpg"
    assert out[0]["expr"].dtype == np.int32 and out[0]["frame"].dtype == np.int32
    assert out[0]["image"].dtype == np.uint8 and out[0]["image"].shape == (6, 8, 3)
    assert (reader.unlabelled, reader.no_image, reader.dropped) == (2, 1, 3)
    assert reader.note == "2 unlabelled frames dropped; 1 frame without an image skipped"
    assert "1 frame without an image skipped" in caplog.text
    assert count_affwild2_expr(tmp_path, "training") == 6


def test_unlabelled_kept_with_option(tmp_path):
    _dataset(tmp_path)
    reader = read_affwild2_expr(tmp_path, "train", drop_unlabelled=False, image_size=4)
    out = list(reader)
    assert [int(e["expr"]) for e in out] == [4, -1, 0, 5, 7, 1, -1, 2]
    assert out[1]["frame"] == 2 and out[1]["image"].shape == (4, 4, 3)
    assert reader.note == "2 unlabelled frames kept with expr -1; 1 frame without an image skipped"
    assert count_affwild2_expr(tmp_path, "train", drop_unlabelled=False) == 8


def test_header_maps_by_name(tmp_path):
    # A header in another order still lands in ABAW order.
    _labels(tmp_path, "v1", "Surprise,Happiness,Neutral,Anger,Disgust,Fear,Sadness,Other",
            [0, 1, 2, 7])
    _frames(tmp_path, "v1", [1, 2, 3, 4])
    out = list(read_affwild2_expr(tmp_path, "train"))
    assert [int(e["expr"]) for e in out] == [6, 4, 0, 7]


def test_validation_split_and_missing_frame_folder(tmp_path, caplog):
    _labels(tmp_path, "v1", HEADER7, [3, 3], split="Validation_Set")
    _labels(tmp_path, "v2", HEADER7, [1], split="Validation_Set")
    _frames(tmp_path, "v1", [1, 2])
    with caplog.at_level("WARNING"):
        reader = read_affwild2_expr(tmp_path, "validation")
        out = list(reader)
    assert [int(e["expr"]) for e in out] == [3, 3] and reader.no_image == 1
    assert "v2/ does not exist" in caplog.text
    assert count_affwild2_expr(tmp_path, "val") == 2


@pytest.mark.parametrize("value, pattern", [
    ("9", r"v1\.txt:3: field 'expression'.*unknown label code 9 "
          r"\(known codes: -1, 0, 1, 2, 3, 4, 5, 6\)"),
    ("7", r"v1\.txt:3: field 'expression'.*unknown label code 7"),  # 7 classes: no Other
    ("x", r"v1\.txt:3: field 'expression': cannot parse 'x'"),
])
def test_bad_label_names_file_and_line(tmp_path, value, pattern):
    _labels(tmp_path, "v1", HEADER7, [0, value, 1])
    _frames(tmp_path, "v1", [1, 2, 3])
    reader = read_affwild2_expr(tmp_path, "train")
    next(reader)
    with pytest.raises(DataFormatError, match=pattern) as info:
        next(reader)
    assert "\n" not in str(info.value)
    with pytest.raises(DataFormatError, match=pattern):
        count_affwild2_expr(tmp_path, "train")
    skipped = read_affwild2_expr(tmp_path, "train", on_error="skip")
    assert [int(e["frame"]) for e in skipped] == [1, 3]


@pytest.mark.parametrize("header, pattern", [
    ("Neutral,Anger,Disgust,Contempt,Happiness,Sadness,Surprise",
     r"v1\.txt:1: field 'header': unknown class name 'Contempt' \(known: Neutral, Anger,"),
    ("Neutral,Anger,Anger,Fear,Happiness,Sadness,Surprise",
     r"v1\.txt:1: field 'header': class 'Anger' is named twice"),
    ("0", r"v1\.txt:1: field 'header': unknown class name '0' \(expected a header"),
])
def test_bad_header_names_file(tmp_path, header, pattern):
    _labels(tmp_path, "v1", header, [0, 1])
    _frames(tmp_path, "v1", [1, 2])
    with pytest.raises(DataFormatError, match=pattern):
        list(read_affwild2_expr(tmp_path, "train", on_error="skip"))


def test_missing_layout_one_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match=r"Aff-Wild2 EXPR: expected folder .*"
                       r"annotations/EXPR_Set/Train_Set/ .*— it does not exist"):
        read_affwild2_expr(tmp_path, "train")
    with pytest.raises(DataFormatError, match=r"EXPR_Set/Validation_Set/"):
        count_affwild2_expr(tmp_path, "val")
    with pytest.raises(DataFormatError, match="unknown split 'test'"):
        read_affwild2_expr(tmp_path, "test")
    _labels(tmp_path, "v1", HEADER7, [0])  # labels only, no image folder
    with pytest.raises(DataFormatError, match=r"cropped_aligned/ — it does not exist"):
        read_affwild2_expr(tmp_path, "train")


def test_registered():
    assert readers.get_reader("affwild2_expr") is read_affwild2_expr
    assert readers.COUNTERS["affwild2_expr"] is count_affwild2_expr


def test_manual_builder_prepares_both_splits(tmp_path, capsys):
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel

    manual = tmp_path / "affwild2"
    _dataset(manual)
    _labels(manual, "v9", HEADER7, [2, -1], split="Validation_Set")
    _frames(manual, "v9", [1, 2])
    cfg = pipeline.default_config()
    cfg.name, cfg.data_dir, cfg.manual_dir = "affwild2_expr", str(tmp_path / "tfds"), str(manual)
    cfg.builder_kwargs = {"image_size": 8}
    train = pipeline.create_source(cfg, "train")
    val = pipeline.create_source(cfg, "validation")
    assert [int(train[i]["expr"]) for i in range(len(train))] == [4, 0, 5, 7, 1, 2]
    assert [int(val[i]["expr"]) for i in range(len(val))] == [2]
    assert train[0]["image"].shape == (8, 8, 3) and (train[0]["au"] == -1).all()
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("data ")]
    assert lines == [
        "data affwild2_expr train: 6 examples (2 unlabelled frames dropped; 1 frame without "
        "an image skipped)",
        "data affwild2_expr validation: 1 examples (1 unlabelled frame dropped; 0 frames "
        "without an image skipped)"]
