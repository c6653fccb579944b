"""The `Method` contract end to end: every field through the real loop on a toy problem.

The toy is a two-task problem on in-memory data: inputs ``x`` (B, 4), a regression target
``y`` (with ``y_mask``) and a 3-class ``label`` (-1 = missing); the model is a dense trunk
with dropout and one head per task, returning ``(outputs, intermediates)``. Each test
asserts behaviour that the trainer would break if it ignored the field under test:

* ``make_data``: a train stream alternating between two sources, each labelling one task;
  a killed and rerun run resumes to the same records and metrics as an uninterrupted one;
* ``make_apply``: two dropout passes averaged in training, a marker in the outputs;
* loss keywords ``step``/``epoch`` (named, ``**kwargs``, ``epoch`` alone);
* ``build_optimizer``: called per phase with its learning rate, labels and multipliers,
  and its updates (one group zeroed) are the ones applied;
* ``best_mode="min"``, ``class_names``, ``shared_group`` with GradNorm.

One reference run (two phases, 12 steps) uses all the custom fields at once and is
shared by most tests; the resume, GradNorm and class-name tests run their own.
"""

import collections
import dataclasses
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from affectjax import balancing
from affectjax import train
from affectjax.train import Method
from affectjax.train import checkpoint as ckpt_lib
from affectjax.train import optim
from affectjax.train import plots
from affectjax.train.method import valid_mask

pytestmark = pytest.mark.usefixtures("fast_compiled")

BATCH = 8
STEPS_PER_EPOCH = 4  # two batches of each 16-row source per epoch
WARM_LR, MAIN_LR = 0.05, 0.02
TOTAL_STEPS = 12  # warm: 1 epoch, main: 2 epochs
KILL_AT = 6  # a periodic checkpoint inside the main phase, mid-epoch
CLASS_NAMES = ("low", "mid", "high")
GROUPS = ("trunk", "reg_head", "cls_head")


# --- the toy problem ------------------------------------------------------------------


def _toy_data():
    r = np.random.default_rng(7)
    w_reg = np.array([1.0, -2.0, 0.5, 1.0], np.float32)
    w_cls = r.normal(size=(4, 3)).astype(np.float32)

    def rows(n):
        x = r.normal(size=(n, 4)).astype(np.float32)
        y = (0.5 * x @ w_reg + 0.1 * r.normal(size=n)).astype(np.float32)
        return {"x": x, "y": y, "y_mask": np.ones(n, bool),
                "label": np.argmax(x @ w_cls, -1).astype(np.int32)}

    alternating = rows(32)
    # Source 0 (rows 0-15) labels the regression only, source 1 (rows 16-31) the classes.
    alternating["source"] = np.repeat(np.arange(2, dtype=np.int32), 16)
    alternating["y_mask"][16:] = False
    alternating["y"][16:] = 0.0
    alternating["label"][:16] = -1
    both = rows(32)  # every row labelled for both tasks
    both["source"] = np.zeros(32, np.int32)
    return alternating, both, rows(12)


TRAIN, BOTH, EVAL = _toy_data()


class ToyLoader:
    """Train batches as a pure function of ``(seed, step)``; counts what it serves.

    ``alternate``: step ``s`` draws from source ``s % 2`` (TRAIN); otherwise from BOTH.
    """

    def __init__(self, *, seed, alternate):
        self.seed, self.alternate = int(seed), alternate
        self.steps_per_epoch = STEPS_PER_EPOCH
        self.starts = []  # start_step of every iterate() call
        self.served = collections.Counter()  # batches served per source

    def batch(self, step):
        if self.alternate:
            source, k = step % 2, step // 2
            epoch, j = divmod(k, 2)
            order = 16 * source + np.random.default_rng([self.seed, source, epoch]).permutation(16)
            rows = order[j * BATCH:(j + 1) * BATCH]
            data = TRAIN
        else:
            epoch, j = divmod(step, STEPS_PER_EPOCH)
            order = np.random.default_rng([self.seed, epoch]).permutation(32)
            rows = order[j * BATCH:(j + 1) * BATCH]
            data = BOTH
        return {k: v[rows] for k, v in data.items()}

    def iterate(self, start_step=0):
        self.starts.append(int(start_step))
        step = int(start_step)
        while True:
            batch = self.batch(step)
            self.served[int(batch["source"][0])] += 1
            yield batch
            step += 1


