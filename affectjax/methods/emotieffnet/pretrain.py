"""The ``emotieffnet`` method: MT-EmotiEffNet pre-training (Savchenko, ABAW4 2022, Sec. 3.1).

An EfficientNet with one Linear(features -> 8 + 2) head, loss eq. (1) = [1 - (CCC_V +
CCC_A)/2] + class-weighted CE with w_c = max_k N_k / N_c from the training set's counts,
split into the two tasks ``va`` and ``expr`` that the balancer sums (``ew``: eq. 1
exactly; ``loss.tasks = "expr"`` trains on expressions only, the paper's Table 2
baseline: the VA task is then absent from every batch, with loss 0). Parameter groups: ``head`` (the ``classifier`` Dense) and ``backbone``
(everything else, the part GradNorm balances), for the paper's head-only phase.
Evaluation: expression macro-F1 and accuracy over 8 classes, CCC of valence and arousal
(population variances, ABAW), ``score`` = P_EXPR + P_VA.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import labels
from affectjax import losses as losses_lib
from affectjax import metrics as metrics_lib
from affectjax import models as models_lib
from affectjax.train import inference
from affectjax.train.method import Method, valid_mask
from affectjax.train.steps import LossFn

EXPRESSIONS = labels.EXPRESSIONS
TASKS = ("va", "expr")
_HEAD = "classifier"


def _emotieffnet_model(config: Any) -> Any:
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name", "emotieffnet")
    return models_lib.create(name, **kwargs)


def _emotieffnet_groups(params: Any) -> Any:
    return {k: jax.tree.map(lambda _, g=("head" if k == _HEAD else "backbone"): g, v)
            for k, v in params.items()}


def parse_tasks(spec: Any) -> tuple[str, ...]:
    """``config.loss.tasks``: ``"va+expr"``, ``"expr"``, ``"va"`` or a tuple of names."""
    tasks = tuple(t.strip() for t in spec.split("+")) if isinstance(spec, str) else tuple(spec)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"config.loss.tasks={spec!r}: give a non-empty '+'-joined subset of "
                         f"{list(TASKS)}, e.g. 'va+expr' or 'expr'")
    return tasks


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
    tasks = parse_tasks(loss_cfg.get("tasks", "va+expr"))

    def loss_fn(outputs, intermediates, batch):
        del intermediates
        valid = valid_mask(batch)
        expr = jnp.where(valid, batch["expr"], -1)
        va_mask = batch["va_mask"].astype(bool) & valid
        values = {
            "va": losses_lib.va_ccc_loss(outputs["va"], batch["va"], where=va_mask,
                                         ddof=ddof, eps=eps),
            "expr": losses_lib.weighted_cross_entropy(
                outputs["expr_logits"], expr, class_weights=weights, normalize="weights")}
        present = {"va": jnp.any(va_mask), "expr": jnp.any(expr >= 0)}
        # A task left out of config.loss.tasks is absent from every batch: loss 0, and the
        # balancer's statistics for it never move.
        present = {t: present[t] & (t in tasks) for t in TASKS}
        return {t: jnp.where(present[t], values[t], 0.0) for t in TASKS}, present

    return loss_fn


def _emotieffnet_stats(outputs, intermediates, batch):
    del intermediates
    valid = valid_mask(batch)
    logits = outputs["expr_logits"]
    expr = jnp.where(valid, batch["expr"], -1)
    cm = metrics_lib.confusion_matrix(expr, jnp.argmax(logits, -1), logits.shape[-1])
    va_mask = batch["va_mask"].astype(bool) & valid
    ccc = metrics_lib.ccc_update(metrics_lib.ccc_init(2), batch["va"], outputs["va"],
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


def _emotieffnet_fields(outputs, intermediates):
    del intermediates
    return {"expr_probs": inference.softmax(outputs["expr_logits"]),
            **inference.split_va(outputs["va"])}


def _emotieffnet_predictor(config: Any, workdir: str, *, best: bool) -> inference.Inference:
    """Expression probabilities, valence and arousal of a pre-training run."""
    names = EXPRESSIONS[:int(config.model.get("num_expressions", 8))]
    return inference.from_checkpoint(EMOTIEFFNET, config, workdir, best=best,
                                     fields=_emotieffnet_fields, names={"expr_probs": names})


EMOTIEFFNET = Method(
    name="emotieffnet", task_names=TASKS, groups=("backbone", "head"),
    build_model=_emotieffnet_model, param_groups=_emotieffnet_groups,
    make_loss=_emotieffnet_loss, eval_stats=_emotieffnet_stats,
    eval_merge=_emotieffnet_merge, eval_finalize=_emotieffnet_finalize,
    collect=_emotieffnet_collect, best_metric="score",
    class_names=lambda config: EXPRESSIONS[:int(config.model.get("num_expressions", 8))],
    batch_keys=("image", "expr", "va", "va_mask", "valid"), shared_group="backbone",
    predictor=_emotieffnet_predictor)
