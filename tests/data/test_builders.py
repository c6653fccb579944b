"""TFDS builders round-trip: array_record in a temporary data_dir reads back the generators'
examples exactly; manual_dir builders over tiny FER2013 and CelebA layouts fill the missing
keys; every image source carries the contract's ``attr`` (stored or filled as -1)."""

import numpy as np
import pytest

from affectjax.data import pipeline
from affectjax.data.builders import DATASETS
from affectjax.data.builders import IMAGE_KEYS
from affectjax.data.readers import CELEBA_ATTRIBUTES
from affectjax.data.synthaffect import SynthAffect
from affectjax.data.synthfaces import SynthFaces


def _config(tmp_path, name, **builder_kwargs):
    cfg = pipeline.default_config()
    cfg.name, cfg.data_dir = name, str(tmp_path / "tfds")
    cfg.builder_kwargs = builder_kwargs
    return cfg


def test_synthfaces_round_trip(tmp_path):
    sizes = {"train": 24, "validation": 8, "test": 4}
    cfg = _config(tmp_path, "synthfaces", image_size=32, domain="wild", seed=5, sizes=sizes,
                  label_noise=dict(kind="symmetric", rate=0.3, seed=1))
    train = pipeline.create_source(cfg, "train")
    val = pipeline.create_source(cfg, "validation")
    assert (len(train), len(val)) == (24, 8)
    gen = SynthFaces(36, image_size=32, domain="wild", seed=5,
                     label_noise=dict(kind="symmetric", rate=0.3, seed=1))
    for src, offset in ((train, 0), (val, 24)):
        for i in (0, 3, len(src) - 1):
            ex, ref = src[i], gen[offset + i]
            assert set(ex) == set(ref) | {"va_mask", "landmarks_mask", "attr"}
            for k, v in ref.items():
                assert ex[k].dtype == np.asarray(v).dtype, k
                np.testing.assert_array_equal(ex[k], v, err_msg=k)
            assert ex["attr"].dtype == np.int32 and (ex["attr"] == -1).all()  # filled on read
    assert "expr_clean" in train[0]
    labels = np.array([gen[i]["expr"] for i in range(24)])
    np.testing.assert_array_equal(pipeline.class_counts(train, "expr", 8),
                                  np.bincount(labels, minlength=8))
    again = pipeline.create_source(cfg, "train")  # cached: no regeneration
    np.testing.assert_array_equal(again[5]["image"], train[5]["image"])
    with pytest.raises(KeyError, match="validation"):
        pipeline.create_source(cfg, "valid")


def test_synthaffect_round_trip_and_loader(tmp_path):
    sizes = {"train": 12, "validation": 5, "test": 3}
    cfg = _config(tmp_path, "synthaffect", variant="mustard", seq_len=16, sizes=sizes)
    src = pipeline.create_source(cfg, "train")
    gen = SynthAffect("mustard", "train", seq_len=16, num_examples=12)
    for i in range(12):
        ex, ref = src[i], gen[i]
        assert set(ex) == set(ref)
        for k in ref:
            assert ex[k].dtype == ref[k].dtype and ex[k].shape == ref[k].shape
            np.testing.assert_array_equal(ex[k], ref[k])
    batch = next(pipeline.Loader(src, batch_size=4, data_config=cfg).iterate())
    assert batch["text"].shape == (4, 16, 300) and batch["valid"].all()
    evals = list(pipeline.Loader(pipeline.create_source(cfg, "validation"), batch_size=4,
                                 train=False, data_config=cfg).eval_batches())
    assert [b["valid"].sum() for b in evals] == [4, 1]


