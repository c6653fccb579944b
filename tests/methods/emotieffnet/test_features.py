"""Tests for affectjax.methods.emotieffnet.features: batched extraction, the npz cache, weights from a run."""

import os
import sys
import textwrap

import jax
import numpy as np
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from configs import mtl_heads_synthfaces  # noqa: E402  pylint: disable=wrong-import-position

from affectjax.methods.emotieffnet import features  # noqa: E402  pylint: disable=wrong-import-position
from affectjax import models  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.data import pipeline  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.data.synthfaces import SynthFaces  # noqa: E402  pylint: disable=wrong-import-position
from affectjax.train.errors import DataError  # noqa: E402  pylint: disable=wrong-import-position

SIZE = 16
BACKBONE = dict(name="emotieffnet", backbone="efficientnet_tiny", num_expressions=8,
                width_multiplier=0.5, drop_rate=0.0)


pytestmark = pytest.mark.usefixtures("fast_compiled")


def tiny_config():
    c = mtl_heads_synthfaces.get_config()
    c.backbone = BACKBONE
    c.data.image_size = SIZE
    c.data.builder_kwargs = dict(domain="studio", image_size=SIZE,
                                 sizes=dict(train=13, validation=6))
    c.features.batch_size = 8
    return c


def fake_sources(monkeypatch, calls):
    """pipeline.create_source returning in-memory SynthFaces (no TFDS preparation)."""
    def create_source(data_config, split):
        calls.append(split)
        sizes = dict(data_config["builder_kwargs"])["sizes"]
        return SynthFaces(sizes[split], seed=1 if split == "train" else 2,
                          image_size=data_config["image_size"])
    monkeypatch.setattr(pipeline, "create_source", create_source)


def _model_and_vars(seed=0):
    model = models.create(**{k: v for k, v in BACKBONE.items()})
    x = np.zeros((1, SIZE, SIZE, 3), np.float32)
    init = jax.jit(lambda rng: model.init(rng, x, train=False))  # one compile, not op by op
    return model, init(jax.random.PRNGKey(seed))


