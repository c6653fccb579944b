"""The ``mtl_heads`` method: MT-EmotiEffNet's MLP heads on frozen features (paper 1, Sec. 3.2).

Batches hold cached features (`affectjax.methods.emotieffnet.features`): ``embedding``
(B, D), ``logits`` (B, 10) and the labels ``expr`` (-1 missing), ``va`` with ``va_mask``, ``au`` (-1
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
variant) is one phase per head, ``trainable`` = that head only (`separate_phases`), VA
first, so that with ``va_feeds_heads`` the EXPR and AU heads train on the finished VA
head's output. A head's parameters enter its own task loss only, so a phase's gradient is
that of its task alone; but its batches are drawn from all frames, and rows without the
task's label are masked out of its loss, as the authors' Keras code multiplies the
outputs by task masks. So it is uni-task in its gradient, not in its batches: the VA
head's batch-level CCC sees the variable number of VA-labelled rows of each batch (on
SynthFaces every frame carries every label, so there the two readings coincide).

`MTL_HEADS` is the heads' training on features; `train_heads` runs its phases through the
generic loop (`affectjax.train.loop.fit`) on the cached features (`FeatureLoader`,
`heads_stage`); `predict` applies the heads. The registered method ``mtl_heads`` is the
whole pipeline (`affectjax.methods.emotieffnet.mtl_report.MTL_HEADS_PIPELINE`: features
-> heads -> tuning -> report), so one command runs it all:

    python train.py --config configs/mtl_heads_synthfaces.py --workdir runs/mtl_heads \
        --config.features.workdir=runs/quickstart
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterator, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from affectjax import losses as losses_lib
from affectjax import metrics as metrics_lib
from affectjax import registry
from affectjax.models import heads as heads_lib
from affectjax.train import steps as steps_lib
from affectjax.train.method import Method, valid_mask
from affectjax.train.state import TrainState

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
        raise ValueError(registry.unknown_name_message("config.loss.au_weights", au_mode,
                                                       ("balanced", "pos", "none")))
    task_weights = dict(cfg.get("task_weights", {}) or {})
    unknown = [t for t in task_weights if t not in TASKS]
    if unknown:
        raise ValueError(registry.unknown_name_message("config.loss.task_weights task",
                                                       unknown[0], TASKS))
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
        "ccc": metrics_lib.ccc_update(metrics_lib.ccc_init(2), batch["va"], outputs["va"],
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
    au_f1 = np.asarray(metrics_lib.binary_f1_from_stats(stats["au"]), np.float64)
    p_au = float(metrics_lib.au_f1_from_stats(stats["au"]))
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


MTL_HEADS = Method(
    name="mtl_heads", task_names=TASKS, groups=TASKS, build_model=_build_model,
    param_groups=_param_groups, make_loss=_make_loss, eval_stats=_eval_stats,
    eval_merge=_eval_merge, eval_finalize=_eval_finalize, collect=_collect,
    best_metric="P_MTL", inputs_fn=feature_inputs, batch_keys=BATCH_KEYS)


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
    """What `train_heads` returns: the model, the final state and the training records."""

    model: heads_lib.MTLHeads
    state: TrainState
    history: list[dict[str, Any]]
    final: dict[str, Any]

    @property
    def variables(self) -> dict[str, Any]:
        return {"params": self.state.params}


class FeatureLoader:
    """Cached feature arrays as the trainer's data (the loader `Method.make_data` returns).

    Training batches: epoch ``e`` visits the rows in the permutation drawn from
    ``default_rng([seed, e])``, ``batch_size`` rows a step, the last incomplete batch
    dropped; step ``s`` is a pure function of ``(seed, s)``, so a resumed run sees the
    same batches. Evaluation batches: every row once, the last batch padded (repeating
    the last row) and marked by ``valid``.

    Args:
      arrays: feature arrays (`affectjax.methods.emotieffnet.features.extract` output).
      batch_size: rows per batch.
      seed: the shuffling seed.
      train: training (shuffled, endless) or evaluation (ordered, padded) batches.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], *, batch_size: int, seed: int,
                 train: bool):
        from affectjax.methods.emotieffnet.features import FeatureSource  # pylint: disable=import-outside-toplevel
        self.source = FeatureSource({k: v for k, v in arrays.items() if k in BATCH_KEYS})
        self.batch_size, self.seed = int(batch_size), int(seed)
        n = len(self.source)
        if train and n < self.batch_size:
            raise ValueError(f"config.batch_size={self.batch_size} exceeds the {n} training "
                             "faces")
        self.steps_per_epoch = n // self.batch_size if train else -(-n // self.batch_size)

    def iterate(self, start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Training batches from global step `start_step` on, endlessly."""
        n, size, step = len(self.source), self.batch_size, int(start_step)
        while True:
            epoch, k = divmod(step, self.steps_per_epoch)
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
            yield self.source.batch(order[k * size:(k + 1) * size])
            step += 1

    def eval_batches(self) -> Iterator[dict[str, np.ndarray]]:
        """Every row once, in order; the last batch padded and masked by ``valid``."""
        n = len(self.source)
        for start in range(0, n, self.batch_size):
            idx = np.arange(start, start + self.batch_size)
            batch = self.source.batch(np.minimum(idx, n - 1))
            batch["valid"] = idx < n
            yield batch


def heads_stage(train: Mapping[str, np.ndarray],
                evaluation: Mapping[str, np.ndarray] | None = None) -> Method:
    """`MTL_HEADS` as one stage of the pipeline: the generic loop over cached features.

    Args:
      train: training feature arrays.
      evaluation: feature arrays evaluated after every ``eval_every_epochs`` epochs
        (None: the training arrays).

    Returns:
      The method with ``make_data`` serving these arrays and no ``pipeline``.
    """
    evaluation = train if evaluation is None else evaluation

    def make_data(config: Any, *, seed: int):
        batch_size = int(config.batch_size)
        train_loader = FeatureLoader(train, batch_size=batch_size, seed=seed, train=True)
        eval_loader = FeatureLoader(evaluation, seed=seed, train=False,
                                    batch_size=config.get("eval_batch_size", 0) or 256)
        return train_loader, eval_loader, train_loader.source

    return dataclasses.replace(MTL_HEADS, make_data=make_data)


def train_heads(config: Any, train: Mapping[str, np.ndarray], *, workdir: str,
                evaluation: Mapping[str, np.ndarray] | None = None) -> HeadsResult:
    """Trains the heads with the generic loop as `config` says (phases, balancer, optimizer).

    The run (checkpoints, ``metrics.jsonl``, plots) is written to `workdir`; a finished
    run there is restored, not trained again.

    Args:
      config: an ``mtl_heads`` config (``model``, ``loss``, ``balancer``, ``optimizer``,
        ``phase_order``/``phases``, ``batch_size``, ``seed``).
      train: training arrays (`affectjax.methods.emotieffnet.features.extract` output).
      workdir: the stage's run directory.
      evaluation: arrays evaluated during training (None: `train`).

    Returns:
      `HeadsResult`; ``history`` holds the loop's training records (``step``,
      ``phase``, ``loss``, ``loss/<task>``, ``weight/<task>``, ``grad_norm``, ``lr``,
      averaged over ``log_every_steps``).
    """
    from affectjax.train import loop  # pylint: disable=import-outside-toplevel
    method = heads_stage(train, evaluation)
    state, final = loop.fit(config, workdir, method)
    history = []
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            history = [r for r in map(json.loads, f) if r.get("split") == "train"]
    return HeadsResult(method.build_model(config), jax.device_get(state), history, final)


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
