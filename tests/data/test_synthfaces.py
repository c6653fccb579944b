"""SynthFaces: determinism, the data contract, and labels carried by the pixels."""

import numpy as np
import pytest

from affectjax.data import label_noise
from affectjax.data.synthfaces import (AU_IDS, DOMAINS, EXPRESSIONS, PROTOTYPES, SynthFaces,
                                       render)
from affectjax.data.synthfaces.__main__ import main as cli_main


@pytest.fixture(scope="module")
def wild_batch():
    ds = SynthFaces(1000, seed=3, image_size=64, domain="wild")
    return ds, ds.batch(range(96))


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_contract_shapes_dtypes(domain):
    ds = SynthFaces(10, seed=1, image_size=48, domain=domain)
    ex = ds[7]
    assert ex["image"].shape == (48, 48, 3) and ex["image"].dtype == np.uint8
    assert ex["parsing"].shape == (48, 48) and ex["parsing"].dtype == np.uint8
    assert ex["parsing"].max() <= 10
    assert ex["expr"].dtype == np.int32 and 0 <= ex["expr"] < 8
    assert ex["va"].shape == (2,) and ex["va"].dtype == np.float32
    assert np.all(np.abs(ex["va"]) <= 1)
    assert ex["au"].shape == (12,) and ex["au"].dtype == np.int32
    assert set(np.unique(ex["au"])) <= {0, 1}
    assert ex["landmarks"].shape == (5, 2) and ex["landmarks"].dtype == np.float32
    assert ex["va_mask"].dtype == bool and ex["va_mask"]
    assert ex["landmarks_mask"].dtype == bool and ex["landmarks_mask"]
    assert "expr_clean" not in ex
    assert len(ds) == 10


def test_determinism_per_seed_and_index():
    ds = SynthFaces(200, seed=5, domain="wild")
    batch = ds.batch([3, 150, 77, 3])
    fresh = SynthFaces(200, seed=5, domain="wild")
    for row, i in enumerate([3, 150, 77, 3]):
        single, again = ds[i], fresh[i]
        for key in single:
            np.testing.assert_array_equal(single[key], batch[key][row], err_msg=key)
            np.testing.assert_array_equal(single[key], again[key], err_msg=key)
    # Chunked rendering of a long batch equals rendering one by one.
    long = ds.batch(range(70))
    np.testing.assert_array_equal(long["image"][69], ds[69]["image"])
    other_seed = SynthFaces(200, seed=6, domain="wild").batch([3, 150, 77])
    assert not np.array_equal(other_seed["image"], batch["image"][:3])
    other_domain = SynthFaces(200, seed=5, domain="studio").batch([3, 150, 77])
    assert not np.array_equal(other_domain["image"], batch["image"][:3])


def test_unknown_domain_and_bad_input():
    with pytest.raises(KeyError, match="unknown SynthFaces domain 'lab'; choose one of "
                                       r"\['grayscale_lowres'.*'studio'.*'wild'\]"):
        SynthFaces(4, domain="lab")
    ds = SynthFaces(4)
    with pytest.raises(IndexError, match="out of range"):
        ds[4]
    with pytest.raises(ValueError, match="num_examples"):
        SynthFaces(-1)
    with pytest.raises(KeyError, match="symmetric"):
        SynthFaces(4, label_noise=dict(kind="pairwise", rate=0.1))
    with pytest.raises(ValueError, match="rate"):
        SynthFaces(4, label_noise=dict(kind="symmetric", rate=1.5))
    np.testing.assert_array_equal(ds[-1]["image"], ds[3]["image"])


