"""`affectjax.ensemble`: stacked members of a flax model, vmapped init/apply/optimizer."""

import doctest

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from affectjax import ensemble

pytestmark = pytest.mark.usefixtures("fast_compiled")

M, B, D = 3, 4, 5


class Tiny(nn.Module):
    """Dense + BatchNorm + Dropout + a Dense head."""

    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Dense(6, name="body")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.5, name="bn")(x)
        x = nn.relu(x)
        x = nn.Dropout(0.5, deterministic=not train)(x)
        return nn.Dense(3, name="head")(x)


MODEL = Tiny()
X = jax.random.normal(jax.random.key(42), (B, D))


@pytest.fixture(scope="module")
def variables():
    return ensemble.init(MODEL, jax.random.key(0), M, X)


def close(a, b, tol=1e-6):
    chex.assert_trees_all_close(a, b, atol=tol, rtol=tol)


def test_docstring_examples_run():
    result = doctest.testmod(ensemble, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_init_stacks_members_with_their_own_keys(variables):
    chex.assert_tree_shape_prefix(variables, (M,))
    assert set(variables) == {"params", "batch_stats"}
    assert ensemble.num_members(variables) == M
    keys = ensemble.split_rngs(jax.random.key(0), M)
    for i in range(M):
        close(ensemble.member(variables, i), MODEL.init(keys[i], X))
    kernel = variables["params"]["body"]["kernel"]
    for i in range(M):
        for j in range(i + 1, M):
            assert not np.allclose(kernel[i], kernel[j])


def test_member_and_stack_are_inverse(variables):
    members = [ensemble.member(variables, i) for i in range(M)]
    chex.assert_trees_all_equal(ensemble.stack(members), variables)
    singles = [MODEL.init(jax.random.key(i), X) for i in range(M)]
    stacked = ensemble.stack(singles)
    for i in range(M):
        chex.assert_trees_all_equal(ensemble.member(stacked, i), singles[i])
    with pytest.raises(ValueError):
        ensemble.stack([])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_num_members(bad):
    with pytest.raises(ValueError, match="num_members"):
        ensemble.init(MODEL, jax.random.key(0), bad, X)
    with pytest.raises(ValueError, match="num_members"):
        ensemble.broadcast({"w": jnp.ones(2)}, bad)


def test_apply_eval_equals_each_member(variables):
    out = ensemble.apply(MODEL)(variables, X, train=False)
    chex.assert_shape(out, (M, B, 3))
    for i in range(M):
        close(out[i], MODEL.apply(ensemble.member(variables, i), X, train=False))


def test_apply_train_dropout_and_batch_stats_per_member(variables):
    key = jax.random.key(7)
    fn = ensemble.apply(MODEL, mutable=["batch_stats"])
    out, updates = fn(variables, X, train=True, rngs={"dropout": key})
    chex.assert_tree_shape_prefix(updates, (M,))
    keys = ensemble.split_rngs({"dropout": key}, M)
    for i in range(M):
        ref, ref_updates = MODEL.apply(ensemble.member(variables, i), X, train=True,
                                       rngs=ensemble.member(keys, i), mutable=["batch_stats"])
        close(out[i], ref)
        close(ensemble.member(updates, i), ref_updates)
    # each member uses its own split key, not the key given (dropout changes the output)
    unsplit = MODEL.apply(ensemble.member(variables, 0), X, train=True,
                          rngs={"dropout": key}, mutable=["batch_stats"])[0]
    assert not np.allclose(out[0], unsplit)
    assert not np.allclose(updates["batch_stats"]["bn"]["mean"],
                           variables["batch_stats"]["bn"]["mean"])


def test_apply_per_member_inputs(variables):
    xs = jax.random.normal(jax.random.key(3), (M, B, D))
    out = ensemble.apply(MODEL, in_axes=0)(variables, xs, train=False)
    for i in range(M):
        close(out[i], MODEL.apply(ensemble.member(variables, i), xs[i], train=False))


def test_gradients_through_the_stack_equal_each_members(variables):
    key = jax.random.key(11)
    fn = ensemble.apply(MODEL, mutable=["batch_stats"])
    y = jnp.arange(B) % 3

    def ce(logits):
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def stacked_loss(params):
        out, _ = fn({**variables, "params": params}, X, train=True, rngs={"dropout": key})
        return jnp.sum(jax.vmap(ce)(out))

    grads = jax.grad(stacked_loss)(variables["params"])
    keys = ensemble.split_rngs({"dropout": key}, M)
    for i in range(M):
        v = ensemble.member(variables, i)

        def loss(params, v=v, i=i):
            out, _ = MODEL.apply({**v, "params": params}, X, train=True,
                                 rngs=ensemble.member(keys, i), mutable=["batch_stats"])
            return ce(out)

        close(ensemble.member(grads, i), jax.grad(loss)(v["params"]), tol=1e-5)


def test_broadcast_then_reinit_gives_each_member_its_own_head():
    pretrained = MODEL.init(jax.random.key(5), X)
    shared = ensemble.broadcast(pretrained, M)
    chex.assert_tree_shape_prefix(shared, (M,))
    for i in range(M):
        chex.assert_trees_all_equal(ensemble.member(shared, i), pretrained)
    fresh = ensemble.init(MODEL, jax.random.key(6), M, X)
    is_head = lambda path: path.startswith("params/head/")  # noqa: E731
    v = ensemble.reinit(shared, fresh, is_head)
    paths = []

    def check(path, new, old, fr):
        name = "/".join(str(k.key) for k in path)
        paths.append(name)
        np.testing.assert_array_equal(new, fr if is_head(name) else old)

    jax.tree_util.tree_map_with_path(check, v, shared, fresh)
    assert "params/head/kernel" in paths and "batch_stats/bn/mean" in paths
    for i in range(1, M):
        chex.assert_trees_all_equal(ensemble.member(v, i)["params"]["body"],
                                    ensemble.member(v, 0)["params"]["body"])
        assert not np.allclose(v["params"]["head"]["kernel"][i],
                               v["params"]["head"]["kernel"][0])
    with pytest.raises(ValueError, match="selects no leaf"):
        ensemble.reinit(shared, fresh, lambda path: path.startswith("params/haed"))
    with pytest.raises(ValueError, match="structure"):
        ensemble.reinit(shared, {"params": fresh["params"]}, is_head)


def test_per_member_clipping_keeps_members_apart():
    params = {"w": jnp.ones((M, 4)), "b": jnp.zeros((M, 2))}
    grads = {"w": jnp.stack([jnp.full(4, 1e4), jnp.full(4, 2.0), jnp.full(4, 0.1)]),
             "b": jnp.stack([jnp.full(2, 1e4), jnp.full(2, -1.0), jnp.full(2, 0.2)])}
    chain = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1))
    tx = ensemble.per_member(chain)
    state = tx.init(params)
    chex.assert_tree_shape_prefix(state, (M,))
    updates, _ = jax.jit(tx.update)(grads, state, params)
    for i in (1, 2):
        p, g = ensemble.member(params, i), ensemble.member(grads, i)
        alone, _ = chain.update(g, chain.init(p), p)
        close(ensemble.member(updates, i), alone)
    # unwrapped, the huge gradient of member 0 sets the global norm of all members
    mixed, _ = chain.update(grads, chain.init(params), params)
    for i in (1, 2):
        assert not np.allclose(ensemble.member(mixed, i)["w"],
                               ensemble.member(updates, i)["w"])


