"""The CCT lambda ramp and the per-epoch learning-rate schedules."""

import jax
import numpy as np
import pytest

from affectjax import schedules


def ref_lambda(epoch, ramp_epochs, lambda_max, beta, clamp):
    ratio = epoch / ramp_epochs
    if clamp:
        ratio = min(ratio, 1.0)
    return lambda_max * np.exp(-beta * (1.0 - ratio) ** 2)


@pytest.mark.parametrize("beta", [0.65, 4.0])
@pytest.mark.parametrize("clamp", [True, False])
def test_cct_lambda_matches_formula(beta, clamp):
    epochs = np.arange(0, 30)
    got = jax.jit(
        lambda e: schedules.cct_lambda(e, ramp_epochs=18, lambda_max=0.9, beta=beta, clamp=clamp)
    )(epochs)
    want = [ref_lambda(e, 18, 0.9, beta, clamp) for e in epochs]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    python = schedules.cct_lambda(7, ramp_epochs=18, beta=beta, clamp=clamp)
    np.testing.assert_allclose(python, ref_lambda(7, 18, 0.9, beta, clamp), rtol=1e-6)


def test_cct_lambda_clamp_behaviour():
    held = [float(schedules.cct_lambda(e, ramp_epochs=10)) for e in (10, 11, 50)]
    np.testing.assert_allclose(held, 0.9, rtol=1e-6)
    dipped = [float(schedules.cct_lambda(e, ramp_epochs=10, clamp=False)) for e in (10, 12)]
    assert dipped[0] == pytest.approx(0.9) and dipped[1] < dipped[0]
    ramp = np.asarray(schedules.cct_lambda(np.arange(11), ramp_epochs=10))
    assert (np.diff(ramp) > 0).all() and ramp[0] < 0.02
    with pytest.raises(ValueError, match="ramp_epochs must be > 0"):
        schedules.cct_lambda(1, ramp_epochs=0)


def test_per_epoch_exponential_decay():
    schedule = schedules.per_epoch_exponential_decay(1e-2, steps_per_epoch=7)
    steps = np.arange(0, 35)
    np.testing.assert_allclose(
        jax.vmap(schedule)(steps), 1e-2 * 0.95 ** (steps // 7), rtol=1e-6
    )
    other = schedules.per_epoch_exponential_decay(1.0, steps_per_epoch=1, decay=0.5)
    np.testing.assert_allclose([other(s) for s in range(4)], [1, 0.5, 0.25, 0.125])
    with pytest.raises(ValueError, match="steps_per_epoch must be > 0"):
        schedules.per_epoch_exponential_decay(1e-3, steps_per_epoch=0)


def test_warmup_cosine():
    schedule = schedules.warmup_cosine(2.0, total_steps=20, warmup_steps=4, end_value=0.1)
    steps = np.arange(21)
    progress = np.clip((steps - 4) / 16, 0, 1)
    cosine = 0.1 + (2.0 - 0.1) * 0.5 * (1 + np.cos(np.pi * progress))
    want = np.where(steps < 4, 2.0 * steps / 4, cosine)
    np.testing.assert_allclose(jax.vmap(schedule)(steps), want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.warmup_cosine(1.0, total_steps=5, warmup_steps=6)
