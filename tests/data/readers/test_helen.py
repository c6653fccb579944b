"""Helen parsing reader: argmax over the 11 soft maps, both split-list formats."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax.data.readers import DataFormatError, count_helen, read_helen


def _face(root, name, rng, h=6, w=7):
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(os.path.join(root, "images", f"{name}.jpg"), format="PNG")
    soft = rng.integers(0, 4, (11, h, w)).astype(np.uint8) * 80  # many ties
    os.makedirs(os.path.join(root, "labels", name), exist_ok=True)
    for k in range(11):
        Image.fromarray(soft[k]).save(os.path.join(root, "labels", name, f"{name}_lbl{k:02d}.png"))
    return image, soft


def _reference_argmax(soft):
    out = np.zeros(soft.shape[1:], np.uint8)
    for i in range(soft.shape[1]):
        for j in range(soft.shape[2]):
            best = 0
            for k in range(1, soft.shape[0]):
                if soft[k, i, j] > soft[best, i, j]:
                    best = k
            out[i, j] = best
    return out


def _write_list(root, name, lines):
    with open(os.path.join(root, name), "w") as f:
        f.write("\n".join(lines) + "\n")


def test_argmax_masks_and_split_lists(tmp_path):
    rng = np.random.default_rng(0)
    faces = {n: _face(tmp_path, n, rng) for n in ("100032540_1", "10405146_1", "1629243_1")}
    _write_list(tmp_path, "exemplars.txt", ["1 , 100032540_1", "2, 10405146_1"])
    _write_list(tmp_path, "tuning.txt", ["1629243_1"])
    _write_list(tmp_path, "testing.txt", ["  1 ,  1629243_1 "])
    train = list(read_helen(tmp_path, "train"))
    assert [e["file"] for e in train] == ["images/100032540_1.jpg", "images/10405146_1.jpg"]
    assert count_helen(tmp_path, "train") == 2
    for e, name in zip(train, ("100032540_1", "10405146_1")):
        image, soft = faces[name]
        np.testing.assert_array_equal(e["image"], image)
        assert e["parsing"].dtype == np.uint8 and e["parsing"].shape == image.shape[:2]
        np.testing.assert_array_equal(e["parsing"], _reference_argmax(soft))
    (val,) = read_helen(tmp_path, "val")
    (test,) = read_helen(tmp_path, "test")
    np.testing.assert_array_equal(val["parsing"], test["parsing"])
    assert set(np.unique(train[0]["parsing"])) <= set(range(11))


def test_all_zero_pixel_is_background_and_resize(tmp_path):
    rng = np.random.default_rng(1)
    _face(tmp_path, "a_1", rng, h=8, w=8)
    for k in range(11):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(
            os.path.join(tmp_path, "labels", "a_1", f"a_1_lbl{k:02d}.png"))
    hair = np.zeros((8, 8), np.uint8)
    hair[:4] = 255
    Image.fromarray(hair).save(os.path.join(tmp_path, "labels", "a_1", "a_1_lbl10.png"))
    _write_list(tmp_path, "testing.txt", ["1 , a_1"])
    (e,) = read_helen(tmp_path, "test")
    expected = np.zeros((8, 8), np.uint8)
    expected[:4] = 10
    np.testing.assert_array_equal(e["parsing"], expected)
    (small,) = read_helen(tmp_path, "test", image_size=4)
    assert small["image"].shape == (4, 4, 3)
    np.testing.assert_array_equal(small["parsing"][0], [10] * 4)
    np.testing.assert_array_equal(small["parsing"][3], [0] * 4)


def test_missing_layout(tmp_path):
    with pytest.raises(DataFormatError, match=r"exemplars\.txt \(split lists"):
        read_helen(tmp_path, "train")
    _write_list(tmp_path, "exemplars.txt", ["1 , a_1"])
    with pytest.raises(DataFormatError, match=r"images/ — it does not exist"):
        read_helen(tmp_path, "train")


def test_bad_inputs(tmp_path):
    rng = np.random.default_rng(2)
    _face(tmp_path, "a_1", rng)
    _face(tmp_path, "b_1", rng)
    _write_list(tmp_path, "exemplars.txt", ["1 , a_1", "2 , b 1 , c", "3 , b_1"])
    reader = read_helen(tmp_path, "train")
    next(reader)
    with pytest.raises(DataFormatError, match=r"exemplars\.txt:2: field 'name'"):
        next(reader)
    assert len(list(read_helen(tmp_path, "train", on_error="skip"))) == 2
    os.remove(os.path.join(tmp_path, "labels", "b_1", "b_1_lbl07.png"))
    _write_list(tmp_path, "tuning.txt", ["b_1"])
    with pytest.raises(DataFormatError, match=r"b_1_lbl07\.png: image file does not exist"):
        list(read_helen(tmp_path, "val"))
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(
        os.path.join(tmp_path, "labels", "b_1", "b_1_lbl07.png"))
    with pytest.raises(DataFormatError, match=r"b_1_lbl07\.png: label size \(3, 3\) differs"):
        list(read_helen(tmp_path, "val"))
    with open(os.path.join(tmp_path, "images", "b_1.jpg"), "wb") as f:
        f.write(b"garbage")
    with pytest.raises(DataFormatError, match=r"b_1\.jpg: cannot decode image"):
        list(read_helen(tmp_path, "val"))
