"""`predict.load` on a tiny quickstart run: the trainer's own evaluation, reproduced.

One run (quickstart shrunk: 32 px model input, images stored at 40 px so the resize path
is the trainer's) is shared by the module. The predictor's expression probabilities and
valence/arousal must equal the trainer's forward pass on the evaluation pipeline's
batches, and its validation scores the best checkpoint's logged evaluation.
"""

import json
import os
import shutil
import sys

import jax
import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import quickstart  # noqa: E402

from affectjax import methods  # noqa: E402
from affectjax import predict  # noqa: E402
from affectjax.data import pipeline  # noqa: E402
from affectjax.methods.emotieffnet import pretrain  # noqa: E402
from affectjax.train import inference  # noqa: E402
from affectjax.train.errors import UserError  # noqa: E402


def _tiny_config(data_dir):
    c = quickstart.get_config()
    c.model.backbone = "efficientnet_tiny"
    c.model.width_multiplier = 1.0
    c.data.data_dir = str(data_dir)
    c.data.image_size = 32
    c.data.builder_kwargs = dict(domain="studio", image_size=40,
                                 sizes=dict(train=48, validation=20))
    c.batch_size = 8
    c.steps_per_epoch = 2
    c.phase_order = ("full",)
    c.phases.full.epochs = 2
    c.phases.full.learning_rate = 3e-3
    c.optimizer.schedule = "constant"
    c.progress_bar = False
    return c


@pytest.fixture(scope="module")
def run(tmp_path_factory, fast_compile):
    root = tmp_path_factory.mktemp("predict")
    config = _tiny_config(root / "data")
    workdir = str(root / "run")
    with fast_compile():
        methods.run(config, workdir)
    source = pipeline.create_source(config.data, "validation")
    examples = pipeline.read_examples(source, np.arange(len(source)))
    return {"config": config, "workdir": workdir, "root": root,
            "images": [e["image"] for e in examples],
            "labels": pipeline.stack(examples)}


@pytest.fixture(scope="module")
def predicted(run):
    predictor = predict.load(run["workdir"])
    return predictor, predictor(run["images"], batch_size=8)


def _reference(run):
    """The trainer's path: evaluation batches of the pipeline, the method's forward pass."""
    config = run["config"]
    loader = pipeline.Loader(pipeline.create_source(config.data, "validation"), batch_size=8,
                             train=False, data_config=config.data)
    model = pretrain.EMOTIEFFNET.build_model(config)
    apply = jax.jit(lambda v, x: pretrain.EMOTIEFFNET.apply_fn(model)(v, x, train=False)[0][0])
    variables, _ = inference.restore_variables(run["workdir"])
    probs, va = [], []
    for batch in loader.eval_batches():
        out = apply(variables, batch["image"])
        keep = batch["valid"]
        probs.append(np.asarray(jax.nn.softmax(out["expr_logits"]))[keep])
        va.append(np.asarray(out["va"])[keep])
    return np.concatenate(probs), np.concatenate(va)


def test_predictions_equal_the_trainers_forward_pass(run, predicted):
    predictor, out = predicted
    probs, va = _reference(run)
    assert predictor.method == "emotieffnet" and predictor.image_size == 32
    assert "best" in predictor.origin
    np.testing.assert_allclose(out["expr_probs"], probs, atol=1e-5)
    np.testing.assert_allclose(out["valence"], va[:, 0], atol=1e-5)
    np.testing.assert_allclose(out["arousal"], va[:, 1], atol=1e-5)
    np.testing.assert_array_equal(out["expr"], np.argmax(probs, -1))
    names = predictor.names["expr_probs"]
    assert names[0] == "Neutral" and len(names) == 8
    assert list(out["expr_label"]) == [names[k] for k in out["expr"]]


def test_validation_scores_equal_the_best_checkpoints_evaluation(run, predicted):
    _, out = predicted
    with open(os.path.join(run["workdir"], "final_metrics.json")) as f:
        best_step = json.load(f)["best"]["step"]
    with open(os.path.join(run["workdir"], "metrics.jsonl")) as f:
        record = [r for r in map(json.loads, f) if r["split"] == "eval"
                  and r["step"] == best_step][-1]
    labels = run["labels"]
    y, p = labels["expr"], out["expr"]
    f1 = [2 * np.sum((p == c) & (y == c)) / max(np.sum(p == c) + np.sum(y == c), 1)
          for c in range(8)]  # ABAW: the mean over all 8 classes
    assert np.mean(f1) == pytest.approx(record["expr_f1"], abs=1e-5)
    for k, name in enumerate(("valence", "arousal")):
        x, t = out[name].astype(np.float64), labels["va"][:, k].astype(np.float64)
        ccc = 2 * np.cov(x, t, bias=True)[0, 1] / (x.var() + t.var() + (x.mean() - t.mean())**2)
        assert ccc == pytest.approx(record[f"ccc_{name}"], abs=1e-5)


def test_any_size_and_dtype_and_batch_size_give_the_same_predictions(run, predicted):
    predictor, out = predicted
    images = run["images"][:5]
    as_float = [im.astype(np.float32) / 255 for im in images]
    for again in (predictor(as_float, batch_size=3), predictor(np.stack(images), batch_size=64)):
        np.testing.assert_allclose(again["expr_probs"], out["expr_probs"][:5], atol=1e-5)
    grey_wide = [np.zeros((30, 70), np.uint8), np.full((90, 20, 4), 200, np.uint8)]
    odd = predictor(grey_wide)
    assert odd["expr_probs"].shape == (2, 8) and np.all(np.isfinite(odd["valence"]))
    with pytest.raises(ValueError, match="image 0: shape"):
        predictor([np.zeros((4, 4, 2), np.uint8)])


