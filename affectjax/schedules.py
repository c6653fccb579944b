"""Schedules: the CCT consensus ramp and per-epoch learning-rate decay (optax)."""

from typing import Any

import jax
import jax.numpy as jnp
import optax


def cct_lambda(
    epoch: Any,
    *,
    ramp_epochs: float,
    lambda_max: float = 0.9,
    beta: float = 4.0,
    clamp: bool = True,
) -> jax.Array:
    r"""CCT's consensus weight :math:`\lambda = \lambda_{max} e^{-\beta (1 - e / e_r)^2}`.

    With `clamp=True` (the paper: "e_r is the epoch at which lambda attains its maximum")
    lambda is held at `lambda_max` for `epoch >= ramp_epochs`. `clamp=False` reproduces
    the authors' code, which applies the formula for every epoch, so lambda dips again
    after `ramp_epochs` (the code uses 0-based epochs, beta 0.65 and
    `ramp_epochs = 0.9 * num_epochs`; the paper's best beta is 4.0).

    Args:
      epoch: the current epoch (Python number or traced scalar; constant within an
        epoch, e.g. `step // steps_per_epoch`).
      ramp_epochs: e_r > 0, the epoch at which lambda reaches `lambda_max`.
      lambda_max: the maximum of lambda.
      beta: the shape of the ramp; larger is slower.
      clamp: hold lambda at `lambda_max` after `ramp_epochs`.

    Returns:
      A float scalar array.

    References:
      Gera & Balasubramanian, CCT, eq. (4).

    Example:
      >>> [round(float(cct_lambda(e, ramp_epochs=10)), 4) for e in (0, 5, 10, 15)]
      [0.0165, 0.3311, 0.9, 0.9]
    """
    if not ramp_epochs > 0:
        raise ValueError(f"ramp_epochs must be > 0, got {ramp_epochs}")
    ratio = jnp.asarray(epoch, jnp.result_type(float)) / ramp_epochs
    if clamp:
        ratio = jnp.minimum(ratio, 1.0)
    return lambda_max * jnp.exp(-beta * (1.0 - ratio) ** 2)


def per_epoch_exponential_decay(
    init_value: float, *, steps_per_epoch: int, decay: float = 0.95
) -> optax.Schedule:
    """Learning rate `init_value * decay ** (step // steps_per_epoch)` (staircase).

    Args:
      init_value: the learning rate of the first epoch.
      steps_per_epoch: optimiser steps per epoch (> 0).
      decay: the factor applied at the start of each new epoch.

    Returns:
      An optax schedule, `step -> learning rate`.

    References:
      Gera & Balasubramanian, CCT, Sec. 4.2 (lr x 0.95 every epoch).

    Example:
      >>> schedule = per_epoch_exponential_decay(1e-3, steps_per_epoch=100)
      >>> [round(float(schedule(s)), 7) for s in (0, 99, 100, 250)]
      [0.001, 0.001, 0.00095, 0.0009025]
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch}")
    return optax.exponential_decay(
        init_value, transition_steps=steps_per_epoch, decay_rate=decay, staircase=True
    )


def warmup_cosine(
    peak_value: float,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    init_value: float = 0.0,
    end_value: float = 0.0,
) -> optax.Schedule:
    """Linear warm-up to `peak_value`, then cosine decay to `end_value` at `total_steps`.

    A thin wrapper of `optax.warmup_cosine_decay_schedule` with keyword-only settings.

    Args:
      peak_value: the learning rate at the end of the warm-up.
      total_steps: the total number of steps, warm-up included.
      warmup_steps: steps of linear warm-up from `init_value`.
      init_value: the learning rate at step 0.
      end_value: the learning rate at `total_steps`.

    Returns:
      An optax schedule.

    Example:
      >>> schedule = warmup_cosine(1.0, total_steps=10, warmup_steps=2)
      >>> [round(float(schedule(s)), 4) for s in (0, 1, 2, 6, 10)]
      [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}"
        )
    return optax.warmup_cosine_decay_schedule(
        init_value, peak_value, warmup_steps, total_steps, end_value
    )