def test_labels_follow_prototypes_and_circumplex():
    ds = SynthFaces(3000, seed=0, image_size=16, domain="studio")
    p = ds.params(range(3000))
    au, expr, va = p["au"], p["expr"], p["va"]
    assert set(np.unique(expr)) == set(range(8))
    for k, name in enumerate(EXPRESSIONS):
        rows = expr == k
        for a in PROTOTYPES[name]["core"]:
            assert np.all(au[rows, AU_IDS.index(a)] >= 0.3), (name, a)
    assert np.all(au[expr == 0] == 0)  # neutral: no AU at all
    active = au[au > 0]
    assert active.min() >= 0.3 and active.max() <= 1.0
    # Mean valence/arousal per class has the circumplex sign pattern.
    mean = {EXPRESSIONS[k]: va[expr == k].mean(0) for k in range(7)}
    assert mean["Happiness"][0] > 0.4 and mean["Sadness"][0] < -0.4
    assert mean["Sadness"][1] < -0.2 and mean["Fear"][1] > 0.4
    assert abs(mean["Neutral"][0]) < 0.05 and abs(mean["Neutral"][1]) < 0.05
    # "Other" never contains a basic prototype's core.
    for row in au[expr == 7]:
        on = {a for a, x in zip(AU_IDS, row) if x > 0}
        for name in EXPRESSIONS[1:7]:
            assert not set(PROTOTYPES[name]["core"]) <= on or not PROTOTYPES[name]["core"]
    # Class priors differ between domains (a real label shift).
    wild = SynthFaces(3000, seed=0, domain="wild").params(range(3000))["expr"]
    gray = SynthFaces(3000, seed=0, domain="grayscale_lowres").params(range(3000))["expr"]
    assert np.mean(wild == 4) > np.mean(expr == 4) + 0.15
    assert np.mean(gray == 7) == 0.0


def test_domains_look_different():
    gray = SynthFaces(8, domain="grayscale_lowres").batch(range(8))["image"].astype(int)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    studio = SynthFaces(8, domain="studio").batch(range(8))["image"].astype(int)
    assert np.abs(studio[..., 0] - studio[..., 2]).mean() > 5
    # Low-resolution rendering: less high-frequency energy than the studio images.
    hf = lambda im: np.abs(np.diff(im.mean(-1), axis=2)).mean()
    assert hf(gray) < hf(studio)


def _near(parsing, x, y, classes, radius):
    """True when a pixel of `classes` lies within `radius` (Chebyshev) of (x, y)."""
    h, w = parsing.shape
    j, i = int(np.floor(float(x))), int(np.floor(float(y)))
    patch = parsing[max(i - radius, 0):min(i + radius + 1, h),
                    max(j - radius, 0):min(j + radius + 1, w)]
    return np.isin(patch, classes).any()


def test_landmarks_fall_in_their_parsing_class():
    ds = SynthFaces(500, seed=11, image_size=64, domain="wild")  # pose, yaw, scale, shift
    p = ds.params(range(120))
    p["occ_on"][:] = False  # occluders hide features (their pixels are background)
    out = ds.render(p)
    for par, lm in zip(out["parsing"], out["landmarks"]):
        assert _near(par, *lm[0], [4], 1)  # left eye: subject's left = image right
        assert _near(par, *lm[1], [5], 1)
        assert _near(par, *lm[2], [6], 1)  # nose tip
        assert _near(par, *lm[3], [7, 8, 9], 2)  # mouth corners
        assert _near(par, *lm[4], [7, 8, 9], 2)
    frontal = SynthFaces(20, seed=0, domain="studio").batch(range(20))["landmarks"]
    assert np.all(frontal[:, 0, 0] > frontal[:, 1, 0])  # left eye on the image's right
    assert np.all(frontal[:, 3, 0] > frontal[:, 4, 0])


def test_landmarks_low_resolution_domain():
    ds = SynthFaces(50, seed=2, image_size=64, domain="grayscale_lowres")
    p = ds.params(range(40))
    p["occ_on"][:] = False
    out = ds.render(p)
    hits = [_near(par, *lm[2], [6], 2) and _near(par, *lm[0], [4], 2)
            for par, lm in zip(out["parsing"], out["landmarks"])]
    assert np.mean(hits) >= 0.95


# Canonical-y bands (face frame, y down) outside which an AU may change no pixel:
# upper-face AUs stay above the eye centre line, mouth AUs below the nose tip.
_EYE_Y, _NOSE_TIP_MIN = -0.06, 0.10 + 0.7 * 0.13 * 0.88
_BANDS = {1: (-2, _EYE_Y), 2: (-2, _EYE_Y), 4: (-2, _EYE_Y), 7: (-0.18, 0.05), 6: (-0.18, 0.5),
          10: (_NOSE_TIP_MIN, 2), 12: (_NOSE_TIP_MIN, 2), 15: (_NOSE_TIP_MIN, 2),
          23: (_NOSE_TIP_MIN, 2), 24: (_NOSE_TIP_MIN, 2), 25: (_NOSE_TIP_MIN, 2),
          26: (_NOSE_TIP_MIN, 2)}


