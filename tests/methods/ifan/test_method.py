"""The ``ifan`` method: eq. 5, decoder gating (eq. 6), task BatchNorm, per-iteration scores,
the two-stage pipeline end to end, resumption and one-line errors."""

import json
import os
import shutil
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import ifan_synthfaces  # noqa: E402  pylint: disable=wrong-import-position

from affectjax import balancing  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import methods  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.methods.ifan import method as ifan  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train import checkpoint  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train import steps as steps_lib  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.errors import UserError  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.state import create_train_state  # noqa: E402  pylint: disable=wrong-import-position

SIZE = 32
INITIAL = {}  # arrays of the initialised model before the fixture changes them


def _config(tmp_path=None, **changes):
    """A tiny 3-task iFAN: 32 px, 2 dense blocks each way, narrow layers."""
    c = ifan_synthfaces.get_config("quick,3t")
    c.model.update(num_blocks=2, layers_per_block=1, growth_rate=4, stem_features=8,
                   upsample_features=8, heatmap_radius=2.0, reencoder_widths=(4, 4, 4, 4))
    c.ifan.image_size = SIZE
    c.ifan.num_iterations = 1
    c.ifan.pretrain_epochs = 1
    c.phases.full.epochs = 1
    for task, source in c.ifan.sources.items():
        source.builder_kwargs.image_size = SIZE
        source.builder_kwargs.sizes = dict(train=16, validation=8)
        source.batch_size = 8
        if tmp_path is not None:
            source.data_dir = str(tmp_path / "data")
    c.eval_batch_size = 8
    c.log_every_steps = 2
    c.checkpoint_every_steps = 3
    c.progress_bar = False
    for key, value in changes.items():
        section, name = key.split(".")
        c[section][name] = value
    return c


def _batch(source: int, rng: np.random.Generator, n: int = 4):
    """A batch of data set `source` (0 landmarks, 1 parsing, 2 emotion) in the contract."""
    lm = np.stack([np.array([[10, 12], [22, 12], [16, 18], [11, 24], [21, 24]], np.float32)
                   + rng.normal(size=(5, 2)).astype(np.float32) for _ in range(n)])
    batch = {"image": rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32),
             "source": np.full((n,), source, np.int32), "valid": np.ones((n,), bool),
             "landmarks": lm if source == 0 else np.zeros_like(lm),
             "landmarks_mask": np.full((n,), source == 0),
             "parsing": (rng.integers(0, 11, (n, SIZE, SIZE)) if source == 1
                         else np.full((n, SIZE, SIZE), 255)).astype(np.int32),
             "expr": (rng.integers(0, 8, (n,)) if source == 2 else np.full((n,), -1)
                      ).astype(np.int32)}
    return batch


@pytest.fixture(scope="module")
def setup_model(fast_compile, tmp_path_factory):
    config = _config(tmp_path_factory.mktemp("ifan_data"))
    method = ifan.specialize(config)
    model = method.build_model(config)
    with fast_compile():
        variables = jax.device_get(jax.jit(lambda r, x, s: model.init(r, x, s, train=False))(
            jax.random.PRNGKey(0), *method.inputs_fn(_batch(0, np.random.default_rng(0)))))
    # As after a first step: the landmark regressor starts with a zero kernel (the mean
    # shape), which would stop every gradient of a landmark batch at the regressor.
    kernel = variables["params"]["decoder_landmarks"]["dense"]["kernel"]
    INITIAL["landmark_kernel"] = np.asarray(kernel)
    variables["params"]["decoder_landmarks"]["dense"]["kernel"] = 1e-3 * np.asarray(
        jax.random.normal(jax.random.PRNGKey(2), kernel.shape))
    return config, method, model, variables


@pytest.fixture(scope="module")
def grads_fn(setup_model, fast_compile):
    """Jitted ``(variables, batch) -> (grads, (losses, present, mutated))``, compiled once."""
    _, method, model, _ = setup_model
    apply = method.apply_fn(model)
    loss_fn = method.make_loss(None, None)

    def grads(variables, batch):
        def total(params):
            (out, inter), mutated = apply(dict(variables, params=params),
                                          *method.inputs_fn(batch), train=True,
                                          rng=jax.random.PRNGKey(1))
            losses, present = loss_fn(out, inter, batch)
            return sum(losses.values()), (losses, present, mutated)
        return jax.grad(total, has_aux=True)(variables["params"])

    with fast_compile():
        yield jax.jit(grads)


