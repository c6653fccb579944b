"""The ``fusion`` method end to end: two teachers write weak labels next to the student's
data set, the student trains on strong and weak labels, teachers are shared between runs,
the weak-label file round-trips, and bad settings are one line."""

import json
import os
import sys

import numpy as np
import pytest

from affectjax import methods
from affectjax.data import pipeline
from affectjax.methods.fusion import method as fusion
from affectjax.methods.fusion import teachers
from affectjax.methods.fusion import weak_labels
from affectjax.train import checkpoint
from affectjax.train.errors import ConfigError, UserError

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import fusion_synthaffect  # noqa: E402  pylint: disable=wrong-import-position

SIZES = dict(train=48, validation=24, test=16)


def _config(data_dir, **fusion_changes):
    """The quick config at a tiny size: 8 steps, 8 units, one epoch everywhere, AVG
    encoders (they compile fastest; the encoders have their own tests)."""
    c = fusion_synthaffect.get_config("quick,avg")
    c.model.update(hidden_dim=8, lf_hidden_dims=(8, 4, 4), num_heads=2, lf_num_heads=(2, 2, 2),
                   ff_dim=8, lf_ff_dims=(8, 4, 4))
    c.data.data_dir = str(data_dir)
    c.data.builder_kwargs.update(seq_len=8, sizes=SIZES)
    for task in ("emotion", "sentiment"):
        c.fusion.weak[task].data.builder_kwargs.update(seq_len=8, sizes=SIZES)
        c.fusion.weak[task].epochs = 1
        c.fusion.weak[task].model.encoder = "avg"
    c.fusion.update(fusion_changes)
    c.phases.full.epochs = 1
    c.batch_size = 16
    c.progress_bar = False
    c.log_every_steps = 1
    return c


@pytest.fixture(scope="module")
def student(tmp_path_factory, fast_compile):
    root = tmp_path_factory.mktemp("fusion")
    config = _config(root / "data")
    with fast_compile():
        final = methods.train_and_evaluate(config, str(root / "student"))
    return config, root, final


def test_student_trains_with_both_teachers_weak_labels(student):
    config, root, final = student
    for key in ("sarcasm/acc", "sarcasm/f1", "score"):
        assert 0.0 <= final["eval"][key] <= 1.0
    # The validation split labels sarcasm only: weak tasks are never scored.
    assert not any(k.startswith(("emotion/", "sentiment/")) for k in final["eval"])
    assert os.path.isfile(root / "student" / "plots" / "confusion_matrix.png")
    assert os.path.isfile(root / "student" / "plots" / "curves.png")
    with open(root / "student" / "weak_labels.json") as f:
        summary = json.load(f)
    assert sorted(summary) == ["emotion", "sentiment"]
    for task, entry in summary.items():
        assert os.path.basename(entry["file"]).startswith(f"weak_{task}-")
        assert 0.0 <= entry["confidence"] <= 1.0
        # Next to the prepared data set, never inside it.
        builder = pipeline.prepare(config.data)
        assert os.path.dirname(entry["file"]) == os.path.join(
            os.path.dirname(os.path.normpath(builder.data_dir)), "weak_labels")


def test_weak_labels_are_the_teachers_predictions(student, fast_compile):
    config, root, _ = student
    with open(root / "student" / "weak_labels.json") as f:
        entry = json.load(f)["sentiment"]
    labels = weak_labels.WeakLabels(entry["file"])
    assert labels.task == "sentiment" and labels.splits == ("test", "train", "validation")
    tcfg = teachers.teacher_config(config, "sentiment")
    model = fusion.build_model(tcfg)
    variables, _ = checkpoint.restore_run_variables(entry["teacher"])
    source = pipeline.create_source(config.data, "validation")
    batch = pipeline.stack(pipeline.read_examples(source, range(len(source))))
    with fast_compile():
        logits = model.apply(variables, *fusion.inputs(batch), train=False)[0]["sentiment"]
    expected = np.asarray(logits).argmax(-1)
    np.testing.assert_array_equal(labels.split("validation", expected_len=len(source)), expected)
    # The confidence is the teacher's accuracy on its own validation split (D2).
    tsource = pipeline.create_source(tcfg.data, "validation")
    tbatch = pipeline.stack(pipeline.read_examples(tsource, range(len(tsource))))
    with fast_compile():
        tlogits = model.apply(variables, *fusion.inputs(tbatch), train=False)[0]["sentiment"]
    truth = tbatch["sentiment_binary"]
    accuracy = np.mean(np.asarray(tlogits).argmax(-1)[truth >= 0] == truth[truth >= 0])
    np.testing.assert_allclose(labels.confidence, accuracy, rtol=1e-6)