class EvalLoader:
    """The 12 evaluation rows in batches of 8, the last one padded and masked by ``valid``."""

    def eval_batches(self):
        n = len(EVAL["x"])
        for start in range(0, n, BATCH):
            idx = np.arange(start, start + BATCH)
            batch = {k: v[np.minimum(idx, n - 1)] for k, v in EVAL.items()}
            batch["valid"] = idx < n
            yield batch


class ToyNet(nn.Module):
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x, *, train):
        h = nn.tanh(nn.Dense(8, name="trunk")(x))
        h = nn.Dropout(self.dropout, deterministic=not train)(h)
        outputs = {"reg": nn.Dense(1, name="reg_head")(h)[:, 0],
                   "cls_logits": nn.Dense(3, name="cls_head")(h)}
        return outputs, {"features": h}


def _task_losses(outputs, batch):
    valid = valid_mask(batch)
    reg_mask = batch["y_mask"].astype(bool) & valid
    reg = jnp.sum(jnp.where(reg_mask, (outputs["reg"] - batch["y"]) ** 2, 0.0))
    reg = reg / jnp.maximum(jnp.sum(reg_mask), 1)
    labels = jnp.where(valid, batch["label"], -1)
    cls_mask = labels >= 0
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs["cls_logits"],
                                                         jnp.maximum(labels, 0))
    cls = jnp.sum(jnp.where(cls_mask, ce, 0.0)) / jnp.maximum(jnp.sum(cls_mask), 1)
    return {"reg": reg, "cls": cls}, {"reg": jnp.any(reg_mask), "cls": jnp.any(cls_mask)}


def _with_probes(losses, present, step, epoch):
    """Two constant "tasks" (no gradient) whose logged losses are the step and epoch."""
    losses = dict(losses, seen_step=jnp.asarray(step, jnp.float32),
                  seen_epoch=jnp.asarray(epoch, jnp.float32))
    return losses, dict(present, seen_step=jnp.array(True), seen_epoch=jnp.array(True))


def _eval_stats(outputs, intermediates, batch):
    del intermediates
    valid = valid_mask(batch)
    w = valid.astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs["cls_logits"], batch["label"])
    # "passes" exists only in the outputs of the method's own apply (-1: default apply).
    passes = outputs.get("passes", -jnp.ones_like(outputs["reg"]))
    true = jax.nn.one_hot(batch["label"], 3) * w[:, None]
    pred = jax.nn.one_hot(jnp.argmax(outputs["cls_logits"], -1), 3)
    return {"n": jnp.sum(w), "ce": jnp.sum(w * ce), "passes": jnp.sum(w * passes),
            "sq": jnp.sum(w * (outputs["reg"] - batch["y"]) ** 2),
            "confusion_matrix": jnp.einsum("bi,bj->ij", true, pred).astype(jnp.int32)}


def _eval_merge(a, b):
    return jax.tree.map(lambda u, v: u + v, a, b)


def _eval_finalize(stats):
    n = float(stats["n"])
    scalars = {"ce": float(stats["ce"]) / n, "mse": float(stats["sq"]) / n,
               "passes": float(stats["passes"]) / n}
    return scalars, {"confusion_matrix": np.asarray(stats["confusion_matrix"])}


def _collect(outputs, batch):
    return {"cls_scores": np.asarray(outputs["cls_logits"])[np.asarray(batch["valid"], bool)]}


def _param_groups(params):
    return {k: jax.tree.map(lambda _, g=k: g, v) for k, v in params.items()}


def base_method(**overrides):
    """The toy's core fields (default apply, data, optimizer), plus `overrides`."""
    fields = dict(
        name="toy", task_names=("reg", "cls"), groups=GROUPS,
        build_model=lambda config: ToyNet(dropout=float(config.toy_dropout)),
        param_groups=_param_groups,
        make_loss=lambda config, source: lambda o, i, b: _task_losses(o, b),
        eval_stats=_eval_stats, eval_merge=_eval_merge, eval_finalize=_eval_finalize,
        collect=_collect, best_metric="ce", inputs_fn=lambda batch: (batch["x"],))
    fields.update(overrides)
    return Method(**fields)


