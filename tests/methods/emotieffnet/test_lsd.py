"""The LSD pipeline end to end on tiny SynthFaces, its class mapping and the SR hook.

One module-scoped run: a pre-trained 8-class model (the quickstart config, shrunk), then
the LSD pipeline through `train_and_evaluate` (the ``lsd`` method registered for the
test): 6-class training set with bicubic x2 super-resolution, head and all-weights
fine-tunes, validation scores, blend, report and plots.
"""

import contextlib
import io
import json
import os
import sys

import jax
import numpy as np
import pytest
import scipy.special
from PIL import Image
from sklearn.metrics import f1_score

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import lsd_synthfaces  # noqa: E402  pylint: disable=wrong-import-position
from configs import quickstart  # noqa: E402  pylint: disable=wrong-import-position

from affectjax.methods.emotieffnet import features  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import labels  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import tuning  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.emotieffnet import super_resolution as sr  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import methods  # noqa: E402
from affectjax.methods.emotieffnet import lsd_data  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.emotieffnet import lsd  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.errors import UserError  # noqa: E402  pylint: disable=wrong-import-position




def _shrink(c, data_dir):
    c.model.backbone = "efficientnet_tiny"
    c.model.width_multiplier = 1.0
    c.data.data_dir = str(data_dir)
    c.data.image_size = 32
    c.batch_size = 8
    c.steps_per_epoch = 2
    c.optimizer.schedule = "constant"
    c.progress_bar = False
    return c


def pretrain_config(data_dir):
    c = _shrink(quickstart.get_config(), data_dir)
    c.data.builder_kwargs = dict(domain="studio", image_size=32,
                                 sizes=dict(train=32, validation=8))
    c.phases.full.epochs = 1
    c.phases.full.learning_rate = 1e-2
    return c


def lsd_config(data_dir, pretrained):
    c = _shrink(lsd_synthfaces.get_config(), data_dir)
    c.data.builder_kwargs = dict(domain="wild", image_size=32, sizes=dict(validation=40))
    c.eval_batch_size = 16
    c.phases.head.epochs = 1
    c.phases.head.learning_rate = 1e-2
    c.phases.full.epochs = 1
    c.phases.full.learning_rate = 1e-3
    c.lsd.pretrained_workdir = pretrained
    c.lsd.train = dict(source="synthfaces", domain="studio", image_size=16,
                       num_examples=40, seed=1)
    return c


@pytest.fixture(scope="module")
def run(tmp_path_factory, fast_compile):
    root = tmp_path_factory.mktemp("lsd")
    pretrained = str(root / "pretrained")
    config = lsd_config(root / "data", pretrained)
    workdir = str(root / "lsd")
    stderr = io.StringIO()
    with fast_compile():
        methods.train_and_evaluate(pretrain_config(root / "data"), pretrained)
        with contextlib.redirect_stderr(stderr):
            final = methods.train_and_evaluate(config, workdir)
    return {"config": config, "workdir": workdir, "final": final, "stderr": stderr.getvalue(),
            "pretrained": pretrained}


def test_writes_metrics_report_plots_and_stage_outputs(run):
    workdir, final = run["workdir"], run["final"]
    on_disk = json.load(open(os.path.join(workdir, "final_metrics.json")))
    assert on_disk["blended"] == final["blended"]
    assert set(final["finetuned"]) == {"head", "full"}
    assert final["classes"] == ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
    for part in ("train_images/lsd_data.json", "finetune_head/final_metrics.json",
                 "finetune_all/final_metrics.json", "scores/pretrained.npz"):
        assert os.path.exists(os.path.join(workdir, part)), part
    report = open(os.path.join(workdir, "report.md")).read()
    for row in ("| Pre-trained |", "| Fine-tuned (head) |", "| Pre-trained + fine-tuned (all) |"):
        assert row in report
    for name in ("blend_curve.png", "confusion_pretrained.png", "confusion_blended.png"):
        with Image.open(os.path.join(workdir, "plots", name)) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > 100


