"""The ``mtl_heads`` method: MT-EmotiEffNet's MLP heads on frozen features (paper 1, Sec. 3.2).

Batches hold cached features (`affectjax.methods.emotieffnet.features`): ``embedding`` (B, D), ``logits``
(B, 10) and the labels ``expr`` (-1 missing), ``va`` with ``va_mask``, ``au`` (-1
missing). The model is `affectjax.models.heads.MTLHeads`; its three task losses, each over
the samples whose label is present only (a task with no label in the batch contributes
exactly 0 and no gradient):

* ``va``: 1 - (CCC_V + CCC_A) / 2 (eq. 1, VA term) over ``va_mask``;
* ``expr``: class-weighted softmax cross-entropy (eq. 1, w_c = max_k N_k / N_c from the
  training labels, ``loss.expr_class_weights``);
* ``au``: sigmoid BCE with sklearn "balanced" per-AU weights (``loss.au_weights``:
  ``balanced`` | ``pos`` (pos_weight = #neg / #pos) | ``none``);

each times ``loss.task_weights[task]`` plus ``loss.l2`` times the squared kernel weights of
its own head (L2 on the heads). The balancer (``config.balancer``, any of
`affectjax.balancing`) sums them.

Simultaneous training is one phase over all heads; *separate* training (the paper's better
variant) is one phase per head, ``trainable`` = that head only (`separate_phases`): since
a head's parameters enter its own task loss only, each phase is exactly uni-task training
of one head (VA first, so that with ``va_feeds_heads`` the EXPR and AU heads train on the
finished VA head's output).

`train_heads` runs the phases on in-memory features with the trainer's own pieces
(`make_train_step`, `build_optimizer`, `TrainState`); `predict` applies the heads. The
method is a pipeline (``Method.pipeline``, `affectjax.methods.emotieffnet.mtl_report.run_pipeline`:
features -> heads -> tuning -> report), so one command runs it all:

    python train.py --config configs/mtl_heads_synthfaces.py --workdir runs/mtl_heads \
        --config.features.workdir=runs/quickstart
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from affectjax import losses as losses_lib
from affectjax import metrics as metrics_lib
from affectjax.models import heads as heads_lib
from affectjax.train import optim
from affectjax.train import steps as steps_lib
from affectjax.train.errors import NonFiniteLossError
from affectjax.train.method import Method, valid_mask
from affectjax.train.state import TrainState, create_train_state

TASKS = heads_lib.TASKS
BATCH_KEYS = ("embedding", "logits", "expr", "va", "va_mask", "au", "valid")


def feature_inputs(batch: Mapping[str, Any]) -> tuple[Any, Any]:
    """The heads' inputs ``(embedding, logits)``."""
    return batch["embedding"], batch["logits"]


def _build_model(config: Any) -> heads_lib.MTLHeads:
    kwargs = (config.model.to_dict() if hasattr(config.model, "to_dict")
              else dict(config.model))
    name = kwargs.pop("name", "mtl_heads")
    if name != "mtl_heads":
        raise ValueError(f"config.model.name={name!r}; the mtl_heads method needs 'mtl_heads'")
    if "hidden" in kwargs:
        kwargs["hidden"] = tuple(int(h) for h in kwargs["hidden"])
    return heads_lib.create_heads(**kwargs)


def _param_groups(params: Any) -> Any:
    groups = {f"{t}_head": t for t in TASKS}
    unknown = [k for k in params if k not in groups]
    if unknown:
        raise ValueError(f"params: unexpected modules {unknown}; expected {list(groups)}")
    return {k: jax.tree.map(lambda _, g=groups[k]: g, v) for k, v in params.items()}


def _labels(source: Any, key: str) -> np.ndarray:
    if hasattr(source, "labels"):
        return np.asarray(source.labels(key))
    return np.stack([np.asarray(source[i][key]) for i in range(len(source))])


