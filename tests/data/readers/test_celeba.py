"""CelebA reader: the distributed layout (two lists, aligned JPEGs), splits and every error."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from affectjax.data import readers
from affectjax.data.readers import CELEBA_ATTRIBUTES, DataFormatError, count_celeba, read_celeba

NAMES = [f"{i:06d}.jpg" for i in range(1, 6)]
PARTITION = [0, 0, 1, 2, 0]  # train, train, validation, test, train


def _row(name, values):
    """A row as CelebA writes it: values right-aligned in width 2, so '1' follows two spaces."""
    return name + "".join(f" {v:>2}" for v in values)


def _layout(root, rows=None, *, count=None, names=None, partition=None):
    """Writes the distributed layout; returns {name: ±1 values} and {name: decoded image}."""
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(root, "img_align_celeba"), exist_ok=True)
    if rows is None:
        rows = {n: rng.choice([-1, 1], len(CELEBA_ATTRIBUTES)).tolist() for n in NAMES}
    images = {}
    for n in rows:
        path = os.path.join(root, "img_align_celeba", n)
        Image.fromarray(rng.integers(0, 256, (11, 9, 3), dtype=np.uint8)).save(path, "JPEG")
        with Image.open(path) as im:
            images[n] = np.asarray(im.convert("RGB"))
    header = [str(len(rows) if count is None else count),
              " ".join(CELEBA_ATTRIBUTES if names is None else names) + " "]
    with open(os.path.join(root, "list_attr_celeba.txt"), "w") as f:
        f.write("\n".join(header + [_row(n, v) for n, v in rows.items()]) + "\n")
    if partition is None:
        partition = dict(zip(rows, PARTITION))
    with open(os.path.join(root, "list_eval_partition.txt"), "w") as f:
        f.write("".join(f"{n} {p}\n" for n, p in partition.items()))
    return rows, images


def test_splits_values_images_and_registry(tmp_path):
    rows, images = _layout(tmp_path)
    text = (tmp_path / "list_attr_celeba.txt").read_text()
    assert re.search(r"^5\n5_o_Clock_Shadow Arched_Eyebrows .* Young \n000001\.jpg( -1|  1){40}\n",
                     text)
    train = list(read_celeba(tmp_path, "train"))
    assert [e["file"] for e in train] == [f"img_align_celeba/{n}" for n in
                                         ("000001.jpg", "000002.jpg", "000005.jpg")]
    for e in train:
        name = e["file"].split("/")[1]
        assert e["attr"].dtype == np.int32 and e["attr"].shape == (40,)
        np.testing.assert_array_equal(e["attr"], (np.array(rows[name]) + 1) // 2)
        np.testing.assert_array_equal(e["image"], images[name])
        assert e["image"].shape == (11, 9, 3) and e["image"].dtype == np.uint8
    for split, name in (("val", "000003.jpg"), ("validation", "000003.jpg"),
                        ("test", "000004.jpg")):
        (e,) = read_celeba(tmp_path, split, image_size=(6, 5))
        assert e["file"].endswith(name) and e["image"].shape == (6, 5, 3)
        assert count_celeba(tmp_path, split) == 1
    assert count_celeba(tmp_path, "train") == 3
    assert readers.READERS["celeba"] is read_celeba and readers.COUNTERS["celeba"] is count_celeba
    assert len(CELEBA_ATTRIBUTES) == 40 == len(set(CELEBA_ATTRIBUTES))
    assert (CELEBA_ATTRIBUTES[0], CELEBA_ATTRIBUTES[31], CELEBA_ATTRIBUTES[-1]) == (
        "5_o_Clock_Shadow", "Smiling", "Young")
    with pytest.raises(DataFormatError, match=r"unknown split 'dev'"):
        read_celeba(tmp_path, "dev")


def _one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(DataFormatError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("missing", ["list_attr_celeba.txt", "list_eval_partition.txt",
                                     "img_align_celeba"])
def test_missing_file_or_folder(tmp_path, missing):
    _layout(tmp_path)
    path = tmp_path / missing
    if path.is_dir():
        for f in path.iterdir():
            f.unlink()
        path.rmdir()
    else:
        path.unlink()
    _one_line_error(rf"{re.escape(str(path))}/? — it does not exist", read_celeba, tmp_path,
                    "train")


def test_count_line_and_attribute_names(tmp_path):
    _layout(tmp_path, count=6)
    _one_line_error(r"list_attr_celeba\.txt:1: field 'count': says 6 images but the file has "
                    r"5 rows", count_celeba, tmp_path, "train")
    names = list(CELEBA_ATTRIBUTES)
    names[2], names[3] = names[3], names[2]
    _layout(tmp_path, names=names)
    _one_line_error(r"list_attr_celeba\.txt:2: the attribute names are not CelebA's 40 \(name 3 "
                    r"is 'Bags_Under_Eyes', expected 'Attractive'\)", read_celeba, tmp_path,
                    "test")
    _layout(tmp_path, names=CELEBA_ATTRIBUTES[:39])
    _one_line_error(r"list_attr_celeba\.txt:2: .*\(39 names\)", read_celeba, tmp_path, "test")


def test_bad_rows_raise_with_their_line_or_are_skipped(tmp_path, caplog):
    rows = {n: [1] * 40 for n in NAMES}
    rows["000002.jpg"] = [1] * 39
    rows["000003.jpg"] = [1] * 4 + [0] + [1] * 35
    _layout(tmp_path, rows)
    reader = read_celeba(tmp_path, "train")
    assert next(reader)["file"].endswith("000001.jpg")
    _one_line_error(r"list_attr_celeba\.txt:4: 000002\.jpg has 39 values, expected 40",
                    next, reader)
    _one_line_error(r"list_attr_celeba\.txt:5: field 'Bald': '0' is not -1 or 1",
                    lambda: list(read_celeba(tmp_path, "validation")))
    with caplog.at_level("WARNING"):
        assert len(list(read_celeba(tmp_path, "train", on_error="skip"))) == 2
    assert "skipped 1 of 3 items" in caplog.text


def test_image_listed_in_one_file_only(tmp_path):
    _layout(tmp_path, partition=dict(zip(NAMES[:4], PARTITION)))
    _one_line_error(r"list_attr_celeba\.txt:7: 000005\.jpg is not listed in .*"
                    r"list_eval_partition\.txt$", read_celeba, tmp_path, "val")
    _layout(tmp_path, partition={**dict(zip(NAMES, PARTITION)), "000009.jpg": 2, "000010.jpg": 0})
    _one_line_error(r"list_eval_partition\.txt:6: 000009\.jpg is not listed in .*"
                    r"list_attr_celeba\.txt \(and 1 more\)", count_celeba, tmp_path, "test")
    _layout(tmp_path, partition={**dict(zip(NAMES, PARTITION)), "000005.jpg": 3})
    _one_line_error(r"list_eval_partition\.txt:5: field 'partition': '3' is not 0",
                    read_celeba, tmp_path, "train")


def test_missing_image_raises_or_is_skipped_and_counted(tmp_path, caplog):
    _layout(tmp_path)
    (tmp_path / "img_align_celeba" / "000002.jpg").unlink()
    _one_line_error(r"img_align_celeba/000002\.jpg: image file does not exist",
                    lambda: list(read_celeba(tmp_path, "train")))
    with caplog.at_level("WARNING"):
        out = list(read_celeba(tmp_path, "train", on_error="skip"))
    assert [e["file"][-10:] for e in out] == ["000001.jpg", "000005.jpg"]
    assert "skipped 1 of 3 items" in caplog.text and "000002.jpg" in caplog.text
    assert count_celeba(tmp_path, "train") == 3  # the lists, not the images