def test_rows_have_one_column_per_class(predicted):
    predictor, out = predicted
    rows = predictor.rows(out)
    assert len(rows) == len(out["expr"])
    first = rows[0]
    assert list(first)[:2] == ["expr_label", "expr"]
    assert {f"expr_prob/{n}" for n in predictor.names["expr_probs"]} <= set(first)
    assert first["valence"] == pytest.approx(float(out["valence"][0]), abs=1e-6)
    assert sum(first[f"expr_prob/{n}"] for n in predictor.names["expr_probs"]) == \
        pytest.approx(1.0, abs=1e-4)


def test_latest_checkpoint_and_config_json(run):
    latest = predict.load(run["workdir"], best=False)
    assert "checkpoints" in latest.origin
    with open(os.path.join(run["workdir"], "config.json")) as f:
        saved = json.load(f)
    assert saved["method"] == "emotieffnet" and saved["data"]["image_size"] == 32


def test_bad_run_directories_are_one_line(run, tmp_path):
    cases = {}
    with pytest.raises(UserError) as err:
        predict.load(str(tmp_path / "nowhere"))
    cases["missing"] = str(err.value)
    with pytest.raises(UserError) as err:
        predict.load(str(tmp_path))
    cases["no config"] = str(err.value)
    empty = tmp_path / "empty_run"
    empty.mkdir()
    shutil.copy(os.path.join(run["workdir"], "config.json"), empty / "config.json")
    with pytest.raises(UserError) as err:
        predict.load(str(empty))
    cases["no checkpoint"] = str(err.value)
    fusion = tmp_path / "fusion_run"
    fusion.mkdir()
    from configs import fusion_synthaffect  # pylint: disable=import-outside-toplevel
    (fusion / "config.json").write_text(fusion_synthaffect.get_config("quick").to_json())
    with pytest.raises(UserError) as err:
        predict.load(str(fusion))
    cases["fusion"] = str(err.value)
    assert "no such run directory" in cases["missing"]
    assert "config.json" in cases["no config"]
    assert "no trainer checkpoint" in cases["no checkpoint"]
    assert "'fusion' do not predict" in cases["fusion"]
    assert "['cct', 'emotieffnet', 'ifan', 'mtl', 'mtl_heads']" in cases["fusion"]
    assert all("\n" not in m for m in cases.values()), cases


def _fake(fields, **kwargs):
    spec = inference.Inference(
        apply=lambda variables, images: {k: v(images) for k, v in fields.items()},
        variables={}, image_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
        names=kwargs.get("names", {}), thresholds=kwargs.get("thresholds", {}),
        origin="fake")
    return predict.Predictor(spec, method="fake", config=None)


def test_landmarks_come_back_in_pixels_of_each_image_and_aus_use_the_thresholds():
    centre = lambda x: np.tile(np.array([[4.0, 2.0]], np.float32), (x.shape[0], 5, 1))
    aus = lambda x: np.tile(np.linspace(0.05, 0.95, 12, dtype=np.float32), (x.shape[0], 1))
    th = np.full(12, 0.5, np.float32)
    th[0], th[-1] = 0.01, 0.99
    predictor = _fake({"landmarks": centre, "au_probs": aus}, thresholds={"au_probs": th},
                      names={"au_probs": tuple(f"AU{k}" for k in range(12))})
    out = predictor([np.zeros((16, 40, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)])
    np.testing.assert_allclose(out["landmarks"][0, 0], [4.0 * 40 / 8, 2.0 * 16 / 8])
    np.testing.assert_allclose(out["landmarks"][1, 0], [4.0, 2.0])
    expected = (np.linspace(0.05, 0.95, 12) >= th).astype(np.int32)
    np.testing.assert_array_equal(out["au"][0], expected)
    assert expected[0] == 1 and expected[-1] == 0
    row = predictor.rows(out)[0]
    assert row["au/AU0"] == 1 and row["au_prob/AU11"] == pytest.approx(0.95)
    assert row["landmark0_x"] == pytest.approx(20.0) and "parsing" not in row


def test_four_devices_give_the_same_predictions(run, predicted):
    """The batch is split over every local device (4 host devices in a subprocess)."""
    import subprocess  # pylint: disable=import-outside-toplevel
    _, out = predicted
    np.save(run["root"] / "images.npy", np.stack(run["images"][:7]))
    code = ("import sys, numpy as np, jax; from affectjax import predict; "
            "p = predict.load(sys.argv[1]); "
            "o = p(np.load(sys.argv[2]), batch_size=5); "
            "assert jax.local_device_count() == 4; np.save(sys.argv[3], o['expr_probs'])")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
    subprocess.run([sys.executable, "-c", code, run["workdir"], str(run["root"] / "images.npy"),
                    str(run["root"] / "probs.npy")], check=True, env=env, cwd=REPO,
                   timeout=300, capture_output=True)
    np.testing.assert_allclose(np.load(run["root"] / "probs.npy"), out["expr_probs"][:7],
                               atol=1e-5)
