"""The ``cct`` method: M networks co-trained by consensus (CCT paper, Sec. 3, eqs. 1-4).

The M networks are one `Ensemble` model: its ``init`` gives every leaf a leading axis M
(each member from its own key) and its ``apply`` runs the members with `jax.vmap`, every
member on the same batch with its own dropout key and BatchNorm statistics, so the generic
trainer's default forward, step and checkpoints serve it unchanged and one jitted step
updates all members. The loss of eq. 1,

    L = scale * [(1 - lambda(e)) L_sup + lambda(e) L_cons],

reaches the trainer as its two terms, ``supervised`` (eq. 2: the members' summed
cross-entropy) and ``consensus`` (eq. 3: sum_j sum_{k != j} mean_b KL(p_k || p_j), no
stop-gradient on either side, as in the authors' code), weighed by the method's own
balancer (`consensus_balancer`): the weights ``scale (1 - lambda(e))`` and ``scale
lambda(e)`` follow the 0-based epoch e through eq. 4 (`affectjax.schedules.cct_lambda`),
so the training log has curves of lambda (``weight/consensus``) and of each unweighted
term (``loss/supervised``, ``loss/consensus``). ``cct.scale`` 0.33 is the authors' code
(1 = the paper's equation); ``cct.consensus = False`` is the paper's CE-only ablation
(Table 7: lambda = 0 throughout). ``cct.task`` picks the labels (`affectjax.methods.cct.
tasks`): ``expr`` (the paper), ``au`` or ``va`` (its future work).

The optimizer is the trainer's, with the classifier's learning rate a multiple of the
backbone's (``lr_multipliers``; the paper: 1e-3 and 1e-2) and every non-element-wise
transformation (global-norm clipping) run per member (`affectjax.ensemble.per_member`),
so members never share statistics. ``config.init_from`` (a converted checkpoint or a
training workdir of one network) starts every member from the same weights except the
classifier, which each member draws afresh (``cct.reinit_heads``; the paper starts its
three ResNet-18 from one AffectNet- or RAF-DB-pretrained network).

Evaluation (`affectjax.methods.cct.tasks`): every member and the ensemble (mean of the
members' probabilities), e.g. for ``expr`` macro F1, accuracy and the CCT score 0.67 F1 +
0.33 accuracy on the clean labels when the data keep them, and the members' disagreement.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from affectjax import ensemble
from affectjax import labels
from affectjax import models as models_lib
from affectjax import registry
from affectjax import schedules
from affectjax.balancing import base as balancing_base
from affectjax.methods.cct import tasks as tasks_lib
from affectjax.train import inference
from affectjax.train import optim
from affectjax.train.errors import ConfigError
from affectjax.train.method import Method
from affectjax.train.steps import LossFn

MAX_NETWORKS = 4
TERMS = ("supervised", "consensus")  # the trainer's "tasks": the two terms of eq. 1
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
    strategy: str = "vmap"  # or "unroll" (`affectjax.ensemble.apply`)

    def init(self, rng: Any, *inputs: Any, **kwargs: Any) -> Any:
        return ensemble.init(self.model, rng, self.num_members, *inputs, **kwargs)

    def apply(self, variables: Any, *inputs: Any, mutable: Any = False, rngs: Any = None,
              **kwargs: Any) -> Any:
        return ensemble.apply(self.model, mutable=mutable, strategy=self.strategy)(
            variables, *inputs, rngs=rngs, **kwargs)


def num_networks(config: Any) -> int:
    """``config.cct.num_networks``, checked: an int in 1..4 (the paper's ablation range)."""
    value = config.cct.num_networks
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
            1 <= value <= MAX_NETWORKS):
        raise ConfigError(f"config.cct.num_networks must be an integer from 1 to "
                          f"{MAX_NETWORKS}, got {value!r}")
    return int(value)


def get_task(config: Any) -> tasks_lib.Task:
    """The `Task` of ``config.cct.task`` (default ``expr``); unknown names list the choices."""
    name = config.cct.get("task", "expr")
    try:
        return registry.lookup(tasks_lib.TASKS, name, "cct task")
    except KeyError as exc:
        raise ConfigError(f"config.cct.task: {exc.args[0]}") from None


