"""MUStARD in its repository's data/ layout: json labels, split_indices.p folds, librosa
audio pickle (283, T), ResNet pool5 HDF5 per id, GloVe dict or BERT jsonl text."""

import json
import os
import pickle
import shutil

import h5py
import numpy as np
import pytest

from affectjax.data import pipeline
from affectjax.data import readers
from affectjax.data.readers import DataFormatError, count_mustard, read_mustard
from affectjax.data.readers import mustard

SHOWS = ["BBT", "FRIENDS", "BBT", "GOLDENGIRLS", "FRIENDS", "BBT", "SARCASMOHOLICS",
         "FRIENDS", "BBT", "FRIENDS"]
SARCASM = [True, False, True, False, True, False, False, True, True, False]
UTTERANCES = ["Don't you think it's great?", "Oh, perfect.", "Yeah, right.", "Sure.",
              "I love Mondays!", "Fine.", "What a surprise.", "Wow, zorblax.", "Great job.",
              "Nope."]
FOLDS = [(np.array([i for i in range(10) if i % 5 != k]), np.array([k, k + 5]))
         for k in range(5)]
AUDIO_T = [11, 12, 11, 10, 12, 11, 11, 12, 11, 10]
FRAMES = [8, 60, 3, 50, 51, 20, 8, 9, 100, 4]


def write_mustard(root, *, audio_dim=mustard.AUDIO_DIM, visual_dim=2048, bert_dim=8):
    """The data/ folder of the MUStARD repository, with tiny features of the real widths."""
    root = str(root)
    os.makedirs(os.path.join(root, "features", "utterances_final"))
    rng = np.random.default_rng(0)
    keys = [f"{i + 1}_{60 + 10 * i}" for i in range(10)]
    items = {k: {"utterance": u, "speaker": "SHELDON", "context": ["Hi."],
                 "context_speakers": ["LEONARD"], "show": show, "sarcasm": sarcasm}
             for k, u, show, sarcasm in zip(keys, UTTERANCES, SHOWS, SARCASM)}
    with open(os.path.join(root, "sarcasm_data.json"), "w", encoding="utf-8") as f:
        json.dump(items, f, indent=2)
    with open(os.path.join(root, "split_indices.p"), "wb") as f:
        pickle.dump(FOLDS, f, protocol=2)
    audio = {k: rng.normal(size=(audio_dim, t)) for k, t in zip(keys, AUDIO_T)}
    with open(os.path.join(root, "audio_features.p"), "wb") as f:
        pickle.dump(audio, f, protocol=2)
    visual = {k: rng.normal(size=(n, visual_dim)).astype(np.float32)
              for k, n in zip(keys, FRAMES)}
    with h5py.File(os.path.join(root, mustard.FILES["visual"]), "w") as f:
        for k, v in visual.items():
            f.create_dataset(k, data=v)
    words = {w for u in UTTERANCES for w in mustard.tokenize(u)} - {"zorblax"}
    glove = {w: rng.normal(size=300) for w in sorted(words)}
    glove["<PAD>"], glove["<UNK>"] = np.zeros(300), rng.uniform(-0.25, 0.25, 300)
    with open(os.path.join(root, "glove_full_dict.p"), "wb") as f:
        pickle.dump(glove, f)
    bert = []
    with open(os.path.join(root, "bert-output.jsonl"), "w", encoding="utf-8") as f:
        for i, u in enumerate(UTTERANCES):
            pieces = ["[CLS]"] + u.lower().split() + ["[SEP]"]
            layers = rng.normal(size=(len(pieces), 4, bert_dim)).round(4)
            bert.append(layers.mean(axis=1))
            f.write(json.dumps({"linex_index": i, "features": [
                {"token": p, "layers": [{"index": -1 - j, "values": layers[t, j].tolist()}
                                        for j in range(4)]}
                for t, p in enumerate(pieces)]}) + "\n")
    return {"keys": keys, "audio": audio, "visual": visual, "glove": glove, "bert": bert}


@pytest.fixture(name="data", scope="module")
def fixture_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mustard")
    return str(root), write_mustard(root)


def test_folds_labels_and_missing_tasks(data):
    root, ref = data
    for fold, (train, test) in enumerate(FOLDS):
        out = list(read_mustard(root, "test", fold=fold, seq_len=4))
        assert [e["id"] for e in out] == [ref["keys"][i] for i in test]
        assert [int(e["sarcasm"]) for e in out] == [int(SARCASM[i]) for i in test]
        assert count_mustard(root, "train", fold=fold) == len(train)
    e = out[0]
    assert e["sarcasm"].dtype == np.int32 and e["sarcasm"].shape == ()
    np.testing.assert_array_equal(e["emotion"], [-1] * 6)
    assert e["emotion"].dtype == np.int32
    assert float(e["sentiment"]) == 0.0 and int(e["sentiment_binary"]) == -1
    assert readers.READERS["mustard"] is read_mustard
    assert readers.COUNTERS["mustard"] is count_mustard


