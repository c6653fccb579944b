"""Multi-task loss balancers: EW, fixed, UW, DWA, GradNorm, EMA, DWEMA, REMA.

Every balancer is a factory returning a `Balancer(init, update, init_params, combine)`
of pure functions (see `affectjax.balancing.base`). One train step serves them all::

    balancer = balancing.create("ema", beta=0.1)
    bstate, bparams = balancer.init(num_tasks), balancer.init_params(num_tasks)

    def loss_fn(model_params, bparams, bstate, batch, epoch):
        losses = task_losses(model_params, batch)                      # (K,)
        weights, bstate = balancer.update(
            bstate, jax.lax.stop_gradient(losses), epoch=epoch)
        return balancer.combine(bparams, weights, losses), (weights, bstate)

    grads = jax.grad(loss_fn, argnums=(0, 1), has_aux=True)   # model and balancer params

`epoch` is required only by the epoch-based balancers (DWA, REMA, DWEMA, and GradNorm
with ``initial_losses="first_epoch"``); the others accept ``update(bstate, losses)``.

When a task has no labelled sample in a batch (cross-dataset hybrid training, masked
labels), pass `present`, a (K,) bool vector: `balancer.update(bstate, losses,
epoch=epoch, present=present)`. An absent task leaves every per-task statistic of the
state unchanged (EMA averages, epoch means, GradNorm's L(0)); its weight multiplies its
zero loss.

GradNorm also needs per-task gradient norms of the shared parameters; its module
docstring (`affectjax.balancing.grad_norm`) shows the extra two lines.
"""

from affectjax import registry
from affectjax.balancing.base import Balancer
from affectjax.balancing.dynamic import DWAState, EpochLossHistory, dwa
from affectjax.balancing.moving_average import EmaState, RatedEmaState, dwema, ema, rema
from affectjax.balancing.grad_norm import (GradNormState, gradnorm, gradnorm_loss,
                                          gradnorm_weights, per_task_grad_norms)
from affectjax.balancing.static import StaticState, ew, fixed
from affectjax.balancing.uncertainty import UncertaintyState, uw, uw_weights

BALANCERS = {
    "ew": ew,
    "fixed": fixed,
    "uw": uw,
    "dwa": dwa,
    "gradnorm": gradnorm,
    "ema": ema,
    "dwema": dwema,
    "rema": rema,
}


def create(name: str, **kwargs) -> Balancer:
    """Builds the balancer registered as `name` with keyword hyper-parameters.

    Args:
      name: a key of `BALANCERS`.
      **kwargs: passed to the factory, e.g. `create("dwa", temperature=2.0)`.

    Returns:
      The `Balancer`.

    Raises:
      KeyError: if `name` is unknown; the message lists the choices.
    """
    return registry.lookup(BALANCERS, name, "balancer")(**kwargs)


__all__ = [
    "BALANCERS", "Balancer", "DWAState", "EmaState", "EpochLossHistory",
    "GradNormState", "RatedEmaState", "StaticState", "UncertaintyState", "create",
    "dwa", "dwema", "ema", "ew", "fixed", "gradnorm", "gradnorm_loss",
    "gradnorm_weights", "per_task_grad_norms", "rema", "uw", "uw_weights",
]
