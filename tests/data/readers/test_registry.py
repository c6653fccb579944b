"""Reader registry, shared helpers and the landmark convention."""

import numpy as np
import pytest

from affectjax.data import readers


def test_get_reader_and_registry():
    assert readers.get_reader("affectnet") is readers.read_affectnet
    assert set(readers.READERS) == set(readers.COUNTERS)
    with pytest.raises(KeyError, match=r"unknown reader 'affnet'; choose one of \['affectnet', "):
        readers.get_reader("affnet")
    assert issubclass(readers.DataFormatError, ValueError)


def test_landmarks5_from_68_follows_subject_side():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 100, (68, 2))
    points[36:42, 0] = rng.uniform(20, 30, 6)  # eye on the image's left
    points[42:48, 0] = rng.uniform(70, 80, 6)  # eye on the image's right = subject's left
    points[48, 0], points[54, 0] = 35.0, 65.0
    five = readers.landmarks5_from_68(points)
    assert five.dtype == np.float32 and five.shape == (5, 2)
    np.testing.assert_allclose(five[0], points[42:48].mean(0), rtol=1e-6)
    np.testing.assert_allclose(five[1], points[36:42].mean(0), rtol=1e-6)
    np.testing.assert_allclose(five[2], points[30], rtol=1e-6)
    assert five[0, 0] > five[1, 0] and five[3, 0] == 65.0 and five[4, 0] == 35.0


@pytest.mark.parametrize("table, names", [
    (readers.AFFECTNET_TO_ABAW, ["Neutral", "Happiness", "Sadness", "Surprise", "Fear",
                                 "Disgust", "Anger", "Other"]),
    (readers.RAFDB_TO_ABAW, [None, "Surprise", "Fear", "Disgust", "Happiness", "Sadness",
                             "Anger", "Neutral"]),
    (readers.FER2013_TO_ABAW, ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise",
                               "Neutral"]),
])
def test_tables_are_bijections_into_abaw(table, names):
    for code, name in enumerate(names):
        if name is not None:
            assert readers.ABAW_EXPRESSIONS[table[code]] == name


def test_bad_image_size(tmp_path):
    (tmp_path / "happy").mkdir()
    with pytest.raises(readers.DataFormatError, match=r"image_size=\(0, 3\)"):
        readers.read_image_folder(tmp_path, image_size=(0, 3))
