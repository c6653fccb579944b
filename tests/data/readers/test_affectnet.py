"""AffectNet reader: both layouts, header detection, codes 8-10 (dropped or kept), VA -2, crop
and landmarks."""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax import labels
from affectjax.data.readers import DataFormatError, count_affectnet, read_affectnet

ABAW = list(labels.EXPRESSIONS)
AFFECTNET = ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Other"]
HEADER = ("subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
          "expression,valence,arousal")


def _save(path, array, fmt="PNG"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _points68(rng):
    return rng.uniform(2, 28, size=(68, 2)).round(2)


def _ref5(p):
    # Subject's left eye = image-right eye = points 43-48 (1-based) = 42..47 (0-based).
    return np.array([p[42:48].mean(0), p[36:42].mean(0), p[30], p[54], p[48]])


def _csv_layout(root, rows, header=True, split_file="training.csv"):
    """rows: (relpath, image, box, points68, code, valence, arousal)."""
    lines = [HEADER] if header else []
    for rel, image, box, pts, code, v, a in rows:
        _save(os.path.join(root, "Manually_Annotated_Images", rel), image)
        lm = ";".join(f"{x};{y}" for x, y in pts)
        lines.append(f"{rel},{box[0]},{box[1]},{box[2]},{box[3]},{lm},{code},{v},{a}")
    path = os.path.join(root, "Manually_Annotated_file_lists", split_file)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _rows(rng):
    return [
        ("1/a.jpg", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (5, 4, 20, 16),
         _points68(rng), 1, 0.5, -0.25),
        ("1/b.jpg", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (0, 0, 40, 30),
         _points68(rng), 9, -2, -2),
        ("2/c.png", rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (1, 1, 10, 10),
         _points68(rng), 8, -0.75, 0.125),
    ]


@pytest.mark.parametrize("header", [True, False])
def test_csv_labels_masks_and_landmarks(tmp_path, header):
    rng = np.random.default_rng(0)
    rows = _rows(rng)
    split_file = "training.csv" if header else "validation.csv"
    _csv_layout(tmp_path, rows, header=header, split_file=split_file)
    split = "train" if header else "val"
    out = list(read_affectnet(tmp_path, split, drop_non_class=False))
    assert len(out) == 3 == count_affectnet(tmp_path, split, drop_non_class=False)
    np.testing.assert_array_equal(out[0]["image"], rows[0][1])
    assert out[0]["image"].dtype == np.uint8 and out[0]["image"].shape == (30, 40, 3)
    assert out[0]["expr"] == ABAW.index("Happiness") and out[0]["expr"].dtype == np.int32
    np.testing.assert_allclose(out[0]["va"], [0.5, -0.25])
    assert out[0]["va_mask"] and out[0]["va"].dtype == np.float32
    # Code 9 (Uncertain) with VA -2: kept, no class, no VA.
    assert out[1]["expr"] == -1 and not out[1]["va_mask"]
    np.testing.assert_array_equal(out[1]["va"], [0, 0])
    # Code 8 (None) with VA: kept for VA.
    assert out[2]["expr"] == -1 and out[2]["va_mask"]
    np.testing.assert_allclose(out[2]["va"], [-0.75, 0.125])
    for example, row in zip(out, rows):
        np.testing.assert_allclose(example["landmarks"], _ref5(row[3]), atol=1e-4)
        assert example["landmarks_mask"] and example["landmarks"].shape == (5, 2)
    assert [e["file"] for e in out] == [
        "Manually_Annotated_Images/1/a.jpg", "Manually_Annotated_Images/1/b.jpg",
        "Manually_Annotated_Images/2/c.png"]


@pytest.mark.parametrize("code", range(11))
def test_every_expression_code(tmp_path, code):
    rng = np.random.default_rng(code)
    image = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    _csv_layout(tmp_path, [("x.jpg", image, (0, 0, 8, 8), _points68(rng), code, 0.0, 0.0)])
    (example,) = read_affectnet(tmp_path, "train", drop_non_class=False)
    expected = ABAW.index(AFFECTNET[code]) if code < 8 else -1
    assert example["expr"] == expected
    default = list(read_affectnet(tmp_path, "train"))
    assert [int(e["expr"]) for e in default] == ([expected] if code < 8 else [])


def _non_class_rows(rng):
    """Codes 1, 8, 9, 0, 10, 6: the three rows with codes 8-10 have VA, one has none."""
    image = lambda: rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)  # noqa: E731
    return [
        ("a.jpg", image(), (0, 0, 12, 12), _points68(rng), 1, 0.5, 0.25),
        ("b.jpg", image(), (0, 0, 12, 12), _points68(rng), 8, -0.5, 0.5),
        ("c.jpg", image(), (0, 0, 12, 12), _points68(rng), 9, -2, -2),
        ("d.jpg", image(), (0, 0, 12, 12), _points68(rng), 0, 0.0, 0.0),
        ("e.jpg", image(), (0, 0, 12, 12), _points68(rng), 10, 0.75, -0.25),
        ("f.jpg", image(), (0, 0, 12, 12), _points68(rng), 6, -0.25, 0.75),
    ]


