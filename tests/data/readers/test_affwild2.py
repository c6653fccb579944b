"""Aff-Wild2 ABAW MTL reader: -5 / -1 masks, identity expression map, bad lines."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax.data.readers import DataFormatError, count_affwild2_mtl, read_affwild2_mtl

HEADER = "image,valence,arousal,expression,aus"


def _layout(root, lines, header=True, name="training_set_annotations.txt", images=()):
    rng = np.random.default_rng(0)
    arrays = {}
    for rel in images:
        path = os.path.join(root, "cropped_aligned", *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        arrays[rel] = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
        Image.fromarray(arrays[rel]).save(path, format="PNG")
    with open(os.path.join(root, name), "w") as f:
        f.write("\n".join(([HEADER] if header else []) + lines) + "\n")
    return arrays


LINES = [
    "v1/00001.jpg,0.25,-0.5,4,1,0,0,1,0,0,1,0,0,0,1,0",
    "v1/00002.jpg,-5,-5,2,0,0,1,0,0,0,0,0,0,0,0,0",
    "v2/00001.jpg,0.75,0.125,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1,-1",
    "v2/00002.jpg,-0.5,0.5,7,1,-1,0,1,-1,0,1,-1,0,1,-1,0",
]


@pytest.mark.parametrize("header", [True, False])
def test_labels_and_masks(tmp_path, header):
    arrays = _layout(tmp_path, LINES, header=header, images=[l.split(",")[0] for l in LINES])
    out = list(read_affwild2_mtl(tmp_path, "train"))
    assert len(out) == 4 == count_affwild2_mtl(tmp_path, "training")
    assert [e["file"] for e in out] == [f"cropped_aligned/{l.split(',')[0]}" for l in LINES]
    for e, line in zip(out, LINES):
        np.testing.assert_array_equal(e["image"], arrays[line.split(",")[0]])
        assert e["au"].dtype == np.int32 and e["au"].shape == (12,)
        np.testing.assert_array_equal(e["au"], [int(v) for v in line.split(",")[4:]])
    assert [int(e["expr"]) for e in out] == [4, 2, -1, 7]
    assert [bool(e["va_mask"]) for e in out] == [True, False, True, True]
    np.testing.assert_allclose(out[0]["va"], [0.25, -0.5])
    np.testing.assert_array_equal(out[1]["va"], [0.0, 0.0])
    np.testing.assert_allclose(out[2]["va"], [0.75, 0.125])


def test_validation_split_and_resize(tmp_path):
    _layout(tmp_path, LINES[:1], name="validation_set_annotations.txt", images=["v1/00001.jpg"])
    (e,) = read_affwild2_mtl(tmp_path, "val", image_size=4)
    assert e["image"].shape == (4, 4, 3)


def test_missing_file_names_layout(tmp_path):
    with pytest.raises(DataFormatError, match=r"training_set_annotations\.txt.*header image,"):
        read_affwild2_mtl(tmp_path, "train")
    with pytest.raises(DataFormatError, match="unknown split 'test'"):
        read_affwild2_mtl(tmp_path, "test")
    _layout(tmp_path, LINES[:1])  # annotation file only, no image folder
    with pytest.raises(DataFormatError, match=r"cropped_aligned/ — it does not exist"):
        read_affwild2_mtl(tmp_path, "train")


@pytest.mark.parametrize("line, pattern", [
    ("v1/00002.jpg,0.1,0.2,3", r"annotations\.txt:3: expected 16 .*field 'AU1'"),
    ("v1/00002.jpg,0.1,x,3,0,0,0,0,0,0,0,0,0,0,0,0", r"annotations\.txt:3: field 'arousal'"),
    ("v1/00002.jpg,0.1,0.2,8,0,0,0,0,0,0,0,0,0,0,0,0",
     r"annotations\.txt:3: field 'expression'.*unknown label code 8"),
    ("v1/00002.jpg,0.1,0.2,3,0,0,2,0,0,0,0,0,0,0,0,0",
     r"annotations\.txt:3: field 'AU4'.*unknown label code 2"),
    ("v1/00002.jpg,-2,0.2,3,0,0,0,0,0,0,0,0,0,0,0,0",
     r"annotations\.txt:3: field 'valence'.*outside"),
    ("v1/00003.jpg,0.1,0.2,3,0,0,0,0,0,0,0,0,0,0,0,0", r"00003\.jpg: image file does not exist"),
])
def test_bad_lines(tmp_path, line, pattern):
    _layout(tmp_path, [LINES[0], line], images=["v1/00001.jpg"])
    reader = read_affwild2_mtl(tmp_path, "train")
    next(reader)
    with pytest.raises(DataFormatError, match=pattern):
        next(reader)


def test_unreadable_image_and_skip(tmp_path, caplog):
    _layout(tmp_path, LINES[:2], images=["v1/00001.jpg"])
    with open(os.path.join(tmp_path, "cropped_aligned", "v1", "00002.jpg"), "wb") as f:
        f.write(b"\xff\xd8 truncated")
    with pytest.raises(DataFormatError, match=r"00002\.jpg: cannot decode image"):
        list(read_affwild2_mtl(tmp_path, "train"))
    with caplog.at_level("WARNING"):
        assert len(list(read_affwild2_mtl(tmp_path, "train", on_error="skip"))) == 1
    assert "skipped 1 of 2 items" in caplog.text