def _make_loss(config: Any, train_source: Any) -> steps_lib.LossFn:
    cfg = config.get("loss", ml_collections.ConfigDict())
    num_expr = int(config.model.get("num_expressions", 8))
    expr_weights = None
    if cfg.get("expr_class_weights", True):
        expr = _labels(train_source, "expr").reshape(-1)
        counts = np.bincount(expr[expr >= 0], minlength=num_expr)
        expr_weights = losses_lib.class_balanced_weights(counts)
    au_mode = cfg.get("au_weights", "balanced")
    pos_weight = neg_weight = None
    if au_mode == "balanced":
        neg_weight, pos_weight = losses_lib.sklearn_balanced_weights(_labels(train_source, "au"))
    elif au_mode == "pos":
        pos_weight = losses_lib.balanced_pos_weight(_labels(train_source, "au"))
    elif au_mode != "none":
        raise ValueError(f"config.loss.au_weights={au_mode!r}; choose balanced, pos or none")
    task_weights = dict(cfg.get("task_weights", {}) or {})
    unknown = [t for t in task_weights if t not in TASKS]
    if unknown:
        raise ValueError(f"config.loss.task_weights: unknown tasks {unknown}; tasks {TASKS}")
    l2 = float(cfg.get("l2", 0.0))
    ddof, eps = int(cfg.get("ccc_ddof", 0)), float(cfg.get("ccc_eps", 0.0))

    def loss_fn(outputs, intermediates, batch):
        valid = valid_mask(batch)
        va_mask = batch["va_mask"].astype(bool) & valid
        expr = jnp.where(valid, batch["expr"], -1)
        au = jnp.where(valid[:, None], batch["au"], -1)
        data = {
            "va": losses_lib.va_ccc_loss(outputs["va"], batch["va"], where=va_mask,
                                         ddof=ddof, eps=eps),
            "expr": losses_lib.weighted_cross_entropy(
                outputs["expr_logits"], expr, class_weights=expr_weights, normalize="weights"),
            "au": losses_lib.sigmoid_binary_cross_entropy(
                outputs["au_logits"], au, pos_weight=pos_weight, neg_weight=neg_weight),
        }
        present = {"va": jnp.any(va_mask), "expr": jnp.any(expr >= 0), "au": jnp.any(au >= 0)}
        out = {}
        for task in TASKS:  # no label of the task in the batch: exactly 0 (e.g. CCC of none)
            value = (float(task_weights.get(task, 1.0)) * data[task]
                     + l2 * intermediates["l2"][task])
            out[task] = jnp.where(present[task], value, 0.0)
        return out

    return loss_fn


def _eval_stats(outputs, intermediates, batch):
    del intermediates
    valid = valid_mask(batch)
    expr = jnp.where(valid, batch["expr"], -1)
    num_expr = outputs["expr_logits"].shape[-1]
    return {
        "ccc": metrics_lib.ccc_update(metrics_lib.ccc_init(2), outputs["va"], batch["va"],
                                      where=batch["va_mask"].astype(bool) & valid),
        "confusion_matrix": metrics_lib.confusion_matrix(
            expr, jnp.argmax(outputs["expr_logits"], -1), num_expr),
        "au": metrics_lib.binary_update(
            metrics_lib.binary_init(outputs["au"].shape[-1]), batch["au"], outputs["au"],
            thresholds=0.5, where=valid),
    }


def _eval_merge(a, b):
    return {"ccc": metrics_lib.ccc_merge(a["ccc"], b["ccc"]),
            "confusion_matrix": metrics_lib.confusion_merge(a["confusion_matrix"],
                                                            b["confusion_matrix"]),
            "au": metrics_lib.binary_merge(a["au"], b["au"])}