def test_training_set_holds_six_classes_super_resolved(run):
    root = os.path.join(run["workdir"], "train_images")
    record = json.load(open(os.path.join(root, "lsd_data.json")))
    assert record["image_size"] == 32  # 16 px rendered, bicubic x2
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    assert set(folders) <= {c.lower() for c in lsd.LSD_CLASSES}
    total = sum(len(os.listdir(os.path.join(root, d))) for d in folders)
    assert total == sum(record["counts"].values()) > 0
    # The rendered faces of the 6 classes, in order, through PIL bicubic x2.
    from affectjax.data.synthfaces import SynthFaces
    faces = SynthFaces(40, seed=1, image_size=16, domain="studio").batch(range(40))
    first = int(np.flatnonzero(np.isin(faces["expr"], [1, 2, 3, 4, 5, 6]))[0])
    want = np.asarray(Image.fromarray(faces["image"][first]).resize((32, 32), Image.BICUBIC))
    name = lsd.LSD_CLASSES[faces["expr"][first] - 1].lower()
    got = np.asarray(Image.open(os.path.join(root, name, "000000.png")))
    np.testing.assert_array_equal(got, want)


def test_new_head_is_initialised_apart_and_backbone_loaded(run):
    # _merge_pretrained reports the 10-output head it could not load into the 8 outputs.
    assert "kept from the random init" in run["stderr"] and "classifier" in run["stderr"]
    model = lsd_data.plain(run["config"].model)
    _, pre, _ = features.load_backbone(model, workdir=run["pretrained"])
    _, head, _ = features.load_backbone(dict(model, num_expressions=6),
                                        workdir=os.path.join(run["workdir"], "finetune_head"))
    assert head["params"]["classifier"]["kernel"].shape[-1] == 8
    assert pre["params"]["classifier"]["kernel"].shape[-1] == 10
    # Head-only phase: every backbone parameter is still the pre-trained one.
    flat_pre = dict(jax.tree_util.tree_leaves_with_path(
        {k: v for k, v in pre["params"].items() if k != "classifier"}))
    flat_head = dict(jax.tree_util.tree_leaves_with_path(
        {k: v for k, v in head["params"].items() if k != "classifier"}))
    assert flat_pre.keys() == flat_head.keys()
    for key, value in flat_pre.items():
        np.testing.assert_array_equal(flat_head[key], value)


def _scores(run, name, columns):
    arrays, _ = features.load_cache(os.path.join(run["workdir"], "scores", f"{name}.npz"))
    labels = lsd_data.to_lsd_labels(arrays["expr"])
    keep = labels >= 0
    return scipy.special.softmax(np.float64(arrays["logits"][keep][:, :columns]), -1), \
        labels[keep]


def test_blend_ends_reproduce_each_model_and_tuned_f1_beats_both(run):
    final = run["final"]
    pre8, labels = _scores(run, "pretrained", 8)
    s_pre = pre8[:, [1, 2, 3, 4, 5, 6]]
    assert len(labels) == final["num_validation"] > 0
    for phase, name in (("head", "finetune_head"), ("full", "finetune_all")):
        s_ft, _ = _scores(run, name, 6)
        np.testing.assert_array_equal(tuning.blend(s_ft, s_pre, 1.0), s_ft)
        np.testing.assert_array_equal(tuning.blend(s_ft, s_pre, 0.0), s_pre)
        res = final["finetuned"][phase]
        ref = lambda s: f1_score(labels, s.argmax(-1), average="macro", labels=range(6),
                                 zero_division=0)
        assert res["f1"] == pytest.approx(ref(s_ft), abs=1e-6)
        assert final["pretrained"]["f1"] == pytest.approx(ref(s_pre), abs=1e-6)
        blend = res["blend"]
        assert blend["curve"][-1] == pytest.approx(res["f1"], abs=1e-6)
        assert blend["curve"][0] == pytest.approx(final["pretrained"]["f1"], abs=1e-6)
        assert blend["f1"] >= max(res["f1"], final["pretrained"]["f1"]) - 1e-9
        w = blend["weight"]
        assert blend["f1"] == pytest.approx(ref(w * s_ft + (1 - w) * s_pre), abs=1e-6)
    assert final["blended"]["finetuned"] == "full"