@pytest.mark.parametrize("layout", ["csv", "npy"])
def test_codes_8_to_10_are_dropped_by_default_as_the_authors_do(tmp_path, layout):
    rows = _non_class_rows(np.random.default_rng(5))
    if layout == "csv":
        _csv_layout(tmp_path, rows)
    else:
        _npy_layout(tmp_path, "train_set", {n: (r[1], r[4], r[5], r[6], r[3])
                                            for n, r in enumerate(rows)})
    reader = read_affectnet(tmp_path, "train")
    out = list(reader)
    assert [int(e["expr"]) for e in out] == [ABAW.index(a) for a in
                                            ("Happiness", "Neutral", "Anger")]
    assert len(out) == 3 == count_affectnet(tmp_path, "train")
    assert reader.dropped == 3 and reader.note == "3 rows with codes 8-10 dropped"
    stems = [os.path.splitext(os.path.basename(e["file"]))[0] for e in out]
    assert stems == (["a", "d", "f"] if layout == "csv" else ["0", "3", "5"])

    kept = read_affectnet(tmp_path, "train", drop_non_class=False)
    out = list(kept)
    assert len(out) == 6 == count_affectnet(tmp_path, "train", drop_non_class=False)
    assert [int(e["expr"]) for e in out] == [4, -1, -1, 0, -1, 1]
    assert [bool(e["va_mask"]) for e in out] == [True, True, False, True, True, True]
    np.testing.assert_allclose(out[4]["va"], [0.75, -0.25])
    assert kept.dropped == 0 and kept.note == "3 rows with codes 8-10 kept with expr -1"


def test_dropped_rows_are_not_opened(tmp_path):
    rows = _non_class_rows(np.random.default_rng(6))[:2]  # codes 1 and 8
    _csv_layout(tmp_path, rows)
    os.remove(os.path.join(tmp_path, "Manually_Annotated_Images", "b.jpg"))
    (example,) = read_affectnet(tmp_path, "train")
    assert example["file"].endswith("a.jpg")
    with pytest.raises(DataFormatError, match=r"b\.jpg: image file does not exist"):
        list(read_affectnet(tmp_path, "train", drop_non_class=False))


