"""Writers: CSV and JSONL columns, the stdout table, the per-video summary."""

import csv
import json

import numpy as np
import pytest

from affectjax.predict import writers
from affectjax.train.errors import UserError

BASE = {"file": "a.png", "frame": None, "time_s": None, "face": 0, "box_x": 0, "box_y": 0,
        "box_w": 10, "box_h": 10}
PRED = {"expr_label": "Happiness", "expr_prob/Neutral": 0.1, "expr_prob/Happiness": 0.9,
        "valence": np.float32(0.25), "arousal": -0.125, "au/AU6": 1, "au/AU12": 0,
        "au_prob/AU6": 0.7, "au_prob/AU12": 0.2}
NO_FACE = {**BASE, "face": -1, "box_x": None, "box_y": None, "box_w": None, "box_h": None}


@pytest.mark.parametrize("out", [None, "p.csv", "p.JSONL", "dir/p.csv"])
def test_check_out_accepts_csv_jsonl_and_none(out):
    writers.check_out(out)


@pytest.mark.parametrize("out", ["p.txt", "p", "p.json"])
def test_check_out_rejects_other_extensions(out):
    with pytest.raises(UserError, match="extension must be .csv or .jsonl"):
        writers.check_out(out)


def test_csv_columns_are_the_base_then_the_predictions(tmp_path):
    path = str(tmp_path / "sub" / "p.csv")
    writer = writers.open_writer(path)
    writer.write(NO_FACE)                       # held back until the columns are known
    writer.write({**BASE, **PRED})
    writer.write({**BASE, "file": "v.avi", "frame": 5, "time_s": 0.5, **PRED})
    writer.close()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0])
    assert header == list(writers.BASE_COLUMNS) + list(PRED)
    assert [r["face"] for r in rows] == ["-1", "0", "0"]
    assert rows[0]["expr_label"] == "" and rows[0]["box_x"] == ""
    assert rows[1]["frame"] == "" and rows[2]["frame"] == "5" and rows[2]["time_s"] == "0.5"
    assert rows[1]["valence"] == "0.25" and rows[1]["au/AU6"] == "1"


def test_csv_grows_its_header_for_a_late_column(tmp_path):
    path = str(tmp_path / "p.csv")
    writer = writers.CsvWriter(path)
    writer.write({**BASE, **PRED})
    writer.write({**BASE, **PRED, "extra": 3})
    writer.close()
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-1] == "extra"
    assert rows[0]["extra"] == "" and rows[1]["extra"] == "3"
    assert rows[0]["expr_label"] == rows[1]["expr_label"] == "Happiness"


def test_csv_with_only_no_face_rows_has_the_base_header(tmp_path):
    path = str(tmp_path / "p.csv")
    writer = writers.CsvWriter(path)
    writer.write(NO_FACE)
    writer.close()
    writer.close()  # closing twice is harmless
    assert open(path).read().splitlines()[0] == ",".join(writers.BASE_COLUMNS)


def test_jsonl_rows_have_their_own_keys_and_plain_values(tmp_path):
    path = str(tmp_path / "p.jsonl")
    writer = writers.open_writer(path)
    writer.write({**BASE, **PRED})
    writer.write(NO_FACE)
    writer.write({**BASE, "valence": float("nan")})
    writer.close()
    lines = [json.loads(line) for line in open(path)]
    assert list(lines[0]) == list(writers.BASE_COLUMNS) + list(PRED)
    assert lines[0]["frame"] is None and lines[0]["valence"] == 0.25
    assert lines[0]["expr_prob/Happiness"] == 0.9
    assert list(lines[1]) == list(writers.BASE_COLUMNS) and lines[1]["face"] == -1
    assert lines[2]["valence"] is None


def test_table_prints_a_header_and_one_line_per_row():
    printed = []
    table = writers.open_writer(None, printed.append)
    table.write({**BASE, **PRED})
    table.write(NO_FACE)
    table.write({**BASE, "file": "x" * 50 + ".png", "time_s": 1.5, **PRED})
    assert printed[0].split()[:4] == ["file", "time_s", "face", "expression"]
    assert printed[1].split() == ["a.png", "-", "0", "Happiness", "0.90", "+0.250", "-0.125",
                                  "AU6"]
    assert printed[2].split() == ["a.png", "-", "-1", "-", "-", "-", "-", "-"]
    assert printed[3].startswith("…" + "x" * 27 + ".png") and " 1.50 " in printed[3]


def test_video_summary_means_and_most_frequent_label(tmp_path):
    summary = writers.VideoSummary()
    frame = {**BASE, "file": "v.avi"}
    summary.add({**BASE, **PRED})  # an image: not summarised
    for i, (label, v, p_happy) in enumerate([("Happiness", 0.5, 0.8), ("Neutral", 0.1, 0.2),
                                             ("Neutral", 0.3, 0.4), ("Happiness", 0.1, 0.9)]):
        summary.add({**frame, "frame": 10 * i, "time_s": float(i), **PRED,
                     "expr_label": label, "valence": v, "expr_prob/Happiness": p_happy,
                     "expr_prob/Neutral": 1 - p_happy})
    summary.add({**NO_FACE, "file": "v.avi", "frame": 40, "time_s": 4.0})
    (row,) = summary.rows()
    assert row["file"] == "v.avi" and row["frames"] == 5 and row["faces"] == 4
    assert row["valence"] == pytest.approx(0.25) and row["arousal"] == pytest.approx(-0.125)
    assert row["expr_prob/Happiness"] == pytest.approx(0.575)
    assert row["expr_label"] == "Happiness"     # 2 - 2 tie, higher mean probability
    assert row["au_prob/AU6"] == pytest.approx(0.7)

    path = summary.write(str(tmp_path / "p.csv"))
    assert path == str(tmp_path / "p_videos.csv")
    with open(path, newline="") as f:
        (read,) = list(csv.DictReader(f))
    assert list(read)[:6] == ["file", "frames", "faces", "valence", "arousal", "expr_label"]
    printed = []
    assert summary.write(None, printed.append) is None
    assert printed[-1].split() == ["v.avi", "5", "4", "Happiness", "0.250", "-0.125"]


def test_no_video_no_summary(tmp_path):
    summary = writers.VideoSummary()
    summary.add({**BASE, **PRED})
    assert summary.write(str(tmp_path / "p.jsonl")) is None
    assert not (tmp_path / "p_videos.jsonl").exists()
