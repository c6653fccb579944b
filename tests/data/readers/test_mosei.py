"""CMU-MOSEI emotions: a CMU-MultimodalSDK label sequence (.csd, HDF5) aligned by segment
to a MulT pickle whose ids are (video_id, start, end)."""

import json
import os
import pickle
import sys

import h5py
import numpy as np
import pytest

from affectjax.data import pipeline
from affectjax.data import readers
from affectjax.data import synthaffect
from affectjax.data.readers import DataFormatError, read_multimodal_pickle
from affectjax.data.readers import csd

S = 4  # sequence length (the released pickles have 50; the reader does not care)

# video -> [(start, end, [sentiment, happy, sad, anger, surprise, disgust, fear])], in the
# .csd's own row order (not the pickle's).
SEGMENTS = {
    "vidA": [(10.5, 14.25, [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]),      # fear
             (0.0, 3.0000001, [2.5, 1.5, 0.0, 0.0, 0.0, 0.0, 0.0]),   # happy
             (3.5, 9.75, [-1.0, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])],      # sad (weak), anger
    "vidB": [(1.2, 4.8, [0.0, 0.0, 0.0, 0.0, 0.6667, 3.0, 0.0])],     # surprise, disgust
}
# pickle items: (video, start, end) as the MOSEI pickle writes them, the expected emotions
# in (Happy, Sad, Anger, Surprise, Disgust, Fear) order, and the pickle's sentiment.
ITEMS = [
    (("vidA", "3.5", "9.75"), [0, 1, 1, 0, 0, 0], -1.0),
    (("vidB", "1.2", "4.8"), [0, 0, 0, 1, 1, 0], 0.0),
    (("vidA", "0.0", "3.0"), [1, 0, 0, 0, 0, 0], 2.5),
    (("vidA", "10.5", "14.25"), [0, 0, 0, 0, 0, 1], 1.0),
]


def write_csd(path, segments, width=7, root="All Labels"):
    """A computational sequence as the SDK's write_CSD lays it out."""
    with h5py.File(path, "w") as f:
        top = f.create_group(root)
        data = top.create_group("data")
        for video, rows in segments.items():
            group = data.create_group(video)
            group.create_dataset("features", data=np.array([r[2][:width] for r in rows]))
            group.create_dataset("intervals", data=np.array([r[:2] for r in rows]))
        meta = top.create_group("metadata")
        for key, value in (("root name", root), ("dimension names", csd.MOSEI_LABEL_COLUMNS)):
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            meta[key][0] = json.dumps(value)


def write_pickle(path, items, seq=S):
    """The MulT layout; ``items`` are (id, emotion, sentiment) and ids become a str array."""
    rng = np.random.default_rng(0)
    n = len(items)
    split = {"vision": rng.normal(size=(n, seq, 35)), "audio": rng.normal(size=(n, seq, 74)),
             "text": rng.normal(size=(n, seq, 300)),
             "labels": np.array([item[2] for item in items], np.float32).reshape(n, 1, 1),
             "id": np.array([item[0] for item in items])}
    with open(path, "wb") as f:
        pickle.dump({"train": split, "valid": split, "test": split}, f)
    return split


@pytest.fixture(name="mosei")
def fixture_mosei(tmp_path):
    labels = os.path.join(tmp_path, "CMU_MOSEI_Labels.csd")
    data = os.path.join(tmp_path, "mosei_senti_data.pkl")
    write_csd(labels, SEGMENTS)
    write_pickle(data, ITEMS)
    return data, labels


def test_emotions_follow_the_segments_in_mosei_order(mosei, caplog):
    data, labels = mosei
    assert readers.MOSEI_EMOTIONS == synthaffect.MOSEI_EMOTIONS
    with caplog.at_level("WARNING"):
        out = list(read_multimodal_pickle(data, "train", emotion_labels=labels))
    assert len(out) == len(ITEMS)
    for example, (ident, emotion, _) in zip(out, ITEMS):
        assert example["id"] == "/".join(ident)
        assert example["emotion"].dtype == np.int32 and example["emotion"].shape == (6,)
        np.testing.assert_array_equal(example["emotion"], emotion, err_msg=example["id"])
    np.testing.assert_allclose([float(e["sentiment"]) for e in out], [-1.0, 0.0, 2.5, 1.0])
    assert [int(e["sentiment_binary"]) for e in out] == [0, 0, 1, 1]
    assert "differing" not in caplog.text
    assert "emotion" not in next(read_multimodal_pickle(data, "test"))  # option off


def test_threshold_and_bytes_ids(tmp_path, mosei):
    _, labels = mosei
    data = os.path.join(tmp_path, "bytes.pkl")
    write_pickle(data, [(tuple(x.encode() for x in ident), e, s) for ident, e, s in ITEMS])
    out = list(read_multimodal_pickle(data, "val", emotion_labels=labels,
                                      emotion_threshold=1.0))
    # intensities > 1: item 0 none (sad 0.3, anger 1.0), item 1 disgust 3.0,
    # item 2 happy 1.5, item 3 fear 2.0
    expected = [[0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1]]
    np.testing.assert_array_equal([e["emotion"] for e in out], expected)