@pytest.fixture(scope="module")
def forward(setup_model, fast_compile):
    """The jitted eval-mode forward ``(variables, *inputs) -> ((out, inter), {})``."""
    _, method, model, _ = setup_model
    apply = method.apply_fn(model)
    with fast_compile():
        yield jax.jit(lambda variables, *inputs: apply(variables, *inputs, train=False))


def _norm(tree):
    return float(sum(jnp.sum(jnp.abs(x)) for x in jax.tree.leaves(tree)))


def test_a_batch_trains_its_own_decoder_the_backbone_and_every_reencoder(setup_model,
                                                                         grads_fn):
    config, method, model, variables = setup_model
    rng = np.random.default_rng(1)
    for source, task in enumerate(ifan.get_tasks(config)):
        grads, (losses, present, _) = grads_fn(variables, _batch(source, rng))
        assert {t: bool(v) for t, v in present.items()} == {
            t: t == task for t in ifan.get_tasks(config)}
        for other in ifan.get_tasks(config):
            decoder = _norm(grads[f"decoder_{other}"])
            assert (decoder > 0) == (other == task), (task, other, decoder)
            assert float(losses[other]) == 0.0 or other == task
            # eq. 6: the re-encoders of every task learn from every batch (ITER >= 1).
            assert _norm(grads[f"reencoder_{other}"]) > 0
        assert _norm(grads["backbone"]) > 0


def test_a_batch_of_one_data_set_leaves_the_others_batchnorm_statistics(setup_model,
                                                                        grads_fn):
    config, method, model, variables = setup_model
    _, (_, _, mutated) = grads_fn(variables, _batch(1, np.random.default_rng(2)))
    before = jax.tree_util.tree_leaves_with_path(variables["batch_stats"]["backbone"])
    after = dict(jax.tree_util.tree_leaves_with_path(mutated["batch_stats"]["backbone"]))
    changed = 0
    for path, old in before:
        new = np.asarray(after[path])
        np.testing.assert_array_equal(new[[0, 2]], np.asarray(old)[[0, 2]])
        changed += int(not np.array_equal(new[1], np.asarray(old)[1]))
    assert changed > 0


def test_loss_is_eq5_the_task_losses_summed_over_iterations(setup_model, forward):
    config, method, model, variables = setup_model
    rng = np.random.default_rng(3)
    for source in range(3):
        batch = _batch(source, rng)
        (out, inter), _ = forward(variables, *method.inputs_fn(batch))
        losses, _ = method.make_loss(None, None)(out, inter, batch)
        out = {k: np.asarray(v, np.float64) for k, v in out.items()}
        want = 0.0
        for i in range(config.ifan.num_iterations + 1):
            if source == 0:
                d = (out[f"landmarks/{i}"] - batch["landmarks"]) / SIZE
                want += np.mean(np.sqrt(np.sum(d ** 2, -1)))
            elif source == 1:
                logp = scipy.special.log_softmax(out[f"parsing/{i}"], -1)
                want += -np.mean(np.take_along_axis(logp, batch["parsing"][..., None], -1))
            else:
                logp = scipy.special.log_softmax(out[f"emotion/{i}"], -1)
                want += -np.mean(logp[np.arange(4), batch["expr"]])
        task = ifan.get_tasks(config)[source]
        np.testing.assert_allclose(float(losses[task]), want, rtol=2e-5)


def test_an_absent_task_leaves_its_balancer_statistics(setup_model):
    config, method, model, variables = setup_model
    balancer = balancing.create("ema", beta=0.5)
    tasks = ifan.get_tasks(config)
    state = create_train_state(variables=variables, apply_fn=model.apply,
                               tx=__import__("optax").rmsprop(1e-3),
                               balancer_state=balancer.init(len(tasks)),
                               balancer_params=balancer.init_params(len(tasks)))
    step = jax.jit(steps_lib.make_train_step(
        method.make_loss(None, None), balancer, task_names=tasks, steps_per_epoch=10,
        inputs_fn=method.inputs_fn, apply=method.apply_fn(model)))
    before = jax.device_get(state.balancer_state)
    state, metrics = step(state, _batch(0, np.random.default_rng(4)), jax.random.PRNGKey(0))
    after = jax.device_get(state.balancer_state)
    for field_before, field_after in zip(before, after):
        b, a = np.asarray(field_before), np.asarray(field_after)
        if b.ndim and b.shape[-1] == len(tasks):
            np.testing.assert_array_equal(a[..., 1:], b[..., 1:])  # parsing, emotion
    assert float(metrics["loss/parsing"]) == 0.0 and float(metrics["loss/landmarks"]) > 0