def test_per_member_passes_extra_args():
    def scale_by_arg():
        def update(updates, state, params=None, *, scale=1.0, **extra):
            return jax.tree.map(lambda u: u * scale, updates), state

        return optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)

    tx = ensemble.per_member(optax.chain(scale_by_arg(), optax.sgd(1.0)))
    params = {"w": jnp.ones((M, 2))}
    updates, _ = tx.update(params, tx.init(params), params, scale=3.0)
    close(updates["w"], -3.0 * jnp.ones((M, 2)))
    plain = ensemble.per_member(optax.sgd(1.0))  # a plain transformation ignores them
    updates, _ = plain.update(params, plain.init(params), params, scale=3.0)
    close(updates["w"], -jnp.ones((M, 2)))


def test_jitted_apply_traces_once(variables):
    fn = ensemble.apply(MODEL)
    jitted = jax.jit(chex.assert_max_traces(lambda v, x: fn(v, x, train=False), n=1))
    a = jitted(variables, X)
    b = jitted(variables, X + 1.0)
    chex.assert_shape([a, b], (M, B, 3))


@pytest.mark.parametrize("in_axes", [None, 0])
def test_unrolled_members_equal_vmapped_ones_with_gradients(variables, in_axes):
    key = jax.random.key(11)
    x = X if in_axes is None else jax.random.normal(jax.random.key(3), (M, B, D))

    def loss(params, strategy):
        fn = ensemble.apply(MODEL, mutable=["batch_stats"], in_axes=in_axes, strategy=strategy)
        out, updates = fn({**variables, "params": params}, x, train=True,
                          rngs={"dropout": key})
        return jnp.sum(jnp.sin(out)), (out, updates)

    (l_v, (out_v, up_v)), g_v = jax.value_and_grad(loss, has_aux=True)(variables["params"],
                                                                        "vmap")
    (l_u, (out_u, up_u)), g_u = jax.jit(jax.value_and_grad(loss, has_aux=True),
                                        static_argnums=1)(variables["params"], "unroll")
    close(out_u, out_v)
    close(up_u, up_v)
    close(g_u, g_v, tol=1e-5)
    np.testing.assert_allclose(l_u, l_v, rtol=1e-6)


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown strategy 'scan'; choose one of \['vmap', 'unroll'\]"):
        ensemble.apply(MODEL, strategy="scan")