def test_other_schemes(data):
    root, _ = data
    test = list(read_mustard(root, "test", scheme="speaker_independent", seq_len=2))
    train_n = count_mustard(root, "train", scheme="speaker_independent")
    assert len(test) == SHOWS.count("FRIENDS") and train_n == 10 - len(test)
    assert {e["id"] for e in test} == {f"{i + 1}_{60 + 10 * i}" for i, s in enumerate(SHOWS)
                                       if s == "FRIENDS"}
    splits = {}
    for split in ("train", "test"):
        splits[split] = [e for e in read_mustard(root, split, scheme="balanced", seed=3,
                                                 seq_len=2)]
    ids = [{e["id"] for e in splits[s]} for s in ("train", "test")]
    assert not ids[0] & ids[1] and len(ids[0] | ids[1]) == 10
    assert sorted(int(e["sarcasm"]) for e in splits["test"]) == [0, 1]  # 20 % of 5 per class
    again = {e["id"] for e in read_mustard(root, "test", scheme="balanced", seed=3, seq_len=2)}
    assert again == ids[1]


def test_sequences_padded_at_start_or_averaged(data):
    root, ref = data
    out = {e["id"]: e for e in read_mustard(root, "train", scheme="speaker_independent",
                                            seq_len=12)}
    k = ref["keys"][0]  # audio 11 bins, 8 frames: padded; text 8 tokens
    e = out[k]
    assert e["audio"].shape == (12, mustard.AUDIO_DIM) and e["audio"].dtype == np.float32
    np.testing.assert_array_equal(e["audio"][:1], 0)
    np.testing.assert_allclose(e["audio"][1:], ref["audio"][k].T, rtol=1e-6)
    np.testing.assert_array_equal(e["visual"][:4], 0)
    np.testing.assert_allclose(e["visual"][4:], ref["visual"][k], rtol=1e-6)
    tokens = ["do", "n't", "you", "think", "it", "'s", "great", "?"]
    assert mustard.tokenize(UTTERANCES[0]) == tokens
    np.testing.assert_array_equal(e["text"][:4], 0)
    np.testing.assert_allclose(e["text"][4:], [ref["glove"][w] for w in tokens], rtol=1e-6)
    k = ref["keys"][3]  # 50 frames -> 12 chunks of 5 or 4 (np.array_split), order kept
    chunks = np.array_split(ref["visual"][k], 12)
    np.testing.assert_allclose(out[k]["visual"], [c.mean(0) for c in chunks], rtol=1e-5)
    k = ref["keys"][7]  # "zorblax" is not in the GloVe dict: its "<UNK>" vector
    assert mustard.tokenize(UTTERANCES[7]) == ["wow", ",", "zorblax", "."]
    out = list(read_mustard(root, "test", fold=2, seq_len=12))
    np.testing.assert_allclose(out[1]["text"][-2], ref["glove"]["<UNK>"], rtol=1e-6)


@pytest.mark.parametrize("text", ["bert", "bert_cls"])
def test_bert_text(data, text):
    root, ref = data
    out = list(read_mustard(root, "test", fold=1, text=text, seq_len=6))
    for e, i in zip(out, FOLDS[1][1]):
        want = ref["bert"][i][:1] if text == "bert_cls" else ref["bert"][i]
        assert e["text"].shape == (6, 8)
        np.testing.assert_array_equal(e["text"][:6 - len(want)], 0)
        np.testing.assert_allclose(e["text"][6 - len(want):], want, rtol=1e-5, atol=1e-6)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return str(dst)


