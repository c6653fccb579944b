"""Training methods: how to build the model, its task losses and its evaluation.

`METHODS` maps a config's ``method`` to a `Method`. The generic trainer
(`affectjax.train.loop`) needs nothing else, so ``cct``, ``ifan`` and ``fusion`` plug in
as further entries (a method with an unusual forward, e.g. CCT's vmapped ensemble,
supplies a model object with ``init``/``apply`` and its own ``inputs_fn``). A method that
is a multi-stage pipeline (``mtl_heads``, `affectjax.train.mtl_heads`) sets
``Method.pipeline``; such methods are registered in `affectjax.train` (their modules
import this one).

``emotieffnet`` (Savchenko, ABAW4 2022, Sec. 3.1): an EfficientNet with one
Linear(features -> 8 + 2) head, loss eq. (1) = [1 - (CCC_V + CCC_A)/2] + class-weighted
CE with w_c = max_k N_k / N_c from the training set's counts, split into the two tasks
``va`` and ``expr`` that the balancer sums (``ew``: eq. 1 exactly). Parameter groups:
``head`` (the ``classifier`` Dense) and ``backbone`` (everything else), for the paper's
head-only phase. Evaluation: expression macro-F1 and accuracy over 8 classes, CCC of
valence and arousal (population variances, ABAW), ``score`` = P_EXPR + P_VA.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import losses as losses_lib
from affectjax import metrics as metrics_lib
from affectjax import models as models_lib
from affectjax.train.steps import InputsFn, LossFn, image_inputs

Batch = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method, as the generic trainer sees it.

    Attributes:
      name: registry key.
      task_names: order of the task losses given to the balancer.
      groups: parameter group names (for ``trainable`` and ``lr_multipliers``).
      build_model: ``config -> model`` with flax ``init``/``apply``.
      param_groups: ``params -> tree of group names`` (same structure as params).
      make_loss: ``(config, train_source) -> loss_fn(outputs, intermediates, batch)``
        returning ``{task: scalar}``, or ``({task: scalar}, {task: bool scalar})`` to
        tell the balancer which tasks have labels in the batch (`make_train_step`).
      eval_stats: ``(outputs, intermediates, batch) -> stats`` (jnp, under jit).
      eval_merge: ``(stats, stats) -> stats``.
      eval_finalize: ``stats -> (scalars, arrays)``: metric floats, and arrays for plots
        (e.g. ``confusion_matrix``).
      collect: ``(outputs, batch) -> {name: np.ndarray}`` predictions kept for plots.
      best_metric: the eval metric that picks the best checkpoint (higher is better).
      inputs_fn: ``batch -> model positional inputs``.
      batch_keys: the batch entries the method reads (others are not sent to the
        devices); None = all.
      pipeline: ``(config, workdir) -> final_metrics`` for a method that is a
        multi-stage pipeline rather than one SGD loop (e.g. ``mtl_heads``: features of a
        frozen backbone, then heads, tuning and a report). When set,
        `affectjax.train.loop.train_and_evaluate` hands the whole run to it; it writes
        ``workdir/final_metrics.json`` and raises `affectjax.train.errors.UserError` for
        the user's mistakes (one line, exit status 2 under ``train.py``). None = the
        generic loop.
    """

    name: str
    task_names: tuple[str, ...]
    groups: tuple[str, ...]
    build_model: Callable[[Any], Any]
    param_groups: Callable[[Any], Any]
    make_loss: Callable[[Any, Any], LossFn]
    eval_stats: Callable[..., Any]
    eval_merge: Callable[[Any, Any], Any]
    eval_finalize: Callable[[Any], tuple[dict[str, float], dict[str, np.ndarray]]]
    collect: Callable[[Any, Batch], dict[str, np.ndarray]]
    best_metric: str = "score"
    inputs_fn: InputsFn = image_inputs
    batch_keys: tuple[str, ...] | None = None
    pipeline: Callable[[Any, str], dict[str, Any]] | None = None


def valid_mask(batch: Batch) -> jax.Array:
    """The batch's ``valid`` rows (all True when the key is absent, e.g. in training)."""
    n = batch["image"].shape[0] if "image" in batch else next(iter(batch.values())).shape[0]
    return batch["valid"].astype(bool) if "valid" in batch else jnp.ones((n,), bool)


