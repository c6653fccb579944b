"""The ``cct`` method: M networks co-trained by consensus (CCT paper, Sec. 3, eqs. 1-4).

The M networks are one `Ensemble` model: its ``init`` gives every leaf a leading axis M
(each member from its own key) and its ``apply`` runs the members with `jax.vmap`, every
member on the same batch with its own dropout key and BatchNorm statistics, so the generic
trainer's default forward, step and checkpoints serve it unchanged and one jitted step
updates all members. The loss (eqs. 1-3, `affectjax.losses.cct_loss`) sees the stacked
logits (M, B, C) and takes the epoch for the consensus weight (eq. 4,
`affectjax.schedules.cct_lambda`):

    L = (1 - lambda(e)) sum_j mean_b CE(p_j, y) + lambda(e) sum_j sum_{k != j} mean_b KL(p_k || p_j)

with no stop-gradient on either side of the KL, as in the authors' code; ``cct.scale``
0.33 multiplies both terms as their code does (1 = the paper's equation). ``cct.consensus =
False`` is the paper's CE-only ablation (Table 7). The optimizer is the trainer's, with
the classifier's learning rate a multiple of the backbone's (``lr_multipliers``; the
paper: 1e-3 and 1e-2) and any non-element-wise transformation (global-norm clipping) run
per member (`affectjax.ensemble.per_member`), so members never share statistics.

Evaluation, on the clean labels when the data set keeps them (``expr_clean``, SynthFaces
with label noise), else on ``expr``: every member's and the ensemble's macro F1 (global,
from confusion matrices; the authors' code averages per-batch F1), accuracy and the CCT
score 0.67 F1 + 0.33 accuracy; the ensemble predicts the argmax of the members' mean
softmax. ``disagreement`` is the share of faces on which the members' argmaxes differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import ensemble
from affectjax import labels
from affectjax import losses as losses_lib
from affectjax import metrics as metrics_lib
from affectjax import models as models_lib
from affectjax import schedules
from affectjax.train import optim
from affectjax.train.errors import ConfigError
from affectjax.train.method import Method, valid_mask
from affectjax.train.steps import LossFn

MAX_NETWORKS = 4
_HEADS = ("classifier", "fc")  # EfficientNet's and ResNet's final Dense


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """M members of a flax `model`, with the ``init``/``apply`` of a flax model.

    ``init(rng, *inputs, **kw)`` returns stacked variables (leading axis M on every leaf);
    ``apply(variables, *inputs, mutable=..., rngs=..., **kw)`` returns the model's outputs
    with a leading axis M (and the members' updated collections when `mutable`).
    """

    model: Any
    num_members: int

    def init(self, rng: Any, *inputs: Any, **kwargs: Any) -> Any:
        return ensemble.init(self.model, rng, self.num_members, *inputs, **kwargs)

    def apply(self, variables: Any, *inputs: Any, mutable: Any = False, rngs: Any = None,
              **kwargs: Any) -> Any:
        return ensemble.apply(self.model, mutable=mutable)(variables, *inputs, rngs=rngs,
                                                             **kwargs)


def num_networks(config: Any) -> int:
    """``config.cct.num_networks``, checked: an int in 1..4 (the paper's ablation range)."""
    value = config.cct.num_networks
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
            1 <= value <= MAX_NETWORKS):
        raise ConfigError(f"config.cct.num_networks must be an integer from 1 to "
                          f"{MAX_NETWORKS}, got {value!r}")
    return int(value)


def _build_model(config: Any) -> Ensemble:
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name")
    return Ensemble(models_lib.create(name, **kwargs), num_networks(config))


def _param_groups(params: Any) -> Any:
    return {k: jax.tree.map(lambda _, g=("head" if k in _HEADS else "backbone"): g, v)
            for k, v in params.items()}


def _build_optimizer(cfg: Any, **kwargs: Any):
    if float(cfg.get("sam_rho", 0.0)) > 0:
        raise ConfigError("config.optimizer.sam_rho: SAM is not supported by the cct method "
                          "(its gradient norm would mix the members); set it to 0")
    tx, schedule = optim.build_optimizer(cfg, **kwargs)
    return ensemble.per_member(tx), schedule


def _make_loss(config: Any, train_source: Any) -> LossFn:
    del train_source
    c = config.cct
    ramp, lambda_max, beta = float(c.ramp_epochs), float(c.lambda_max), float(c.beta)
    clamp, scale, consensus = bool(c.clamp), float(c.scale), bool(c.consensus)
    if not ramp > 0:
        raise ConfigError(f"config.cct.ramp_epochs must be > 0, got {c.ramp_epochs!r}")

    def loss_fn(outputs, intermediates, batch, *, epoch):
        del intermediates
        valid = valid_mask(batch)
        lam = (schedules.cct_lambda(epoch, ramp_epochs=ramp, lambda_max=lambda_max, beta=beta,
                                    clamp=clamp) if consensus else 0.0)
        return {"expr": losses_lib.cct_loss(outputs["logits"], jnp.where(valid, batch["expr"], -1),
                                            lam=lam, where=valid, scale=scale)}

    return loss_fn


def _eval_labels(batch: Any) -> jax.Array:
    expr = batch["expr_clean"] if "expr_clean" in batch else batch["expr"]
    return jnp.where(valid_mask(batch), expr, -1)


def _eval_stats(outputs, intermediates, batch):
    del intermediates
    logits = outputs["logits"]  # (M, B, C)
    y_true = _eval_labels(batch)
    num_classes = logits.shape[-1]
    members = jnp.argmax(logits, -1)  # (M, B)
    mean_probs = jnp.mean(jax.nn.softmax(logits, -1), axis=0)
    labelled = y_true >= 0
    return {
        "members": jax.vmap(lambda p: metrics_lib.confusion_matrix(y_true, p, num_classes))(
            members),
        "ensemble": metrics_lib.confusion_matrix(y_true, jnp.argmax(mean_probs, -1),
                                                 num_classes),
        "disagree": jnp.sum(labelled & jnp.any(members != members[:1], axis=0)),
    }


def _eval_merge(a, b):
    return jax.tree.map(lambda x, y: x + y, a, b)


def _scores(cm: np.ndarray) -> dict[str, float]:
    return {"f1": float(metrics_lib.f1_macro_from_cm(cm)),
            "acc": float(metrics_lib.accuracy_from_cm(cm)),
            "cct_score": float(metrics_lib.cct_score_from_cm(cm))}


def _eval_finalize(stats):
    ens_cm = np.asarray(stats["ensemble"])
    scalars = dict(_scores(ens_cm))
    members = [_scores(cm) for cm in np.asarray(stats["members"])]
    for i, row in enumerate(members):
        scalars.update({f"member{i}/{k}": v for k, v in row.items()})
    for key in ("f1", "acc", "cct_score"):
        scalars[f"members_mean/{key}"] = float(np.mean([row[key] for row in members]))
    scalars["disagreement"] = float(stats["disagree"]) / max(int(ens_cm.sum()), 1)
    scalars["num_eval"] = int(ens_cm.sum())
    return scalars, {"confusion_matrix": ens_cm}


CCT = Method(
    name="cct", task_names=("expr",), groups=("backbone", "head"),
    build_model=_build_model, param_groups=_param_groups, make_loss=_make_loss,
    eval_stats=_eval_stats, eval_merge=_eval_merge, eval_finalize=_eval_finalize,
    collect=lambda outputs, batch: {}, best_metric="cct_score",
    class_names=lambda config: labels.EXPRESSIONS[:int(config.model.num_classes)],
    batch_keys=("image", "expr", "expr_clean", "valid"), build_optimizer=_build_optimizer)