def test_missing_segment_raises_or_is_counted(tmp_path, mosei, caplog):
    _, labels = mosei
    data = os.path.join(tmp_path, "m.pkl")
    items = [(ident, e, 0.0) for ident, e, _ in ITEMS[:2]]
    items += [(("vidA", "20.0", "25.0"), None, 0.0), (("vidC", "0.0", "1.0"), None, 0.0)]
    write_pickle(data, items)
    reader = read_multimodal_pickle(data, "train", emotion_labels=labels)
    next(reader), next(reader)
    with pytest.raises(DataFormatError, match=r"CMU_MOSEI_Labels\.csd: no segment of video "
                       r"'vidA' within 0\.01 s of \[20\.0, 25\.0\] for id \['vidA', '20\.0', "
                       r"'25\.0'\] \(.*m\.pkl: split 'train' item 2\)"):
        next(reader)
    reader = read_multimodal_pickle(data, "train", emotion_labels=labels, on_error="skip")
    with caplog.at_level("WARNING"):
        kept = list(reader)
    assert len(kept) == 2 and "skipped 2 of 4 items" in caplog.text
    assert "CMU_MOSEI_Labels.csd: no video 'vidC' for id ['vidC', '0.0', '1.0']" in caplog.text
    # sentiments 0.0 differ from the .csd's -1.0 (item 0): counted, not altered
    assert "1 items have a sentiment differing by > 0.01" in caplog.text
    assert float(kept[0]["sentiment"]) == 0.0
    # [3.48, 9.77] is 0.02 s off vidA's [3.5, 9.75]: only a looser tolerance matches it
    write_pickle(data, [(("vidA", "3.48", "9.77"), None, -1.0)])
    with pytest.raises(DataFormatError, match="no segment"):
        list(read_multimodal_pickle(data, "train", emotion_labels=labels))
    out = list(read_multimodal_pickle(data, "train", emotion_labels=labels,
                                      match_tolerance=0.05))
    np.testing.assert_array_equal(out[0]["emotion"], [0, 1, 1, 0, 0, 0])


def test_ids_that_are_not_video_start_end(tmp_path, mosei):
    _, labels = mosei
    data = os.path.join(tmp_path, "idx.pkl")
    write_pickle(data, [(("vidA", "0"), None, 1.0)])
    with pytest.raises(DataFormatError, match=r"item 0: field 'id' \['vidA', '0'\]: expected "
                       r"\(video_id, start, end\)"):
        list(read_multimodal_pickle(data, "train", emotion_labels=labels))
    with open(data, "rb") as f:
        content = pickle.load(f)
    del content["train"]["id"]
    with open(data, "wb") as f:
        pickle.dump(content, f)
    with pytest.raises(DataFormatError, match=r"field 'id' is missing; emotion_labels match"):
        read_multimodal_pickle(data, "train", emotion_labels=labels)
    with pytest.raises(DataFormatError, match="emotion_labels is for CMU-MOSEI"):
        read_multimodal_pickle(data, "train", dataset="mosi", emotion_labels=labels)


def test_bad_label_files(tmp_path, mosei):
    data, _ = mosei
    missing = os.path.join(tmp_path, "nowhere", "CMU_MOSEI_Labels.csd")
    with pytest.raises(DataFormatError, match=r"expected file .*nowhere/CMU_MOSEI_Labels\.csd"):
        read_multimodal_pickle(data, "train", emotion_labels=missing)
    narrow = os.path.join(tmp_path, "narrow.csd")
    write_csd(narrow, SEGMENTS, width=6)
    with pytest.raises(DataFormatError, match=r"narrow\.csd: field 'All Labels/data/vidA/"
                       r"features' has shape \(3, 6\); expected \(n, 7\)"):
        read_multimodal_pickle(data, "train", emotion_labels=narrow)
    flat = os.path.join(tmp_path, "flat.csd")
    with h5py.File(flat, "w") as f:
        f.create_dataset("features", data=np.zeros((2, 7)))
    with pytest.raises(DataFormatError, match=r"flat\.csd: expected a root group holding "
                       r"'data'.*top level has \['features'\]"):
        read_multimodal_pickle(data, "train", emotion_labels=flat)
    no_intervals = os.path.join(tmp_path, "ni.csd")
    with h5py.File(no_intervals, "w") as f:
        f.create_dataset("All Labels/data/vidA/features", data=np.zeros((2, 7)))
    with pytest.raises(DataFormatError, match=r"ni\.csd: field 'All Labels/data/vidA/"
                       r"intervals' is missing"):
        read_multimodal_pickle(data, "train", emotion_labels=no_intervals)
    text = os.path.join(tmp_path, "text.csd")
    with open(text, "w", encoding="utf-8") as f:
        f.write("not hdf5")
    with pytest.raises(DataFormatError, match=r"text\.csd: not an HDF5 file"):
        read_multimodal_pickle(data, "train", emotion_labels=text)


def test_without_h5py_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r'needs h5py.*pip install -e "\.\[multimodal\]"'):
        csd.import_h5py("CMU-MOSEI emotion labels")


def test_multimodal_builder_with_emotion_file(tmp_path):
    manual = tmp_path / "mosei"
    manual.mkdir()
    write_csd(manual / "CMU_MOSEI_Labels.csd", SEGMENTS)
    split = write_pickle(manual / "mosei_senti_data.pkl", ITEMS, seq=50)  # the builder's S
    cfg = pipeline.default_config()
    cfg.name, cfg.data_dir, cfg.manual_dir = "multimodal", str(tmp_path / "tfds"), str(manual)
    cfg.builder_kwargs = {"file": "mosei_senti_data.pkl", "emotion_file": "CMU_MOSEI_Labels.csd"}
    source = pipeline.create_source(cfg, "test")
    assert len(source) == len(ITEMS)
    for i, (_, emotion, _) in enumerate(ITEMS):
        ex = source[i]
        np.testing.assert_array_equal(ex["emotion"], emotion)
        np.testing.assert_allclose(ex["text"], split["text"][i], rtol=1e-6)
        assert ex["sarcasm"] == -1 and ex["sentiment"] == split["labels"][i, 0, 0]