def test_bad_input(data, tmp_path, caplog):
    src, ref = data
    with pytest.raises(DataFormatError, match=r"MUStARD labels: expected file .*nowhere/"
                       r"sarcasm_data\.json"):
        read_mustard(os.path.join(tmp_path, "nowhere"), "train")
    with pytest.raises(DataFormatError, match=r"MUStARD: unknown split 'val'"):
        read_mustard(src, "val")
    with pytest.raises(DataFormatError, match=r"unknown scheme 'kfold'"):
        read_mustard(src, "train", scheme="kfold")
    with pytest.raises(DataFormatError, match=r"split_indices\.p: fold 5 does not exist "
                       r"\(the file has 5 folds: 0\.\.4\)"):
        read_mustard(src, "train", fold=5)

    root = _copy(src, tmp_path / "a")
    labels = os.path.join(root, "sarcasm_data.json")
    with open(labels, encoding="utf-8") as f:
        items = json.load(f)
    del items[ref["keys"][2]]["sarcasm"]
    with open(labels, "w", encoding="utf-8") as f:
        json.dump(items, f)
    with pytest.raises(DataFormatError, match=r"sarcasm_data\.json: item '3_80': field "
                       r"'sarcasm' is missing"):
        count_mustard(root, "test")
    with open(labels, "w", encoding="utf-8") as f:
        f.write("{not json")
    with pytest.raises(DataFormatError, match=r"sarcasm_data\.json: not a JSON file"):
        read_mustard(root, "test")

    root = _copy(src, tmp_path / "b")
    audio = ref["audio"].copy()
    del audio[ref["keys"][5]]
    audio[ref["keys"][0]] = np.full((mustard.AUDIO_DIM, 3), np.nan)
    with open(os.path.join(root, "audio_features.p"), "wb") as f:
        pickle.dump(audio, f)
    reader = read_mustard(root, "test", fold=0, seq_len=4)  # items 0 and 5
    with pytest.raises(DataFormatError, match=r"audio_features\.p: item '1_60': field 'audio':"
                       r" 849 non-finite values"):
        next(reader)
    with caplog.at_level("WARNING"):
        out = list(read_mustard(root, "test", fold=0, seq_len=4, on_error="skip"))
    assert out == [] and "skipped 2 of 2 items" in caplog.text
    assert "audio_features.p: item '6_110' is missing" in caplog.text

    root = _copy(src, tmp_path / "c")
    os.remove(os.path.join(root, mustard.FILES["visual"]))
    with pytest.raises(DataFormatError, match=r"MUStARD visual features: expected file .*"
                       r"features/utterances_final/resnet_pool5\.hdf5"):
        read_mustard(root, "train")
    with open(os.path.join(root, mustard.FILES["visual"]), "w", encoding="utf-8") as f:
        f.write("not hdf5")
    with pytest.raises(DataFormatError, match=r"resnet_pool5\.hdf5: not an HDF5 file"):
        read_mustard(root, "train")
    with h5py.File(os.path.join(root, mustard.FILES["visual"]), "w") as f:
        f.create_dataset(ref["keys"][0], data=np.zeros((5, 2048)))
        f.create_dataset(ref["keys"][5], data=np.zeros((5, 1024)))
    with pytest.raises(DataFormatError, match=r"item '6_110': field 'visual': width 1024 "
                       r"differs from the 2048"):
        list(read_mustard(root, "test"))
    with pytest.raises(DataFormatError, match=r"resnet_pool5\.hdf5: item '2_70' is missing"):
        list(read_mustard(root, "test", fold=1))

    root = _copy(src, tmp_path / "d")
    os.remove(os.path.join(root, "glove_full_dict.p"))
    with pytest.raises(DataFormatError, match=r"MUStARD text='glove' features: expected file"):
        read_mustard(root, "train")
    path = os.path.join(root, "bert-output.jsonl")
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines[:9])
    with pytest.raises(DataFormatError, match=r"bert-output\.jsonl: 9 lines for the 10 items"):
        read_mustard(root, "train", text="bert")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines[:4] + ['{"features": [{"token": "[CLS]"}]}\n'] + lines[5:])
    with pytest.raises(DataFormatError, match=r"bert-output\.jsonl:5: field 'features': "
                       r"expected BERT extract_features output .* for item '5_100'"):
        list(read_mustard(root, "test", fold=4, text="bert"))


def test_mustard_builder(tmp_path):
    manual = tmp_path / "data"
    ref = write_mustard(manual)
    cfg = pipeline.default_config()
    cfg.name, cfg.data_dir, cfg.manual_dir = "mustard", str(tmp_path / "tfds"), str(manual)
    cfg.builder_kwargs = {"fold": 1}
    test = pipeline.create_source(cfg, "test")
    train = pipeline.create_source(cfg, "train")
    assert (len(train), len(test)) == (8, 2)
    ex = test[0]
    assert ex["text"].shape == (50, 300) and ex["audio"].shape == (50, 283)
    assert ex["visual"].shape == (50, 2048) and ex["emotion"].shape == (6,)
    assert [int(test[i]["sarcasm"]) for i in range(2)] == [int(SARCASM[i]) for i in (1, 6)]
    chunks = np.array_split(ref["visual"][ref["keys"][1]], 50)  # 60 frames
    np.testing.assert_allclose(ex["visual"], [c.mean(0) for c in chunks], rtol=1e-5)
    k = ref["keys"][6]
    np.testing.assert_allclose(test[1]["audio"][-AUDIO_T[6]:], ref["audio"][k].T, rtol=1e-6)
    cfg.builder_kwargs = {"fold": 1, "visual_file": "features/utterances_final/x.hdf5"}
    with pytest.raises(DataFormatError, match=r"width of visual_file .*x\.hdf5' is unknown.*"
                       r"set builder_kwargs\.visual_dim"):
        pipeline.create_source(cfg, "test")
