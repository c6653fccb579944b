"""Tests for affectjax.models.fusion: the EF / LF / EF-LF fusion model of paper 3.

Tiny sizes; each configuration gets its parameters and its compiled forward once
(module-level caches). Data: four utterances of valid lengths 7, 12, 3 and 0, placed in sequences of S = 12 and
S = 16 zero steps at different offsets (leading padding, and padding on both sides).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from affectjax import models
from affectjax.models.fusion import ENCODERS, FUSIONS, default_mask

FEATS = {"text": 10, "audio": 6, "visual": 5}
LENGTHS = (7, 12, 3, 0)
OFFSETS = {12: (5, 0, 9, 0), 16: (9, 4, 2, 0)}  # S=16 row 2: 2 leading, 11 trailing
TASKS = (("emotion", 4), ("sentiment", 2), ("sarcasm", 2))
SIZES = dict(hidden_dim=8, lf_hidden_dims=(8, 4, 4), num_heads=2, lf_num_heads=(2, 2, 1),
             ff_dim=16, lf_ff_dims=(16, 8, 8), num_layers=2)
ALL = ("text", "audio", "visual")


def _utterances(seed=0):
    rng = np.random.default_rng(seed)
    return [{m: rng.normal(size=(n, f)).astype(np.float32) for m, f in FEATS.items()}
            for n in LENGTHS]


def _batch(steps, garbage=False):
    """(text, audio, visual, mask) with every utterance at OFFSETS[steps]."""
    rng = np.random.default_rng(1)
    out = {m: (rng.normal(size=(len(LENGTHS), steps, f)).astype(np.float32) if garbage
               else np.zeros((len(LENGTHS), steps, f), np.float32)) for m, f in FEATS.items()}
    mask = np.zeros((len(LENGTHS), steps), bool)
    for i, (utt, off) in enumerate(zip(_utterances(), OFFSETS[steps])):
        n = LENGTHS[i]
        mask[i, off:off + n] = True
        for m in FEATS:
            out[m][i] = np.where(mask[i, :, None], 0.0, out[m][i])
            out[m][i, off:off + n] = utt[m]
    return out["text"], out["audio"], out["visual"], mask


def _setup(fusion, encoder, modalities=ALL, **kw):
    """(model, variables) of one configuration, made once (parameters of `init`'s shapes)."""
    return _cached_setup(fusion, encoder, tuple(modalities), tuple(sorted(kw.items())))


@functools.lru_cache(maxsize=None)
def _cached_setup(fusion, encoder, modalities, kw):
    # Parameters of `init`'s shapes drawn with NumPy: compiling the initialisers (threefry)
    # costs several times the forward pass, and no test here depends on their distribution.
    model = models.create("fusion", fusion=fusion, encoder=encoder, tasks=TASKS,
                          modalities=modalities, **{**SIZES, **dict(kw)})
    t, a, v, _ = _batch(12)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), t, a, v, train=False))
    rng = np.random.default_rng(0)
    return model, jax.tree.map(
        lambda s: jnp.asarray(rng.uniform(-0.5, 0.5, s.shape).astype(np.float32)), shapes)


def _eval_fn(fusion, encoder, modalities=ALL, **kw):
    """The jitted eval forward of `_setup`'s model on a `_batch` (default mask)."""
    return _cached_eval_fn(fusion, encoder, tuple(modalities), tuple(sorted(kw.items())))


@functools.lru_cache(maxsize=None)
def _cached_eval_fn(fusion, encoder, modalities, kw):
    model, variables = _setup(fusion, encoder, modalities, **dict(kw))
    apply = jax.jit(lambda t, a, v: model.apply(variables, t, a, v, train=False))
    return lambda batch: apply(*batch[:3])


INVARIANCE = [("ef", "avg", {}), ("ef", "lstm", {}), ("ef", "transformer", {}),
              ("eflf", "lstm", {}), ("ef", "transformer", {"positions": "learned"})]


@pytest.mark.parametrize("fusion,encoder,kw", INVARIANCE, ids=lambda x: str(x))
def test_more_or_moved_padding_changes_nothing(fusion, encoder, kw):
    fn = _eval_fn(fusion, encoder, **kw)
    (out12, in12), (out16, in16) = fn(_batch(12)), fn(_batch(16))
    for key in ("representation", *(k for k in in12 if k.startswith(("ef", "lf")))):
        np.testing.assert_allclose(in16[key], in12[key], rtol=1e-5, atol=1e-5, err_msg=key)
    for task, k in TASKS:
        assert out12[task].shape == (len(LENGTHS), k) and out12[task].dtype == jnp.float32
        np.testing.assert_allclose(out16[task], out12[task], rtol=1e-5, atol=1e-5, err_msg=task)
    # The empty row (length 0) is finite, and its representation is not another row's.
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((out12, in12)))
    assert np.abs(np.asarray(in12["representation"][0] - in12["representation"][1])).max() > 1e-4


