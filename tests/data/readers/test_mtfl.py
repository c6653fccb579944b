"""MTFL reader: Windows paths, leading spaces, landmark reordering, attributes."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax.data.readers import DataFormatError, count_mtfl, read_mtfl


def _layout(root, lines, name="training.txt", images=("lfw_5590/A_0001.jpg",)):
    rng = np.random.default_rng(0)
    arrays = {}
    for rel in images:
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        arrays[rel] = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
        Image.fromarray(arrays[rel]).save(path, format="PNG")
    with open(os.path.join(root, name), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")
    return arrays


# MTFL's "left" is the image's left: x1 (20) < x2 (40), x4 (22) < x5 (38).
LINE = "lfw_5590\\A_0001.jpg 20 40 30 22 38 15 16 25 35 36 1 2 1 3"


def test_reordered_landmarks_attributes_and_paths(tmp_path):
    second = " net_7876\\B_0001.jpg 21 41 31 23 39 10 11 20 30 31 2 1 2 5"  # leading space
    arrays = _layout(tmp_path, [LINE, second],
                     images=("lfw_5590/A_0001.jpg", "net_7876/B_0001.jpg"))
    out = list(read_mtfl(tmp_path, "train"))
    assert len(out) == 2 == count_mtfl(tmp_path, "train")
    assert [e["file"] for e in out] == ["lfw_5590/A_0001.jpg", "net_7876/B_0001.jpg"]
    np.testing.assert_array_equal(out[0]["image"], arrays["lfw_5590/A_0001.jpg"])
    # Ours: subject's left eye (image right, x=40), right eye (x=20), nose,
    # subject's left mouth corner (image right, x=38), right mouth corner (x=22).
    np.testing.assert_array_equal(
        out[0]["landmarks"], [[40, 16], [20, 15], [30, 25], [38, 36], [22, 35]])
    assert out[0]["landmarks"].dtype == np.float32 and out[0]["landmarks_mask"]
    assert out[0]["landmarks"][0, 0] > out[0]["landmarks"][1, 0]
    assert [int(out[0][k]) for k in ("gender", "smile", "glasses", "pose")] == [1, 2, 1, 3]
    assert [int(out[1][k]) for k in ("gender", "smile", "glasses", "pose")] == [2, 1, 2, 5]


def test_resize_scales_landmarks(tmp_path):
    _layout(tmp_path, [LINE], name="testing.txt")
    (e,) = read_mtfl(tmp_path, "test", image_size=(25, 120))
    assert e["image"].shape == (25, 120, 3)
    np.testing.assert_allclose(
        e["landmarks"], np.array([[40, 16], [20, 15], [30, 25], [38, 36], [22, 35]]) * [2, 0.5])


def test_missing_list(tmp_path):
    with pytest.raises(DataFormatError, match=r"testing\.txt \(lines 'lfw_5590"):
        read_mtfl(tmp_path, "test")


@pytest.mark.parametrize("line, pattern", [
    ("lfw_5590\\A_0001.jpg 20 40 30 22 38 15 16 25 35 36 1 2 1",
     r"training\.txt:2: expected 15 .*field 'pose'"),
    ("lfw_5590\\A_0001.jpg 20 40 30 22 38 15 16 y3 35 36 1 2 1 3",
     r"training\.txt:2: field 'y3'"),
    ("lfw_5590\\A_0001.jpg 20 40 30 22 38 15 16 25 35 36 3 2 1 3",
     r"training\.txt:2: field 'gender'.*unknown label code 3"),
    ("lfw_5590\\A_0001.jpg 20 40 30 22 38 15 16 25 35 36 1 2 1 6",
     r"training\.txt:2: field 'pose'.*unknown label code 6"),
    ("lfw_5590\\Z_0001.jpg 20 40 30 22 38 15 16 25 35 36 1 2 1 3",
     r"Z_0001\.jpg: image file does not exist"),
])
def test_bad_lines(tmp_path, line, pattern):
    _layout(tmp_path, [LINE, line])
    reader = read_mtfl(tmp_path, "train")
    next(reader)
    with pytest.raises(DataFormatError, match=pattern):
        next(reader)
    assert len(list(read_mtfl(tmp_path, "train", on_error="skip"))) == 1
