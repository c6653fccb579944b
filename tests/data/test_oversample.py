"""Class-balanced oversampling of the training stream (``config.data.oversample``)."""

import ml_collections
import numpy as np
import pytest

from affectjax.data import pipeline

# 80 / 12 / 4 examples of classes 0 / 1 / 2, then 4 unlabelled (-1).
LABELS = np.array([0] * 80 + [1] * 12 + [2] * 4 + [-1] * 4, np.int32)


def _toy(labels=LABELS, hw=8):
    """A plain list of examples: images, the class label ``expr`` and the position ``idx``."""
    rng = np.random.default_rng(0)
    return [{"image": rng.integers(0, 256, (hw, hw, 3), dtype=np.uint8),
             "expr": np.int32(y), "idx": np.int32(i), "va": np.zeros(2, np.float32),
             "file": f"img{i}.png"} for i, y in enumerate(labels)]


def _config(augment=True):
    cfg = pipeline.default_config()
    cfg.image_size = 8
    cfg.augment.enabled = augment
    return cfg


def _take(it, k):
    return [next(it) for _ in range(k)]


def _assert_same(stream_a, stream_b):
    assert len(stream_a) == len(stream_b)
    for a, b in zip(stream_a, stream_b):
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_default_is_off():
    assert pipeline.default_config().oversample == ""


def test_weights_are_inverse_class_counts_and_zero_for_unlabelled():
    p = pipeline.oversample_weights(_toy(), "expr")
    expected = np.select([LABELS == 0, LABELS == 1, LABELS == 2],
                         [1 / (3 * 80), 1 / (3 * 12), 1 / (3 * 4)], 0.0)
    np.testing.assert_allclose(p, expected, rtol=1e-12)
    for c in range(3):
        np.testing.assert_allclose(p[LABELS == c].sum(), 1 / 3, rtol=1e-12)


def test_drawn_classes_are_balanced():
    loader = pipeline.Loader(_toy(), batch_size=20, seed=0, data_config=_config(False),
                             oversample="expr")
    assert loader.steps_per_epoch == 5  # len(source) // batch_size, as without oversampling
    batches = _take(loader.iterate(), 500)  # 100 epochs, 10,000 draws
    idx = np.concatenate([b["idx"] for b in batches])
    np.testing.assert_array_equal(np.concatenate([b["expr"] for b in batches]), LABELS[idx])
    n = idx.size
    # Every draw is independent with P(class c) = 1/3 exactly, so each class count is
    # Binomial(n, 1/3): within 5 standard deviations of n/3 (for reference, plain
    # shuffling gives class 2 about n * 4/100 = 400 draws, ~63 std below n/3).
    counts = np.bincount(LABELS[idx] + 1, minlength=4)
    assert counts[0] == 0  # unlabelled examples are never drawn
    tol = 5 * np.sqrt(n * (1 / 3) * (2 / 3))
    np.testing.assert_allclose(counts[1:], n / 3, atol=tol)
    # Within a class the draws are uniform: example i ~ Binomial(n, p_i).
    p = pipeline.oversample_weights(_toy(), "expr")
    per_example = np.bincount(idx, minlength=len(LABELS))
    labelled = LABELS >= 0
    std = np.sqrt(n * p * (1 - p))
    assert (np.abs(per_example - n * p)[labelled] <= 5 * std[labelled]).all()
    assert (per_example[~labelled] == 0).all()


def test_deterministic_and_resume_equals_tail():
    make = lambda seed=3: pipeline.Loader(_toy(), batch_size=20, seed=seed,
                                          data_config=_config(), oversample="expr")
    full = _take(make().iterate(), 13)  # crosses two epoch boundaries (5 steps each)
    _assert_same(full, _take(make().iterate(0), 13))
    for start in (4, 5, 7):
        _assert_same(full[start:], _take(make().iterate(start_step=start), 13 - start))
    epochs = [np.concatenate([b["idx"] for b in full[5 * e:5 * e + 5]]) for e in range(2)]
    assert not np.array_equal(epochs[0], epochs[1])
    other = np.concatenate([b["idx"] for b in _take(make(seed=4).iterate(), 5)])
    assert not np.array_equal(other, epochs[0])
    loader = make()
    np.testing.assert_array_equal(loader.epoch_draws(1), make().epoch_draws(1))
    assert len(loader.epoch_draws(0)) == len(LABELS)


def test_off_is_the_plain_stream():
    without = _config().to_dict()
    del without["oversample"]  # a data config from before the field existed
    src = _toy()
    reference = _take(pipeline.Loader(src, batch_size=20, seed=5,
                                      data_config=without).iterate(), 10)
    cfg = _config()
    cfg.oversample = "expr"  # the field alone switches nothing: the loader's argument does
    for loader in (pipeline.Loader(src, batch_size=20, seed=5, data_config=_config(),
                                   oversample=""),
                   pipeline.Loader(src, batch_size=20, seed=5, data_config=cfg)):
        assert loader.oversample == ""
        _assert_same(reference, _take(loader.iterate(), 10))
    for e in range(2):  # each example once per epoch
        idx = np.concatenate([b["idx"] for b in reference[5 * e:5 * e + 5]])
        np.testing.assert_array_equal(np.sort(idx), np.arange(len(LABELS)))


def test_bad_keys_and_unlabelled():
    for key in ("exprr", "image", "va", "file"):
        with pytest.raises(KeyError, match=r"config\.data\.oversample.*\['expr', 'idx'\]"):
            pipeline.Loader(_toy(), batch_size=4, data_config=_config(), oversample=key)
    with pytest.raises(ValueError, match="'expr'.*unlabelled"):
        pipeline.Loader(_toy(np.full(8, -1)), batch_size=4, data_config=_config(),
                        oversample="expr")
    with pytest.raises(ValueError, match="train=True"):
        pipeline.Loader(_toy(), batch_size=4, train=False, data_config=_config(),
                        oversample="expr")


@pytest.fixture(scope="module")
def synth_config(tmp_path_factory):
    cfg = pipeline.default_config()
    cfg.data_dir = str(tmp_path_factory.mktemp("tfds"))
    cfg.image_size = 32
    cfg.builder_kwargs = dict(image_size=32, seed=2, sizes={"train": 24, "validation": 8})
    return cfg


def test_tfds_source_labels_read_without_images(synth_config):
    source = pipeline.create_source(synth_config, "train")
    labels = np.array([source[i]["expr"] for i in range(len(source))])
    counts = np.bincount(labels[labels >= 0])
    present = np.count_nonzero(counts)
    expected = np.where(labels >= 0, 1 / (present * counts[np.maximum(labels, 0)]), 0.0)
    np.testing.assert_allclose(pipeline.oversample_weights(source, "expr"), expected)
    keys = pipeline.label_keys(source)
    assert "expr" in keys and "image" not in keys and "parsing" not in keys
    with pytest.raises(KeyError, match=r"config\.data\.oversample 'parsing'.*'expr'"):
        pipeline.oversample_weights(source, "parsing")


def test_setup_oversamples_the_training_loader_only(synth_config):
    from affectjax.train import setup  # pylint: disable=import-outside-toplevel

    config = ml_collections.ConfigDict(dict(batch_size=4, eval_batch_size=0))
    config.data = ml_collections.ConfigDict(synth_config.to_dict())
    config.data.oversample = "expr"
    make_data = setup._pipeline_data  # pylint: disable=protected-access
    train_loader, eval_loader, _ = make_data(config, seed=0)
    assert train_loader.oversample == "expr" and eval_loader.oversample == ""
    assert train_loader.steps_per_epoch == 6
