"""Tests for the mtl_heads method, its training variants, tuning and the end-to-end report."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from sklearn.metrics import f1_score

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import mtl_heads_synthfaces  # noqa: E402  pylint: disable=wrong-import-position

from affectjax.methods.emotieffnet import mtl_report  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import tuning  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import methods  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.emotieffnet import mtl_heads  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.emotieffnet.mtl_heads import MTL_HEADS  # noqa: E402  pylint: disable=wrong-import-position

TASKS = ("va", "expr", "au")


pytestmark = pytest.mark.usefixtures("fast_compiled")


def synthetic_features(n, seed):
    """Features that carry the labels linearly (a well-trained backbone, in miniature)."""
    rng = np.random.default_rng(seed)
    expr = rng.integers(0, 8, n).astype(np.int32)
    au = (rng.random((n, 12)) < 0.3).astype(np.int32)
    va = rng.uniform(-0.9, 0.9, (n, 2)).astype(np.float32)
    signal = np.concatenate([2 * np.eye(8)[expr], 2 * au, 2 * va], 1)
    emb = (signal + rng.normal(0, 0.4, signal.shape)).astype(np.float32)
    logits = np.concatenate([emb[:, :8], va + rng.normal(0, 0.2, va.shape)], 1)
    return {"embedding": emb, "logits": logits.astype(np.float32), "expr": expr, "va": va,
            "va_mask": np.ones(n, bool), "au": au}


def small_config(mode="separate", balancer="ew", epochs=6):
    c = mtl_heads_synthfaces.get_config(mode)
    c.model.hidden = (16,)
    c.model.va_feeds_heads = True
    c.batch_size = 32
    c.log_every_steps = 1
    c.balancer = dict(name=balancer)
    phases = mtl_heads.separate_phases if mode == "separate" else mtl_heads.simultaneous_phases
    c.phase_order, c.phases = phases(epochs=epochs, learning_rate=3e-2)
    return c


def _init(config, arrays):
    model = MTL_HEADS.build_model(config)
    rng = jax.random.split(jax.random.PRNGKey(config.seed))[0]
    return model, model.init(rng, arrays["embedding"][:1], arrays["logits"][:1])


def test_registered_method_builds_its_model_and_groups():
    method = methods.get_method("mtl_heads")
    assert method.pipeline is not None and MTL_HEADS.pipeline is None
    assert method.task_names == MTL_HEADS.task_names
    config = small_config()
    model, variables = _init(config, synthetic_features(4, 0))
    groups = method.param_groups(variables["params"])
    assert {k: set(jax.tree.leaves(v)) for k, v in groups.items()} == {
        "va_head": {"va"}, "expr_head": {"expr"}, "au_head": {"au"}}
    assert method.task_names == TASKS and model.va_feeds_heads
    config.model.name = "emotieffnet"
    with pytest.raises(ValueError, match="needs 'mtl_heads'"):
        method.build_model(config)


def _np_losses(out, batch, keep, expr_w, neg_w, pos_w):
    """float64 references of the three task losses over the kept rows."""
    va_p, va_t = np.asarray(out["va"], np.float64)[keep], batch["va"][keep].astype(np.float64)
    ccc = []
    for k in range(2):
        x, y = va_p[:, k], va_t[:, k]
        cov = np.mean((x - x.mean()) * (y - y.mean()))
        ccc.append(2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2 + 1e-7))
    z = np.asarray(out["expr_logits"], np.float64)[keep]
    y = batch["expr"][keep]
    logp = z - np.log(np.sum(np.exp(z - z.max(1, keepdims=True)), 1, keepdims=True)) - z.max(1, keepdims=True)
    w = expr_w[y]
    ce = np.sum(-w * logp[np.arange(len(y)), y]) / np.sum(w)
    a = np.asarray(out["au_logits"], np.float64)[keep]
    t = batch["au"][keep]
    bce = -(pos_w * t * np.log(1 / (1 + np.exp(-a))) + neg_w * (1 - t) * np.log(1 - 1 / (1 + np.exp(-a))))
    return {"va": 1 - np.mean(ccc), "expr": ce, "au": np.mean(bce)}


def test_losses_match_float64_references_and_skip_padding():
    train = synthetic_features(64, 1)
    config = small_config()
    config.loss.l2 = 0.0
    loss_fn = MTL_HEADS.make_loss(config, _Src(train))
    model, variables = _init(config, train)
    batch = synthetic_features(12, 2)
    batch["valid"] = np.arange(12) < 9
    out, inter = model.apply(variables, batch["embedding"], batch["logits"])
    got = loss_fn(out, inter, batch)
    counts = np.bincount(train["expr"], minlength=8)
    expr_w = counts.max() / counts
    n_pos = train["au"].sum(0)
    pos_w, neg_w = 64 / (2 * n_pos), 64 / (2 * (64 - n_pos))
    ref = _np_losses(out, batch, batch["valid"], expr_w, neg_w, pos_w)
    for task in TASKS:
        np.testing.assert_allclose(got[task], ref[task], rtol=2e-4, err_msg=task)


class _Src:
    def __init__(self, arrays):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays["expr"])

    def labels(self, key):
        return self.arrays[key]


@pytest.mark.parametrize("task", TASKS)
def test_fully_masked_task_does_not_move_any_head(task):
    train = synthetic_features(64, 3)
    config = small_config()
    config.loss.l2 = 1e-2  # the L2 term is gated too: no label, no gradient
    loss_fn = MTL_HEADS.make_loss(config, _Src(train))
    model, variables = _init(config, train)
    batch = synthetic_features(16, 4)
    if task == "va":
        batch["va_mask"][:] = False
    elif task == "expr":
        batch["expr"][:] = -1
    else:
        batch["au"][:] = -1

    def task_loss(params, name):
        out, inter = model.apply({"params": params}, batch["embedding"], batch["logits"])
        return loss_fn(out, inter, batch)[name]

    grads = jax.jit(jax.grad(task_loss), static_argnums=1)(variables["params"], task)
    assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grads))
    assert float(task_loss(variables["params"], task)) == 0.0
    other = TASKS[(TASKS.index(task) + 1) % 3]
    grads = jax.grad(task_loss)(variables["params"], other)
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads))


def test_a_separate_phase_trains_its_own_head_only(tmp_path):
    train = synthetic_features(64, 5)
    config = small_config(epochs=1)
    config.phase_order = ("expr",)
    result = mtl_heads.train_heads(config, train, workdir=str(tmp_path / "heads"))
    _, init = _init(config, train)
    for name in ("va_head", "au_head"):
        for a, b in zip(jax.tree.leaves(init["params"][name]),
                        jax.tree.leaves(result.state.params[name])):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(init["params"]["expr_head"]["out"]["kernel"],
                           result.state.params["expr_head"]["out"]["kernel"])


def _phase_losses(history, task, phase):
    values = [h[f"loss/{task}"] for h in history if h["phase"] == phase]
    return np.mean(values[:3]), np.mean(values[-3:])


@pytest.mark.parametrize("mode,balancer", [("separate", "ew"), ("simultaneous", "dwa")])
def test_separate_and_simultaneous_variants_train(mode, balancer, tmp_path):
    train, val = synthetic_features(256, 6), synthetic_features(128, 7)
    config = small_config(mode, balancer)
    result = mtl_heads.train_heads(config, train, evaluation=val,
                                   workdir=str(tmp_path / "heads"))
    for task in TASKS:
        first, last = _phase_losses(result.history, task, task if mode == "separate" else "all")
        assert last < 0.7 * first, (task, first, last)
    pred = mtl_heads.predict(result.model, result.variables, val, batch_size=50)
    scores = mtl_report.score(pred["va"], pred["expr"], pred["au"], val)
    chance = mtl_report.chance_level(val)
    assert scores["P_VA"] > 0.5 and scores["P_EXPR"] > 3 * chance["P_EXPR"]
    assert scores["P_AU"] > chance["P_AU"] + 0.2
    # The method's streaming evaluation (padded batches, under jit) gives the same scores.
    stats_fn = jax.jit(MTL_HEADS.eval_stats)
    stats = None
    for start in (0, 100):
        idx = np.minimum(np.arange(start, start + 100), 127)
        batch = {k: v[idx] for k, v in val.items()}
        batch["valid"] = np.arange(start, start + 100) < 128
        out, inter = result.model.apply(result.variables, batch["embedding"], batch["logits"])
        s = jax.device_get(stats_fn(out, inter, batch))
        stats = s if stats is None else MTL_HEADS.eval_merge(stats, s)
    scalars, arrays = MTL_HEADS.eval_finalize(stats)
    for key in ("P_VA", "P_EXPR", "P_AU", "P_MTL"):
        np.testing.assert_allclose(scalars[key], scores[key], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        arrays["expr_f1"], f1_score(val["expr"], pred["expr"].argmax(-1), average=None,
                                    labels=range(8), zero_division=0), atol=1e-6)
    np.testing.assert_allclose(
        arrays["au_f1"], f1_score(val["au"], pred["au"] >= 0.5, average=None, zero_division=0),
        atol=1e-6)


def test_tuning_never_lowers_f1_and_unit_blend_is_exact():
    rng = np.random.default_rng(8)
    val = synthetic_features(90, 9)
    val["au"][::7, 3] = -1
    pred = {"va": rng.uniform(-1, 1, (90, 2)), "expr": rng.dirichlet(np.ones(8), 90),
            "au": np.clip(val["au"] * 0.3 + rng.random((90, 12)) * 0.7, 0, 1)}
    res = mtl_report.tune_and_score(pred, val, expert="backbone")
    before = [f1_score(val["au"][:, k][val["au"][:, k] >= 0],
                       pred["au"][:, k][val["au"][:, k] >= 0] >= 0.5) for k in range(12)]
    np.testing.assert_allclose(res["au_f1_before"], before, atol=1e-9)
    assert np.all(np.asarray(res["au_f1_after"]) >= np.asarray(before) - 1e-12)
    assert res["tuned"]["P_AU"] >= res["threshold_0.5"]["P_AU"] - 1e-7
    assert res["tuned"]["P_EXPR"] >= res["threshold_0.5"]["P_EXPR"] - 1e-7
    expert = mtl_report.expert_scores("backbone", val)
    np.testing.assert_array_equal(tuning.blend(pred["expr"], expert, 1.0), pred["expr"])
    none = mtl_report.tune_and_score(pred, val, expert="none")
    assert none["blend_weight"] == 1.0
    assert none["tuned"]["P_EXPR"] == none["threshold_0.5"]["P_EXPR"]
    with pytest.raises(KeyError, match="unknown tuning.expert"):
        mtl_report.expert_scores("openface", val)


def test_train_py_runs_the_pipeline_and_a_rerun_reuses_the_cache(tmp_path):
    config = small_config(epochs=2)
    config.backbone.width_multiplier = 0.5
    config.data.data_dir = str(tmp_path / "data")
    config.data.image_size = 16
    config.data.builder_kwargs = dict(domain="studio", image_size=16,
                                      sizes=dict(train=64, validation=32))
    run = tmp_path / "run"
    final = methods.run(config, str(run))
    for name in ("final_metrics.json", "report.md", "predictions.npz", "features/train.npz",
                 "features/validation.npz", "plots/curves.png", "plots/f1.png",
                 "plots/confusion_matrix.png", "plots/va_scatter.png"):
        assert (run / name).exists(), name
    saved = json.loads((run / "final_metrics.json").read_text())
    assert saved["num_train"] == 64 and saved["num_eval"] == 32
    assert saved["tuned"]["P_AU"] >= saved["threshold_0.5"]["P_AU"] - 1e-7
    assert np.all(np.asarray(saved["au_f1_after"]) >= np.asarray(saved["au_f1_before"]))
    report = (run / "report.md").read_text()
    assert "| MTL heads | 0.5 |" in report and "| F1, best threshold |" in report
    assert final["steps"] == 3 * 2 * 2  # three separate phases of 2 epochs of 2 steps
    cache = {p: os.stat(run / "features" / p).st_mtime_ns for p in ("train.npz",
                                                                     "validation.npz")}
    again = methods.run(config, str(run))
    assert cache == {p: os.stat(run / "features" / p).st_mtime_ns for p in cache}
    for key in ("threshold_0.5", "tuned", "thresholds", "blend_weight", "train"):
        assert again[key] == final[key], key
    _check_predictor(config, run)


def _check_predictor(config, run):
    """`predict.load` on the run: backbone + heads on images equal the pipeline's
    validation predictions, AUs at the tuned thresholds."""
    from affectjax import predict  # pylint: disable=import-outside-toplevel
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    source = pipeline.create_source(config.data, "validation")
    images = [e["image"] for e in pipeline.read_examples(source, np.arange(len(source)))]
    predictor = predict.load(str(run))
    out = predictor(images)
    saved = np.load(run / "predictions.npz")
    np.testing.assert_allclose(out["valence"], saved["va"][:, 0], atol=1e-5)
    np.testing.assert_allclose(out["arousal"], saved["va"][:, 1], atol=1e-5)
    final = json.loads((run / "final_metrics.json").read_text())
    expr = saved["expr"]
    if final["expert"] == "backbone":  # the tuned blend with the backbone's own softmax
        logits = np.load(run / "features" / "validation.npz")["logits"][:, :8]
        expert = np.exp(logits - logits.max(-1, keepdims=True))
        expert /= expert.sum(-1, keepdims=True)
        expr = final["blend_weight"] * expr + (1 - final["blend_weight"]) * expert
    np.testing.assert_allclose(out["expr_probs"], expr, atol=1e-5)
    np.testing.assert_allclose(out["au_probs"], saved["au"], atol=1e-5)
    thresholds = np.asarray(final["thresholds"])
    np.testing.assert_array_equal(out["au"], (saved["au"] >= thresholds).astype(np.int32))


def _train_py(*args, tmp_path):
    return subprocess.run([sys.executable, os.path.join(REPO, "train.py"), *args,
                           f"--workdir={tmp_path / 'run'}",
                           f"--config.data.data_dir={tmp_path / 'data'}"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_train_py_missing_backbone_workdir_is_one_line(tmp_path):
    proc = _train_py("--config=configs/mtl_heads_synthfaces.py",
                     "--config.features.workdir=no/such/run", tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "config.features.workdir=no/such/run: no such directory" in lines[0]
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("key, value, expected", [
    ("tuning.expert", "openface", "unknown config.tuning.expert 'openface'"),
    ("balancer.name", "nope", "nope"),
    ("model.va_input", "pixels", "va_input"),
])
def test_config_mistakes_are_one_line_before_any_work(key, value, expected, tmp_path,
                                                      capsys):
    config = small_config()
    config.data.data_dir = str(tmp_path / "data")
    section, name = key.split(".")
    config[section][name] = value
    _assert_one_error_line(config, tmp_path, capsys, expected)


def _assert_one_error_line(config, tmp_path, capsys, expected):
    """The run stops before preparing any data, with one `error:` line and exit status 2."""
    with pytest.raises(SystemExit) as exc:
        methods.run(config, str(tmp_path / "run"))
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("meta, expected", [
    ({"head_order": "alphabetical", "expressions": []}, "alphabetical expression order"),
    ({"head_order": "affectnet"}, "alphabetical expression order"),  # earlier meta value
    ({"head_order": "abaw"}, "reconvert"),  # permuted by the earlier, wrong mapping
    ({"head_order": "abaw", "expressions": [], "model_kwargs": {"num_expressions": 7}},
     "7 expression logits"),
])
def test_backbone_expert_needs_an_eight_class_abaw_head(meta, expected, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "meta.json").write_text(json.dumps({"arch": "emotieffnet", **meta}))
    config = small_config()
    config.data.data_dir = str(tmp_path / "data")
    config.tuning.expert = "backbone"
    config.features.checkpoint = str(ckpt)
    _assert_one_error_line(config, tmp_path, capsys, expected)