def _write_fer2013(path):
    rng = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"]
    usage = ["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 1
    codes = [0, 3, 6, 6, 5, 1, 2, 4]
    pixels = []
    for code, use in zip(codes, usage):
        img = rng.integers(0, 256, 48 * 48)
        pixels.append(img.reshape(48, 48))
        rows.append(f"{code},{' '.join(map(str, img))},{use}")
    path.write_text("\n".join(rows) + "\n")
    return codes, pixels


def test_fer2013_manual_builder_fills_missing_keys(tmp_path):
    manual = tmp_path / "fer"
    manual.mkdir()
    codes, pixels = _write_fer2013(manual / "fer2013.csv")
    cfg = _config(tmp_path, "fer2013", image_size=48)
    cfg.manual_dir = str(manual)
    train = pipeline.create_source(cfg, "train")
    assert len(train) == 5 and len(pipeline.create_source(cfg, "test")) == 1
    fer_to_abaw = [1, 2, 3, 4, 5, 6, 0]  # Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral
    for i in range(5):
        ex = train[i]
        np.testing.assert_array_equal(ex["image"], np.repeat(pixels[i][..., None], 3, axis=-1))
        assert ex["expr"] == fer_to_abaw[codes[i]] and ex["expr"].dtype == np.int32
        assert not ex["va_mask"] and (ex["va"] == 0).all()
        assert (ex["au"] == -1).all() and ex["au"].dtype == np.int32
        assert not ex["landmarks_mask"] and (ex["landmarks"] == 0).all()
        assert ex["parsing"].shape == (48, 48) and (ex["parsing"] == 255).all()
        assert ex["attr"].shape == (40,) and (ex["attr"] == -1).all()
    np.testing.assert_array_equal(pipeline.class_counts(train),
                                  np.bincount([fer_to_abaw[c] for c in codes[:5]], minlength=8))
    val = pipeline.create_source(cfg, "validation")
    assert [int(val[i]["expr"]) for i in range(2)] == [fer_to_abaw[c] for c in codes[5:7]]


def _write_affectnet(root, codes):
    """A layout-(a) AffectNet with one 8x8 image per code (VA 0.5, -0.5; landmarks none)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    (root / "Manually_Annotated_Images").mkdir(parents=True)
    (root / "Manually_Annotated_file_lists").mkdir()
    for split, split_codes in codes.items():
        lines = []
        for i, code in enumerate(split_codes):
            name = f"{split}{i}.png"
            Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)).save(
                root / "Manually_Annotated_Images" / name)
            lines.append(f"{name},0,0,8,8,,{code},0.5,-0.5")
        (root / "Manually_Annotated_file_lists" / f"{split}.csv").write_text(
            "\n".join(lines) + "\n")


def _data_lines(capsys):
    """The ``data ...`` lines on stderr (TFDS writes its progress bars there too)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("data ")]


def test_affectnet_builder_drops_codes_8_to_10_and_the_run_prints_its_counts(tmp_path,
                                                                              capsys):
    manual = tmp_path / "affectnet"
    _write_affectnet(manual, {"training": [1, 8, 9, 0, 10, 6], "validation": [2, 10, 3]})
    cfg = _config(tmp_path, "affectnet", image_size=8)
    cfg.manual_dir = str(manual)
    train = pipeline.create_source(cfg, "train")
    val = pipeline.create_source(cfg, "validation")
    assert [int(train[i]["expr"]) for i in range(len(train))] == [4, 0, 1]
    assert [int(val[i]["expr"]) for i in range(len(val))] == [5, 6]
    assert _data_lines(capsys) == [
        "data affectnet train: 3 examples (3 rows with codes 8-10 dropped)",
        "data affectnet validation: 2 examples (1 row with codes 8-10 dropped)"]
    pipeline.create_source(cfg, "train")  # cached: the note is read back from disk
    assert _data_lines(capsys) == [
        "data affectnet train: 3 examples (3 rows with codes 8-10 dropped)"]

    cfg.builder_kwargs.drop_non_class = False  # another config name: prepared apart
    kept = pipeline.create_source(cfg, "train")
    assert [int(kept[i]["expr"]) for i in range(len(kept))] == [4, -1, -1, 0, -1, 1]
    assert kept[1]["va_mask"] and kept.builder.name == train.builder.name
    assert kept.builder.builder_config.name != train.builder.builder_config.name
    assert _data_lines(capsys) == [
        "data affectnet train: 6 examples (3 rows with codes 8-10 kept with expr -1)"]


def test_every_image_builder_declares_the_same_keys():
    cfg = {}
    for name, cls in DATASETS.items():
        if name in ("synthaffect", "multimodal", "mustard", "synthfaces"):
            continue
        builder = cls(data_dir="/nonexistent", config=cls.config_for(image_size=24, **cfg))
        feats = builder.info.features
        stored = set(IMAGE_KEYS) | ({"attr"} if name == "celeba" else set())
        assert set(feats.keys()) == stored, name
        assert feats["image"].shape == (24, 24, 3)
        if name == "celeba":
            assert feats["attr"].shape == (40,) and feats["attr"].np_dtype == np.int32


