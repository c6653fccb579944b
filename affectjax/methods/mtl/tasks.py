"""The task kinds of hard-sharing multi-task learning (EMA loss-balancing paper, paper 5).

The paper defines "the tasks for each of the datasets as all the attributes labeled for
each image (except for the binary labels for each of the 12 action units annotated in
AffWild2, which are considered one task)". Each kind gives its head width, its loss terms
(one per balancer task), its streaming evaluation and its contribution to the overall
score the paper reports:

| kind   | head | balancer tasks                | loss                               | metrics (score part)          |
|--------|------|-------------------------------|------------------------------------|-------------------------------|
| `va`   | 2    | ``va``                        | 1 - (CCC_V + CCC_A) / 2 on tanh    | CCC V, A, mean (P_VA)         |
| `expr` | C    | ``expr``                      | softmax CE                         | macro F1 (P_EXPR), accuracy   |
| `au`   | 12   | ``au`` (ONE task)             | BCE over the labelled AUs          | mean F1 at 0.5 (P_AU)         |
| `attr` | K    | ``attr/<name>`` per attribute | BCE of its column                  | mean F1 over attributes, acc  |

``score`` is the sum of the parts, ABAW's P_MTL = P_VA + P_EXPR + P_AU for Aff-Wild2,
P_EXPR + P_VA for AffectNet (paper Table 2's "All"), the mean F1 over the 40 attributes
for CelebA (Table 1). Every loss reports whether the batch labels it, so a balancer's
statistics never move on a task a batch lacks.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import labels
from affectjax import losses
from affectjax import metrics
from affectjax.train.method import valid_mask

KINDS = ("va", "expr", "au", "attr")
BATCH_KEYS = {"va": ("va", "va_mask"), "expr": ("expr",), "au": ("au",), "attr": ("attr",)}


def head_width(kind: str, *, num_expressions: int, attributes: Sequence[str]) -> int:
    return {"va": 2, "expr": num_expressions, "au": len(labels.AUS),
            "attr": len(attributes)}[kind]


def task_names(kinds: Sequence[str], attributes: Sequence[str]) -> tuple[str, ...]:
    """The balancer's tasks: one per kind, one per attribute for ``attr``."""
    names = []
    for kind in kinds:
        names += [f"attr/{a}" for a in attributes] if kind == "attr" else [kind]
    return tuple(names)


def _va_mask(batch: Any) -> jax.Array:
    mask = jnp.asarray(batch["va_mask"], bool)
    mask = mask[:, None] if mask.ndim == 1 else mask
    return jnp.broadcast_to(mask & valid_mask(batch)[:, None], batch["va"].shape)


def _binary_labels(batch: Any, key: str) -> jax.Array:
    return jnp.where(valid_mask(batch)[:, None], jnp.asarray(batch[key], jnp.int32), -1)


def kind_losses(kind: str, output: jax.Array, batch: Any, attributes: Sequence[str] = ()
                ) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """``({task: loss}, {task: present})`` of one kind on one batch."""
    if kind == "va":
        mask = _va_mask(batch)
        return ({"va": losses.va_ccc_loss(jnp.tanh(output), batch["va"], where=mask)},
                {"va": jnp.any(mask)})
    if kind == "expr":
        y = jnp.where(valid_mask(batch), jnp.asarray(batch["expr"], jnp.int32), -1)
        return ({"expr": losses.weighted_cross_entropy(output, y)}, {"expr": jnp.any(y >= 0)})
    if kind == "au":
        y = _binary_labels(batch, "au")
        return ({"au": losses.sigmoid_binary_cross_entropy(output, y)},
                {"au": jnp.any(y >= 0)})
    y = _binary_labels(batch, "attr")
    values, present = {}, {}
    for k, name in enumerate(attributes):
        values[f"attr/{name}"] = losses.sigmoid_binary_cross_entropy(output[:, k], y[:, k])
        present[f"attr/{name}"] = jnp.any(y[:, k] >= 0)
    return values, present


def kind_stats(kind: str, output: jax.Array, batch: Any) -> Any:
    """Streaming evaluation counts of one kind (jnp, under jit)."""
    if kind == "va":
        return metrics.ccc_update(metrics.ccc_init(2), batch["va"], jnp.tanh(output),
                                  where=_va_mask(batch))
    if kind == "expr":
        y = jnp.where(valid_mask(batch), jnp.asarray(batch["expr"], jnp.int32), -1)
        return metrics.confusion_matrix(y, jnp.argmax(output, -1), output.shape[-1])
    key = "au" if kind == "au" else "attr"
    return metrics.binary_counts(_binary_labels(batch, key), jax.nn.sigmoid(output),
                                 thresholds=0.5)


def kind_merge(kind: str, a: Any, b: Any) -> Any:
    if kind == "va":
        return metrics.ccc_merge(a, b)
    if kind == "expr":
        return a + b
    return metrics.binary_merge(a, b)


def kind_finalize(kind: str, stats: Any, attributes: Sequence[str] = ()
                  ) -> tuple[dict[str, float], float, dict[str, np.ndarray]]:
    """``(scalars, score part, arrays)`` of one kind."""
    if kind == "va":
        v, a = (float(x) for x in np.asarray(metrics.ccc_finalize(stats)))
        mean = (v + a) / 2
        return {"va/ccc_valence": v, "va/ccc_arousal": a, "va/ccc": mean}, mean, {}
    if kind == "expr":
        cm = np.asarray(stats)
        f1 = float(metrics.f1_macro_from_cm(cm))
        return ({"expr/f1": f1, "expr/acc": float(metrics.accuracy_from_cm(cm))}, f1,
                {"confusion_matrix": cm})
    stats = jax.tree.map(np.asarray, stats)
    f1 = np.asarray(metrics.binary_f1_from_stats(stats), np.float64)
    total = stats.tp + stats.fp + stats.fn + stats.tn
    acc = np.where(total > 0, (stats.tp + stats.tn) / np.maximum(total, 1), 0.0)
    names = labels.AUS if kind == "au" else tuple(attributes)
    out = {f"{kind}/f1": float(f1.mean()), f"{kind}/acc": float(acc.mean())}
    out.update({f"{kind}/f1/{n}": float(v) for n, v in zip(names, f1)})
    return out, float(f1.mean()), {}