def test_an_explicit_mask_ignores_non_zero_padding():
    model, variables = _setup("ef", "lstm")
    clean, noisy = _batch(16), _batch(16, garbage=True)
    apply = jax.jit(lambda t, a, v, m: model.apply(variables, t, a, v, mask=m, train=False))
    a_out, a_in = apply(*clean)
    b_out, b_in = apply(*noisy)
    np.testing.assert_allclose(b_in["representation"], a_in["representation"], rtol=1e-5, atol=1e-5)
    c_in = _eval_fn("ef", "lstm")(clean)[1]  # the default mask finds the same steps
    np.testing.assert_allclose(c_in["representation"], a_in["representation"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(default_mask(*clean[:3]), clean[3])


def test_lf_is_the_concatenation_of_the_modality_encodings():
    _, inter = _eval_fn("eflf", "lstm")(_batch(12))
    np.testing.assert_array_equal(
        inter["lf"], np.concatenate([inter[f"lf_{m}"] for m in ALL], axis=-1))


def test_avg_without_hidden_layer_is_the_mean_of_the_valid_steps():
    model = models.create("fusion", fusion="ef", encoder="avg", hidden_dim=0, tasks=TASKS)
    t, a, v, mask = _batch(16)
    variables = model.init(jax.random.key(0), t, a, v)
    _, inter = model.apply(variables, t, a, v)
    x = np.concatenate([t, a, v], axis=-1)
    for i, n in enumerate(LENGTHS):
        expected = x[i][mask[i]].mean(0) if n else np.zeros(x.shape[-1])
        np.testing.assert_allclose(inter["representation"][i], expected, rtol=1e-5, atol=1e-6)


def test_lstm_readouts_share_the_forward_state():
    final = _eval_fn("ef", "lstm")(_batch(12))[1]["ef"]
    model, variables = _setup("ef", "lstm")
    last = models.create("fusion", fusion="ef", encoder="lstm", tasks=TASKS,
                         lstm_readout="last_step", **SIZES)
    t, a, v, _ = _batch(16)  # (more padding: the readout is padding-invariant too)
    step = jax.jit(lambda: last.apply(variables, t, a, v, train=False))()[1]["ef"]
    h = SIZES["hidden_dim"]
    np.testing.assert_allclose(step[:, :h], final[:, :h], rtol=1e-5, atol=1e-5)
    # Backward half: the state after the whole row ("final") vs after its last step only.
    assert np.abs(np.asarray(step[:3, h:] - final[:3, h:])).max() > 1e-4
    np.testing.assert_array_equal(step[3], np.zeros(2 * h))


GRADIENTS = [("ef", "avg", ALL), ("lf", "avg", ALL), ("eflf", "avg", ALL), ("ef", "lstm", ALL),
             ("ef", "transformer", ALL), ("ef", "lstm", ("text",)),
             ("eflf", "avg", ("audio", "visual")), ("lf", "avg", ("visual",))]


@pytest.mark.parametrize("fusion,encoder,modalities", GRADIENTS, ids=lambda x: str(x))
def test_representation_depends_on_exactly_the_used_modalities(fusion, encoder, modalities):
    model, variables = _setup(fusion, encoder, modalities)
    t, a, v, mask = _batch(12)

    @jax.jit
    def grads(t, a, v):
        rep = lambda *x: model.apply(variables, *x, train=False)[1]["representation"]
        y, pull = jax.vjp(rep, t, a, v)  # a random cotangent: LayerNorm outputs sum to 0
        return pull(jax.random.normal(jax.random.key(3), y.shape))

    for name, g in zip(ALL, grads(t, a, v)):
        g = np.abs(np.asarray(g))
        if name in modalities:
            assert g[mask].sum() > 0, name
        else:
            assert (g == 0).all(), name
        assert (g[~mask] == 0).all(), f"{name}: padded steps got gradient"


def _dim(encoder, width, feats):
    return {"avg": width or feats, "lstm": 2 * width, "transformer": width}[encoder]


@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("fusion", FUSIONS)
def test_shapes_and_dims_of_every_combination(fusion, encoder):
    """Abstract evaluation (no compilation) of all nine fusion x encoder models."""
    model = models.create("fusion", fusion=fusion, encoder=encoder, tasks=dict(TASKS), **SIZES)
    t, a, v, _ = _batch(12)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), t, a, v, train=False))
    assert set(variables) == {"params"}
    heads = {k for k in variables["params"] if k.startswith("head_")}
    assert heads == {f"head_{n}" for n, _ in TASKS}
    out, inter = jax.eval_shape(lambda vs: model.apply(vs, t, a, v, train=False), variables)
    assert {k: o.shape for k, o in out.items()} == {n: (4, k) for n, k in TASKS}
    ef = _dim(encoder, SIZES["hidden_dim"], sum(FEATS.values()))
    lf = [_dim(encoder, d, FEATS[m]) for m, d in zip(ALL, SIZES["lf_hidden_dims"])]
    expected = {"ef": ef, "lf": sum(lf), "eflf": (ef + sum(lf)) // 2}[fusion]
    assert inter["representation"].shape == (4, expected)
    assert ("ef" in inter) == (fusion != "lf") and ("lf" in inter) == (fusion != "ef")
    if fusion != "ef":
        assert [inter[f"lf_{m}"].shape[-1] for m in ALL] == lf and inter["lf"].shape[-1] == sum(lf)
    if fusion == "eflf":
        assert inter["ef"].shape[-1] == ef


def test_lf_tuples_follow_the_used_modalities():
    t, a, v, _ = _batch(12)
    dims = {}
    for lf_dims in ((8, 6, 4), (6, 4)):
        model = models.create("fusion", fusion="lf", encoder="avg", modalities="audio, visual",
                              lf_hidden_dims=lf_dims, lf_num_heads=[1, 1], lf_ff_dims=(4, 4))
        variables = jax.eval_shape(lambda: model.init(jax.random.key(0), t, a, v))
        inter = jax.eval_shape(lambda vs: model.apply(vs, t, a, v), variables)[1]
        dims[lf_dims] = {k: x.shape[-1] for k, x in inter.items()}
        assert "lf_text" not in variables["params"]
    assert dims[(8, 6, 4)] == dims[(6, 4)] == {"lf_audio": 6, "lf_visual": 4, "lf": 10,
                                               "representation": 10}


@pytest.mark.parametrize("fusion,encoder", [("eflf", "avg"), ("ef", "lstm"), ("ef", "transformer")])
def test_dropout_only_in_training(fusion, encoder):
    model, variables = _setup(fusion, encoder)
    t, a, v, _ = _batch(12)

    @jax.jit
    def run(k1, k2):  # train and eval with two dropout keys, in one program
        def one(key, train):
            (out, inter), mutated = model.apply(variables, t, a, v, train=train,
                                                mutable=["batch_stats"], rngs={"dropout": key})
            return out, inter["representation"], mutated
        return one(k1, True), one(k2, True), one(k1, False), one(k2, False)

    train1, train2, eval1, eval2 = run(jax.random.key(1), jax.random.key(2))
    assert not train1[2] and not eval1[2]  # no BatchNorm: nothing mutated
    assert np.abs(np.asarray(train1[1] - train2[1])).max() > 1e-4
    np.testing.assert_array_equal(eval1[1], eval2[1])
    np.testing.assert_allclose(eval1[1], _eval_fn(fusion, encoder)(_batch(12))[1]["representation"],
                               rtol=1e-6, atol=1e-6)
    for task, _ in TASKS:
        np.testing.assert_array_equal(eval1[0][task], eval2[0][task])
        assert not np.array_equal(train1[0][task], train2[0][task])


@pytest.mark.parametrize("kwargs,match", [
    (dict(fusion="mid"), r"unknown fusion 'mid'; choose one of \['ef', 'eflf', 'lf'\]"),
    (dict(encoder="gru"), r"unknown encoder 'gru'; choose one of \['avg', 'lstm', 'transformer'\]"),
    (dict(modalities=("text", "depth")), r"unknown modality 'depth'; choose one of"),
    (dict(modalities=()), r"distinct names"),
    (dict(lstm_readout="mean"), r"unknown LSTM readout"),
    (dict(positions="rotary"), r"unknown positional encoding"),
    (dict(lf_hidden_dims=(8, 4)), r"lf_hidden_dims=\(8, 4\) needs one entry per modality"),
    (dict(modalities=("text", "audio"), lf_num_heads=(2,)), r"lf_num_heads=\(2,\) needs one entry"),
    (dict(encoder="transformer", hidden_dim=10, num_heads=4), r"divisible by .* heads 4"),
    (dict(encoder="transformer", fusion="lf", lf_hidden_dims=(8, 5, 4), lf_num_heads=(2, 2, 2)),
     r"lf_hidden_dims\[audio\]=5 must be divisible"),
    (dict(encoder="lstm", hidden_dim=0), r"positive size"),
    (dict(tasks=(("emotion", 4), ("emotion", 2))), r"distinct"),
])
def test_bad_configurations_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.create("fusion", **kwargs)


def test_default_parameter_count_is_stable():
    """The default (miniature) EF-LF-LSTM on the paper's feature sizes (300, 74, 35)."""
    model = models.create("fusion", tasks=TASKS)
    x = [jnp.zeros((1, 5, f)) for f in (300, 74, 35)]
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), *x))
    assert sum(p.size for p in jax.tree.leaves(variables)) == 236008