def test_rerun_reuses_every_stage(run, capsys, fast_compile):
    stamp = os.path.getmtime(os.path.join(run["workdir"], "finetune_all", "final_metrics.json"))
    with fast_compile():
        again = methods.train_and_evaluate(run["config"], run["workdir"])
    assert again["blended"] == run["final"]["blended"]
    assert "fine-tuning" not in capsys.readouterr().err
    assert os.path.getmtime(os.path.join(run["workdir"], "finetune_all",
                                         "final_metrics.json")) == stamp


def test_class_mapping_against_hand_written_table():
    abaw = list(labels.EXPRESSIONS)
    lsd_names = ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
    want = [lsd_names.index(n) if n in lsd_names else -1 for n in abaw] + [-1]
    np.testing.assert_array_equal(lsd_data.to_lsd_labels(list(range(8)) + [-1]), want)
    logits = np.random.default_rng(0).normal(size=(5, 8)) * 3
    probs = scipy.special.softmax(logits, -1)
    want = np.stack([probs[:, abaw.index(n)] for n in lsd_names], -1)
    np.testing.assert_allclose(lsd.pretrained_scores(logits), want, rtol=1e-12)
    np.testing.assert_array_equal(
        lsd.pretrained_scores(logits, kind="logits"),
        np.stack([logits[:, abaw.index(n)] for n in lsd_names], -1))


def test_missing_pretrained_workdir_is_one_line(tmp_path, capsys):
    config = lsd_config(tmp_path / "data", str(tmp_path / "nowhere"))
    with pytest.raises(UserError) as err:
        methods.train_and_evaluate(config, str(tmp_path / "run"))
    message = str(err.value)
    assert "\n" not in message and "pretrained_workdir" in message and "nowhere" in message
    with pytest.raises(SystemExit) as exit_:
        methods.run(config, str(tmp_path / "run"))
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith("error: config.lsd.pretrained_workdir")


def test_phase_order_must_start_with_the_head(tmp_path):
    config = lsd_config(tmp_path / "data", str(tmp_path / "nowhere"))
    config.phase_order = ("full",)
    with pytest.raises(UserError, match="phase_order"):
        lsd.run_pipeline(config, str(tmp_path / "run"))


@pytest.mark.parametrize("channels,scale", [(3, 2.0), (1, 2.0), (3, 1.5)])
def test_bicubic_matches_pil(channels, scale):
    images = np.random.default_rng(1).integers(0, 256, (3, 10, 12, channels), np.uint8)
    out = sr.apply("bicubic", images, scale)
    h, w = round(10 * scale), round(12 * scale)
    assert out.shape == (3, h, w, channels) and out.dtype == np.uint8
    for got, image in zip(out, images):
        mode = "L" if channels == 1 else "RGB"
        ref = Image.fromarray(image.squeeze(-1) if channels == 1 else image, mode)
        np.testing.assert_array_equal(got.reshape(h, w, -1), np.asarray(
            ref.resize((w, h), Image.BICUBIC)).reshape(h, w, -1))
    flat = np.full((2, 5, 5, 3), 77, np.uint8)  # a constant image stays constant
    np.testing.assert_array_equal(sr.apply("bicubic", flat, 2), 77)


