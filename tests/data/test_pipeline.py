"""Tests for the Loader (order, resume, padding), preprocessing geometry and config errors."""

import numpy as np
import pytest

from affectjax.data import pipeline
from affectjax.data import preprocess as pp


class FakeFaces:
    """A tiny deterministic image source with every contract key and an ``idx`` label."""

    def __init__(self, n: int, hw: int = 16):
        self.n, self.hw = n, hw

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        r = np.random.default_rng(i)
        return {
            "image": r.integers(0, 256, (self.hw, self.hw, 3), dtype=np.uint8),
            "idx": np.int32(i), "expr": np.int32(i % 8 if i % 5 else -1),
            "va": np.zeros(2, np.float32), "va_mask": np.bool_(True),
            "landmarks": r.uniform(0, self.hw, (5, 2)).astype(np.float32),
            "landmarks_mask": np.bool_(i % 3 > 0),
            "parsing": r.integers(0, 11, (self.hw, self.hw)).astype(np.uint8),
            "file": f"img{i}.png",
        }


def _config(**augment):
    cfg = pipeline.default_config()
    cfg.image_size = 16
    cfg.augment.update(augment)
    return cfg


def _take(it, k):
    return [next(it) for _ in range(k)]


def test_train_batches_cover_each_example_once_per_epoch_and_reshuffle():
    loader = pipeline.Loader(FakeFaces(24), batch_size=6, seed=3, data_config=_config())
    assert loader.steps_per_epoch == 4
    batches = _take(loader.iterate(), 12)
    b = batches[0]
    assert b["image"].dtype == np.float32 and b["image"].shape == (6, 16, 16, 3)
    assert b["parsing"].dtype == np.int32 and b["valid"].all() and "file" not in b
    epochs = [np.concatenate([x["idx"] for x in batches[4 * e:4 * e + 4]]) for e in range(3)]
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), np.arange(24))
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[0], np.arange(24))


def test_drop_remainder_and_no_shuffle():
    loader = pipeline.Loader(FakeFaces(10), batch_size=4, shuffle=False, data_config=_config())
    assert loader.steps_per_epoch == 2
    idx = [b["idx"].tolist() for b in _take(loader.iterate(), 4)]
    assert idx == [[0, 1, 2, 3], [4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7]]


def test_deterministic_and_resume_equals_tail():
    make = lambda: pipeline.Loader(FakeFaces(20), batch_size=4, seed=7, data_config=_config())
    full = _take(make().iterate(0), 9)
    again = _take(make().iterate(0), 9)
    tail = _take(make().iterate(start_step=6), 3)
    for a, b in zip(full, again):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    for a, b in zip(full[6:], tail):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    other = _take(pipeline.Loader(FakeFaces(20), batch_size=4, seed=8,
                                  data_config=_config()).iterate(), 1)[0]
    assert not np.array_equal(other["image"], full[0]["image"])


def test_eval_pads_last_batch_with_valid():
    loader = pipeline.Loader(FakeFaces(11), batch_size=4, train=False, data_config=_config())
    batches = list(loader.eval_batches())
    assert loader.steps_per_epoch == 3 and len(batches) == 3
    assert all(b["image"].shape[0] == 4 for b in batches)
    np.testing.assert_array_equal(np.concatenate([b["idx"] for b in batches])[:11], np.arange(11))
    np.testing.assert_array_equal(batches[-1]["valid"], [True, True, True, False])
    # Evaluation is not augmented: the image is the normalised stored one.
    cfg = _config()
    ref = (FakeFaces(11)[5]["image"] / 255.0 - np.array(cfg.mean)) / np.array(cfg.std)
    np.testing.assert_allclose(batches[1]["image"][1], ref, atol=1e-5)
    with pytest.raises(ValueError, match="eval_batches"):
        loader.iterate()


def test_eval_resizes_image_parsing_and_landmarks():
    cfg = _config()
    cfg.image_size = 32
    src = FakeFaces(3, hw=16)
    b = next(pipeline.Loader(src, batch_size=3, train=False, data_config=cfg).eval_batches())
    assert b["image"].shape == (3, 32, 32, 3) and b["parsing"].shape == (3, 32, 32)
    np.testing.assert_array_equal(b["parsing"][1], np.kron(src[1]["parsing"], np.ones((2, 2))))
    np.testing.assert_allclose(b["landmarks"][1], 2 * src[1]["landmarks"], rtol=1e-6)
    np.testing.assert_array_equal(b["landmarks"][0], 0)  # missing landmarks stay 0


def _face(hw=20):
    """An image with a bright 'left eye' on the image's right half (subject's left)."""
    image = np.zeros((1, hw, hw, 3), np.float32)
    parsing = np.ones((1, hw, hw), np.int32)
    image[0, 6:9, 13:16] = 1.0
    parsing[0, 6:9, 13:16] = 4  # left eye
    parsing[0, 3:5, 12:17] = 2  # left brow
    landmarks = np.array([[[14.5, 7.5], [5.5, 7.5], [10, 11], [13, 15], [7, 15]]], np.float32)
    return {"image": image, "parsing": parsing, "landmarks": landmarks,
            "landmarks_mask": np.array([True])}