def _build_model(config: Any) -> Ensemble:
    kwargs = config.model.to_dict() if hasattr(config.model, "to_dict") else dict(config.model)
    name = kwargs.pop("name")
    kwargs["num_classes"] = num_outputs(config)
    strategy = config.cct.get("strategy", "vmap")
    if strategy not in ensemble.STRATEGIES:
        raise ConfigError(f"config.cct.strategy: {strategy!r}; choose one of "
                          f"{list(ensemble.STRATEGIES)}")
    return Ensemble(models_lib.create(name, **kwargs), num_networks(config), strategy)


def num_outputs(config: Any) -> int:
    """The members' outputs: the task's, or ``model.num_classes`` (2..8) for expressions."""
    task, given = get_task(config), config.model.get("num_classes")
    if task.num_outputs is None:
        given = len(labels.EXPRESSIONS) if given is None else given
        if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or not (
                2 <= given <= len(labels.EXPRESSIONS)):
            raise ConfigError(f"config.model.num_classes: the cct task 'expr' takes 2 to "
                              f"{len(labels.EXPRESSIONS)} classes, got {given!r}")
        return int(given)
    if given not in (None, task.num_outputs):
        raise ConfigError(f"config.model.num_classes: the cct task {task.name!r} has "
                          f"{task.num_outputs} outputs, got {given!r}")
    return task.num_outputs


def _is_head(path: str) -> bool:
    return any(f"['{head}']" in path for head in _HEADS)


def _param_groups(params: Any) -> Any:
    return {k: jax.tree.map(lambda _, g=("head" if k in _HEADS else "backbone"): g, v)
            for k, v in params.items()}


def _build_optimizer(cfg: Any, **kwargs: Any):
    if float(cfg.get("sam_rho", 0.0)) > 0:
        raise ConfigError("config.optimizer.sam_rho: SAM is not supported by the cct method "
                          "(its gradient norm would mix the members); set it to 0")
    tx, schedule = optim.build_optimizer(cfg, **kwargs)
    return ensemble.per_member(tx), schedule


class _RampState(NamedTuple):
    unused: jax.Array  # (2,) zeros: the weights depend on the epoch alone


def consensus_balancer(*, ramp_epochs: float, lambda_max: float = 0.9, beta: float = 4.0,
                       clamp: bool = True, scale: float = 1.0, consensus: bool = True,
                       ) -> balancing_base.Balancer:
    """CCT's dynamic balance of its two terms (eq. 1 with the ramp of eq. 4) as a Balancer.

    ``update(state, losses, epoch=e)`` returns ``scale * [1 - lambda(e), lambda(e)]`` for
    the losses ``[L_sup, L_cons]``, with ``lambda = cct_lambda(e, ...)``; ``consensus=False``
    gives ``[scale, 0]`` (CE only). Stateless and without parameters.
    """
    if not ramp_epochs > 0:
        raise ConfigError(f"config.cct.ramp_epochs must be > 0, got {ramp_epochs!r}")

    def init(num_tasks: int) -> _RampState:
        if balancing_base.check_num_tasks(num_tasks) != 2:
            raise ValueError(f"the CCT balancer weighs 2 terms {TERMS}, got {num_tasks}")
        return _RampState(jnp.zeros((2,), balancing_base.STATE_DTYPE))

    def update(state: _RampState, losses: jax.Array, *, epoch=None, present=None):
        balancing_base.check_losses(losses, 2)
        balancing_base.check_epoch(epoch)
        del present
        lam = (schedules.cct_lambda(0 if epoch is None else epoch, ramp_epochs=ramp_epochs,
                                    lambda_max=lambda_max, beta=beta, clamp=clamp)
               if consensus else jnp.zeros(()))
        lam = jnp.asarray(lam, balancing_base.STATE_DTYPE)
        return scale * jnp.stack([1.0 - lam, lam]), state

    return balancing_base.Balancer(init, update, balancing_base.no_params,
                                   balancing_base.weighted_sum)


def _make_balancer(config: Any) -> balancing_base.Balancer:
    c = config.cct
    return consensus_balancer(ramp_epochs=float(c.ramp_epochs), lambda_max=float(c.lambda_max),
                              beta=float(c.beta), clamp=bool(c.clamp), scale=float(c.scale),
                              consensus=bool(c.consensus))


def _make_loss(config: Any, train_source: Any) -> LossFn:
    del train_source
    task = get_task(config)

    def loss_fn(outputs, intermediates, batch):
        del intermediates
        logits = outputs["logits"]  # (M, B, D)
        return {"supervised": task.supervised(logits, batch),
                "consensus": task.consensus(logits, batch)}

    return loss_fn