# ----------------------------------------------------------------------------------
# emotieffnet

EXPRESSIONS = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise",
               "Other")
_HEAD = "classifier"


def _emotieffnet_model(config: Any) -> Any:
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name", "emotieffnet")
    return models_lib.create(name, **kwargs)


def _emotieffnet_groups(params: Any) -> Any:
    return {k: jax.tree.map(lambda _, g=("head" if k == _HEAD else "backbone"): g, v)
            for k, v in params.items()}


def _emotieffnet_loss(config: Any, train_source: Any) -> LossFn:
    loss_cfg = config.get("loss", {})
    num = int(config.model.get("num_expressions", 8))
    weights = None
    if loss_cfg.get("class_weights", True):
        from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
        counts = np.asarray(pipeline.class_counts(train_source, key="expr", num_classes=num))
        weights = losses_lib.class_balanced_weights(counts)
    ddof = int(loss_cfg.get("ccc_ddof", 0))
    eps = float(loss_cfg.get("ccc_eps", 0.0))

    def loss_fn(outputs, intermediates, batch):
        del intermediates
        valid = valid_mask(batch)
        expr = batch["expr"]
        va_mask = batch["va_mask"].astype(bool) & valid
        va = losses_lib.va_ccc_loss(outputs["va"], batch["va"], where=va_mask, ddof=ddof,
                                    eps=eps)
        ce = losses_lib.weighted_cross_entropy(
            outputs["expr_logits"], jnp.where(valid, expr, -1), class_weights=weights,
            normalize="weights")
        return {"va": va, "expr": ce}

    return loss_fn


def _emotieffnet_stats(outputs, intermediates, batch):
    del intermediates
    valid = valid_mask(batch)
    logits = outputs["expr_logits"]
    expr = jnp.where(valid, batch["expr"], -1)
    cm = metrics_lib.confusion_matrix(expr, jnp.argmax(logits, -1), logits.shape[-1])
    va_mask = batch["va_mask"].astype(bool) & valid
    ccc = metrics_lib.ccc_update(metrics_lib.ccc_init(2), outputs["va"], batch["va"],
                                 where=va_mask)
    return {"confusion_matrix": cm, "ccc": ccc}


def _emotieffnet_merge(a, b):
    return {"confusion_matrix": metrics_lib.confusion_merge(a["confusion_matrix"],
                                                            b["confusion_matrix"]),
            "ccc": metrics_lib.ccc_merge(a["ccc"], b["ccc"])}


def _emotieffnet_finalize(stats):
    cm = np.asarray(stats["confusion_matrix"])
    ccc = np.asarray(metrics_lib.ccc_finalize(stats["ccc"]), np.float64)
    f1 = float(metrics_lib.f1_macro_from_cm(cm))
    scalars = {"expr_f1": f1, "expr_acc": float(metrics_lib.accuracy_from_cm(cm)),
               "ccc_valence": float(ccc[0]), "ccc_arousal": float(ccc[1]),
               "va_ccc": float(ccc.mean()), "score": f1 + float(ccc.mean()),
               "num_expr": int(cm.sum()), "num_va": int(np.asarray(stats["ccc"].n)[0])}
    return scalars, {"confusion_matrix": cm}


def _emotieffnet_collect(outputs, batch):
    keep = np.asarray(batch["va_mask"]).astype(bool)
    if "valid" in batch:
        keep &= np.asarray(batch["valid"]).astype(bool)
    return {"va_pred": np.asarray(outputs["va"])[keep], "va_true": np.asarray(batch["va"])[keep]}


EMOTIEFFNET = Method(
    name="emotieffnet", task_names=("va", "expr"), groups=("backbone", "head"),
    build_model=_emotieffnet_model, param_groups=_emotieffnet_groups,
    make_loss=_emotieffnet_loss, eval_stats=_emotieffnet_stats,
    eval_merge=_emotieffnet_merge, eval_finalize=_emotieffnet_finalize,
    collect=_emotieffnet_collect, best_metric="score",
    batch_keys=("image", "expr", "va", "va_mask", "valid"))

METHODS: dict[str, Method] = {"emotieffnet": EMOTIEFFNET}


def get_method(name: str) -> Method:
    """The registered method `name`; an unknown name raises a KeyError listing choices."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    return METHODS[name]
