"""FC-DenseNet (the iFAN backbone): sizes at every level, parameter count, TaskBatchNorm, feedback."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import models
import flax.linen as nn

from affectjax.models.fcdensenet import Conv, FCDenseNet, TaskBatchNorm, depth_to_space
from affectjax.models.layers import BatchNorm

SMALL = dict(num_blocks=2, layers_per_block=2, growth_rate=4, stem_features=8, upsample_features=8)


def _param_count(size=128, in_ch=3, blocks=5, layers=3, growth=12, stem=48, kernel=7, up=128, classes=0, sets=1):
    """The parameter count of the architecture, layer by layer (BN: scale + bias per set)."""

    def dense_block(c):
        n = 0
        for _ in range(layers):
            n += 2 * c * sets + 3 * 3 * c * growth  # TaskBatchNorm + 3x3 conv, no bias
            c += growth
        return n, c

    n, c = kernel * kernel * in_ch * stem, stem  # stem conv, no bias
    skips = []
    for _ in range(blocks):
        m, c = dense_block(c)
        skips.append(c)
        n += m + 2 * c * sets + c * c  # transition down: BN + 1x1 conv keeping c
    m, c = dense_block(c)  # bottleneck
    n += m
    for _ in range(blocks):
        n += 3 * 3 * c * up + 3 * 3 * (up // 4) * up  # conv, depth-to-space, conv
        m, c = dense_block(up + skips.pop())
        n += m
    if classes:
        n += c * classes + classes
    return n


@pytest.mark.parametrize("classes,expected", [(0, 2_974_608), (11, 2_977_347)])
def test_paper_configuration_sizes_and_parameter_count(classes, expected):
    model = models.create("fcdensenet", num_classes=classes)
    x = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
    variables = jax.eval_shape(lambda a: model.init(jax.random.key(0), a), x)
    outputs, inter = jax.eval_shape(lambda v, a: model.apply(v, a), variables, x)
    # Channels by hand: stem 48; down blocks +36 each: 84, 120, 156, 192, 228; bottleneck 264;
    # up blocks: 128 upsampled + skip + 36: 392, 356, 320, 284, 248.
    expected_shapes = {
        "down_128": (128, 84), "down_64": (64, 120), "down_32": (32, 156), "down_16": (16, 192),
        "down_8": (8, 228), "bottleneck": (4, 264), "up_8": (8, 392), "up_16": (16, 356),
        "up_32": (32, 320), "up_64": (64, 284), "up_128": (128, 248), "features": (128, 248),
    }
    assert set(inter) == set(expected_shapes)
    for name, (r, c) in expected_shapes.items():
        assert inter[name].shape == (2, r, r, c), name
    assert set(outputs) == ({"logits"} if classes else set())
    if classes:
        assert outputs["logits"].shape == (2, 128, 128, 11) and outputs["logits"].dtype == jnp.float32
    count = sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables["params"]))
    print(f"FC-DenseNet parameters (128 px, num_classes={classes}): {count:,}")
    assert count == _param_count(classes=classes) == expected


def test_task_batch_norm_with_one_set_equals_batch_norm():
    x = jax.random.normal(jax.random.key(0), (4, 5, 5, 6)) * 3.0 + 1.0
    ref, task = BatchNorm(), TaskBatchNorm(num_sets=1)
    v_ref = {"params": {"scale": jnp.linspace(0.5, 2.0, 6), "bias": jnp.linspace(-1.0, 1.0, 6)},
             "batch_stats": {"mean": jnp.linspace(-0.2, 0.3, 6), "var": jnp.linspace(0.5, 1.5, 6)}}
    v_task = jax.tree.map(lambda a: a[None], v_ref)
    y_ref, s_ref = ref.apply(v_ref, x, train=True, mutable=["batch_stats"])
    y_task, s_task = task.apply(v_task, x, 0, train=True, mutable=["batch_stats"])
    np.testing.assert_array_equal(np.asarray(y_task), np.asarray(y_ref))
    for key in ("mean", "var"):
        np.testing.assert_array_equal(np.asarray(s_task["batch_stats"][key][0]), np.asarray(s_ref["batch_stats"][key]))
    np.testing.assert_array_equal(np.asarray(task.apply(v_task, x, 0)), np.asarray(ref.apply(v_ref, x)))


def test_task_batch_norm_training_touches_only_its_set():
    x = jax.random.normal(jax.random.key(0), (4, 3, 3, 5)) + 2.0
    bn = TaskBatchNorm(num_sets=3)
    variables = bn.init(jax.random.key(1), x, 0)
    stats = jax.tree.map(lambda a: a + jax.random.uniform(jax.random.key(2), a.shape), variables["batch_stats"])

    @jax.jit
    def step(params, stats, index):
        def loss(p):
            y, new = bn.apply({"params": p, "batch_stats": stats}, x, index, train=True, mutable=["batch_stats"])
            return jnp.sum(jnp.sin(y) * jnp.arange(1.0, 6.0)), new
        return jax.grad(loss, has_aux=True)(params)

    grads, new = step(variables["params"], stats, jnp.int32(1))  # traced set index
    for key in ("mean", "var"):
        before, after = np.asarray(stats[key]), np.asarray(new["batch_stats"][key])
        np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])  # bit-identical
        assert not np.allclose(after[1], before[1])
    for key in ("scale", "bias"):
        g = np.asarray(grads[key])
        assert np.all(g[[0, 2]] == 0.0) and np.any(g[1] != 0.0)
    # Inference reads the set's own running statistics.
    y = bn.apply({"params": variables["params"], "batch_stats": new["batch_stats"]}, x, 1)
    m, v = new["batch_stats"]["mean"][1], new["batch_stats"]["var"][1]
    np.testing.assert_allclose(np.asarray(y), np.asarray((x - m) / jnp.sqrt(v + 1e-5)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="BN set 3"):
        bn.apply(variables, x, 3)


@pytest.mark.parametrize("kernel,stride", [(1, 1), (3, 1), (4, 1), (7, 1), (5, 2), (1, 2), (3, 3)])
def test_conv_equals_flax_conv_values_and_gradients(kernel, stride):
    x = jax.random.normal(jax.random.key(0), (2, 12, 12, 3))
    ours, ref = Conv(4, kernel, stride, use_bias=True), nn.Conv(4, (kernel, kernel), stride, padding="SAME")
    variables = jax.tree.map(lambda a: a + 0.1, ours.init(jax.random.key(1), x))  # non-zero bias
    assert jax.tree.map(jnp.shape, variables) == jax.tree.map(jnp.shape, ref.init(jax.random.key(1), x))

    def loss(module, v, a):
        return jnp.sum(jnp.sin(module.apply(v, a)))

    (a, ga), (b, gb) = (jax.value_and_grad(loss, argnums=(1, 2))(m, variables, x) for m in (ours, ref))
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
    for p, q in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), rtol=1e-5, atol=1e-5)

    if stride > 1:
        return

    def step(v, c):
        return jnp.tanh(ours.apply(v, c)[..., :3])

    def scanned(v):  # the custom gradient inside a scan, as iFAN's loop="scan" runs it
        return jnp.sum(jax.lax.scan(lambda c, _: (step(v, c), None), x, None, length=2)[0])

    def unrolled(v):
        return jnp.sum(step(v, step(v, x)))

    for p, q in zip(jax.tree.leaves(jax.grad(scanned)(variables)), jax.tree.leaves(jax.grad(unrolled)(variables))):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), rtol=1e-5, atol=1e-5)


def test_depth_to_space_matches_a_loop():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 12)).astype(np.float32)
    y = np.asarray(depth_to_space(jnp.asarray(x), 2))
    ref = np.zeros((2, 6, 8, 3), np.float32)
    for h in range(3):
        for w in range(4):
            for i in range(2):
                for j in range(2):
                    ref[:, 2 * h + i, 2 * w + j, :] = x[:, h, w, (i * 2 + j) * 3:(i * 2 + j + 1) * 3]
    np.testing.assert_array_equal(y, ref)


def test_feedback_is_concatenated_at_its_merge_points():
    model = FCDenseNet(**SMALL)
    x = jnp.ones((2, 16, 16, 3))
    feedback = {16: jnp.ones((2, 16, 16, 2)), 8: jnp.ones((2, 8, 8, 3)), 4: jnp.ones((2, 4, 4, 5))}
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), x, feedback=feedback))
    p = variables["params"]
    assert p["stem"]["kernel"].shape == (7, 7, 3 + 2, 8)  # image + full-resolution maps
    # down block 0 (16 px) ends with 8 + 2 * 4 = 16 channels, + 2 feedback; the conv keeps 16
    assert p["transition_down0_conv"]["kernel"].shape == (1, 1, 16 + 2, 16)
    assert p["transition_down1_conv"]["kernel"].shape == (1, 1, 24 + 3, 24)  # 8 px
    assert p["transition_up0_conv0"]["kernel"].shape == (3, 3, 32 + 5, 8)  # bottleneck (4 px) + maps
    assert p["transition_up1_conv0"]["kernel"].shape == (3, 3, 8 + 24 + 8 + 3, 8)  # up block at 8 px + maps
    _, inter = jax.eval_shape(lambda v: model.apply(v, x, feedback=feedback), variables)
    assert inter["features"].shape == (2, 16, 16, inter["up_16"].shape[-1] + 2)
    assert inter["down_16"].shape[-1] == 16  # skips are saved before the feedback
    # Feedback values change the output; zero maps give a valid input.
    v = jax.jit(lambda k, f: model.init(k, x, feedback=f))(jax.random.key(0), feedback)
    apply = jax.jit(lambda f: model.apply(v, x, feedback=f))  # compiled once, run twice
    _, ia = apply(feedback)
    _, ib = apply(jax.tree.map(jnp.zeros_like, feedback))
    assert not np.allclose(ia["up_16"], ib["up_16"])


def test_bad_input_size_and_feedback_are_rejected():
    model = FCDenseNet(**SMALL)
    with pytest.raises(ValueError, match="18x18"):
        model.init(jax.random.key(0), jnp.ones((1, 18, 18, 3)))
    with pytest.raises(ValueError, match="resolution 2"):
        model.init(jax.random.key(0), jnp.ones((1, 16, 16, 3)), feedback={2: jnp.ones((1, 2, 2, 1))})
    with pytest.raises(ValueError, match="resolution 8"):
        model.init(jax.random.key(0), jnp.ones((1, 16, 16, 3)), feedback={8: jnp.ones((1, 4, 4, 1))})


def test_train_step_with_traced_bn_set_and_registry():
    model = models.create("fcdensenet", num_classes=11, num_bn_sets=2, **SMALL)
    x = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
    variables = jax.jit(model.init)(jax.random.key(1), x)

    @jax.jit
    def step(variables, index):
        def loss(params):
            (out, _), new = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, bn_set=index,
                                        train=True, mutable=["batch_stats"])
            return jnp.mean(out["logits"] ** 2), new
        return jax.grad(loss, has_aux=True)(variables["params"])

    grads, new = step(variables, jnp.int32(1))
    for before, after in zip(jax.tree.leaves(variables["batch_stats"]), jax.tree.leaves(new["batch_stats"])):
        np.testing.assert_array_equal(np.asarray(after[0]), np.asarray(before[0]))
    g = grads["down0"]["layer0_bn"]["scale"]
    assert np.all(np.asarray(g[0]) == 0.0) and np.any(np.asarray(g[1]) != 0.0)
    out, _ = jax.eval_shape(lambda v: model.apply(v, x, bn_set=1), variables)
    assert out["logits"].shape == (2, 16, 16, 11)