def _write_celeba(root, partition):
    """The distributed CelebA layout: 8x8 JPEGs, the two lists with CelebA's header."""
    from PIL import Image  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(1)
    (root / "img_align_celeba").mkdir(parents=True)
    rows, attrs = [str(len(partition)), " ".join(CELEBA_ATTRIBUTES) + " "], []
    for i in range(len(partition)):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(root / "img_align_celeba" / name)
        attrs.append(rng.choice([-1, 1], 40))
        rows.append(name + "".join(f" {v:>2}" for v in attrs[-1]))
    (root / "list_attr_celeba.txt").write_text("\n".join(rows) + "\n")
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(partition)))
    return np.array(attrs)


def test_celeba_manual_builder_stores_attr(tmp_path):
    manual = tmp_path / "celeba"
    attrs = _write_celeba(manual, [0, 1, 0, 2, 0])
    cfg = _config(tmp_path, "celeba", image_size=8)
    cfg.manual_dir = str(manual)
    train = pipeline.create_source(cfg, "train")
    sizes = [len(pipeline.create_source(cfg, s)) for s in ("train", "validation", "test")]
    assert sizes == [3, 1, 1]
    for i, row in enumerate((0, 2, 4)):
        ex = train[i]
        assert ex["attr"].dtype == np.int32
        np.testing.assert_array_equal(ex["attr"], (attrs[row] + 1) // 2)
        assert ex["image"].shape == (8, 8, 3) and abs(int(ex["image"].mean()) - 30 * row) <= 2
        assert ex["expr"] == -1 and (ex["au"] == -1).all() and not ex["va_mask"]
        assert not ex["landmarks_mask"] and (ex["parsing"] == 255).all()
    batch = next(pipeline.Loader(train, batch_size=2, data_config=cfg).iterate())
    assert batch["attr"].shape == (2, 40) and set(np.unique(batch["attr"])) <= {0, 1}


def test_synthfaces_attributes_option_and_old_config_names(tmp_path):
    cls = DATASETS["synthfaces"]
    assert cls.config_for(attributes=False).name == cls.config_for().name
    assert cls.config_for(attributes=True).name != cls.config_for().name
    sizes = {"train": 6}
    cfg = _config(tmp_path, "synthfaces", image_size=16, sizes=sizes, attributes=True)
    src = pipeline.create_source(cfg, "train")
    gen = SynthFaces(6, image_size=16, attributes=True)
    for i in (0, 5):
        np.testing.assert_array_equal(src[i]["attr"], gen[i]["attr"])
        np.testing.assert_array_equal(src[i]["image"], gen[i]["image"])
    assert (pipeline.read_labels(src, "attr") == gen.batch(range(6))["attr"]).all()


def test_multimodal_manual_builder_over_a_mult_pickle(tmp_path):
    """The MulT layout: {train, valid, test} dicts of vision/audio/text/labels arrays."""
    import pickle  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(3)
    seq = 50
    hot = {"train": [[0, 1, 0, 0], [1, 0, 0, 1], [0, 0, 0, 0]], "valid": [[0, 0, 1, 0]],
           "test": [[1, 1, 0, 0], [0, 0, 0, 1]]}
    data = {}
    for split, h in hot.items():
        n, h = len(h), np.asarray(h)
        data[split] = {"vision": rng.normal(size=(n, seq, 35)),
                       "audio": rng.normal(size=(n, seq, 74)),
                       "text": rng.normal(size=(n, seq, 300)).astype(np.float32),
                       "labels": np.stack([1 - h, h], axis=-1).astype(np.float32)}
    data["train"]["audio"][1, 3, 7] = -np.inf  # the released IEMOCAP audio has such values
    manual = tmp_path / "mult"
    manual.mkdir()
    with open(manual / "iemocap_data.pkl", "wb") as f:
        pickle.dump(data, f)
    cfg = _config(tmp_path, "multimodal", file="iemocap_data.pkl")
    cfg.manual_dir = str(manual)
    for split, key in (("train", "train"), ("validation", "valid"), ("test", "test")):
        source = pipeline.create_source(cfg, split)
        assert len(source) == len(hot[key]), split
        for i in range(len(source)):
            ex = source[i]
            np.testing.assert_array_equal(ex["emotion"], hot[key][i])
            assert ex["emotion"].dtype == np.int32
            np.testing.assert_allclose(ex["visual"], data[key]["vision"][i], rtol=1e-6)
            np.testing.assert_allclose(ex["text"], data[key]["text"][i], rtol=1e-6)
            audio = np.nan_to_num(data[key]["audio"][i], posinf=0.0, neginf=0.0)
            np.testing.assert_allclose(ex["audio"], audio, rtol=1e-6)
            assert ex["sarcasm"] == -1 and ex["sentiment_binary"] == -1  # not in IEMOCAP