def test_extract_matches_one_full_forward_and_drops_padding():
    source = SynthFaces(13, seed=3, image_size=SIZE)
    config = pipeline.default_config()
    config.image_size = SIZE
    loader = pipeline.Loader(source, batch_size=8, shuffle=False, train=False,
                             data_config=config)
    model, variables = _model_and_vars()
    out = features.extract(models.make_feature_fn(model), variables, loader.eval_batches())
    assert out["embedding"].shape[0] == 13 and out["logits"].shape == (13, 10)
    images = np.concatenate([b["image"][b["valid"]] for b in loader.eval_batches()])
    ref_out, ref_inter = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)
    np.testing.assert_allclose(out["embedding"], ref_inter["embedding"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["logits"], ref_out["logits"], rtol=1e-4, atol=1e-5)
    labels = source.batch(range(13))
    np.testing.assert_array_equal(out["expr"], labels["expr"])
    np.testing.assert_array_equal(out["au"], labels["au"])
    np.testing.assert_allclose(out["va"], labels["va"])
    assert out["va_mask"].all() and out["expr"].dtype == np.int32


def test_missing_labels_are_filled_as_missing():
    def fn(variables, images):
        del variables
        return {"embedding": images.reshape(len(images), -1), "logits": np.zeros((len(images), 10))}

    batches = [{"image": np.ones((3, 2, 2, 3), np.float32), "expr": np.array([0, 5, 7]),
                "valid": np.array([True, True, False])}]
    out = features.extract(fn, None, batches)
    np.testing.assert_array_equal(out["expr"], [0, 5])
    np.testing.assert_array_equal(out["au"], -np.ones((2, 12)))
    assert not out["va_mask"].any() and out["embedding"].shape == (2, 12)
    with pytest.raises(ValueError, match="no 'image'"):
        features.extract(fn, None, [{"expr": np.zeros(2)}])


def test_cache_round_trip_and_source(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"embedding": rng.normal(size=(4, 3)).astype(np.float32),
              "logits": rng.normal(size=(4, 10)).astype(np.float32),
              "expr": np.array([0, -1, 3, 7], np.int32), "va": np.zeros((4, 2), np.float32),
              "va_mask": np.array([1, 0, 1, 0], bool), "au": -np.ones((4, 12), np.int32)}
    path = features.save_cache(str(tmp_path / "c" / "train.npz"), arrays, {"key": {"a": 1}})
    loaded, meta = features.load_cache(path)
    assert meta == {"key": {"a": 1}}
    for k, v in arrays.items():
        np.testing.assert_array_equal(loaded[k], v)
    source = features.FeatureSource(loaded)
    assert len(source) == 4 and source[2]["expr"] == 3
    np.testing.assert_array_equal(pipeline.class_counts(source, "expr"), [1, 0, 0, 1, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="first dimensions differ"):
        features.FeatureSource({"a": np.zeros(2), "b": np.zeros(3)})
    with pytest.raises(FileNotFoundError, match="no feature cache"):
        features.load_cache(str(tmp_path / "none.npz"))


def test_load_backbone_from_a_trainer_run(tmp_path):
    import optax  # pylint: disable=import-outside-toplevel

    from affectjax.balancing import ew  # pylint: disable=import-outside-toplevel
    from affectjax.train import checkpoint, state  # pylint: disable=import-outside-toplevel

    model, variables = _model_and_vars(seed=5)
    bal = ew()
    st = state.create_train_state(variables=variables, apply_fn=model.apply,
                                  tx=optax.adam(1e-3), balancer_state=bal.init(2),
                                  balancer_params=bal.init_params(2))
    ckpt = checkpoint.Checkpointer(str(tmp_path / "run"))
    ckpt.save(st, {"phase": 0}, best=True)
    ckpt.close()
    _, loaded, origin = features.load_backbone(BACKBONE, workdir=str(tmp_path / "run"))
    assert origin.startswith("workdir:") and origin.endswith("best/0")
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError, match="no trainer checkpoint"):
        features.load_backbone(BACKBONE, workdir=str(tmp_path))
    with pytest.raises(ValueError, match="no checkpoint, workdir or sample"):
        features.load_backbone(BACKBONE)
    wider = dict(BACKBONE, width_multiplier=2 * BACKBONE.get("width_multiplier", 1.0))
    with pytest.raises(ValueError, match=r"does not match workdir:.*/bias has shape \(8,\) in "
                                         r"the checkpoint, \(16,\) in the model; .*and \d+ more"):
        features.load_backbone(wider, workdir=str(tmp_path / "run"))
    # A damaged best/ checkpoint: one DataError line naming it, no fall-back to other weights.
    best = tmp_path / "run" / "best" / "0"
    for path in best.glob("state/**/d/*"):
        path.write_bytes(b"\x07" * path.stat().st_size)
    with pytest.raises(DataError) as info:
        features.load_backbone(BACKBONE, workdir=str(tmp_path / "run"))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"the checkpoint {best} is damaged and cannot be restored "
                              "(DATA_LOSS: ")
    assert f"delete {best.parent} to use the latest checkpoint" in message


def test_extract_splits_reuses_the_cache_and_the_cli(tmp_path, monkeypatch, capsys):
    calls = []
    fake_sources(monkeypatch, calls)
    config = tiny_config()
    first = features.extract_splits(config, str(tmp_path / "f"))
    assert calls == ["train", "validation"] and len(first["train"]["expr"]) == 13
    again = features.extract_splits(config, str(tmp_path / "f"))
    assert calls == ["train", "validation"]  # reused: no source opened
    np.testing.assert_array_equal(again["validation"]["embedding"],
                                  first["validation"]["embedding"])
    config.seed = 3  # other (random) weights: extracted again
    features.extract_splits(config, str(tmp_path / "f"), splits=["validation"])
    assert calls[-1] == "validation" and len(calls) == 3
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_features import tiny_config
        def get_config():
            return tiny_config()
    """))
    features.main(["--config", str(cfg_file), "--out", str(tmp_path / "cli"),
                   "--splits", "validation"])
    assert "validation: 6 faces" in capsys.readouterr().out
    assert os.path.exists(tmp_path / "cli" / "validation.npz")
