"""iFAN: heat maps, iteration 0 = f_S(x), scan = unroll, ablations, validation, registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import models
from affectjax.models.ifan import IFAN, landmark_heatmaps

TINY = dict(num_blocks=3, layers_per_block=1, growth_rate=4, stem_features=8, upsample_features=8,
            reencoder_widths=(4, 5, 6, 7), num_landmarks=3, num_parsing_classes=4, num_emotions=5,
            decoder_dropout=0.0)
SIZE = 32  # levels kept with 3 blocks (down path 32, 16, 8): 32 (R) and 8 (R/4)
FAST = {**TINY, "num_blocks": 2}  # the level at R only; compiles faster
TASKS = ("landmarks", "parsing", "emotion")


def _image(batch=2):
    return jax.random.normal(jax.random.key(0), (batch, SIZE, SIZE, 3))


def _init(model, x, **kwargs):
    rngs = {"params": jax.random.key(1), "dropout": jax.random.key(2)}
    return jax.jit(lambda a, kw: model.init(rngs, a, train=True, **kw))(x, kwargs)


def _train_apply(model, variables, x, **kwargs):
    return model.apply(variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(3)}, **kwargs)


def _jit_train_apply(model, variables, x, **kwargs):
    return jax.jit(lambda v, a, kw: _train_apply(model, v, a, **kw))(variables, x, kwargs)


def _jit_apply(model, variables, x, **kwargs):
    return jax.jit(lambda v, a, kw: model.apply(v, a, **kw))(variables, x, kwargs)


def _heatmaps_reference(points, size, radius):
    points = np.asarray(points, np.float64)
    out = np.zeros(points.shape[:2] + (size, size))
    for b in range(points.shape[0]):
        for l in range(points.shape[1]):
            for i in range(size):
                for j in range(size):
                    d2 = (j + 0.5 - points[b, l, 0]) ** 2 + (i + 0.5 - points[b, l, 1]) ** 2
                    out[b, l, i, j] = float(d2 < radius * radius)
    return out.transpose(0, 2, 3, 1)


def test_landmark_heatmaps_match_a_pixel_loop():
    rng = np.random.default_rng(0)
    points = rng.uniform(-4.0, 24.0, (3, 4, 2)).astype(np.float32)
    points[0, 0] = (0.3, 19.6)  # border
    points[0, 1] = (-1.5, 8.0)  # left of the image, disk partly inside
    points[0, 2] = (40.0, -40.0)  # far outside: empty map
    points[0, 3] = (10.5, 10.5)  # on a pixel centre: distances to centres are integers
    maps = landmark_heatmaps(jnp.asarray(points), 20, 2.5)
    assert maps.shape == (3, 20, 20, 4) and maps.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(maps), _heatmaps_reference(points, 20, 2.5))
    assert np.asarray(maps)[0, ..., 2].sum() == 0 and 0 < np.asarray(maps)[0, ..., 1].sum()
    # radius 1 around a centre: strictly closer than 1 is the centre pixel only
    one = landmark_heatmaps(jnp.asarray([[[10.5, 10.5]]]), 20, 1.0)
    assert float(one.sum()) == 1.0 and float(one[0, 10, 10, 0]) == 1.0
    grad = jax.grad(lambda p: jnp.sum(landmark_heatmaps(p, 20, 2.5)))(jnp.asarray(points))
    assert np.all(np.asarray(grad) == 0.0)


def _sum_outputs(outputs, keys):
    return sum(jnp.sum(outputs[k]) for k in keys)


def test_iteration_zero_is_independent_of_the_reencoders():
    model = IFAN(num_iterations=1, heatmap_radius=100.0, **FAST)  # large disks: non-empty heat maps
    x = _image()
    variables = _init(model, x)
    params = variables["params"]
    reencoders = [k for k in params if k.startswith("reencoder_")]
    assert sorted(reencoders) == sorted(f"reencoder_{t}" for t in TASKS)
    keys = jax.random.split(jax.random.key(7), len(reencoders))
    other = dict(params)
    for name, key in zip(reencoders, keys):
        leaves, tree = jax.tree.flatten(params[name])
        other[name] = jax.tree.unflatten(tree, [jax.random.normal(k, a.shape) for k, a in
                                                zip(jax.random.split(key, len(leaves)), leaves)])
    @jax.jit
    def run(p):  # the outputs, and the gradients of the sum of the iteration-0 outputs
        # and of the sum of iterations 0 and 1
        out, pull = jax.vjp(lambda q: _train_apply(model, {**variables, "params": q}, x)[0][0], p)
        zero = {k: jnp.ones_like(v) if k.endswith("/0") else jnp.zeros_like(v) for k, v in out.items()}
        both = {k: jnp.ones_like(v) if "/" in k else jnp.zeros_like(v) for k, v in out.items()}
        return out, pull(zero)[0], pull(both)[0]

    (a, g0, g1), (b, _, _) = run(params), run(other)  # one program compiled for both
    for t in TASKS:
        np.testing.assert_array_equal(np.asarray(a[f"{t}/0"]), np.asarray(b[f"{t}/0"]))
        assert not np.allclose(np.asarray(a[f"{t}/1"]), np.asarray(b[f"{t}/1"]))
        np.testing.assert_array_equal(np.asarray(a[t]), np.asarray(a[f"{t}/1"]))

    for name in reencoders:
        assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree.leaves(g0[name])), name
        assert any(np.any(np.asarray(g) != 0.0) for g in jax.tree.leaves(g1[name])), name
    assert any(np.any(np.asarray(g) != 0.0) for g in jax.tree.leaves(g0["backbone"]))


def test_landmarks_are_pixels_in_the_authors_layout():
    model = IFAN(tasks=("landmarks",), num_iterations=0, **FAST)
    x = _image()
    variables = _init(model, x)
    dense = variables["params"]["decoder_landmarks"]["dense"]
    u = jnp.asarray([-0.5, 0.0, 0.25, 0.5, -0.25, 0.1])  # x_1, x_2, x_3, y_1, y_2, y_3
    params = {**variables["params"], "decoder_landmarks": {"dense": {"kernel": jnp.zeros_like(dense["kernel"]),
                                                                     "bias": u}}}
    out, inter = _jit_apply(model, {**variables, "params": params}, x)
    expected = (np.asarray(u).reshape(2, 3).T + 0.5) * SIZE
    np.testing.assert_allclose(np.asarray(out["landmarks"]), np.broadcast_to(expected, (2, 3, 2)), rtol=1e-6)
    assert set(out) == {"landmarks", "landmarks/0"} and inter == {}


def test_scan_equals_unroll():
    x = _image()
    unroll = IFAN(num_iterations=2, num_bn_sets=2, **FAST)
    scan = unroll.clone(loop="scan")
    variables = _init(unroll, x)
    assert jax.tree.map(jnp.shape, jax.eval_shape(lambda: _init(scan, x))) == jax.tree.map(jnp.shape, variables)

    def run(model):
        def loss(p):
            (out, _), new = _train_apply(model, {**variables, "params": p}, x, bn_set=jnp.int32(1))
            return _sum_outputs(out, [k for k in out if "/" in k]), (out, new)
        return jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])

    (va, (oa, sa)), ga = run(unroll)
    (vb, (ob, sb)), gb = run(scan)
    for a, b in zip(jax.tree.leaves((oa, sa, ga)), jax.tree.leaves((ob, sb, gb))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    assert set(oa) == set(ob) == {f"{t}/{i}" for t in TASKS for i in range(3)} | set(TASKS)
    # BN set 0 of the backbone untouched by a batch of set 1
    stats, new = variables["batch_stats"]["backbone"], sa["batch_stats"]["backbone"]
    for before, after in zip(jax.tree.leaves(stats), jax.tree.leaves(new)):
        np.testing.assert_array_equal(np.asarray(after[0]), np.asarray(before[0]))
    ea, _ = _jit_apply(unroll, variables, x, bn_set=1)  # inference: scan broadcasts the statistics
    eb, _ = _jit_apply(scan, variables, x, bn_set=1)
    for k in ea:
        np.testing.assert_allclose(np.asarray(ea[k]), np.asarray(eb[k]), rtol=1e-5, atol=1e-5)


def _check_shapes(out, tasks, iterations, batch=2):
    shapes = {"landmarks": (batch, 3, 2), "parsing": (batch, SIZE, SIZE, 4), "emotion": (batch, 5)}
    assert set(out) == {f"{t}/{i}" for t in tasks for i in range(iterations + 1)} | set(tasks)
    for k, v in out.items():
        assert v.shape == shapes[k.split("/")[0]] and v.dtype == jnp.float32, k


@pytest.mark.parametrize("options,stem_inputs", [
    (dict(reencoders=False), 3 + 3 + 4 + 5),  # raw heat maps, parsing and emotion probabilities
    (dict(integration="concat", num_blocks=2), 3 + 3 * 4),  # each task's 4 full-resolution channels
])  # integration="sum", the default, runs in the other tests
def test_variants_run_with_documented_shapes(options, stem_inputs):
    model = IFAN(num_iterations=1, **{**TINY, **options})
    x = _image()
    variables = _init(model, x)
    assert variables["params"]["backbone"]["stem"]["kernel"].shape[2] == stem_inputs
    assert any(k.startswith("reencoder_") for k in variables["params"]) == options.get("reencoders", True)
    (out, _), _ = _jit_train_apply(model, variables, x)
    _check_shapes(out, TASKS, 1)


def test_mean_initial_feedback_and_task_subsets():
    initial = {"landmarks": jnp.full((3, 2), 16.0), "parsing": jnp.full((SIZE, SIZE, 4), 0.25),
               "emotion": jnp.full((5,), 0.2)}
    model = models.create("ifan", num_iterations=1, initial_feedback="mean", tasks=("emotion", "parsing"), **FAST)
    x = _image()
    variables = _init(model, x, initial=initial)
    run = jax.jit(lambda init: model.apply(variables, x, initial=init)[0])
    out = run(initial)
    _check_shapes(out, ("parsing", "emotion"), 1)
    assert "decoder_landmarks" not in variables["params"]
    other = run({**initial, "emotion": jnp.eye(5)[0]})
    assert not np.allclose(np.asarray(out["parsing/0"]), np.asarray(other["parsing/0"]))  # iteration 0 sees it
    with pytest.raises(ValueError, match="initial predictions for \\['parsing'\\]"):
        model.apply(variables, x, initial={"emotion": initial["emotion"]})
    with pytest.raises(ValueError, match="initial\\['parsing'\\] must have shape"):
        model.apply(variables, x, initial={**initial, "parsing": jnp.ones((8, 8, 4))})
    shapes = {}
    for iterations in (0, 2):  # the same variables whatever ITER
        other = models.create("ifan", num_iterations=iterations, **FAST)
        shapes[iterations] = jax.tree.map(jnp.shape, jax.eval_shape(lambda: _init(other, x)))
        out, _ = jax.eval_shape(lambda: other.apply(_init(other, x), x))
        _check_shapes(out, TASKS, iterations)
    assert shapes[0] == shapes[2] and "reencoder_emotion" in shapes[0]["params"]


@pytest.mark.parametrize("options,match", [
    (dict(integration="mean"), r"unknown iFAN integration 'mean'; choose one of \['concat', 'sum'\]"),
    (dict(tasks=("landmarks", "pose")), r"unknown iFAN task 'pose'; choose one of .*'emotion'"),
    (dict(tasks=()), "non-empty"),
    (dict(initial_feedback="random"), r"unknown iFAN initial_feedback 'random'; choose one of \['mean', 'zeros'\]"),
    (dict(loop="while"), r"unknown iFAN loop 'while'"),
    (dict(reencoder_widths=(4, 4)), "reencoder_widths needs 4"),
])
def test_bad_options_raise_one_clear_error(options, match):
    with pytest.raises(ValueError, match=match):
        IFAN(**{**TINY, **options}).init(jax.random.key(0), _image(1))


def test_bad_input_size_and_missing_initial_raise():
    with pytest.raises(ValueError, match=r"divisible by 8, got shape \(1, 36, 36, 3\)"):
        IFAN(**TINY).init(jax.random.key(0), jnp.ones((1, 36, 36, 3)))
    with pytest.raises(ValueError, match="needs initial predictions"):
        IFAN(initial_feedback="mean", **TINY).init(jax.random.key(0), _image(1))


def test_paper_configuration_shapes():
    model = models.create("ifan")
    x = jax.ShapeDtypeStruct((2, 128, 128, 3), jnp.float32)
    variables = jax.eval_shape(lambda a: model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, a), x)
    out, _ = jax.eval_shape(lambda v, a: model.apply(v, a), variables, x)
    assert out["landmarks/2"].shape == (2, 5, 2) and out["parsing"].shape == (2, 128, 128, 11)
    assert out["emotion/0"].shape == (2, 8)
    p = variables["params"]
    assert p["decoder_landmarks"]["dense"]["kernel"].shape == (8 * 8 * 228, 10)  # down_8
    assert p["decoder_emotion"]["dense"]["kernel"].shape == (4 * 4 * 264, 8)  # bottleneck
    assert p["backbone"]["stem"]["kernel"].shape == (7, 7, 3 + 16, 48)  # sum: one task's 16 channels
    # R/4, R/8, R/16 = 32, 16, 8 enter after the down block of that resolution
    for block, (c, w) in enumerate([(84, 16), (120, 0), (156, 24), (192, 48), (228, 64)]):
        assert p["backbone"][f"transition_down{block}_conv"]["kernel"].shape == (1, 1, c + w, c)