class Toy:
    """The toy method with every custom field, recording what the trainer hands it."""

    def __init__(self, *, loss_signature="named"):
        self.loss_signature = loss_signature
        self.loaders = []  # every (train_loader, eval_loader) made
        self.apply_calls = []  # (train, number of dropout keys), once per trace
        self.optimizer_calls = []  # the arguments of every build_optimizer call
        self.initial = []  # the model parameters every optimizer state starts from

    def make_data(self, config, *, seed):
        assert seed == config.seed
        loaders = (ToyLoader(seed=seed, alternate=True), EvalLoader())
        self.loaders.append(loaders)
        return loaders[0], loaders[1], TRAIN

    def make_apply(self, model):
        def apply(variables, x, *, train, rng=None):
            if not train:
                outputs, inter = model.apply(variables, x, train=False)
                self.apply_calls.append((False, rng))
                return (dict(outputs, passes=jnp.ones_like(outputs["reg"])), inter), {}
            keys = jax.random.split(rng)  # two dropout masks, averaged
            runs = [model.apply(variables, x, train=True, rngs={"dropout": k}) for k in keys]
            self.apply_calls.append((True, len(keys)))
            outputs, inter = jax.tree.map(lambda a, b: (a + b) / 2, *runs)
            return (dict(outputs, passes=jnp.full_like(outputs["reg"], 2.0)), inter), {}
        return apply

    def make_loss(self, config, train_source):
        assert train_source is TRAIN
        if self.loss_signature == "named":
            def loss_fn(outputs, intermediates, batch, *, step, epoch):
                return _with_probes(*_task_losses(outputs, batch), step, epoch)
        else:
            def loss_fn(outputs, intermediates, batch, **kwargs):
                assert sorted(kwargs) == ["epoch", "step"]
                return _with_probes(*_task_losses(outputs, batch), kwargs["step"],
                                    kwargs["epoch"])
        return loss_fn

    def build_optimizer(self, cfg, *, learning_rate, labels, steps_per_epoch, total_steps,
                        lr_multipliers):
        """The default optimizer, then the updates of ``reg_head`` set to zero."""
        self.optimizer_calls.append(dict(
            learning_rate=learning_rate, steps_per_epoch=steps_per_epoch,
            total_steps=total_steps, lr_multipliers=dict(lr_multipliers or {}),
            labels=set(jax.tree.leaves(labels["model"]))))
        tx, schedule = optim.build_optimizer(
            cfg, learning_rate=learning_rate, labels=labels, steps_per_epoch=steps_per_epoch,
            total_steps=total_steps, lr_multipliers=lr_multipliers)
        zero = jax.tree.map(lambda g: g == "reg_head", labels)

        def init(trainable):
            self.initial.append(jax.device_get(trainable["model"]))
            return optax.EmptyState()

        def update(updates, state, params=None):
            del params
            return jax.tree.map(lambda u, z: jnp.zeros_like(u) if z else u, updates, zero), state

        return optax.chain(tx, optax.GradientTransformation(init, update)), schedule

    @property
    def method(self):
        return base_method(
            task_names=("reg", "cls", "seen_step", "seen_epoch"), best_mode="min",
            class_names=lambda config: tuple(config.class_names),
            make_apply=self.make_apply, make_data=self.make_data,
            make_loss=self.make_loss, build_optimizer=self.build_optimizer)


def toy_config(**changes):
    c = ml_collections.ConfigDict()
    c.seed = 3
    c.method = "toy"
    c.toy_dropout = 0.5
    c.class_names = CLASS_NAMES
    c.batch_size = BATCH
    c.eval_batch_size = 0
    c.steps_per_epoch = 0  # the loader's
    c.phase_order = ("warm", "main")
    c.phases = ml_collections.ConfigDict(dict(
        warm=dict(epochs=1, learning_rate=WARM_LR, trainable="trunk,cls_head"),
        main=dict(epochs=2, learning_rate=MAIN_LR, trainable="all",
                  lr_multipliers=dict(cls_head=0.5))))
    c.optimizer = ml_collections.ConfigDict(dict(
        name="adam", b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, sam_rho=0.0,
        grad_clip_norm=0.0, schedule="constant", warmup_steps=0,
        balancer_learning_rate=1e-3))
    c.balancer = ml_collections.ConfigDict(dict(name="ew"))
    c.log_every_steps = 1
    c.eval_every_epochs = 1
    c.checkpoint_every_steps = KILL_AT
    c.checkpoint_every_epochs = 1
    c.keep_checkpoints = 2
    c.progress_bar = False
    c.num_devices = 1
    for key, value in changes.items():
        c[key] = value
    return c


