"""MulT-layout pickles: IEMOCAP multi-hot, MOSEI sentiment, non-finite audio, bad input."""

import os
import pickle

import numpy as np
import pytest

from affectjax.data.readers import DataFormatError, count_multimodal_pickle, read_multimodal_pickle

S = 50  # sequence length of the released pickles


def _split(rng, labels, ids=None):
    n = len(labels)
    part = {"vision": rng.normal(size=(n, S, 35)), "audio": rng.normal(size=(n, S, 74)),
            "text": rng.normal(size=(n, S, 300)).astype(np.float32), "labels": labels}
    if ids is not None:
        part["id"] = ids
    return part


def _dump(path, data):
    with open(path, "wb") as f:
        pickle.dump(data, f)


def _iemocap_labels(hot):
    hot = np.asarray(hot)
    return np.stack([1 - hot, hot], axis=-1).astype(np.float32)  # [not, is] per emotion


def test_iemocap_multi_hot_and_nonfinite_audio(tmp_path, caplog):
    rng = np.random.default_rng(0)
    hot = [[0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]]
    data = {k: _split(rng, _iemocap_labels(hot)) for k in ("train", "valid", "test")}
    audio = data["valid"]["audio"]
    audio[0, 1, 2], audio[2, 0, 0], audio[2, 4, 73] = -np.inf, np.nan, np.inf
    expected_audio = np.nan_to_num(audio.copy(), nan=0, posinf=0, neginf=0)
    path = os.path.join(tmp_path, "iemocap_data.pkl")
    _dump(path, data)
    with caplog.at_level("WARNING"):
        out = list(read_multimodal_pickle(path, "val", dataset="iemocap"))
    assert "replaced 3 non-finite audio values with 0" in caplog.text
    assert len(out) == 3 == count_multimodal_pickle(path, "valid")
    for i, e in enumerate(out):
        np.testing.assert_array_equal(e["emotion"], hot[i])
        assert e["emotion"].dtype == np.int32
        assert e["text"].shape == (S, 300) and e["audio"].shape == (S, 74)
        assert e["visual"].shape == (S, 35) and e["visual"].dtype == np.float32
        np.testing.assert_allclose(e["audio"], expected_audio[i], rtol=1e-6)
        np.testing.assert_allclose(e["visual"], data["valid"]["vision"][i], rtol=1e-6)
        assert np.isfinite(e["audio"]).all()
    auto = list(read_multimodal_pickle(path, "train"))
    np.testing.assert_array_equal(auto[1]["emotion"], hot[1])


@pytest.mark.parametrize("binarize, expected", [
    ("positive", [0, 0, 1, 0]), ("non_negative", [0, 1, 1, 0]), ("non_zero", [0, -1, 1, 0])])
def test_mosei_sentiment_and_binarisation(tmp_path, binarize, expected):
    rng = np.random.default_rng(1)
    sentiment = np.array([-1.5, 0.0, 2.25, -3.0]).reshape(4, 1, 1)
    ids = np.array([[b"vid1", b"0"], [b"vid1", b"1"], [b"vid2", b"0"], [b"vid3", b"4"]])
    data = {"train": _split(rng, sentiment, ids), "test": _split(rng, sentiment[:1])}
    path = os.path.join(tmp_path, "mosei_senti_data.pkl")
    _dump(path, data)
    out = list(read_multimodal_pickle(path, "train", dataset="mosei", binarize=binarize))
    np.testing.assert_allclose([float(e["sentiment"]) for e in out], sentiment.reshape(-1))
    assert [int(e["sentiment_binary"]) for e in out] == expected
    assert out[0]["sentiment"].dtype == np.float32 and out[0]["sentiment"].shape == ()
    assert out[0]["sentiment_binary"].dtype == np.int32
    assert [e["id"] for e in out] == ["vid1/0", "vid1/1", "vid2/0", "vid3/4"]
    assert "emotion" not in out[0]
    with pytest.raises(DataFormatError, match=r"no split 'valid'; the pickle has 'train', 'test'"):
        read_multimodal_pickle(path, "val")


def test_bad_input(tmp_path):
    rng = np.random.default_rng(2)
    with pytest.raises(DataFormatError, match=r"iemocap_data\.pkl \(MulT layout"):
        read_multimodal_pickle(os.path.join(tmp_path, "iemocap_data.pkl"), "train")
    path = os.path.join(tmp_path, "x.pkl")
    labels = _iemocap_labels([[0, 1, 0, 0], [1, 0, 0, 1]])
    labels[1, 2] = [1, 1]
    _dump(path, {"train": _split(rng, labels)})
    reader = read_multimodal_pickle(path, "train")
    next(reader)
    with pytest.raises(DataFormatError, match=r"x\.pkl: split 'train' item 1: field 'labels'"):
        next(reader)
    assert len(list(read_multimodal_pickle(path, "train", on_error="skip"))) == 1
    _dump(path, {"train": _split(rng, np.array([[[3.5]]]))})
    with pytest.raises(DataFormatError, match=r"item 0: field 'labels'.*outside \[-3, 3\]"):
        list(read_multimodal_pickle(path, "train"))
    part = _split(rng, np.array([[[1.0]]]))
    del part["audio"]
    _dump(path, {"train": part})
    with pytest.raises(DataFormatError, match=r"split 'train': field 'audio' is missing"):
        read_multimodal_pickle(path, "train")
    part = _split(rng, np.array([[[1.0]], [[0.5]]]))
    part["vision"] = part["vision"][:1]
    _dump(path, {"train": part})
    with pytest.raises(DataFormatError, match=r"field 'vision' has shape \(1, 50, 35\)"):
        read_multimodal_pickle(path, "train")
    _dump(path, {"train": _split(rng, np.zeros((1, 6)))})
    with pytest.raises(DataFormatError, match=r"field 'labels': shape \(1, 6\) matches no"):
        read_multimodal_pickle(path, "train")
    with pytest.raises(DataFormatError, match=r"IEMOCAP expects \(N, 4, 2\)"):
        read_multimodal_pickle(path, "train", dataset="iemocap")
    with pytest.raises(DataFormatError, match="unknown dataset 'meld'; choose one of"):
        read_multimodal_pickle(path, "train", dataset="meld")
    with open(path, "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(DataFormatError, match=r"x\.pkl: cannot unpickle"):
        read_multimodal_pickle(path, "train")