def test_crop_to_face_maps_landmarks_through_crop_and_resize(tmp_path):
    rng = np.random.default_rng(1)
    rows = _rows(rng)[:1]
    _csv_layout(tmp_path, rows)
    (cropped,) = read_affectnet(tmp_path, "train", crop_to_face=True)
    image, (x, y, w, h), pts = rows[0][1], rows[0][2], rows[0][3]
    np.testing.assert_array_equal(cropped["image"], image[y:y + h, x:x + w])
    np.testing.assert_allclose(cropped["landmarks"], _ref5(pts) - [x, y], atol=1e-4)
    (small,) = read_affectnet(tmp_path, "train", crop_to_face=True, image_size=(8, 10))
    reference = np.asarray(Image.fromarray(image[y:y + h, x:x + w]).resize(
        (10, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(small["image"], reference)
    np.testing.assert_allclose(small["landmarks"],
                               (_ref5(pts) - [x, y]) * [10 / w, 8 / h], atol=1e-4)


def _npy_layout(root, set_name, items):
    for n, (image, exp, val, aro, pts) in items.items():
        _save(os.path.join(root, set_name, "images", f"{n}.jpg"), image)
        ann = os.path.join(root, set_name, "annotations")
        os.makedirs(ann, exist_ok=True)
        np.save(os.path.join(ann, f"{n}_exp.npy"), np.array(exp))
        np.save(os.path.join(ann, f"{n}_val.npy"), np.array(val))
        np.save(os.path.join(ann, f"{n}_aro.npy"), np.array(aro))
        np.save(os.path.join(ann, f"{n}_lnd.npy"), pts.reshape(-1))


def test_npy_layout_numeric_order_and_string_codes(tmp_path):
    rng = np.random.default_rng(2)
    items = {n: (rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), exp, val, aro,
                 _points68(rng))
             for n, exp, val, aro in [(10, "6", "0.5", "0.25"), (2, 3, -0.5, 0.75),
                                      (0, "7", "-0.125", "0.0"), (1, "0", "0", "0")]}
    _npy_layout(tmp_path, "val_set", items)
    out = list(read_affectnet(tmp_path, "validation", layout="auto"))
    assert [e["file"] for e in out] == [f"val_set/images/{n}.jpg" for n in (0, 1, 2, 10)]
    assert [int(e["expr"]) for e in out] == [ABAW.index(AFFECTNET[int(items[n][1])])
                                             for n in (0, 1, 2, 10)]
    np.testing.assert_allclose(out[3]["va"], [0.5, 0.25])
    np.testing.assert_allclose(out[2]["va"], [-0.5, 0.75])
    for e, n in zip(out, (0, 1, 2, 10)):
        np.testing.assert_array_equal(e["image"], items[n][0])
        np.testing.assert_allclose(e["landmarks"], _ref5(items[n][4]), atol=1e-4)
    assert count_affectnet(tmp_path, "val") == 4
    with pytest.raises(DataFormatError, match="crop_to_face"):
        read_affectnet(tmp_path, "val", crop_to_face=True)


def test_missing_layout_names_both_distributions(tmp_path):
    with pytest.raises(DataFormatError) as info:
        read_affectnet(tmp_path, "train")
    message = str(info.value)
    assert "Manually_Annotated_file_lists/training.csv" in message
    assert "train_set/images/" in message and "neither exists" in message
    with pytest.raises(DataFormatError, match="unknown split 'dev'"):
        read_affectnet(tmp_path, "dev")
    with pytest.raises(DataFormatError, match=r"unknown layout 'xml'; choose one of \['auto', 'csv', 'npy'\]"):
        read_affectnet(tmp_path, "train", layout="xml")


def _one_row_csv(tmp_path, line):
    rng = np.random.default_rng(3)
    _save(os.path.join(tmp_path, "Manually_Annotated_Images", "x.jpg"),
          rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    path = os.path.join(tmp_path, "Manually_Annotated_file_lists", "training.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    lm = ";".join(["1"] * 136)
    with open(path, "w") as f:
        f.write(HEADER + "\n" + f"x.jpg,0,0,8,8,{lm},1,0.5,0.5\n" + line.format(lm=lm) + "\n")
    return path


@pytest.mark.parametrize("line, pattern", [
    ("x.jpg,0,0,8,8", r"training\.csv:3: expected 9 .*'facial_landmarks'"),
    ("x.jpg,0,0,8,8,{lm},1,high,0.5", r"training\.csv:3: field 'valence'"),
    ("x.jpg,0,0,8,8,{lm},11,0.5,0.5", r"training\.csv:3: field 'expression'.*code 11"),
    ("x.jpg,0,0,8,8,1;2;3,1,0.5,0.5", r"training\.csv:3.*'facial_landmarks'.*136"),
    ("x.jpg,0,0,8,8,{lm},1,1.5,0.5", r"training\.csv:3.*'valence'.*outside"),
    ("nothere.jpg,0,0,8,8,{lm},1,0.5,0.5", r"nothere\.jpg: image file does not exist"),
])
def test_bad_rows_name_file_line_and_field(tmp_path, line, pattern):
    _one_row_csv(tmp_path, line)
    reader = read_affectnet(tmp_path, "train")
    assert next(reader)["expr"] == 4
    with pytest.raises(DataFormatError, match=pattern):
        next(reader)


def test_unreadable_image_and_opt_in_skip(tmp_path, caplog):
    _one_row_csv(tmp_path, "bad.jpg,0,0,8,8,{lm},1,0.5,0.5")
    with open(os.path.join(tmp_path, "Manually_Annotated_Images", "bad.jpg"), "wb") as f:
        f.write(b"not an image")
    with pytest.raises(DataFormatError, match=r"bad\.jpg: cannot decode image"):
        list(read_affectnet(tmp_path, "train"))
    with caplog.at_level("WARNING"):
        out = list(read_affectnet(tmp_path, "train", on_error="skip"))
    assert len(out) == 1
    assert "skipped 1 of 2 items" in caplog.text and "bad.jpg" in caplog.text
    with pytest.raises(DataFormatError, match=r"unknown on_error 'ignore'; choose one of \['raise', 'skip'\]"):
        read_affectnet(tmp_path, "train", on_error="ignore")


def test_npy_missing_annotation_and_unknown_code(tmp_path):
    rng = np.random.default_rng(4)
    items = {0: (rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "12", "0", "0",
                 _points68(rng))}
    _npy_layout(tmp_path, "train_set", items)
    with pytest.raises(DataFormatError, match=r"0_exp\.npy: field 'expression'.*code 12"):
        list(read_affectnet(tmp_path, "train"))
    os.remove(os.path.join(tmp_path, "train_set", "annotations", "0_lnd.npy"))
    np.save(os.path.join(tmp_path, "train_set", "annotations", "0_exp.npy"), np.array("1"))
    with pytest.raises(DataFormatError, match=r"0_lnd\.npy: annotation file does not exist"):
        list(read_affectnet(tmp_path, "train"))