def records(workdir, split):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["split"] == split]


def assert_same(got, want):
    """Equal structure and strings, floats to 1e-6 (a resumed run recompiles its steps)."""
    if isinstance(want, dict):
        assert sorted(got) == sorted(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert_same(a, b)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6)
    else:
        assert got == want


def checkpoint_steps(workdir, sub):
    return sorted(int(s) for s in os.listdir(os.path.join(workdir, sub)) if s.isdigit())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, fast_compile):
    """The uninterrupted run with every custom field; the class names its plot received."""
    toy, workdir = Toy(), str(tmp_path_factory.mktemp("contract") / "reference")
    plotted = []

    def plot_confusion(cm, class_names, path):
        plotted.append((np.asarray(cm).shape, class_names))
        return real(cm, class_names, path)

    real = plots.plot_confusion
    with fast_compile(), pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "plot_confusion", plot_confusion)
        state, final = train.fit(toy_config(), workdir, toy.method)
    return dict(toy=toy, workdir=workdir, state=jax.device_get(state), final=final,
                plotted=plotted)


# --- make_data ------------------------------------------------------------------------


def test_make_data_streams_both_sources_in_order(reference):
    toy, workdir = reference["toy"], reference["workdir"]
    assert reference["final"]["step"] == TOTAL_STEPS
    (train_loader, _), = toy.loaders
    assert train_loader.starts == [0]
    assert train_loader.served == {0: TOTAL_STEPS // 2, 1: TOTAL_STEPS // 2}
    # Record k is batch k - 1: source 0 (regression labels only) when k is odd.
    logged = records(workdir, "train")
    assert [r["step"] for r in logged] == list(range(1, TOTAL_STEPS + 1))
    for r in logged:
        labelled, unlabelled = ("reg", "cls") if r["step"] % 2 else ("cls", "reg")
        assert r[f"loss/{labelled}"] > 0 and r[f"loss/{unlabelled}"] == 0, r
    # The evaluations read the eval loader: its 12 rows, the padding of the last batch
    # excluded (NumPy recomputation from the final parameters).
    assert [r["step"] for r in records(workdir, "eval")] == [4, 8, 12]
    (outputs, _) = ToyNet().apply({"params": reference["state"].params}, EVAL["x"],
                                  train=False)
    logits = np.asarray(outputs["cls_logits"], np.float64)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = -log_p[np.arange(len(EVAL["label"])), EVAL["label"]].mean()
    mse = np.mean((np.asarray(outputs["reg"], np.float64) - EVAL["y"]) ** 2)
    final = reference["final"]["eval"]
    assert final["ce"] == pytest.approx(ce, rel=1e-5)
    assert final["mse"] == pytest.approx(mse, rel=1e-5)
    assert reference["plotted"][0][0] == (3, 3)


def test_killed_run_resumes_to_the_same_result(reference, tmp_path, monkeypatch):
    toy, workdir = Toy(loss_signature="kwargs"), str(tmp_path / "resumed")

    class Killed(Exception):
        pass

    save = ckpt_lib.Checkpointer.save

    def save_then_die(self, state, meta, *, best=False):
        save(self, state, meta, best=best)
        if not best and int(jax.device_get(state.step)) == KILL_AT:
            raise Killed

    monkeypatch.setattr(plots, "write_plots", lambda *args, **kwargs: [])
    with monkeypatch.context() as mp:
        mp.setattr(ckpt_lib.Checkpointer, "save", save_then_die)
        with pytest.raises(Killed):
            train.fit(toy_config(), workdir, toy.method)
    assert checkpoint_steps(workdir, "checkpoints")[-1] == KILL_AT
    state, final = train.fit(toy_config(), workdir, toy.method)

    # The second run started at the checkpoint, and the stream went on where it stopped.
    assert [loader.starts for loader, _ in toy.loaders] == [[0], [KILL_AT]]
    assert [dict(loader.served) for loader, _ in toy.loaders] == [
        {0: KILL_AT // 2, 1: KILL_AT // 2},
        {0: (TOTAL_STEPS - KILL_AT) // 2, 1: (TOTAL_STEPS - KILL_AT) // 2}]
    ref = reference["final"]
    assert final["step"] == ref["step"] == TOTAL_STEPS
    assert_same(final["best"], ref["best"])
    assert_same(final["eval"], ref["eval"])
    for split in ("train", "eval", "best"):  # the log: records up to the kill, then the rerun's
        got, want = ([{k: v for k, v in r.items() if k not in ("time", "images_per_s")}
                      for r in records(w, split)] for w in (workdir, reference["workdir"]))
        assert_same(got, want)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                 jax.device_get(state.params), reference["state"].params)


# --- make_apply -----------------------------------------------------------------------


def test_make_apply_is_the_forward_of_training_and_evaluation(reference):
    calls = reference["toy"].apply_calls
    # One trace per phase's train step, each with two dropout keys from the step's rng;
    # evaluation without a key.
    assert calls.count((True, 2)) == 2
    # The eval step is traced once for the whole run, across both phases.
    assert calls.count((False, None)) == 1
    assert set(calls) == {(True, 2), (False, None)}
    # The marker only this apply puts in the outputs reached the eval statistics.
    assert reference["final"]["eval"]["passes"] == 1.0


# --- step and epoch keywords of the loss ----------------------------------------------


def test_loss_receives_the_step_and_epoch(reference):
    logged = records(reference["workdir"], "train")
    for r in logged:  # record k logs the step that consumed batch k - 1
        assert r["loss/seen_step"] == r["step"] - 1
        assert r["loss/seen_epoch"] == (r["step"] - 1) // STEPS_PER_EPOCH
    assert {r["loss/seen_epoch"] for r in logged} == {0, 1, 2}


def test_loss_with_only_an_epoch_keyword_gets_only_the_epoch(tmp_path, monkeypatch):
    """The epoch zeroes a task after epoch 0 (and a `step` it did not declare would fail)."""
    seen = []

    def make_loss(config, source):
        def loss_fn(outputs, intermediates, batch, *, epoch):
            seen.append((epoch.shape, epoch.dtype))
            losses, present = _task_losses(outputs, batch)
            return dict(losses, cls=losses["cls"] * (epoch == 0)), present
        return loss_fn

    monkeypatch.setattr(plots, "write_plots", lambda *args, **kwargs: [])
    method = base_method(make_loss=make_loss, make_data=_both_data)
    config = toy_config(phase_order=("main",))
    config.phases.main.epochs = 2
    workdir = str(tmp_path / "epoch_only")
    train.fit(config, workdir, method)
    assert seen and set(seen) == {((), np.dtype(np.int32))}
    logged = records(workdir, "train")
    assert all(r["loss/cls"] > 0 for r in logged if r["step"] <= STEPS_PER_EPOCH)
    assert all(r["loss/cls"] == 0 for r in logged if r["step"] > STEPS_PER_EPOCH)
    assert all(r["loss/reg"] > 0 for r in logged)


def _both_data(config, *, seed):
    loader = ToyLoader(seed=seed, alternate=False)
    return loader, EvalLoader(), BOTH


# --- build_optimizer ------------------------------------------------------------------


def test_build_optimizer_builds_every_phase_and_its_updates_are_applied(reference):
    toy, state = reference["toy"], reference["state"]
    calls = toy.optimizer_calls
    phases = {call["learning_rate"]: call for call in calls}
    assert [c["learning_rate"] for c in calls][0] == WARM_LR
    assert set(phases) == {WARM_LR, MAIN_LR}
    warm, main = phases[WARM_LR], phases[MAIN_LR]
    assert (warm["total_steps"], main["total_steps"]) == (STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH)
    assert warm["steps_per_epoch"] == main["steps_per_epoch"] == STEPS_PER_EPOCH
    assert warm["lr_multipliers"] == {} and main["lr_multipliers"] == {"cls_head": 0.5}
    assert warm["labels"] == {"trunk", "cls_head", "frozen"}
    assert main["labels"] == set(GROUPS)
    # Its schedule is the one logged.
    for r in records(reference["workdir"], "train"):
        assert r["lr"] == pytest.approx(WARM_LR if r["step"] <= STEPS_PER_EPOCH else MAIN_LR)
    # Its updates are the ones applied: reg_head (trainable in the main phase, zeroed by
    # this optimizer) kept its initial values; the other groups trained.
    initial = toy.initial[0]
    jax.tree.map(np.testing.assert_array_equal, state.params["reg_head"], initial["reg_head"])
    for group in ("trunk", "cls_head"):
        assert not np.allclose(state.params[group]["kernel"], initial[group]["kernel"])


# --- best_mode ------------------------------------------------------------------------


def test_best_mode_min_keeps_the_lowest_metric(reference):
    workdir, final = reference["workdir"], reference["final"]
    evals = {r["step"]: r["ce"] for r in records(workdir, "eval")}
    lowest, highest = min(evals, key=evals.get), max(evals, key=evals.get)
    assert lowest != highest  # the choice of mode matters for this run
    assert final["best"] == {"metric": "ce", "mode": "min", "value": evals[lowest],
                             "step": lowest}
    with open(os.path.join(workdir, "final_metrics.json")) as f:
        assert json.load(f)["best"] == final["best"]
    assert checkpoint_steps(workdir, "best") == [lowest]
    best = [r["ce"] for r in records(workdir, "best")]
    assert best == sorted(best, reverse=True) and best[-1] == evals[lowest]


# --- class_names ----------------------------------------------------------------------


def test_class_names_label_the_confusion_matrix(reference):
    assert [names for _, names in reference["plotted"]] == [CLASS_NAMES]
    assert os.path.isfile(os.path.join(reference["workdir"], "plots", "confusion_matrix.png"))


def test_class_names_of_the_wrong_length_raise(tmp_path):
    toy = Toy()
    config = toy_config(class_names=("low", "high"), phase_order=("one",))
    config.phases = ml_collections.ConfigDict(
        {"one": dict(epochs=0.25, learning_rate=WARM_LR, trainable="all")})  # one step
    # Refused at the first evaluation, in one line, before anything is written as final.
    with pytest.raises(train.UserError, match="2 class names.*3-class confusion matrix"):
        train.fit(config, str(tmp_path / "names"), toy.method)
    assert not os.path.exists(tmp_path / "names" / "final_metrics.json")


# --- shared_group with GradNorm -------------------------------------------------------


def test_shared_group_is_what_gradnorm_balances(tmp_path, monkeypatch):
    shapes = []
    real = balancing.per_task_grad_norms

    def spy(task_losses_fn, shared_params):
        shapes.append(sorted(np.shape(p) for p in jax.tree.leaves(shared_params)))
        return real(task_losses_fn, shared_params)

    monkeypatch.setattr(balancing, "per_task_grad_norms", spy)
    monkeypatch.setattr(plots, "write_plots", lambda *args, **kwargs: [])
    method = base_method(shared_group="trunk", make_data=_both_data)
    config = toy_config(phase_order=("main",), toy_dropout=0.0,
                        balancer=ml_collections.ConfigDict(dict(name="gradnorm")))
    config.optimizer.balancer_learning_rate = 0.05
    workdir = str(tmp_path / "gradnorm")
    final = train.train_and_evaluate(config, workdir, method)
    assert final["step"] == 2 * STEPS_PER_EPOCH
    # The per-task gradient norms were taken over the trunk alone.
    assert shapes == [[(4, 8), (8,)]]
    logged = records(workdir, "train")
    first, last = logged[0], logged[-1]
    assert first["weight/reg"] == pytest.approx(1.0) and first["weight/cls"] == pytest.approx(1.0)
    assert abs(last["weight/reg"] - 1.0) > 0.02
    assert last["weight/reg"] + last["weight/cls"] == pytest.approx(2.0, rel=1e-5)


def test_method_checks_shared_group_and_best_mode():
    with pytest.raises(ValueError, match="shared_group='neck'.*trunk"):
        base_method(shared_group="neck")
    with pytest.raises(ValueError, match="best_mode='lowest'"):
        base_method(best_mode="lowest")
    assert dataclasses.replace(base_method(), shared_group="trunk").shared_group == "trunk"