def _eval_finalize(stats):
    cm = np.asarray(stats["confusion_matrix"])
    ccc = np.asarray(metrics_lib.ccc_finalize(stats["ccc"]), np.float64)
    au_f1, p_au = (np.asarray(x, np.float64) for x in metrics_lib.au_f1_from_stats(stats["au"]))
    p_expr = float(metrics_lib.f1_macro_from_cm(cm))
    p_va = float(ccc.mean())
    scalars = {"P_VA": p_va, "P_EXPR": p_expr, "P_AU": float(p_au),
               "P_MTL": p_va + p_expr + float(p_au), "CCC_V": float(ccc[0]),
               "CCC_A": float(ccc[1]), "expr_acc": float(metrics_lib.accuracy_from_cm(cm))}
    return scalars, {"confusion_matrix": cm, "au_f1": au_f1,
                     "expr_f1": np.asarray(metrics_lib.f1_per_class_from_cm(cm))}


def _collect(outputs, batch):
    keep = np.asarray(batch["valid"], bool) if "valid" in batch else slice(None)
    return {"va_pred": np.asarray(outputs["va"])[keep], "va_true": np.asarray(batch["va"])[keep],
            "va_mask": np.asarray(batch["va_mask"])[keep],
            "expr_scores": np.asarray(outputs["expr"])[keep],
            "expr_true": np.asarray(batch["expr"])[keep],
            "au_scores": np.asarray(outputs["au"])[keep], "au_true": np.asarray(batch["au"])[keep]}


def _pipeline(config: Any, workdir: str) -> dict[str, Any]:
    from affectjax.methods.emotieffnet import mtl_report  # pylint: disable=import-outside-toplevel
    return mtl_report.run_pipeline(config, workdir)


MTL_HEADS = Method(
    name="mtl_heads", task_names=TASKS, groups=TASKS, build_model=_build_model,
    param_groups=_param_groups, make_loss=_make_loss, eval_stats=_eval_stats,
    eval_merge=_eval_merge, eval_finalize=_eval_finalize, collect=_collect,
    best_metric="P_MTL", inputs_fn=feature_inputs, batch_keys=BATCH_KEYS,
    pipeline=_pipeline)


def separate_phases(epochs: float, learning_rate: float) -> tuple[tuple[str, ...], Any]:
    """``(phase_order, phases)`` training each head alone, VA first (the paper's variant)."""
    phases = {t: dict(epochs=epochs, learning_rate=learning_rate, trainable=t) for t in TASKS}
    return TASKS, ml_collections.ConfigDict(phases)


def simultaneous_phases(epochs: float, learning_rate: float) -> tuple[tuple[str, ...], Any]:
    """``(phase_order, phases)`` training all heads together (one phase)."""
    return ("all",), ml_collections.ConfigDict(
        {"all": dict(epochs=epochs, learning_rate=learning_rate, trainable="all")})


@dataclasses.dataclass
class HeadsResult:
    """What `train_heads` returns: the model, the final state and per-step metrics."""

    model: heads_lib.MTLHeads
    state: TrainState
    history: list[dict[str, float]]

    @property
    def variables(self) -> dict[str, Any]:
        return {"params": self.state.params}


