"""Class-per-folder reader: sorted classes, ABAW mapping, bad input."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax import labels
from affectjax.data.readers import DataFormatError, count_image_folder, read_image_folder

ABAW = list(labels.EXPRESSIONS)


def _tree(root, spec):
    rng = np.random.default_rng(0)
    arrays = {}
    for cls, files in spec.items():
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        for name in files:
            arrays[f"{cls}/{name}"] = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
            Image.fromarray(arrays[f"{cls}/{name}"]).save(os.path.join(root, cls, name),
                                                          format="PNG")
    return arrays


def test_emotion_word_folders_map_to_abaw(tmp_path):
    arrays = _tree(tmp_path, {"sad": ["b.png", "a.jpg"], "Happy": ["z.PNG"], "neutral": ["c.bmp"]})
    with open(os.path.join(tmp_path, "sad", "notes.txt"), "w") as f:
        f.write("not an image")
    out = list(read_image_folder(tmp_path))
    assert [e["file"] for e in out] == ["Happy/z.PNG", "neutral/c.bmp", "sad/a.jpg", "sad/b.png"]
    assert [int(e["label"]) for e in out] == [0, 1, 2, 2]
    assert [int(e["expr"]) for e in out] == [ABAW.index(n) for n in
                                             ("Happiness", "Neutral", "Sadness", "Sadness")]
    for e in out:
        np.testing.assert_array_equal(e["image"], arrays[e["file"]])
    assert count_image_folder(tmp_path) == 4


def test_class_names_mapping_and_plain_labels(tmp_path):
    _tree(tmp_path, {"c1": ["a.png"], "c0": ["b.png"], "c2": ["c.png"]})
    plain = list(read_image_folder(tmp_path))
    assert [int(e["label"]) for e in plain] == [0, 1, 2] and "expr" not in plain[0]
    mapped = list(read_image_folder(tmp_path, class_names={"c0": "Fear", "c1": 6, "c2": -1}))
    assert [int(e["expr"]) for e in mapped] == [3, 6, -1]
    (small, *_) = read_image_folder(tmp_path, image_size=(2, 3))
    assert small["image"].shape == (2, 3, 3)


def test_bad_input(tmp_path):
    with pytest.raises(DataFormatError, match=r"root/<class_name>/\*\.jpg\) — it does not"):
        read_image_folder(os.path.join(tmp_path, "nope"))
    with pytest.raises(DataFormatError, match="has no class sub-folders"):
        read_image_folder(tmp_path)
    _tree(tmp_path, {"c0": ["a.png", "b.png"], "c1": ["c.png"]})
    with pytest.raises(DataFormatError, match="class folder\\(s\\) c1 missing from class_names"):
        read_image_folder(tmp_path, class_names={"c0": 1})
    with pytest.raises(DataFormatError,
                       match=r"class_names\['c0'\]: unknown ABAW class 'Joy'; choose one of"):
        read_image_folder(tmp_path, class_names={"c0": "Joy", "c1": 1})
    with pytest.raises(DataFormatError, match="= 9 is not an ABAW index"):
        read_image_folder(tmp_path, class_names={"c0": 9, "c1": 1})
    with open(os.path.join(tmp_path, "c0", "b.png"), "wb") as f:
        f.write(b"broken")
    with pytest.raises(DataFormatError, match=r"c0/b\.png: cannot decode image"):
        list(read_image_folder(tmp_path))
    assert len(list(read_image_folder(tmp_path, on_error="skip"))) == 2
