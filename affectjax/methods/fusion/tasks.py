"""The three tasks of weakly-supervised multimodal MTL: losses and evaluation (paper 3).

Each task reads a strong label from the batch and, when the run has one, a weak label
``weak_<task>`` that a teacher predicted (`affectjax.methods.fusion.weak_labels`):

* ``emotion``: strong ``emotion`` (B, E) in {0, 1, -1}, weak ``weak_emotion`` (B, E);
  multi-label BCE with ``pos_weight`` = neg/pos per emotion;
* ``sentiment``: strong ``sentiment_binary`` in {0, 1, -1} (``sentiment`` in [-3, 3] for
  ``sentiment_loss="regression"``), weak ``weak_sentiment``; CE (or L1 on [-3, 3]);
* ``sarcasm``: strong ``sarcasm`` in {0, 1, -1}, weak ``weak_sarcasm``; CE.

A strong label wins where both exist. A task's loss is the weighted mean over its
labelled entries, strong entries with weight 1 and weak ones with ``weak_weight`` (the
teacher's confidence, paper Sec. 5: "for the strong labels of the main task, the
confidence score is 1"), so a task labelled only weakly is its mean loss times the
confidence. The search-based lambda_j of eq. 2 multiply the task losses in
`affectjax.methods.fusion.method`.

Evaluation counts strong labels only (weak labels are never scored), on the rows marked
``valid``:

* ``emotion``: per emotion the weighted accuracy WAcc = (TP N/P + TN) / (2N) and the
  F1 of the positive class, each emotion positive when sigmoid > 0.5; ``avg_wacc`` and
  ``avg_f1`` their means over emotions (paper Table 3);
* ``sentiment`` / ``sarcasm``: accuracy and the support-weighted F1 of the two classes
  (sklearn ``average="weighted"``, the MulT and MUStARD evaluation); for regression
  sentiment also the MAE and Pearson correlation, accuracy and F1 from the sign.

Keys: ``<task>/<metric>`` and ``<task>/<metric>/<emotion>``.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import losses
from affectjax import metrics

TASKS = ("emotion", "sentiment", "sarcasm")
SENTIMENT_LOSSES = ("binary", "regression")
CLASS_NAMES = {"sentiment": ("negative", "positive"), "sarcasm": ("sincere", "sarcastic")}
LABEL_KEY = {"emotion": "emotion", "sentiment": "sentiment_binary", "sarcasm": "sarcasm"}


def weak_key(task: str) -> str:
    """The batch key of a task's weak labels."""
    return f"weak_{task}"


def _valid(batch: Any) -> jax.Array:
    n = batch[next(iter(batch))].shape[0]
    return batch["valid"].astype(bool) if "valid" in batch else jnp.ones((n,), bool)


def strong_labels(task: str, batch: Any) -> jax.Array:
    """The batch's strong labels of `task` (-1 where missing or padded), int32."""
    y = jnp.asarray(batch[LABEL_KEY[task]], jnp.int32)
    valid = _valid(batch)
    return jnp.where(valid.reshape(valid.shape + (1,) * (y.ndim - 1)), y, -1)


def _merged(task: str, batch: Any) -> tuple[jax.Array, jax.Array]:
    """(labels, is_weak): strong labels, weak ones where no strong label exists."""
    strong = strong_labels(task, batch)
    key = weak_key(task)
    if key not in batch:
        return strong, jnp.zeros(strong.shape, bool)
    weak = jnp.where(strong < 0, jnp.asarray(batch[key], jnp.int32), -1)
    weak = jnp.where(_valid(batch).reshape((-1,) + (1,) * (weak.ndim - 1)), weak, -1)
    return jnp.where(strong >= 0, strong, weak), weak >= 0


def _weighted_mean(loss_strong, n_strong, loss_weak, n_weak, weak_weight):
    total = n_strong + n_weak
    value = (loss_strong * n_strong + weak_weight * loss_weak * n_weak) / jnp.maximum(total, 1)
    return value, total > 0


def task_loss(task: str, logits: jax.Array, batch: Any, *, weak_weight: float = 1.0,
              pos_weight: Any = None, sentiment_loss: str = "binary",
              ) -> tuple[jax.Array, jax.Array]:
    """``(loss, present)`` of one task on one batch (module docstring)."""
    if task == "sentiment" and sentiment_loss == "regression":
        target = jnp.asarray(batch["sentiment"], jnp.float32)
        mask = strong_labels(task, batch) >= 0
        err = jnp.abs(logits[:, 0] - target)
        n = jnp.sum(mask)
        return jnp.sum(jnp.where(mask, err, 0.0)) / jnp.maximum(n, 1), n > 0
    labels, is_weak = _merged(task, batch)
    strong = jnp.where(is_weak, -1, labels)
    weak = jnp.where(is_weak, labels, -1)
    if task == "emotion":
        bce = lambda y: losses.sigmoid_binary_cross_entropy(logits, y, pos_weight=pos_weight)
        pair = (bce(strong), jnp.sum(strong >= 0), bce(weak), jnp.sum(weak >= 0))
    else:
        ce = lambda y: losses.weighted_cross_entropy(logits, y)
        pair = (ce(strong), jnp.sum(strong >= 0), ce(weak), jnp.sum(weak >= 0))
    return _weighted_mean(*pair, weak_weight)


