"""affectjax.export: tiny EfficientNet and ResNet-18 runs in ONNX Runtime match JAX; the
sidecar; the command's one-line errors."""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import onnx
import onnxruntime
import pytest

from affectjax import export, labels, models
from affectjax.train import inference as inf

SIZE = 32
# jax2onnx's plugins use JAX names that JAX has deprecated.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def random_variables(module, seed):
    """Variables of `module` drawn directly (no init compile), with BatchNorm statistics
    away from (0, 1) so that inference-mode BatchNorm is exercised."""
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, SIZE, SIZE, 3))))
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        if "var" in name:
            return rng.uniform(0.5, 1.5, leaf.shape).astype(np.float32)
        if "scale" in name:
            return (1 + 0.1 * rng.standard_normal(leaf.shape)).astype(np.float32)
        fan_in = int(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 10
        return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(draw, shapes)


def emotieffnet_inference():
    model = models.create("emotieffnet", backbone="efficientnet_tiny")

    def apply(variables, images):
        outputs, _ = model.apply(variables, images, train=False)
        return {"expr_probs": inf.softmax(outputs["expr_logits"]), **inf.split_va(outputs["va"])}

    return inf.Inference(apply=apply, variables=random_variables(model, 0), image_size=SIZE,
                         mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                         names={"expr_probs": labels.EXPRESSIONS}, thresholds={}, origin="test:emotieffnet")


def resnet_inference():
    """ResNet-18 (width 16) with expression, AU and valence fields."""
    model = models.create("resnet18", num_classes=8 + len(labels.AUS) + 1, width=16)

    def apply(variables, images):
        logits = model.apply(variables, images, train=False)[0]["logits"]
        return {"expr_probs": inf.softmax(logits[:, :8]), "au_probs": inf.sigmoid(logits[:, 8:-1]),
                "valence": jnp.tanh(logits[:, -1])}

    thresholds = {"au_probs": np.linspace(0.3, 0.6, len(labels.AUS), dtype=np.float32)}
    return inf.Inference(apply=apply, variables=random_variables(model, 1), image_size=SIZE,
                         mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                         names={"expr_probs": labels.EXPRESSIONS, "au_probs": labels.AUS},
                         thresholds=thresholds, origin="test:resnet18")


@pytest.fixture(scope="module", params=["emotieffnet", "resnet18"])
def exported(request, tmp_path_factory):
    inference = {"emotieffnet": emotieffnet_inference, "resnet18": resnet_inference}[request.param]()
    path = str(tmp_path_factory.mktemp(request.param) / "model.onnx")
    info = export.export_onnx(inference, path, extra={"method": request.param})
    return inference, path, info


def test_onnxruntime_matches_jax_at_another_batch_size(exported):
    inference, path, info = exported
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    names = [o.name for o in session.get_outputs()]
    x = np.random.default_rng(3).standard_normal((3, SIZE, SIZE, 3)).astype(np.float32)
    got = dict(zip(names, session.run(None, {"images": x})))
    want = jax.jit(inference.apply)(inference.variables, x)
    assert names == sorted(want)
    for name in names:
        assert got[name].shape == want[name].shape and got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=0, err_msg=name)
    assert max(info["check"]["max_abs_diff"].values()) < 1e-4


def test_sidecar_documents_input_outputs_and_preprocessing(exported):
    inference, path, info = exported
    with open(f"{path}.json", encoding="utf-8") as f:
        assert json.load(f) == info
    assert info["input"] == {"name": "images", "dtype": "float32", "shape": ["B", SIZE, SIZE, 3],
                             "layout": "NHWC", "channels": "RGB"}
    pre = info["preprocessing"]
    assert pre["image_size"] == SIZE and pre["value_range"] == [0.0, 1.0]
    assert pre["mean"] == list(inference.mean) and pre["std"] == list(inference.std)
    assert "bilinear" in pre["resize"]
    outputs = {o["name"]: o for o in info["outputs"]}
    assert list(outputs) == sorted(outputs)
    assert outputs["expr_probs"]["shape"] == ["B", 8]
    assert outputs["expr_probs"]["names"] == list(labels.EXPRESSIONS)
    assert outputs["valence"]["shape"] == ["B"] and "names" not in outputs["valence"]
    if "au_probs" in outputs:
        assert outputs["au_probs"]["names"] == list(labels.AUS)
        np.testing.assert_allclose(outputs["au_probs"]["threshold"], inference.thresholds["au_probs"],
                                   atol=1e-6)
    stored = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    assert json.loads(stored["affectjax"]) == {k: v for k, v in info.items() if k != "check"}


def small_inference(apply, variables=None):
    return inf.Inference(apply=apply, variables=variables or {"w": jnp.float32(2.0)}, image_size=8,
                         mean=(0.5,) * 3, std=(0.5,) * 3, names={}, thresholds={}, origin="test:small")


def test_command_writes_fixed_batch_model_and_sidecar(tmp_path, capsys):
    apply = lambda v, x: {"arousal": jnp.tanh(v["w"] * x.mean((1, 2, 3)))}
    load = lambda run, best: type("P", (), {"inference": small_inference(apply), "method": "tiny"})()
    out = str(tmp_path / "m.onnx")
    assert export.main(["--run", "runs/tiny", "--out", out, "--batch-size", "4"], load=load) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} and {out}.json (tiny, test:small;")
    with open(f"{out}.json", encoding="utf-8") as f:
        info = json.load(f)
    assert info["run"] == "runs/tiny" and info["method"] == "tiny"
    assert info["input"]["shape"] == [4, 8, 8, 3] and info["outputs"][0]["shape"] == [4]
    session = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [4, 8, 8, 3]


def test_unsupported_primitive_is_one_line_naming_run_and_primitive(tmp_path, capsys):
    def apply(v, x):
        doubled = jax.pure_callback(lambda a: np.asarray(a) * 2, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        return {"valence": doubled.mean((1, 2, 3)) * v["w"]}

    load = lambda run, best: type("P", (), {"inference": small_inference(apply), "method": "tiny"})()
    with pytest.raises(SystemExit) as exit_info:
        export.main(["--run", "runs/callback", "--out", str(tmp_path / "m.onnx")], load=load)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot export runs/callback: ")
    assert "primitive 'pure_callback'" in err


def test_missing_jax2onnx_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax2onnx", None)
    with pytest.raises(export.ExportError, match=r'pip install -e "\.\[export\]"'):
        export.export_onnx(small_inference(lambda v, x: {"valence": x.mean((1, 2, 3))}), "unused.onnx")


def test_window_rewrite_matches_reduce_window():
    """Max pools (ResNet stem, SAME and VALID) and sum pools as strided slices: the same values."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 9, 7, 3)), jnp.float32)
    pools = [lambda a: jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1),
                                             ((0, 0), (1, 1), (1, 1), (0, 0))),
             lambda a: jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME"),
             lambda a: jax.lax.reduce_window(a, 0.0, jax.lax.add, (1, 2, 3, 1), (1, 1, 2, 1), "VALID")]
    for pool in pools:
        closed = jax.make_jaxpr(pool)(x)
        assert any(e.primitive.name.startswith("reduce_window") for e in closed.jaxpr.eqns)
        rewritten = jax.make_jaxpr(lambda a: export.inline(closed.jaxpr, closed.consts, a))(x)
        assert not any(e.primitive.name.startswith("reduce_window") for e in rewritten.jaxpr.eqns)
        np.testing.assert_array_equal(export.inline(closed.jaxpr, closed.consts, x)[0], pool(x))