def test_scores_per_iteration_against_numpy(setup_model, forward):
    config, method, model, variables = setup_model
    rng = np.random.default_rng(5)
    stats, outs, batches = None, [], []
    for source in (0, 1, 2, 0):
        batch = _batch(source, rng)
        batch["valid"][-1] = False  # padding is never scored
        (out, inter), _ = forward(variables, *method.inputs_fn(batch))
        s = method.eval_stats(out, inter, batch)
        stats = s if stats is None else method.eval_merge(stats, s)
        outs.append(jax.device_get(out))
        batches.append(batch)
    scalars, arrays = method.eval_finalize(jax.device_get(stats))
    for i in range(config.ifan.num_iterations + 1):
        err = []
        for out, batch in zip(outs, batches):
            if batch["source"][0] == 0:
                keep = batch["valid"]
                t, p = batch["landmarks"][keep], out[f"landmarks/{i}"][keep]
                iod = np.linalg.norm(t[:, 0] - t[:, 1], axis=-1)
                err.append(np.linalg.norm(p - t, axis=-1) / iod[:, None])
        err = np.concatenate(err)
        np.testing.assert_allclose(scalars[f"landmarks/nme/{i}"], err.mean(), rtol=1e-5)
        np.testing.assert_allclose(scalars[f"landmarks/nme_nose/{i}"], err[:, 2].mean(),
                                   rtol=1e-5)
        np.testing.assert_allclose(scalars[f"landmarks/failure_left_eye/{i}"],
                                   np.mean(err[:, 0] > 0.1), rtol=1e-6)
        out, batch = outs[2], batches[2]
        pred = np.argmax(out[f"emotion/{i}"], -1)[batch["valid"]]
        np.testing.assert_allclose(scalars[f"emotion/accuracy/{i}"],
                                   np.mean(pred == batch["expr"][batch["valid"]]), rtol=1e-6)
        out, batch = outs[1], batches[1]
        pred = np.argmax(out[f"parsing/{i}"], -1)[batch["valid"]]
        true = batch["parsing"][batch["valid"]]
        eyes_p, eyes_t = np.isin(pred, (4, 5)), np.isin(true, (4, 5))
        tp = np.sum(eyes_p & eyes_t)
        want = 2 * tp / (2 * tp + np.sum(eyes_p & ~eyes_t) + np.sum(~eyes_p & eyes_t))
        np.testing.assert_allclose(scalars[f"parsing/eyes/{i}"], want, rtol=1e-5)
    last = config.ifan.num_iterations
    assert scalars["landmarks/nme"] == scalars[f"landmarks/nme/{last}"]
    want = np.mean([1 - scalars["landmarks/nme"] / 0.1, scalars["parsing/overall"],
                    scalars["emotion/accuracy"]])
    np.testing.assert_allclose(scalars["score"], want, rtol=1e-6)
    assert arrays["confusion_matrix"].shape == (8, 8)


def test_the_landmark_regressor_starts_at_the_training_mean_shape(setup_model):
    config, _, _, variables = setup_model
    from affectjax.methods.ifan import data as data_lib
    mean = data_lib.mean_predictions(config, ("landmarks",))["landmarks"]  # (5, 2) pixels
    bias = np.asarray(variables["params"]["decoder_landmarks"]["dense"]["bias"])
    # The Dense's layout is x_1..x_5, y_1..y_5 in units of the input size, centred.
    np.testing.assert_allclose(bias, (mean.T / SIZE - 0.5).ravel(), rtol=1e-6)
    assert not INITIAL["landmark_kernel"].any()  # zero kernel: it starts at the mean shape


def test_tasks_setting_is_checked():
    assert ifan.get_tasks(_config(**{"ifan.tasks": "parsing, landmarks"})) == (
        "landmarks", "parsing")
    for bad in ("landmarks,pose", "", "parsing,parsing"):
        with pytest.raises(UserError, match="config.ifan.tasks"):
            ifan.get_tasks(_config(**{"ifan.tasks": bad}))


@pytest.mark.parametrize("change", [{"ifan.tasks": "pose"}, {"ifan.num_iterations": -1},
                                    {"ifan.integration": "product"},
                                    {"model.name": "resnet18"}])