@pytest.mark.parametrize("au_id", AU_IDS)
def test_one_au_changes_only_its_region(au_id):
    ds = SynthFaces(100, seed=4, image_size=64, domain="studio")
    p = ds.params(range(24))
    p["angle"][:] = 0.0
    k = AU_IDS.index(au_id)
    on, off = {key: v.copy() for key, v in p.items()}, {key: v.copy() for key, v in p.items()}
    on["au"][:, k], off["au"][:, k] = 0.9, 0.0
    a, b = render(on, image_size=64)["image"], render(off, image_size=64)["image"]
    diff = np.abs(a.astype(int) - b.astype(int)).max(-1)  # (B, H, W)
    lo, hi = _BANDS[au_id]
    changed_examples = 0
    for i in range(len(diff)):
        rows = np.flatnonzero(diff[i].any(1))
        if rows.size == 0:
            continue
        changed_examples += 1
        y = ((p["ty"][i] + p["scale"][i] * np.array([lo, hi])) + 1) * 32 - 0.5
        assert rows.min() >= y[0] - 1 and rows.max() <= y[1] + 1, (au_id, i, rows, y)
    assert changed_examples >= 0.8 * len(diff)  # visible in (nearly) every face
    assert (diff > 20).sum() >= 3 * len(diff)


def test_label_noise_rates_and_clean_labels():
    clean = np.random.default_rng(0).integers(0, 8, 4000).astype(np.int32)
    idx = np.arange(4000)
    for kind in label_noise.KINDS:
        noisy = label_noise.flip_labels(clean, idx, kind=kind, rate=0.2, seed=1)
        flipped = noisy != clean
        assert abs(flipped.mean() - 0.2) < 0.025, kind
        if kind == "class_dependent":
            np.testing.assert_array_equal(noisy[flipped], label_noise.CONFUSABLE[clean[flipped]])
        again = label_noise.flip_labels(clean[::-1], idx[::-1], kind=kind, rate=0.2, seed=1)
        np.testing.assert_array_equal(again[::-1], noisy)  # per index, order-free
    assert np.all(label_noise.flip_labels(clean, idx, kind="symmetric", rate=0.0) == clean)
    missing = label_noise.flip_labels(np.full(50, -1), np.arange(50), kind="symmetric", rate=1)
    assert np.all(missing == -1)
    ds = SynthFaces(300, seed=2, image_size=16,
                    label_noise=dict(kind="symmetric", rate=0.3, seed=9))
    noisy = ds.batch(range(300))
    base = SynthFaces(300, seed=2, image_size=16).batch(range(300))
    np.testing.assert_array_equal(noisy["expr_clean"], base["expr"])
    np.testing.assert_array_equal(noisy["image"], base["image"])
    assert 0.2 < np.mean(noisy["expr"] != noisy["expr_clean"]) < 0.4
    assert ds[5]["expr_clean"] == base["expr"][5]


