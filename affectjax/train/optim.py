"""Optimizers from config: Adam/AdamW/SGD/RMSprop, schedules, frozen groups, SAM.

A phase of training names which parameter *groups* train (``trainable``) and at which
learning rate; every other group is frozen with `optax.set_to_zero` (no optimizer state,
and XLA drops the unused backward pass). Per-group learning rates come from
``lr_multipliers``. The groups are method-defined labels of the model's parameters (for
MT-EmotiEffNet: ``"backbone"`` and ``"head"``); the balancer's trainable parameters form
their own group ``"balancer"`` with ``optimizer.balancer_learning_rate``.

SAM (Foret et al. 2021), which MT-EmotiEffNet wraps around Adam (paper 1, Sec. 3.1), uses
`optax.contrib.sam` in *opaque* mode: the update takes a ``grad_fn`` and evaluates the
gradient at the adversarially perturbed point ``w + rho * g / ||g||``; the outer optimizer
then steps from ``w`` with that gradient. Frozen groups and balancer parameters are not
perturbed. Every optimizer returned here accepts the ``grad_fn`` keyword (ignored unless
SAM is on), so one train step serves all of them.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import jax
import optax
from optax import contrib

from affectjax import registry
from affectjax.train.errors import ConfigError

FROZEN = "frozen"
BALANCER = "balancer"


def _base(name: str, cfg: Any, lr: optax.ScalarOrSchedule) -> optax.GradientTransformation:
    """One optimizer of the registry at learning rate (or schedule) `lr`."""
    wd = float(cfg.get("weight_decay", 0.0))
    if name == "adam":
        tx = optax.adam(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                        eps=cfg.get("eps", 1e-8))
        return optax.chain(optax.add_decayed_weights(wd), tx) if wd else tx
    if name == "adamw":
        return optax.adamw(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                           eps=cfg.get("eps", 1e-8), weight_decay=wd)
    if name == "sgd":
        tx = optax.sgd(lr, momentum=cfg.get("momentum", 0.9) or None,
                       nesterov=bool(cfg.get("nesterov", False)))
        return optax.chain(optax.add_decayed_weights(wd), tx) if wd else tx
    if name == "rmsprop":
        tx = optax.rmsprop(lr, decay=cfg.get("rms_decay", 0.9), eps=cfg.get("eps", 1e-8),
                           momentum=cfg.get("momentum", 0.0) or None)
        return optax.chain(optax.add_decayed_weights(wd), tx) if wd else tx
    raise registry.unknown_name_error("optimizer.name", name, OPTIMIZERS)


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "exponential_epoch", "exponential")


def make_schedule(cfg: Any, learning_rate: float, *, steps_per_epoch: int,
                  total_steps: int) -> optax.Schedule:
    """The learning-rate schedule of one phase (its step count starts at 0).

    Args:
      cfg: the ``optimizer`` config: ``schedule`` (``constant``, ``cosine`` over the phase,
        or ``exponential_epoch``: × ``decay`` after every epoch, as CCT's 0.95) and
        ``warmup_steps`` (linear warm-up from 0).
      learning_rate: the phase's peak learning rate.
      steps_per_epoch: optimizer steps per epoch.
      total_steps: steps in the phase.

    Returns:
      A schedule ``count -> learning rate``.
    """
    name = cfg.get("schedule", "constant")
    warmup = int(cfg.get("warmup_steps", 0))
    if name == "constant":
        sched = optax.constant_schedule(learning_rate)
    elif name == "cosine":
        sched = optax.cosine_decay_schedule(learning_rate, max(total_steps - warmup, 1))
    elif name == "exponential_epoch":
        from affectjax import schedules  # pylint: disable=import-outside-toplevel
        sched = schedules.per_epoch_exponential_decay(
            learning_rate, steps_per_epoch=steps_per_epoch, decay=cfg.get("decay", 0.95))
    elif name == "exponential":
        end = float(cfg.get("end_learning_rate", 0.0))
        if not 0 < end <= learning_rate:
            raise ConfigError(f"config.optimizer.end_learning_rate: the exponential schedule "
                              f"needs 0 < end <= the peak {learning_rate}, got {end}")
        steps = max(total_steps - warmup, 1)
        sched = optax.exponential_decay(learning_rate, transition_steps=steps,
                                        decay_rate=end / learning_rate, end_value=end)
    else:
        raise registry.unknown_name_error("optimizer.schedule", name, SCHEDULES)
    if warmup > 0:
        ramp = optax.linear_schedule(0.0, learning_rate, warmup)
        sched = optax.join_schedules([ramp, sched], [warmup])
    return sched


def trainable_labels(group_labels: Any, balancer_params: Any,
                     trainable: Iterable[str]) -> dict[str, Any]:
    """Labels of the trainable tree: a group name, ``"frozen"`` or ``"balancer"``."""
    trainable = set(trainable)
    model = jax.tree.map(lambda g: g if g in trainable else FROZEN, group_labels)
    return {"model": model, "balancer": jax.tree.map(lambda _: BALANCER, balancer_params)}


def parse_trainable(spec: str, groups: Iterable[str]) -> tuple[str, ...]:
    """Parses a phase's ``trainable`` string (``"all"`` or comma-separated group names)."""
    groups = tuple(groups)
    if spec.strip() == "all":
        return groups
    names = tuple(s.strip() for s in spec.split(",") if s.strip())
    unknown = [n for n in names if n not in groups]
    if unknown:
        raise ConfigError(f"trainable={spec!r}: "
                          f"{registry.unknown_name_message('parameter group', unknown[0], groups)}"
                          " (or 'all')")
    if not names:
        raise ConfigError(f"trainable={spec!r}: give 'all' or a comma-separated subset of "
                          f"{sorted(groups)}")
    return names


def build_optimizer(cfg: Any, *, learning_rate: float, labels: dict[str, Any],
                    steps_per_epoch: int, total_steps: int,
                    lr_multipliers: Mapping[str, float] | None = None,
                    ) -> tuple[optax.GradientTransformationExtraArgs, optax.Schedule]:
    """Builds one phase's optimizer over ``{"model": params, "balancer": params}``.

    Args:
      cfg: the ``optimizer`` config (``name``, ``b1``, ``b2``, ``eps``, ``momentum``,
        ``weight_decay``, ``grad_clip_norm`` (0 = off), ``sam_rho`` (0 = no SAM),
        ``schedule``, ``decay``, ``warmup_steps``, ``balancer_learning_rate``).
      learning_rate: the phase's learning rate.
      labels: `trainable_labels` output.
      steps_per_epoch: optimizer steps per epoch (for per-epoch schedules).
      total_steps: steps in this phase.
      lr_multipliers: optional group -> factor on `learning_rate`.

    Returns:
      ``(tx, schedule)``: the optimizer (accepts ``grad_fn=`` for SAM) and the base
      learning-rate schedule (for logging).
    """
    name = cfg.get("name", "adam")
    if name not in OPTIMIZERS:
        raise registry.unknown_name_error("optimizer.name", name, OPTIMIZERS)
    if not learning_rate > 0:
        raise ConfigError(f"learning_rate must be > 0, got {learning_rate}")
    lr_multipliers = dict(lr_multipliers or {})
    sched = make_schedule(cfg, learning_rate, steps_per_epoch=steps_per_epoch,
                          total_steps=total_steps)
    used = set(jax.tree.leaves(labels))
    transforms: dict[str, optax.GradientTransformation] = {FROZEN: optax.set_to_zero()}
    for group in used - {FROZEN}:
        if group == BALANCER:
            group_lr: optax.ScalarOrSchedule = float(cfg.get("balancer_learning_rate", 1e-3))
        else:
            mult = float(lr_multipliers.get(group, 1.0))
            group_lr = (lambda count, m=mult: m * sched(count)) if mult != 1.0 else sched
        transforms[group] = _base(name, cfg, group_lr)
    tx = optax.multi_transform(transforms, labels)
    clip = float(cfg.get("grad_clip_norm", 0.0))
    if clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(clip), tx)
    rho = float(cfg.get("sam_rho", 0.0))
    if rho > 0:
        perturbed = jax.tree.map(lambda g: "fixed" if g in (FROZEN, BALANCER) else "perturb",
                                 labels)
        adv = optax.chain(
            optax.multi_transform({"perturb": optax.identity(), "fixed": optax.set_to_zero()},
                                  perturbed),
            contrib.normalize(), optax.sgd(rho))
        return contrib.sam(tx, adv, sync_period=2, opaque_mode=True), sched
    return optax.with_extra_args_support(tx), sched