def test_sr_none_registry_and_bad_input():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    assert sr.apply("none", images, 2.0) is images
    with pytest.raises(KeyError, match="bicubic"):
        sr.apply("esrgan", images, 2.0)
    with pytest.raises(ValueError, match="images"):
        sr.apply("bicubic", images.astype(np.float32), 2.0)
    with pytest.raises(ValueError, match="scale"):
        sr.apply("bicubic", images, 0)
    sr.SUPER_RESOLUTION["broken"] = lambda x, s: x  # wrong size is caught
    try:
        with pytest.raises(ValueError, match="broken"):
            sr.apply("broken", images, 2.0)
    finally:
        del sr.SUPER_RESOLUTION["broken"]


def test_finetune_config_from_a_locked_config(tmp_path):
    config = lsd_synthfaces.get_config()
    config.lock()  # as train.py loads it
    c = lsd.finetune_config(config, "full", data_dir=str(tmp_path), image_size=64,
                            init_from="init")
    assert (c.method, c.model.num_expressions, c.phase_order) == ("emotieffnet", 6, ("full",))
    assert c.data.name == "image_folder" and c.data.eval_split == "train"
    assert dict(c.data.builder_kwargs.class_names) == {
        "anger": 0, "disgust": 1, "fear": 2, "happiness": 3, "sadness": 4, "surprise": 5}
    assert config.method == "lsd" and config.model.num_expressions == 8  # not modified


def test_class_folder_training_set_drops_neutral_and_maps_names(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "synthetic"
    for folder, n in (("ANGER", 2), ("happiness", 3), ("neutral", 2)):
        (src / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).save(
                src / folder / f"{i}.png")
    config = lsd_synthfaces.get_config()
    config.lsd.train = dict(source="image_folder", root=str(src), image_size=8,
                            class_names={})
    config.lsd.super_resolution = "none"
    record = lsd_data.write_training_set(config, str(tmp_path / "out"))
    assert record["image_size"] == 8
    assert record["counts"] == {"Anger": 2, "Disgust": 0, "Fear": 0, "Happiness": 3,
                                "Sadness": 0, "Surprise": 0}
    assert sorted(os.listdir(tmp_path / "out" / "happiness")) == [
        "000002.png", "000003.png", "000004.png"]
    # A rerun with the same settings reuses the set; other settings are refused.
    assert lsd_data.write_training_set(config, str(tmp_path / "out")) == record
    config.lsd.super_resolution = "bicubic"
    with pytest.raises(UserError, match="new --workdir"):
        lsd_data.write_training_set(config, str(tmp_path / "out"))


def test_finetune_stage_names_its_six_classes(tmp_path):
    from affectjax import labels  # pylint: disable=import-outside-toplevel
    from affectjax.train import plots  # pylint: disable=import-outside-toplevel
    config = lsd_synthfaces.get_config()
    assert tuple(lsd.LSD_FINETUNE.class_names(config)) == (
        "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
    # A 6-class confusion matrix with the 8 ABAW names is refused, not cut to 6 names.
    with pytest.raises(ValueError, match="8 class names"):
        plots.plot_confusion(np.eye(6, dtype=int), labels.EXPRESSIONS, str(tmp_path / "c.png"))
    path = plots.plot_confusion(np.eye(6, dtype=int), lsd.LSD_FINETUNE.class_names(config),
                                str(tmp_path / "c.png"))
    assert os.path.exists(path)


@pytest.mark.parametrize("meta", [{"head_order": "alphabetical"},
                                  {"head_order": "abaw"}])  # abaw without "expressions": old
def test_pretrained_checkpoint_must_be_in_abaw_order(tmp_path, meta):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "meta.json").write_text(json.dumps(dict(meta, arch="emotieffnet")))
    config = lsd_config(tmp_path / "data", "")
    config.lsd.pretrained_workdir = ""
    config.lsd.pretrained_checkpoint = str(ckpt)
    with pytest.raises(UserError) as err:
        methods.train_and_evaluate(config, str(tmp_path / "run"))
    message = str(err.value)
    assert "\n" not in message and "pretrained_checkpoint" in message
    assert "--head-order abaw" in message