def _epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def train_heads(config: Any, train: Mapping[str, np.ndarray]) -> HeadsResult:
    """Trains the heads on in-memory features as `config` says (phases, balancer, optimizer).

    Args:
      config: an ``mtl_heads`` config (``model``, ``loss``, ``balancer``, ``optimizer``,
        ``phase_order``/``phases``, ``batch_size``, ``seed``).
      train: training arrays (`affectjax.methods.emotieffnet.features.extract` output).

    Returns:
      `HeadsResult`; ``history`` has one dict per step (``step``, ``phase``, ``loss``,
      ``loss/<task>``, ``weight/<task>``, ``grad_norm``, ``lr``).
    """
    from affectjax import balancing  # pylint: disable=import-outside-toplevel
    from affectjax.methods.emotieffnet.features import FeatureSource  # pylint: disable=import-outside-toplevel
    from affectjax.train.setup import build_phases  # pylint: disable=import-outside-toplevel

    method = MTL_HEADS
    model = method.build_model(config)
    bcfg = (config.balancer.to_dict() if hasattr(config.balancer, "to_dict")
            else dict(config.balancer))
    balancer = balancing.create(bcfg.pop("name"), **bcfg)
    arrays = {k: np.asarray(train[k]) for k in BATCH_KEYS if k in train}
    n, batch_size, seed = len(arrays["expr"]), int(config.batch_size), int(config.seed)
    if n < batch_size:
        raise ValueError(f"config.batch_size={batch_size} exceeds the {n} training faces")
    spe = int(config.get("steps_per_epoch", 0) or n // batch_size)
    phases = build_phases(config, method.groups, spe)
    loss_fn = method.make_loss(config, FeatureSource(arrays))
    init_rng, rng = jax.random.split(jax.random.PRNGKey(seed))
    variables = model.init(init_rng, *feature_inputs({k: v[:1] for k, v in arrays.items()}))
    labels_tree = method.param_groups(variables["params"])
    bparams = balancer.init_params(len(TASKS))

    def optimizer(phase):
        return optim.build_optimizer(
            config.optimizer, learning_rate=phase.learning_rate,
            labels=optim.trainable_labels(labels_tree, bparams, phase.trainable),
            steps_per_epoch=spe, total_steps=phase.end - phase.start,
            lr_multipliers=phase.lr_multipliers)

    state = create_train_state(variables=variables, apply_fn=model.apply,
                               tx=optimizer(phases[0])[0],
                               balancer_state=balancer.init(len(TASKS)),
                               balancer_params=bparams, rng=rng)
    history: list[dict[str, float]] = []
    for phase in phases:
        tx, schedule = optimizer(phase)
        state = state.with_optimizer(tx)
        step_fn = jax.jit(steps_lib.make_train_step(
            loss_fn, balancer, task_names=TASKS, steps_per_epoch=spe, schedule=schedule,
            phase_start=phase.start, inputs_fn=feature_inputs), donate_argnums=(0,))
        metrics = []
        for step in range(phase.start, phase.end):
            order = _epoch_order(n, seed, step // spe)
            idx = order[(step % spe) * batch_size:(step % spe + 1) * batch_size]
            state, m = step_fn(state, {k: v[idx] for k, v in arrays.items()}, rng)
            metrics.append(m)
        for offset, m in enumerate(jax.device_get(metrics)):
            record = {k: float(v) for k, v in m.items()}
            if not np.isfinite(record["loss"]):
                step = phase.start + offset + 1
                error = NonFiniteLossError(step, "loss", record["loss"])
                error.args = (f"non-finite loss ({record['loss']}) at step {step} (phase "
                              f"{phase.name}); lower the learning rate or check the features",)
                raise error
            history.append({"step": phase.start + offset + 1, "phase": phase.name, **record})
    return HeadsResult(model, state, history)


def predict(model: Any, variables: Any, arrays: Mapping[str, np.ndarray], *,
            batch_size: int = 1024) -> dict[str, np.ndarray]:
    """The heads' outputs (``va``, ``expr``, ``expr_logits``, ``au``, ``au_logits``) per row."""
    apply = jax.jit(lambda v, e, l: model.apply(v, e, l, train=False)[0])
    emb, logits = np.asarray(arrays["embedding"]), np.asarray(arrays["logits"])
    n = len(emb)
    if n == 0:
        raise ValueError("predict: no rows")
    batch_size = min(int(batch_size), n)
    parts = []
    for start in range(0, n, batch_size):
        idx = np.minimum(np.arange(start, start + batch_size), n - 1)  # padded: one shape
        out = jax.device_get(apply(variables, emb[idx], logits[idx]))
        parts.append({k: np.asarray(v)[: min(batch_size, n - start)] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
