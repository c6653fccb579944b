"""What CCT co-trains its members for: expressions (the paper), action units, valence/arousal.

A `Task` gives the two loss terms of CCT (eq. 1: ``L = (1 - lambda) L_sup + lambda L_cons``)
for one kind of label, and the evaluation of the members and of their ensemble:

* ``expr`` (the paper, Sec. 3; ``model.num_classes`` 7, as Aff-Wild2's expression track,
  or 8 with ABAW's "Other"): ``L_sup = sum_j mean_b CE(p_j, y)`` (eq. 2) and ``L_cons =
  sum_j sum_{k != j} mean_b KL(p_k || p_j)`` (eq. 3); the ensemble predicts the argmax of
  the members' mean softmax; scores: macro F1 (global, from confusion matrices), accuracy
  and ``cct_score`` = 0.67 F1 + 0.33 accuracy (the ABAW expression score the paper
  reports); ``disagreement`` is the share of faces on which the members' argmaxes differ.
  Labels: ``expr_clean`` when the data keep the clean labels (SynthFaces with label
  noise), else ``expr``.
* ``au`` (beyond the paper, its future work): 12 sigmoid outputs; ``L_sup = sum_j`` the
  masked mean binary cross-entropy, ``L_cons`` the pairwise Bernoulli KL summed over AUs
  (`affectjax.losses.bernoulli_consensus`); the ensemble thresholds the members' mean
  probability at 0.5; score: the mean per-AU F1 (ABAW P_AU); ``disagreement`` is the share
  of labelled (face, AU) pairs on which the members' decisions differ.
* ``va`` (beyond the paper): two tanh outputs; ``L_sup = sum_j (1 - (CCC_V + CCC_A) / 2)``
  and ``L_cons`` the pairwise squared distance of the members' predictions
  (`affectjax.losses.squared_consensus`); the ensemble averages the predictions; score:
  the mean CCC; ``spread`` is the mean over faces of the members' standard deviation.

Every ``eval_stats`` runs under jit on stacked outputs ``logits`` of shape (M, B, D).

References:
  Gera & Balasubramanian, "Consensual Collaborative Training and Knowledge Distillation
  Based Facial Expression Recognition Under Noisy Annotations", eqs. (1)-(3).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import labels
from affectjax import losses as losses_lib
from affectjax import metrics as metrics_lib
from affectjax.train.method import valid_mask


@dataclasses.dataclass(frozen=True)
class Task:
    """The CCT loss terms and evaluation of one kind of label (see the module docstring)."""

    name: str
    num_outputs: int | None  # None: config.model.num_classes (expressions: 7 or 8)
    batch_keys: tuple[str, ...]
    supervised: Callable[[jax.Array, Any], jax.Array]  # (logits (M, B, D), batch) -> scalar
    consensus: Callable[[jax.Array, Any], jax.Array]  # (logits, batch) -> scalar
    eval_stats: Callable[[jax.Array, Any], Any]
    eval_merge: Callable[[Any, Any], Any]
    eval_finalize: Callable[[Any], tuple[dict[str, float], dict[str, np.ndarray]]]
    best_metric: str
    class_names: tuple[str, ...] | None = None


def _sum(a, b):
    return jax.tree.map(lambda x, y: x + y, a, b)


def _member_rows(rows: list[dict[str, float]], keys: tuple[str, ...]) -> dict[str, float]:
    """``member<i>/<key>`` for every member and ``members_mean/<key>``."""
    out = {f"member{i}/{k}": v for i, row in enumerate(rows) for k, v in row.items()}
    out.update({f"members_mean/{k}": float(np.mean([row[k] for row in rows])) for k in keys})
    return out


# --- expressions (the paper) -------------------------------------------------------------

def _expr_labels(batch: Any, *, clean: bool) -> jax.Array:
    expr = batch["expr_clean"] if clean and "expr_clean" in batch else batch["expr"]
    return jnp.where(valid_mask(batch), expr, -1)


def _expr_supervised(logits: jax.Array, batch: Any) -> jax.Array:
    y = _expr_labels(batch, clean=False)
    labelled = y >= 0
    per_item = losses_lib.softmax_cross_entropy(
        logits, jnp.broadcast_to(jnp.maximum(y, 0), logits.shape[:2]))
    count = jnp.maximum(jnp.sum(labelled), 1).astype(per_item.dtype)
    return jnp.sum(jnp.where(labelled, per_item, 0.0)) / count


def _expr_consensus(logits: jax.Array, batch: Any) -> jax.Array:
    return losses_lib.kl_consensus(logits, where=valid_mask(batch))


def _expr_stats(logits: jax.Array, batch: Any) -> Any:
    y_true = _expr_labels(batch, clean=True)
    num_classes = logits.shape[-1]
    members = jnp.argmax(logits, -1)  # (M, B)
    ensemble = jnp.argmax(jnp.mean(jax.nn.softmax(logits, -1), axis=0), -1)
    return {
        "members": jax.vmap(lambda p: metrics_lib.confusion_matrix(y_true, p, num_classes))(
            members),
        "ensemble": metrics_lib.confusion_matrix(y_true, ensemble, num_classes),
        "disagree": jnp.sum((y_true >= 0) & jnp.any(members != members[:1], axis=0)),
    }


def _cm_scores(cm: np.ndarray) -> dict[str, float]:
    return {"f1": float(metrics_lib.f1_macro_from_cm(cm)),
            "acc": float(metrics_lib.accuracy_from_cm(cm)),
            "cct_score": float(metrics_lib.cct_score_from_cm(cm))}


def _expr_finalize(stats: Any) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    ens_cm = np.asarray(stats["ensemble"])
    scalars = _cm_scores(ens_cm)
    scalars.update(_member_rows([_cm_scores(cm) for cm in np.asarray(stats["members"])],
                                ("f1", "acc", "cct_score")))
    scalars["disagreement"] = float(stats["disagree"]) / max(int(ens_cm.sum()), 1)
    scalars["num_eval"] = int(ens_cm.sum())
    return scalars, {"confusion_matrix": ens_cm}


# --- action units (beyond the paper) -----------------------------------------------------

def _au_labels(batch: Any) -> jax.Array:
    return jnp.where(valid_mask(batch)[:, None], batch["au"], -1).astype(jnp.int32)


def _au_supervised(logits: jax.Array, batch: Any) -> jax.Array:
    y = _au_labels(batch)
    return jnp.sum(jax.vmap(lambda z: losses_lib.sigmoid_binary_cross_entropy(z, y))(logits))


def _au_consensus(logits: jax.Array, batch: Any) -> jax.Array:
    return losses_lib.bernoulli_consensus(logits, where=valid_mask(batch))


def _au_stats(logits: jax.Array, batch: Any) -> Any:
    y_true = _au_labels(batch)
    probs = jax.nn.sigmoid(logits)  # (M, B, A)
    decisions = probs >= 0.5
    count = lambda p: metrics_lib.binary_counts(y_true, p, thresholds=0.5)
    return {"members": jax.vmap(count)(probs), "ensemble": count(jnp.mean(probs, axis=0)),
            "disagree": jnp.sum((y_true >= 0) & jnp.any(decisions != decisions[:1], axis=0)),
            "labelled": jnp.sum(y_true >= 0)}


def _au_finalize(stats: Any) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    def scores(s):
        return {"f1": float(metrics_lib.au_f1_from_stats(s))}

    members = stats["members"]
    rows = [scores(jax.tree.map(lambda x, i=i: x[i], members))
            for i in range(np.shape(members.tp)[0])]
    scalars = {**scores(stats["ensemble"]), **_member_rows(rows, ("f1",))}
    per_au = np.asarray(metrics_lib.binary_f1_from_stats(stats["ensemble"]))
    scalars.update({f"f1/{name}": float(v) for name, v in zip(labels.AUS, per_au)})
    scalars["disagreement"] = float(stats["disagree"]) / max(int(stats["labelled"]), 1)
    return scalars, {}


# --- valence and arousal (beyond the paper) ----------------------------------------------

def _va_pred(logits: jax.Array) -> jax.Array:
    return jnp.tanh(logits)


def _va_mask(batch: Any) -> jax.Array:
    """(B, 2): ``va_mask`` given per face (B,) or per value (B, 2), and the valid rows."""
    mask = batch["va_mask"] if "va_mask" in batch else jnp.ones(batch["va"].shape[:1], bool)
    mask = jnp.asarray(mask, bool)
    if mask.ndim == 1:
        mask = mask[:, None]
    return jnp.broadcast_to(mask & valid_mask(batch)[:, None], batch["va"].shape)


def _va_supervised(logits: jax.Array, batch: Any) -> jax.Array:
    mask = _va_mask(batch)
    return jnp.sum(jax.vmap(lambda p: losses_lib.va_ccc_loss(p, batch["va"], where=mask))(
        _va_pred(logits)))


def _va_consensus(logits: jax.Array, batch: Any) -> jax.Array:
    return losses_lib.squared_consensus(_va_pred(logits), where=valid_mask(batch))


def _va_stats(logits: jax.Array, batch: Any) -> Any:
    pred, mask = _va_pred(logits), _va_mask(batch)
    update = lambda p: metrics_lib.ccc_update(metrics_lib.ccc_init(2), batch["va"], p,
                                              where=mask)
    valid = valid_mask(batch)
    return {"members": jax.vmap(update)(pred), "ensemble": update(jnp.mean(pred, axis=0)),
            "spread": jnp.sum(jnp.where(valid, jnp.mean(jnp.std(pred, axis=0), -1), 0.0)),
            "faces": jnp.sum(valid)}


def _va_merge(a: Any, b: Any) -> Any:
    return {"members": jax.vmap(metrics_lib.ccc_merge)(a["members"], b["members"]),
            "ensemble": metrics_lib.ccc_merge(a["ensemble"], b["ensemble"]),
            "spread": a["spread"] + b["spread"], "faces": a["faces"] + b["faces"]}


def _va_finalize(stats: Any) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    def scores(s):
        v, a = (float(x) for x in np.asarray(metrics_lib.ccc_finalize(s)))
        return {"ccc": (v + a) / 2, "ccc_valence": v, "ccc_arousal": a}

    members = stats["members"]
    rows = [scores(jax.tree.map(lambda x, i=i: x[i], members))
            for i in range(np.shape(members.n)[0])]
    scalars = {**scores(stats["ensemble"]), **_member_rows(rows, ("ccc",))}
    scalars["spread"] = float(stats["spread"]) / max(int(stats["faces"]), 1)
    return scalars, {}


TASKS: dict[str, Task] = {
    "expr": Task("expr", None, ("image", "expr", "expr_clean", "valid"),
                 _expr_supervised, _expr_consensus, _expr_stats, _sum, _expr_finalize,
                 best_metric="cct_score", class_names=labels.EXPRESSIONS),
    "au": Task("au", len(labels.AUS), ("image", "au", "valid"), _au_supervised,
               _au_consensus, _au_stats, _sum, _au_finalize, best_metric="f1"),
    "va": Task("va", 2, ("image", "va", "va_mask", "valid"), _va_supervised, _va_consensus,
               _va_stats, _va_merge, _va_finalize, best_metric="ccc"),
}