def _ccc(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_pixels_carry_expression_and_valence():
    import jax
    import jax.numpy as jnp
    import optax
    from sklearn.metrics import f1_score

    n_train, n_test = 3000, 800
    data = SynthFaces(n_train + n_test, seed=0, image_size=32, domain="studio").batch(
        range(n_train + n_test))
    x = data["image"].astype(np.float32).mean(-1).reshape(len(data["image"]), -1) / 255
    mu, sd = x[:n_train].mean(0), x[:n_train].std(0) + 1e-3
    x = (x - mu) / sd
    y, va = data["expr"], data["va"]

    def loss(params, xb, yb):
        logits = xb @ params["w"] + params["b"]
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        return ce + 1e-3 * jnp.sum(params["w"] ** 2)

    tx = optax.adam(3e-3)
    params = dict(w=jnp.zeros((x.shape[1], 8)), b=jnp.zeros(8))
    state = tx.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(loss)(params, x[:n_train], y[:n_train])
        updates, state = tx.update(grads, state)
        return optax.apply_updates(params, updates), state

    for _ in range(300):
        params, state = step(params, state)
    pred = np.asarray(jnp.argmax(x[n_train:] @ params["w"] + params["b"], -1))
    f1 = f1_score(y[n_train:], pred, average="macro")
    assert f1 > 0.4, f1  # chance is 1/8

    # Ridge probe on pixels for valence (float64 closed form).
    xt = np.c_[x[:n_train].astype(np.float64), np.ones(n_train)]
    w = np.linalg.solve(xt.T @ xt + 300.0 * np.eye(xt.shape[1]), xt.T @ va[:n_train, 0])
    pred_v = np.c_[x[n_train:], np.ones(n_test)] @ w
    assert _ccc(pred_v, va[n_train:, 0]) > 0.4


def test_cli_preview_and_bench(tmp_path, capsys):
    out = tmp_path / "faces.png"
    cli_main(["--preview", str(out), "--num", "4", "--size", "32", "--domain", "wild"])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cli_main(["--bench", "--num", "8", "--batch", "4", "--size", "16", "--domain", "studio"])
    assert "images/s" in capsys.readouterr().out


def test_blur_matches_scipy_reference():
    import sys
    from scipy import ndimage

    raster = sys.modules["affectjax.data.synthfaces.render"]
    x = np.random.default_rng(0).random((2, 3, 9, 9)).astype(np.float32)
    ref = x.astype(np.float64)
    for axis in (2, 3):
        ref = ndimage.correlate1d(ref, [0.25, 0.5, 0.25], axis=axis, mode="nearest")
    got = raster._binomial_blur(x.reshape(2, 3, 81), 9).reshape(x.shape)
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_attribute_view_follows_its_definitions():
    # pylint: disable-next=import-outside-toplevel
    from affectjax.data.synthfaces import SYNTHFACES_ATTRIBUTES
    # pylint: disable-next=import-outside-toplevel
    from affectjax.data.synthfaces.params import HAIR_COLOURS, HAIR_STYLES

    noise = dict(kind="symmetric", rate=0.5, seed=0)
    ds = SynthFaces(60, seed=2, image_size=16, domain="wild", label_noise=noise, attributes=True)
    plain = SynthFaces(60, seed=2, image_size=16, domain="wild", label_noise=noise)
    b, ref, p = ds.batch(range(60)), plain.batch(range(60)), ds.params(range(60))
    assert set(b) == set(ref) | {"attr"} and "attr" not in plain[0]
    for k in ref:  # the option adds a key and changes no other
        np.testing.assert_array_equal(b[k], ref[k], err_msg=k)
    assert len(SYNTHFACES_ATTRIBUTES) == 40 == len(set(SYNTHFACES_ATTRIBUTES))
    assert b["attr"].shape == (60, 40) and b["attr"].dtype == np.int32
    np.testing.assert_array_equal(ds[7]["attr"], b["attr"][7])
    col = {n: b["attr"][:, k].astype(bool) for k, n in enumerate(SYNTHFACES_ATTRIBUTES)}
    au = {a: b["au"][:, k].astype(bool) for k, a in enumerate(AU_IDS)}
    for a in AU_IDS:
        np.testing.assert_array_equal(col[f"AU{a}"], au[a])
    for e, name in enumerate(EXPRESSIONS):  # the drawn class, not the noisy label
        np.testing.assert_array_equal(col[name], b["expr_clean"] == e)
    v, a = b["va"].T
    hair = np.array(HAIR_COLOURS)[p["hair_colour"]]
    style = np.array(HAIR_STYLES)[p["hair_style"]]
    expected = {
        "Positive_Valence": v > 0, "High_Arousal": a > 0,
        "Calm": (abs(v) < 0.25) & (abs(a) < 0.25), "Strong_Expression": p["au"].max(1) >= 0.7,
        "Smiling": au[6] & au[12], "Mouth_Open": au[25] | au[26], "Brows_Raised": au[1] | au[2],
        "Black_Hair": (hair == "black") & (style != "bald"),
        "Brown_Hair": np.isin(hair, ["dark_brown", "brown"]) & (style != "bald"),
        "Blond_Hair": (hair == "blond") & (style != "bald"),
        "Red_Hair": (hair == "red") & (style != "bald"),
        "Gray_Hair": (hair == "grey") & (style != "bald"),
        "Bald": style == "bald", "Bangs": style == "fringe", "Long_Hair": style == "long",
        "Bun": style == "bun", "Pale_Skin": p["skin_tone"] < 0.25,
        "Bushy_Eyebrows": p["brow_thick"] > 1.1, "Arched_Eyebrows": p["brow_arch"] > 1.1,
        "Big_Nose": p["nose_w"] > 1.1}
    assert len(expected) + 20 == 40
    for name, value in expected.items():
        np.testing.assert_array_equal(col[name], value, err_msg=name)
    assert all(0 < col[n].sum() < 60 for n in ("Positive_Valence", "Long_Hair", "Pale_Skin"))
    edited = dict(p, hair_style=np.zeros_like(p["hair_style"]), skin_tone=p["skin_tone"] * 0)
    np.testing.assert_array_equal(ds.render(edited)["image"], b["image"])  # label-only fields