def _merge_pretrained(config: Any, variables: Any, loaded: Any):
    """Every member from one network's arrays; per-member heads when ``cct.reinit_heads``.

    `loaded` is one network (a converted checkpoint, a single-network run) or an ensemble
    run: an array of the member's shape is broadcast to the M members, an ensemble's
    array of the same M is copied as it is, and one of another M gives its member 0.
    """
    m = num_networks(config)
    keep_heads = bool(config.cct.get("reinit_heads", True))
    flat = dict(jax.tree_util.tree_leaves_with_path(loaded))
    used, kept = [], []

    def pick(key_path, value):
        path, other = jax.tree_util.keystr(key_path), flat.get(key_path)
        shape = np.shape(value)[1:]
        if other is None or (keep_heads and _is_head(path)):
            kept.append(path)
            return value
        other = np.asarray(other, np.asarray(value).dtype)
        if other.shape == (m, *shape):
            used.append(path)
            return other
        if other.shape in (shape, (1, *shape)) or (other.ndim == len(shape) + 1
                                                   and other.shape[1:] == shape):
            used.append(path)
            single = other if other.shape == shape else other[0]
            return np.broadcast_to(single, (m, *shape)).copy()
        kept.append(path)
        return value

    return jax.tree_util.tree_map_with_path(pick, variables), used, kept


_PROBABILITIES = {"expr": ("expr_probs", inference.softmax), "au": ("au_probs", inference.sigmoid)}


def _predict_fields(task_name: str):
    """``(outputs, intermediates) -> fields``: each member's prediction as ``member_<field>``
    (B, M, ...) and the ensemble's (the members' mean: mean softmax for expressions, the
    paper's ensemble; mean sigmoid for AUs; mean tanh output for valence/arousal)."""

    def fields(outputs, intermediates):
        del intermediates
        logits = outputs["logits"]  # (M, B, D)
        if task_name == "va":
            per_member = jnp.moveaxis(jnp.tanh(logits.astype(jnp.float32)), 0, 1)
            va = inference.split_va(per_member)  # (B, M) each
            return {**{k: v.mean(axis=1) for k, v in va.items()},
                    **{f"member_{k}": v for k, v in va.items()}}
        name, link = _PROBABILITIES[task_name]
        per_member = jnp.moveaxis(link(logits), 0, 1)  # (B, M, D)
        return {name: per_member.mean(axis=1), f"member_{name}": per_member}

    return fields


def _predictor(task: tasks_lib.Task):
    def predictor(config: Any, workdir: str, *, best: bool) -> inference.Inference:
        names = {}
        if task.name == "expr":
            names = {"expr_probs": labels.EXPRESSIONS[:num_outputs(config)]}
        elif task.name == "au":
            names = {"au_probs": labels.AUS[:num_outputs(config)]}
        names.update({f"member_{k}": v for k, v in names.items()})
        thresholds = {k: 0.5 for k in names if k.endswith("au_probs")}
        return inference.from_checkpoint(_METHODS[task.name], config, workdir, best=best,
                                         fields=_predict_fields(task.name), names=names,
                                         thresholds=thresholds)
    return predictor


def _method(task: tasks_lib.Task) -> Method:
    return Method(
        name="cct", task_names=TERMS, groups=("backbone", "head"),
        build_model=_build_model, param_groups=_param_groups, make_loss=_make_loss,
        eval_stats=lambda outputs, intermediates, batch: task.eval_stats(outputs["logits"],
                                                                         batch),
        eval_merge=task.eval_merge, eval_finalize=task.eval_finalize,
        collect=lambda outputs, batch: {}, best_metric=task.best_metric,
        class_names=((lambda config: task.class_names[:num_outputs(config)])
                     if task.class_names else None),
        batch_keys=task.batch_keys, build_optimizer=_build_optimizer,
        make_balancer=_make_balancer, merge_pretrained=_merge_pretrained,
        specialize=lambda config: _METHODS[get_task(config).name],
        predictor=_predictor(task))


_METHODS = {name: _method(task) for name, task in tasks_lib.TASKS.items()}
CCT = _METHODS["expr"]  # the registered method; ``specialize`` picks cct.task's variant
