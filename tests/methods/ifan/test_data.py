"""Cross-data-set batches: one data set per batch, the other tasks' labels masked, resumable."""

import itertools

import numpy as np
import pytest

from affectjax.methods.ifan import data
from affectjax.train.errors import ConfigError


class FakeLoader:
    """A data set's endless stream: batch k of data set `tag` holds images filled with
    tag * 1000 + k and every task's labels."""

    def __init__(self, tag: int, steps_per_epoch: int, batch_size: int = 2):
        self.tag, self.steps_per_epoch, self.batch_size = tag, steps_per_epoch, batch_size

    def batch(self, k):
        b = self.batch_size
        return {"image": np.full((b, 4, 4, 3), self.tag * 1000 + k, np.float32),
                "expr": np.full((b,), 3, np.int32),
                "landmarks": np.ones((b, 5, 2), np.float32),
                "landmarks_mask": np.ones((b,), bool),
                "parsing": np.ones((b, 4, 4), np.int32), "valid": np.ones((b,), bool),
                "va": np.zeros((b, 2), np.float32)}

    def iterate(self, start_step=0):
        return (self.batch(k) for k in itertools.count(start_step))

    def eval_batches(self):
        return (self.batch(k) for k in range(self.steps_per_epoch))


def _loaders():
    return {"landmarks": FakeLoader(1, 3), "parsing": FakeLoader(2, 5),
            "emotion": FakeLoader(3, 2)}


def _ids(batches):
    return [(int(b["source"][0]), int(b["image"].flat[0])) for b in batches]


def test_alternate_takes_one_batch_of_each_data_set_in_turn():
    loader = data.CrossDatasetLoader(_loaders(), order="alternate")
    assert loader.steps_per_epoch == 3 * 5  # T x the largest data set's batches
    got = _ids(itertools.islice(loader.iterate(), 7))
    assert got == [(0, 1000), (1, 2000), (2, 3000), (0, 1001), (1, 2001), (2, 3001),
                   (0, 1002)]


def test_sequential_trains_each_data_set_for_its_epochs_in_turn():
    loader = data.CrossDatasetLoader(_loaders(), order="sequential", epochs=2)
    assert loader.steps_per_epoch == 3 + 5 + 2
    got = _ids(itertools.islice(loader.iterate(), 2 * 10))
    assert [s for s, _ in got] == [0] * 6 + [1] * 10 + [2] * 4
    assert got[5] == (0, 1005) and got[6] == (1, 2000) and got[-1] == (2, 3003)


@pytest.mark.parametrize("order", data.ORDERS)
def test_resuming_at_any_step_replays_the_same_batches(order):
    loader = data.CrossDatasetLoader(_loaders(), order=order, epochs=2)
    full = _ids(itertools.islice(loader.iterate(), 25))
    for start in (1, 4, 6, 15, 19):
        assert _ids(itertools.islice(loader.iterate(start), 25 - start)) == full[start:]


def test_labels_of_other_tasks_are_masked_and_extra_keys_dropped():
    loader = data.CrossDatasetLoader(_loaders(), order="alternate")
    lm, parsing, emotion = itertools.islice(loader.iterate(), 3)
    assert lm["landmarks_mask"].all() and (lm["parsing"] == 255).all() and (lm["expr"] == -1).all()
    assert not parsing["landmarks_mask"].any() and (parsing["landmarks"] == 0).all()
    assert (parsing["parsing"] == 1).all() and (parsing["expr"] == -1).all()
    assert (emotion["expr"] == 3).all() and (emotion["parsing"] == 255).all()
    assert "va" not in lm and lm["source"].dtype == np.int32
    assert set(lm) <= set(data.BATCH_KEYS)


def test_evaluation_visits_every_data_set_once():
    evaluation = data.CrossDatasetEval(_loaders())
    got = _ids(evaluation.eval_batches())
    assert [s for s, _ in got] == [0] * 3 + [1] * 5 + [2] * 2
    assert evaluation.steps_per_epoch == 10


def test_bad_order_and_missing_source_are_one_line():
    with pytest.raises(ConfigError, match="choose one of"):
        data.CrossDatasetLoader(_loaders(), order="shuffled")
    from configs import ifan_synthfaces
    config = ifan_synthfaces.get_config("quick")
    del config.ifan.sources["parsing"]
    with pytest.raises(ConfigError, match="no data set for task 'parsing'"):
        data.source_config(config, "parsing")
    config = ifan_synthfaces.get_config("quick")
    config.ifan.sources.landmarks.bogus = 1
    with pytest.raises(ConfigError, match=r"sources.landmarks: unknown keys \['bogus'\]"):
        data.source_config(config, "landmarks")


def test_source_config_merges_sections_and_sets_the_input_size():
    from configs import ifan_synthfaces
    config = ifan_synthfaces.get_config("quick")
    section = data.source_config(config, "parsing")
    assert section.image_size == 32 and not section.augment.enabled
    assert section.augment.flip_prob == 0.5  # kept from the defaults
    assert section.builder_kwargs.to_dict() == dict(
        domain="studio", seed=202, image_size=32, sizes=dict(train=384, validation=200))


def test_the_paper_setting_without_its_data_is_one_line(tmp_path):
    arg = "3t"
    import subprocess
    import sys
    repo = __import__("os").path.abspath(__import__("os").path.join(
        __import__("os").path.dirname(__file__), "..", "..", ".."))
    result = subprocess.run(
        [sys.executable, "train.py", f"--config=configs/ifan_mtfl_helen.py:{arg}",
         f"--workdir={tmp_path / 'run'}",
         f"--config.ifan.sources.landmarks.data_dir={tmp_path / 'data'}",
         "--config.ifan.sources.parsing.manual_dir=no/such/folder"],
        cwd=repo, capture_output=True, text=True, timeout=300)
    lines = [l for l in result.stderr.splitlines() if l.strip()]
    assert result.returncode == 2, result.stderr
    assert lines[-1].startswith("error: config.ifan.sources.landmarks: data set 'mtfl' needs "
                                "config.ifan.sources.landmarks.manual_dir (got '')"), lines


def test_mean_predictions_are_the_training_labels_means(tmp_path):
    from configs import ifan_synthfaces
    from affectjax.data.synthfaces import SynthFaces
    config = ifan_synthfaces.get_config("quick,3t")
    config.ifan.image_size = 16  # stored at 32 px: landmarks halved, masks subsampled
    for source in config.ifan.sources.values():
        source.data_dir = str(tmp_path)
        source.builder_kwargs.sizes = dict(train=12, validation=4)
    means = data.mean_predictions(config, ("landmarks", "parsing", "emotion"))
    faces = {t: SynthFaces(16, **{k: v for k, v in config.ifan.sources[t].builder_kwargs.items()
                                  if k != "sizes"}).batch(range(12))
             for t in ("landmarks", "parsing", "emotion")}
    np.testing.assert_allclose(means["landmarks"], faces["landmarks"]["landmarks"].mean(0) / 2,
                               rtol=1e-5)
    masks = faces["parsing"]["parsing"][:, ::2, ::2]
    want = np.stack([(masks == c).mean(0) for c in range(11)], -1)
    np.testing.assert_allclose(means["parsing"], want, rtol=1e-6)
    want = np.bincount(faces["emotion"]["expr"], minlength=8) / 12
    np.testing.assert_allclose(means["emotion"], want, rtol=1e-6)
