"""FER2013 reader: usage -> split, code mapping, grayscale -> 3 channels, bad rows."""

import os

import numpy as np
import pytest

from affectjax import labels
from affectjax.data.readers import DataFormatError, count_fer2013, read_fer2013

ABAW = list(labels.EXPRESSIONS)
FER = ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral"]


def _csv(path, rows, columns=("emotion", "pixels", "Usage"), header=True):
    lines = [",".join(columns)] if header else []
    for row in rows:
        values = {"emotion": str(row[0]), "pixels": " ".join(map(str, row[1].reshape(-1))),
                  "Usage": row[2]}
        lines.append(",".join(values[c.strip()] for c in columns))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _rows(rng):
    usages = ["Training"] * 7 + ["PublicTest", "PrivateTest", "PublicTest"]
    codes = list(range(7)) + [3, 6, 0]
    return [(c, rng.integers(0, 256, (48, 48)), u) for c, u in zip(codes, usages)]


@pytest.mark.parametrize("columns, header", [
    (("emotion", "pixels", "Usage"), True),
    (("emotion", " Usage", " pixels"), True),
    (("emotion", "pixels", "Usage"), False),
])
def test_splits_codes_and_channels(tmp_path, columns, header):
    rows = _rows(np.random.default_rng(0))
    path = os.path.join(tmp_path, "fer2013.csv")
    _csv(path, rows, columns, header)
    train = list(read_fer2013(path, "train"))
    val = list(read_fer2013(path, "val"))
    test = list(read_fer2013(path, "test"))
    assert (len(train), len(val), len(test)) == (7, 2, 1)
    assert count_fer2013(path, "val") == 2
    assert [int(e["expr"]) for e in train] == [ABAW.index(FER[c]) for c in range(7)]
    assert [int(e["expr"]) for e in val] == [ABAW.index("Happiness"), ABAW.index("Anger")]
    assert int(test[0]["expr"]) == ABAW.index("Neutral")
    for e, row in zip(train + val + test, rows[:7] + [rows[7], rows[9], rows[8]]):
        assert e["image"].shape == (48, 48, 3) and e["image"].dtype == np.uint8
        for channel in range(3):
            np.testing.assert_array_equal(e["image"][..., channel], row[1])


def test_resize(tmp_path):
    path = os.path.join(tmp_path, "fer2013.csv")
    _csv(path, _rows(np.random.default_rng(1))[:1])
    (e,) = read_fer2013(path, "train", image_size=64)
    assert e["image"].shape == (64, 64, 3)


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match=r"fer2013\.csv \(columns emotion,pixels,Usage\)"):
        read_fer2013(os.path.join(tmp_path, "fer2013.csv"), "train")


@pytest.mark.parametrize("line, pattern", [
    ("7,{pixels},Training", r"fer2013\.csv:3: field 'emotion'.*unknown label code 7"),
    ("1,{pixels},Valid", r"fer2013\.csv:3: field 'Usage'.*unknown value 'Valid'"),
    ("1,{short},Training", r"fer2013\.csv:3: field 'pixels'.*2303 values"),
    ("1,{pixels}", r"fer2013\.csv:3: expected 3 comma-separated"),
    ("1,{bad},Training", r"fer2013\.csv:3: field 'pixels'.*not a list of integers"),
    ("1,{big},Training", r"fer2013\.csv:3: field 'pixels'.*outside 0..255"),
])
def test_bad_rows(tmp_path, line, pattern):
    path = os.path.join(tmp_path, "fer2013.csv")
    _csv(path, _rows(np.random.default_rng(2))[:1])
    pixels = " ".join(["7"] * 2304)
    with open(path, "a") as f:
        f.write(line.format(pixels=pixels, short=" ".join(["7"] * 2303),
                            bad=pixels[:-1] + "x", big=pixels[:-1] + "256") + "\n")
    reader = read_fer2013(path, "train")
    next(reader)
    with pytest.raises(DataFormatError, match=pattern):
        next(reader)
    assert len(list(read_fer2013(path, "train", on_error="skip"))) == 1