def test_flip_swaps_left_and_right_labels():
    face = _face()
    flipped = pp.hflip(face, np.array([True]))
    # The marked eye is now on the image's left, labelled right eye (5), right brow (3).
    assert flipped["image"][0, 7, 5].max() == 1.0 and flipped["image"][0, 7, 14].max() == 0.0
    assert flipped["parsing"][0, 7, 5] == 5 and flipped["parsing"][0, 4, 5] == 3
    assert (flipped["parsing"] != 4).all() and (flipped["parsing"] != 2).all()
    # The right-eye landmark (index 1) points at the marked blob; left eye at the old right.
    np.testing.assert_allclose(flipped["landmarks"][0, 1], [20 - 14.5, 7.5])
    np.testing.assert_allclose(flipped["landmarks"][0, 0], [20 - 5.5, 7.5])
    np.testing.assert_allclose(flipped["landmarks"][0, 3], [20 - 7, 15])
    x, y = flipped["landmarks"][0, 1].astype(int)
    assert flipped["parsing"][0, y, x] == 5
    twice = pp.hflip(flipped, np.array([True]))
    for k in face:
        np.testing.assert_array_equal(twice[k], face[k])
    unchanged = pp.hflip(face, np.array([False]))
    for k in face:
        np.testing.assert_array_equal(unchanged[k], face[k])


@pytest.mark.parametrize("zoom,tx,ty,out", [(1.0, 0.0, 0.0, 20), (1.3, 0.1, -0.05, 20),
                                            (1.15, -0.08, 0.08, 32)])
def test_warp_moves_landmarks_with_image_and_parsing(zoom, tx, ty, out):
    face = _face()
    w = pp.warp(face, (out, out), np.array([zoom]), np.array([tx]), np.array([ty]))
    x, y = w["landmarks"][0, 0]
    # Independent mapping of the eye centre: window centre (10 + 20 tx, 10 + 20 ty),
    # output pixels per input pixel out * zoom / 20.
    s = out * zoom / 20
    np.testing.assert_allclose([x, y], [(14.5 - 10 - 20 * tx) * s + out / 2,
                                        (7.5 - 10 - 20 * ty) * s + out / 2], rtol=1e-5)
    assert w["parsing"][0, int(y), int(x)] == 4 and w["image"][0, int(y), int(x)].min() > 0.5
    if zoom == 1.0 and out == 20:
        np.testing.assert_array_equal(w["image"], face["image"])
        np.testing.assert_array_equal(w["parsing"], face["parsing"])


def test_warp_outside_pixels_are_black_and_ignored():
    face = _face()
    w = pp.warp(face, (20, 20), np.array([1.0]), np.array([0.25]), np.array([0.0]))
    assert (w["parsing"][0, :, -5:] == 255).all() and (w["image"][0, :, -5:] == 0).all()
    assert (w["parsing"][0, :, :-5] != 255).all()


def test_training_augmentation_keeps_landmarks_on_their_parts():
    cfg = _config(flip_prob=0.5, crop_prob=1.0, scale=0.3, translate=0.1)
    cfg.image_size = 20

    class Faces:
        def __len__(self):
            return 16

        def __getitem__(self, i):
            f = _face()
            return {"image": (f["image"][0] * 255).astype(np.uint8),
                    "parsing": f["parsing"][0].astype(np.uint8),
                    "landmarks": f["landmarks"][0], "landmarks_mask": np.bool_(True)}

    batch = next(pipeline.Loader(Faces(), batch_size=16, seed=0, data_config=cfg).iterate())
    flipped = 0
    for b in range(16):
        x, y = batch["landmarks"][b, :2].astype(int).T
        labels = batch["parsing"][b, y, x]
        # Unflipped: left eye on the marked eye (4), right eye on skin; flipped: mirrored.
        assert labels.tolist() in ([4, 1], [1, 5]), labels
        flipped += int(labels[1] == 5)
    assert 0 < flipped < 16


def test_color_jitter_only_where_applied():
    rng = np.random.default_rng(0)
    img = rng.random((4, 5, 5, 3)).astype(np.float32)
    out = pp.color_jitter(img, rng, np.array([True, False, True, False]),
                          brightness=0.3, contrast=0.3, saturation=0.3)
    np.testing.assert_allclose(out[[1, 3]], img[[1, 3]], atol=1e-6)
    assert not np.allclose(out[0], img[0]) and out.min() >= 0 and out.max() <= 1


def test_class_counts_ignores_missing():
    src = FakeFaces(40)
    expected = np.zeros(8, np.int64)
    for i in range(40):
        if i % 5:
            expected[i % 8] += 1
    np.testing.assert_array_equal(pipeline.class_counts(src, "expr", 8), expected)
    with pytest.raises(ValueError, match="num_classes"):
        pipeline.class_counts(src, "expr", 4)


def test_config_and_registry_errors(tmp_path):
    cfg = pipeline.default_config()
    for key in ("name", "data_dir", "manual_dir", "image_size", "builder_kwargs", "train_split",
                "eval_split", "mean", "std", "augment", "prefetch", "num_threads"):
        assert key in cfg
    cfg.name = "afectnet"
    with pytest.raises(KeyError, match="affectnet.*synthfaces"):
        pipeline.create_source(cfg, "train")
    cfg.name, cfg.data_dir = "fer2013", str(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"data.manual_dir.*fer2013.csv"):
        pipeline.create_source(cfg, "train")
    with pytest.raises(ValueError, match="batch_size"):
        pipeline.Loader(FakeFaces(3), batch_size=4, data_config=_config())


def test_processes_preparing_one_data_set_at_once_take_turns(tmp_path):
    """A sweep's parallel runs may prepare the same new data set together: both succeed."""
    import json  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    config = {"name": "synthfaces", "data_dir": str(tmp_path / "tfds"),
              "builder_kwargs": {"image_size": 16, "sizes": {"train": 24, "validation": 8}}}
    code = ("import json, sys; from affectjax.data import pipeline; "
            "b = pipeline.prepare(json.loads(sys.argv[1])); "
            "print(b.info.splits['train'].num_examples)")
    procs = [subprocess.Popen([sys.executable, "-c", code, json.dumps(config)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code_ in results:
        assert code_ == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == "24"
