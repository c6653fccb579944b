"""Registry, shared contract of every balancer and bad-input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import balancing

FACTORY_KWARGS = {"fixed": {"weights": [1.0, 0.5, 2.0]}}


def make(name):
    return balancing.create(name, **FACTORY_KWARGS.get(name, {}))


def test_registry_lists_every_method():
    assert set(balancing.BALANCERS) == {
        "ew", "fixed", "uw", "dwa", "gradnorm", "ema", "dwema", "rema"}
    for name in balancing.__all__:
        assert hasattr(balancing, name), name


def test_create_unknown_name_lists_choices():
    with pytest.raises(KeyError, match=r"unknown balancer 'dynamic'; choose one of "
                                       r"\['dwa', 'dwema', 'ema', 'ew', 'fixed', 'gradnorm', "
                                       r"'rema', 'uw'\]"):
        balancing.create("dynamic")


EPOCH_BASED = {"dwa", "rema", "dwema"}


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_epoch_is_required_only_by_the_epoch_based_balancers(name):
    balancer = make(name)
    state = balancer.init(3)
    losses = jnp.array([1.0, 2.0, 3.0])
    if name in EPOCH_BASED:
        with pytest.raises(TypeError, match=rf"{name}\.update needs epoch="):
            balancer.update(state, losses)
        with pytest.raises(TypeError, match="needs epoch="):
            jax.jit(balancer.update)(state, losses)
        return
    without, _ = balancer.update(state, losses)
    with_epoch, _ = balancer.update(state, losses, epoch=0)
    np.testing.assert_array_equal(without, with_epoch)
    jitted, _ = jax.jit(balancer.update)(state, losses)
    np.testing.assert_allclose(jitted, without, rtol=1e-6)


def test_gradnorm_first_epoch_requires_epoch():
    balancer = balancing.gradnorm(initial_losses="first_epoch")
    with pytest.raises(TypeError, match="gradnorm.*needs epoch="):
        balancer.update(balancer.init(2), jnp.ones(2))


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_state_has_fixed_shapes_under_scan(name, epoch_losses, run_scan):
    losses, epochs = epoch_losses
    balancer = make(name)
    weights, state = run_scan(balancer, losses, epochs)
    assert weights.shape == losses.shape
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0)
    initial = balancer.init(3)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_equal(a.shape, b.shape),
                           state, initial)
    assert isinstance(state, tuple) and hasattr(state, "_fields")
    # combine is differentiable w.r.t. model-side losses and balancer parameters.
    params = balancer.init_params(3)
    grads = jax.grad(balancer.combine, argnums=(0, 2))(
        params, jnp.asarray(weights[-1]), jnp.asarray(losses[-1], jnp.float32))
    assert jax.tree_util.tree_structure(grads[0]) == jax.tree_util.tree_structure(params)
    assert np.all(np.isfinite(grads[1]))


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_num_tasks_mismatch_names_argument(name):
    balancer = make(name)
    state = balancer.init(3)
    with pytest.raises(ValueError, match=r"losses has 2 tasks .*num_tasks=3"):
        balancer.update(state, jnp.ones(2), epoch=0)
    with pytest.raises(ValueError, match="losses must have rank 1"):
        balancer.update(state, jnp.ones((2, 3)), epoch=0)
    with pytest.raises(ValueError, match="epoch must be a scalar"):
        balancer.update(state, jnp.ones(3), epoch=jnp.zeros(2, jnp.int32))
    with pytest.raises(TypeError, match="epoch must be an integer"):
        balancer.update(state, jnp.ones(3), epoch=1.5)
    with pytest.raises(TypeError, match="losses must be a float array"):
        balancer.update(state, jnp.ones(3, jnp.int32), epoch=0)
    with pytest.raises(ValueError, match="weights must have the shape of losses"):
        balancer.combine(balancer.init_params(3), jnp.ones(2), jnp.ones(3))
    with pytest.raises(ValueError, match="losses must have rank 1"):
        balancer.combine(balancer.init_params(3), jnp.ones(3), jnp.ones((1, 3)))


@pytest.mark.parametrize("num_tasks", [0, -1, 2.0, True])
def test_bad_num_tasks(num_tasks):
    for name in ("ew", "uw", "dwa", "gradnorm", "ema", "rema"):
        balancer = make(name)
        with pytest.raises(ValueError, match="num_tasks must be a positive int"):
            balancer.init(num_tasks)
        with pytest.raises(ValueError, match="num_tasks must be a positive int"):
            balancer.init_params(num_tasks)


@pytest.mark.parametrize("name", sorted(balancing.BALANCERS))
def test_init_state_can_be_donated_to_a_jitted_step(name):
    """Every state leaf is its own buffer: XLA refuses to donate one array twice."""
    balancer = balancing.create(name, **({"weights": [1.0, 2.0]} if name == "fixed" else {}))
    state = balancer.init(2)
    leaves = jax.tree.leaves(state)
    assert len({id(x) for x in leaves}) == len(leaves)
    step = jax.jit(lambda s, losses: balancer.update(s, losses, epoch=0), donate_argnums=(0,))
    weights, _ = step(state, jnp.array([1.0, 2.0]))
    assert weights.shape == (2,)
