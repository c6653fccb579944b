"""CCC and VA losses against float64 NumPy references, properties, transforms, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from affectjax import losses


def ref_ccc(x, y, ddof=0, eps=0.0):
    """CCC of 1-D float64 arrays from np.cov."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    cov = np.cov(x, y, ddof=ddof)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (x.mean() - y.mean()) ** 2 + eps)


def ref_ccc_authors(x, y):
    """The MT-EmotiEffNet authors' PyTorch-style CCC: Pearson * unbiased stds."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    vx, vy = x - x.mean(), y - y.mean()
    rho = (vx * vy).sum() / np.sqrt((vx**2).sum() * (vy**2).sum())
    sx, sy = x.std(ddof=1), y.std(ddof=1)
    return 2 * rho * sx * sy / (sx**2 + sy**2 + (x.mean() - y.mean()) ** 2)


def random_pair(seed, shape):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).astype(np.float32)
    y = (0.6 * x + 0.5 * rng.normal(size=shape) + 0.3).astype(np.float32)
    return x, y


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("shape", [(7,), (13, 2), (9, 3, 2)])
def test_ccc_matches_numpy_reference(shape, ddof):
    x, y = random_pair(0, shape)
    got = np.asarray(losses.ccc(x, y, ddof=ddof))
    assert got.shape == shape[1:]
    flat_x = x.reshape(shape[0], -1)
    flat_y = y.reshape(shape[0], -1)
    want = [ref_ccc(flat_x[:, i], flat_y[:, i], ddof) for i in range(flat_x.shape[1])]
    np.testing.assert_allclose(got.reshape(-1), want, rtol=1e-5, atol=1e-6)


def test_ccc_eps_and_authors_variant():
    x, y = random_pair(1, (11,))
    np.testing.assert_allclose(
        losses.ccc(x, y, eps=1e-2), ref_ccc(x, y, 0, 1e-2), rtol=1e-5
    )
    np.testing.assert_allclose(losses.ccc(x, y, ddof=1), ref_ccc_authors(x, y), rtol=1e-5)


def test_ccc_properties():
    x, y = random_pair(2, (20,))
    np.testing.assert_allclose(losses.ccc(x, x), 1.0, rtol=1e-6)
    assert float(losses.ccc(x, 2 * x)) < 0.99
    np.testing.assert_allclose(np.corrcoef(x, 2 * x)[0, 1], 1.0, rtol=1e-6)
    perm = np.random.default_rng(3).permutation(20)
    np.testing.assert_allclose(losses.ccc(x[perm], y[perm]), losses.ccc(x, y), rtol=1e-5)
    np.testing.assert_allclose(losses.ccc(x, y), losses.ccc(y, x), rtol=1e-6)
    assert -1.0 <= float(losses.ccc(x, -y)) <= 0.0
    np.testing.assert_allclose(losses.ccc_loss(x, y), 1 - losses.ccc(x, y), rtol=1e-6)


@pytest.mark.parametrize("ddof", [0, 1])
def test_ccc_masked_equals_sliced(ddof):
    x, y = random_pair(4, (15, 2))
    mask = np.random.default_rng(5).random((15, 2)) > 0.4
    x_nan = np.where(mask, x, np.nan)  # masked values must not leak, even NaN.
    got = np.asarray(losses.ccc(x_nan, y, where=mask, ddof=ddof))
    want = [ref_ccc(x[mask[:, i], i], y[mask[:, i], i], ddof) for i in range(2)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    rows = mask[:, 0]
    np.testing.assert_allclose(
        losses.ccc(x, y, where=rows[:, None], ddof=ddof),
        losses.ccc(x[rows], y[rows], ddof=ddof),
        rtol=1e-5,
    )


def test_ccc_axis_equivalence():
    x, y = random_pair(6, (3, 12, 2))
    np.testing.assert_allclose(
        losses.ccc(x, y, axis=1), losses.ccc(np.moveaxis(x, 1, 0), np.moveaxis(y, 1, 0)),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        losses.ccc(x, y, axis=-1), losses.ccc(np.moveaxis(x, -1, 0), np.moveaxis(y, -1, 0)),
        rtol=1e-5,
    )


def test_va_ccc_loss_reference_and_masks():
    pred, target = random_pair(7, (16, 2))
    want = 1 - 0.5 * (ref_ccc(pred[:, 0], target[:, 0]) + ref_ccc(pred[:, 1], target[:, 1]))
    np.testing.assert_allclose(losses.va_ccc_loss(pred, target), want, rtol=1e-5)
    rows = np.arange(16) % 3 != 0
    np.testing.assert_allclose(
        losses.va_ccc_loss(pred, target, where=rows),
        losses.va_ccc_loss(pred[rows], target[rows]),
        rtol=1e-5,
    )
    cols = np.stack([rows, ~rows], axis=1)
    want = 1 - 0.5 * (
        ref_ccc(pred[rows, 0], target[rows, 0]) + ref_ccc(pred[~rows, 1], target[~rows, 1])
    )
    np.testing.assert_allclose(losses.va_ccc_loss(pred, target, where=cols), want, rtol=1e-5)
    float_mask = cols.astype(np.float32)
    np.testing.assert_allclose(
        losses.va_ccc_loss(pred, target, where=float_mask), want, rtol=1e-5
    )


def test_jit_vmap_grad():
    x, y = random_pair(8, (4, 10))
    mask = np.arange(10) < 8
    f = lambda a, b: losses.ccc_loss(a, b, where=mask)
    np.testing.assert_allclose(jax.jit(f)(x[0], y[0]), f(x[0], y[0]), rtol=1e-6)
    batched = jax.vmap(f)(x, y)
    np.testing.assert_allclose(
        batched, [1 - ref_ccc(x[i, :8], y[i, :8]) for i in range(4)], rtol=1e-5
    )
    with jax.enable_x64(True):
        x64, y64 = np.float64(x[0]), np.float64(y[0])
        va_target = np.stack([y64, x64[::-1]], 1)

        def all_forms(a):
            return (
                losses.ccc_loss(a, y64, where=mask)
                + losses.ccc(a, y64, ddof=1, eps=1e-3)
                + losses.va_ccc_loss(jnp.stack([a, a[::-1]], 1), va_target)
            )

        check_grads(jax.jit(all_forms), (x64,), order=1)
    grad = jax.jit(jax.grad(lambda a: losses.va_ccc_loss(a, x.T[:, :2])))(y.T[:, :2])
    assert grad.shape == (10, 2) and np.isfinite(grad).all()


@pytest.mark.parametrize("ddof", [0, 1])
def test_degenerate_inputs_are_finite(ddof):
    y = np.linspace(-1.0, 1.0, 6).astype(np.float32)
    const = np.full(6, 0.3, np.float32)
    value_and_grad = jax.jit(
        jax.value_and_grad(lambda a, b, m: losses.ccc(a, b, where=m, ddof=ddof), (0, 1))
    )
    cases = {
        "constant predictions": (const, y, np.ones(6, bool)),
        "both constant and equal": (const, const, np.ones(6, bool)),
        "all masked": (y, y, np.zeros(6, bool)),
        "one valid item": (y, -y, np.arange(6) == 2),
    }
    for name, (a, b, m) in cases.items():
        value, grads = value_and_grad(a, b, m)
        assert np.isfinite(value), name
        assert all(np.isfinite(g).all() for g in grads), name
    assert float(losses.ccc(y, y, where=np.zeros(6, bool))) == 0.0
    assert float(losses.va_ccc_loss(np.stack([y, y], 1), np.stack([y, y], 1),
                                     where=np.zeros(6, bool))) == 1.0


def test_bad_inputs_name_the_argument():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(TypeError, match="x must be a floating"):
        losses.ccc(np.zeros(4, np.int32), np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="y must be a floating"):
        losses.ccc(np.zeros(4, np.float32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="y shape"):
        losses.ccc(x, x[:3])
    with pytest.raises(ValueError, match="x must have rank"):
        losses.ccc(np.float32(1.0), np.float32(1.0))
    with pytest.raises(ValueError, match="where"):
        losses.ccc(x, x, where=np.ones(3, bool))
    with pytest.raises(ValueError, match="axis"):
        losses.ccc(x, x, axis=2)
    with pytest.raises(ValueError, match="pred must have shape"):
        losses.va_ccc_loss(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="pred must have rank"):
        losses.va_ccc_loss(np.zeros(4, np.float32), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="target shape"):
        jax.jit(losses.va_ccc_loss)(x, x[:3])