def test_a_second_student_reuses_the_teachers(student, fast_compile):
    config, root, _ = student
    weak_dir = teachers.weak_dir(config)
    before = sorted(os.listdir(weak_dir))
    stamps = {n: os.path.getmtime(os.path.join(weak_dir, n)) for n in before}
    other = _config(root / "data", tasks="sentiment+sarcasm")
    other.seed = 1
    other.log_every_steps = 2  # how a run is shown is not part of its teachers' name
    with fast_compile():
        final = methods.train_and_evaluate(other, str(root / "student_seed1"))
    assert "sarcasm/acc" in final["eval"]
    assert sorted(os.listdir(weak_dir)) == before
    assert all(os.path.getmtime(os.path.join(weak_dir, n)) == t for n, t in stamps.items())


def test_weak_label_file_round_trip_and_source(tmp_path):
    rng = np.random.default_rng(0)
    predictions = {"train": rng.integers(0, 2, (6, 4)), "validation": rng.integers(0, 2, (3, 4))}
    path = weak_labels.write(str(tmp_path / "weak.npz"), "emotion", predictions, 0.625,
                             {"teacher": "t"})
    loaded = weak_labels.WeakLabels(path)
    assert (loaded.task, loaded.confidence, loaded.meta) == ("emotion", 0.625, {"teacher": "t"})
    np.testing.assert_array_equal(loaded.split("train", expected_len=6), predictions["train"])
    with pytest.raises(ConfigError, match=r"split 'train' has 6 weak labels for 7 examples"):
        loaded.split("train", expected_len=7)
    # D1 labels six other emotions, all missing: they give way to the weak labels' width.
    source = [{"emotion": np.full(6, -1, np.int32), "sarcasm": np.int32(i % 2)} for i in range(6)]
    wrapped = weak_labels.WeakLabelSource(source, {"weak_emotion": predictions["train"]})
    example = wrapped[4]
    np.testing.assert_array_equal(example["weak_emotion"], predictions["train"][4])
    np.testing.assert_array_equal(example["emotion"], [-1, -1, -1, -1])
    assert example["sarcasm"] == 0
    labelled = [dict(e, emotion=np.zeros(6, np.int32)) for e in source]
    with pytest.raises(ConfigError, match="labels 6 emotions and the weak labels 4"):
        weak_labels.WeakLabelSource(labelled, {"weak_emotion": predictions["train"]})


def test_missing_weak_label_file_is_one_line_naming_it(student, tmp_path):
    _, root, _ = student
    config = _config(root / "data", tasks="sentiment+sarcasm")
    missing = str(tmp_path / "nowhere" / "weak_sentiment.npz")
    config.fusion.weak.sentiment.file = missing
    with pytest.raises(UserError) as info:
        methods.train_and_evaluate(config, str(tmp_path / "run"))
    message = str(info.value)
    assert "\n" not in message and missing in message
    assert "config.fusion.weak.sentiment.file" in message


@pytest.mark.parametrize("change, match", [
    (dict(tasks="emotion+humour"), r"config.fusion.tasks='emotion\+humour'"),
    (dict(tasks="emotion+sarcasm", main_task="emotion"),
     r"config.fusion.main_task: 'emotion' has no labels in the validation split"),
    (dict(tasks="sarcasm", weak_weight="half"), r"config.fusion.weak_weight='half'"),
])
def test_bad_settings_are_one_line(student, tmp_path, change, match):
    _, root, _ = student
    config = _config(root / "data", **change)
    with pytest.raises(UserError, match=match):
        methods.train_and_evaluate(config, str(tmp_path / "run"))


def test_a_teacher_on_features_of_other_widths_is_one_line(student, monkeypatch):
    """A teacher data set with 5-d audio (as MUStARD's authors' features differ from the
    MulT pickles') cannot predict on SynthAffect's 74-d audio."""
    _, root, _ = student
    config = _config(root / "data", tasks="sentiment+sarcasm")
    config.fusion.weak.sentiment.data.name = "multimodal"
    real = pipeline.create_source
    narrow = [{"text": np.zeros((8, 300)), "audio": np.zeros((8, 5)), "visual": np.zeros((8, 35))}]
    monkeypatch.setattr(pipeline, "create_source", lambda data, split: (
        narrow if data.name == "multimodal" else real(data, split)))
    with pytest.raises(ConfigError, match=r"config.fusion.weak.sentiment: the teacher's data set "
                                          r"'multimodal' has 5-d audio features and the "
                                          r"student's 'synthaffect' 74-d"):
        teachers.check_widths(config, "sentiment")