def num_outputs(task: str, *, num_emotions: int, sentiment_loss: str = "binary") -> int:
    """The head width of `task`."""
    if task == "emotion":
        return num_emotions
    return 1 if task == "sentiment" and sentiment_loss == "regression" else 2


def predict(task: str, logits: jax.Array, *, sentiment_loss: str = "binary") -> jax.Array:
    """Hard predictions: emotions multi-hot (sigmoid > 0.5), the others a class (0/1)."""
    if task == "emotion":
        return (jax.nn.sigmoid(logits) > 0.5).astype(jnp.int32)
    if task == "sentiment" and sentiment_loss == "regression":
        return (logits[:, 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, -1).astype(jnp.int32)


# --- evaluation ----------------------------------------------------------------------------

def eval_stats(task: str, logits: jax.Array, batch: Any, *,
               sentiment_loss: str = "binary") -> Any:
    """Streaming counts of one task on one batch (jnp, under jit)."""
    y = strong_labels(task, batch)
    pred = predict(task, logits, sentiment_loss=sentiment_loss)
    if task == "emotion":
        return {"counts": metrics.binary_counts(y, pred)}
    stats = {"cm": metrics.confusion_matrix(y, pred, 2)}
    if task == "sentiment" and sentiment_loss == "regression":
        mask = y >= 0
        target = jnp.asarray(batch["sentiment"], jnp.float32)
        p = logits[:, 0]
        stats["moments"] = jnp.stack([jnp.sum(jnp.where(mask, v, 0.0)) for v in (
            jnp.ones_like(p), p, target, p * p, target * target, p * target,
            jnp.abs(p - target))])
    return stats


def eval_merge(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: x + y, a, b)


def weighted_f1_from_cm(cm: np.ndarray) -> float:
    """Support-weighted mean of the per-class F1 (sklearn ``average="weighted"``)."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    support = cm.sum(1)
    return float((f1 * support).sum() / support.sum()) if support.sum() else 0.0


def eval_finalize(task: str, stats: Any, *, emotion_names: Sequence[str] = ()
                  ) -> dict[str, float]:
    """Metric floats of one task (module docstring)."""
    if task == "emotion":
        counts = jax.tree.map(np.asarray, stats["counts"])
        wacc = np.asarray(metrics.weighted_accuracy_from_stats(counts))
        f1 = np.asarray(metrics.binary_f1_from_stats(counts))
        names = list(emotion_names) or [str(i) for i in range(len(wacc))]
        out = {"emotion/avg_wacc": float(wacc.mean()), "emotion/avg_f1": float(f1.mean()),
               "emotion/count": int(np.asarray(counts.tp + counts.fp + counts.fn
                                               + counts.tn)[0])}
        out.update({f"emotion/wacc/{n}": float(v) for n, v in zip(names, wacc)})
        out.update({f"emotion/f1/{n}": float(v) for n, v in zip(names, f1)})
        return out
    cm = np.asarray(stats["cm"])
    out = {f"{task}/acc": float(np.trace(cm) / max(cm.sum(), 1)),
           f"{task}/f1": weighted_f1_from_cm(cm), f"{task}/count": int(cm.sum())}
    if "moments" in stats:
        n, sp, st, spp, stt, spt, sae = (float(v) for v in np.asarray(stats["moments"]))
        n = max(n, 1.0)
        cov = spt / n - sp * st / n**2
        var_p, var_t = spp / n - (sp / n) ** 2, stt / n - (st / n) ** 2
        out[f"{task}/mae"] = sae / n
        out[f"{task}/corr"] = float(cov / np.sqrt(var_p * var_t)) if var_p * var_t > 0 else 0.0
    return out


def task_score(task: str, scalars: dict[str, float]) -> float:
    """The number that picks a run's best checkpoint when `task` is its main task:
    (avg WAcc + avg F1) / 2 for emotion, (accuracy + F1) / 2 otherwise."""
    if task == "emotion":
        return (scalars["emotion/avg_wacc"] + scalars["emotion/avg_f1"]) / 2
    return (scalars[f"{task}/acc"] + scalars[f"{task}/f1"]) / 2