def test_bad_settings_are_one_line(tmp_path, change):
    config = _config(tmp_path, **change)
    with pytest.raises(UserError) as err:
        methods.train_and_evaluate(config, str(tmp_path / "run"))
    message = str(err.value)
    key = list(change)[0].split(".")[-1]
    assert "\n" not in message and key in message, message


class _Killed(Exception):
    pass


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, fast_compile):
    tmp = tmp_path_factory.mktemp("ifan")
    config = _config(tmp)
    with fast_compile():
        final = methods.train_and_evaluate(config, str(tmp / "run"))
    return config, final, tmp / "run"


def test_the_pipeline_runs_both_stages_and_scores_every_iteration(reference_run):
    config, final, workdir = reference_run
    scalars = final["eval"]
    for i in (0, 1):
        assert 0 < scalars[f"landmarks/nme/{i}"] and 0 <= scalars[f"parsing/overall/{i}"] <= 1
        assert 0 <= scalars[f"emotion/accuracy/{i}"] <= 1
    assert "landmarks/nme/2" not in scalars
    # Stage 1 is ITER 0 (no re-encoder), one data set after the other.
    assert "landmarks/nme/1" not in final["pretrain"] and "landmarks/nme/0" in final["pretrain"]
    records = [json.loads(line) for line in open(workdir / "pretrain" / "metrics.jsonl")]
    assert [r["step"] for r in records if r["split"] == "eval"] == [6]  # 3 sets x 2 batches
    for name in ("iterations.png", "predictions.png", "curves.png"):
        assert os.path.getsize(workdir / "plots" / name) > 1000
    on_disk = json.load(open(workdir / "final_metrics.json"))
    assert on_disk["eval"] == scalars and on_disk["pretrain"] == final["pretrain"]
    # Stage 2 starts from stage 1's weights; the re-encoders are new.
    assert os.path.isdir(workdir / "finetune" / "checkpoints")


def test_a_killed_run_resumes_to_the_same_metrics(reference_run, tmp_path, monkeypatch,
                                                  fast_compile):
    config, final, reference = reference_run
    save = checkpoint.Checkpointer.save
    calls = []

    def save_then_die(self, state, meta, *, best=False):
        save(self, state, meta, best=best)
        calls.append(int(state.step))
        if not best and "finetune" in str(self.latest.directory) and int(state.step) == 3:
            raise _Killed()

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save_then_die)
    workdir = str(tmp_path / "killed")
    # Stage 1 is the reference run's (a finished stage is not trained again); the kill
    # comes in stage 2, after its checkpoint at step 3.
    shutil.copytree(reference / "pretrain", tmp_path / "killed" / "pretrain")
    with fast_compile(), pytest.raises(_Killed):
        methods.train_and_evaluate(config, workdir)
    monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
    with fast_compile():
        resumed = methods.train_and_evaluate(config, workdir)
    assert resumed["eval"] == final["eval"]


def test_the_predictor_runs_each_task_with_its_own_batchnorm_set(reference_run):
    from affectjax import predict  # pylint: disable=import-outside-toplevel
    config, _, workdir = reference_run
    predictor = predict.load(str(workdir))
    size = predictor.image_size
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(3)]
    out = predictor(images + [np.repeat(np.repeat(images[0], 2, 0), 2, 1)])
    assert "finetune" in predictor.origin
    inputs = predictor.preprocess(images)
    method = ifan.specialize(config)
    model = method.build_model(config)
    variables, _ = checkpoint.restore_run_variables(str(workdir / "finetune"))
    apply = method.apply_fn(model)
    tasks = ifan.get_tasks(config)
    for index, task in enumerate(tasks):
        source = index if model.num_bn_sets > 1 else 0
        (outputs, _), _ = apply(variables, inputs, jnp.int32(source), train=False)
        if task == "landmarks":
            np.testing.assert_allclose(out["landmarks"][:3], outputs["landmarks"], atol=1e-4)
            # the doubled image: the same face, landmarks in its own (doubled) pixels
            np.testing.assert_allclose(out["landmarks"][3], 2 * out["landmarks"][0],
                                       atol=0.05 * size)
        elif task == "parsing":
            np.testing.assert_array_equal(out["parsing"][:3],
                                          np.argmax(outputs["parsing"], -1))
        else:
            np.testing.assert_allclose(out["expr_probs"][:3],
                                       scipy.special.softmax(np.asarray(
                                           outputs["emotion"], np.float64), -1), atol=1e-5)
    assert out["parsing"].shape == (4, size, size)
    assert set(predictor.rows(out)[0]) >= {"landmark4_y", "expr_label"}
