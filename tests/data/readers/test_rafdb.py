"""RAF-DB basic reader: code mapping, split from the name prefix, bad lines."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax import labels
from affectjax.data.readers import DataFormatError, count_rafdb, read_rafdb

ABAW = list(labels.EXPRESSIONS)
RAFDB = {1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happiness", 5: "Sadness", 6: "Anger",
         7: "Neutral"}


def _layout(root, entries, jpeg=False):
    rng = np.random.default_rng(0)
    arrays = {}
    os.makedirs(os.path.join(root, "EmoLabel"), exist_ok=True)
    os.makedirs(os.path.join(root, "Image", "aligned"), exist_ok=True)
    for name, _ in entries:
        stem = os.path.splitext(name)[0]
        arrays[name] = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
        Image.fromarray(arrays[name]).save(
            os.path.join(root, "Image", "aligned", f"{stem}_aligned.jpg"),
            format="JPEG" if jpeg else "PNG")
    with open(os.path.join(root, "EmoLabel", "list_patition_label.txt"), "w") as f:
        f.write("\n".join(f"{n} {code}" for n, code in entries) + "\n")
    return arrays


def test_mapping_and_split_by_prefix(tmp_path):
    entries = [(f"train_{i:05d}.jpg", code) for i, code in enumerate(range(1, 8), 1)]
    entries += [("test_0001.jpg", 7), ("test_0002.jpg", 1)]
    arrays = _layout(tmp_path, entries)
    train = list(read_rafdb(tmp_path, "train"))
    test = list(read_rafdb(tmp_path, "test"))
    assert len(train) == 7 == count_rafdb(tmp_path, "train")
    assert len(test) == 2 == count_rafdb(tmp_path, "testing")
    assert [int(e["expr"]) for e in train] == [ABAW.index(RAFDB[c]) for c in range(1, 8)]
    assert [int(e["expr"]) for e in test] == [ABAW.index("Neutral"), ABAW.index("Surprise")]
    assert train[0]["file"] == "Image/aligned/train_00001_aligned.jpg"
    for e, (name, _) in zip(train + test, entries):
        np.testing.assert_array_equal(e["image"], arrays[name])
    with pytest.raises(DataFormatError, match=r"unknown split 'val'; choose one of \['test', 'train'\]"):
        read_rafdb(tmp_path, "val")


def test_real_jpeg_decodes_close(tmp_path):
    arrays = _layout(tmp_path, [("train_00001.jpg", 4)], jpeg=True)
    (e,) = read_rafdb(tmp_path, "train", image_size=(5, 6))
    assert e["image"].shape == (5, 6, 3) and e["image"].dtype == np.uint8
    (full,) = read_rafdb(tmp_path, "train")
    path = os.path.join(tmp_path, "Image", "aligned", "train_00001_aligned.jpg")
    with Image.open(path) as im:
        assert im.format == "JPEG"
        np.testing.assert_array_equal(full["image"], np.asarray(im.convert("RGB")))
    assert full["image"].shape == arrays["train_00001.jpg"].shape


def test_missing_list_names_layout(tmp_path):
    with pytest.raises(DataFormatError, match=r"EmoLabel/list_patition_label\.txt.*does not"):
        read_rafdb(tmp_path, "train")


@pytest.mark.parametrize("line, pattern", [
    ("train_00002.jpg 8", r"list_patition_label\.txt:2: field 'code'.*unknown label code 8"),
    ("train_00002.jpg", r"list_patition_label\.txt:2: expected 'NAME CODE'"),
    ("train_00002.jpg five", r"list_patition_label\.txt:2: field 'code'.*'five'"),
    ("val_00002.jpg 3", r"list_patition_label\.txt:2: field 'name'.*neither 'train_'"),
    ("train_00009.jpg 3", r"train_00009_aligned\.jpg: image file does not exist"),
])
def test_bad_lines(tmp_path, line, pattern, caplog):
    _layout(tmp_path, [("train_00001.jpg", 1)])
    with open(os.path.join(tmp_path, "EmoLabel", "list_patition_label.txt"), "a") as f:
        f.write(line + "\n")
    with pytest.raises(DataFormatError, match=pattern):
        list(read_rafdb(tmp_path, "train"))
    with caplog.at_level("WARNING"):
        assert len(list(read_rafdb(tmp_path, "train", on_error="skip"))) == 1
    assert "skipped 1 of 2 items" in caplog.text
