"""ONNX export of a trained run's inference function, for ONNX Runtime (C++, C#, ...).

    python -m affectjax.export --run runs/quickstart --out model.onnx       # best checkpoint
    python -m affectjax.export --run runs/quickstart --out model.onnx --latest --batch-size 8

Needs ``pip install -e ".[export]"``. Input ``images``: float32 (B, S, S, 3), NHWC, RGB in
[0, 1] normalised with the run's mean and std (B symbolic unless ``--batch-size``); outputs:
the fields of the run's `affectjax.train.inference.Inference`, sorted. The sidecar
``<out>.json`` (also the model's metadata ``affectjax``) gives the preprocessing, each
output's shape, meaning, names and threshold, and |ONNX Runtime - JAX| on random images.
The function is traced to a jaxpr whose calls are inlined (custom VJPs: the forward pass;
per-device kernel choices: the portable XLA operations) and whose windowed max/sum reductions become maxima/sums of strided slices (jax2onnx makes
4-D poolings of them, which ONNX Runtime rejects); jax2onnx converts that. A primitive it
cannot convert ends the command with one ``error:`` line naming it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import re
import sys
from importlib import metadata
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.extend.core as jex
import jax.numpy as jnp
import numpy as np
from jax import export as jax_export

from affectjax.train.errors import UserError, one_line
from affectjax.train.inference import Inference

DEFAULT_OPSET, INPUT = 23, "images"
_dims = lambda shape: [d if isinstance(d, int) else str(d) for d in shape]  # "B" symbolic
_CALLS = {"jit", "pjit", "closed_call", "core_call", "checkpoint", "remat",
          "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr"}
MEANINGS = {"expr_probs": "expression probabilities (softmax); the expression is the argmax",
            "valence": "valence in [-1, 1]", "arousal": "arousal in [-1, 1]",
            "au_probs": "AU probabilities; an AU is present where au_probs >= its threshold",
            "attr_probs": "attribute probabilities; present where attr_probs >= its threshold",
            "landmarks": "(x, y) in pixels of the S x S input", "parsing": "Helen class per pixel"}


class ExportError(UserError):
    """A model or environment that the exporter cannot handle (one line)."""


def trace(inference: Inference, batch_size: int | None = None):
    """``(jaxpr, spec, fields)``: `inference` with its variables as constants, as a
    ClosedJaxpr from ``images`` (`spec`) to its fields in sorted order."""
    batch = jax_export.symbolic_shape("B")[0] if batch_size is None else int(batch_size)
    spec = jax.ShapeDtypeStruct((batch, *(int(inference.image_size),) * 2, 3), jnp.float32)
    try:
        closed, shapes = jax.make_jaxpr(lambda x: inference.apply(inference.variables, x),
                                        return_shape=True)(spec)
    except Exception as exc:  # pylint: disable=broad-except
        hint = " (give a fixed --batch-size)" if batch_size is None else ""
        raise ExportError(f"tracing with batch {batch}{hint} failed: {one_line(exc)}") from exc
    return closed, spec, tuple(sorted(shapes))


def _pad(x: jax.Array, value: Any, pairs: Sequence[Sequence[int]]) -> jax.Array:
    """lax.pad without interior padding, as `jnp.pad` where it can be: jax2onnx converts
    ``jnp.pad`` with a symbolic batch size, ``lax.pad`` only with a fixed one."""
    if all(lo >= 0 and hi >= 0 for lo, hi in pairs) and not isinstance(value, jax.core.Tracer):
        return jnp.pad(x, [tuple(p) for p in pairs], constant_values=np.asarray(value).item())
    return jax.lax.pad(x, jnp.asarray(value, x.dtype), [(lo, hi, 0) for lo, hi in pairs])


def _window_taps(x: jax.Array, params: Mapping[str, Any], out_shape: Sequence[Any], add: bool):
    """reduce_window_{sum,max} (no dilation) as the sum/maximum of strided slices."""
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    init = 0 if add else (-jnp.inf if floating else jnp.iinfo(x.dtype).min)
    xp, strides, out = _pad(x, init, params["padding"]), params["window_strides"], None
    for start in itertools.product(*(range(k) for k in params["window_dimensions"])):
        limit = [s + st * (n - 1) + 1 for s, st, n in zip(start, strides, out_shape)]
        tap = jax.lax.slice(xp, start, limit, strides)
        out = tap if out is None else (jax.lax.add(out, tap) if add else jax.lax.max(out, tap))
    return out


def _bind(eqn: Any, ins: Sequence[Any]) -> Sequence[Any]:
    """`eqn` on `ins`, computed now if no input is traced and the output shapes are fixed
    (constant folding, e.g. BatchNorm's scale; padding values for `_pad`)."""
    bound = eqn.primitive.get_bind_params(eqn.params)  # (subfuns, params) before jax 0.7
    subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
    fold = (not any(isinstance(x, jax.core.Tracer) for x in ins)
            and all(isinstance(d, int) for v in eqn.outvars for d in getattr(v.aval, "shape", ())))
    with jax.ensure_compile_time_eval() if fold else contextlib.nullcontext():
        outs = eqn.primitive.bind(*subfuns, *ins, **params)
    return outs if eqn.primitive.multiple_results else [outs]


def _default_branch(platforms: Sequence[Any]) -> int:
    """The index of `lax.platform_dependent`'s default branch (platforms ``None``)."""
    return list(platforms).index(None)


def inline(jaxpr: Any, consts: Sequence[Any], *args: Any) -> list[Any]:
    """Evaluates `jaxpr` with calls inlined and pooling windows rewritten (module docstring)."""
    env: dict[Any, Any] = {**dict(zip(jaxpr.constvars, consts)), **dict(zip(jaxpr.invars, args))}
    read = lambda v: v.val if isinstance(v, jex.Literal) else env[v]
    for eqn in jaxpr.eqns:
        ins, name, p = [read(v) for v in eqn.invars], eqn.primitive.name, eqn.params
        if name in _CALLS:
            sub = p.get("call_jaxpr", p.get("jaxpr"))
            outs = inline(getattr(sub, "jaxpr", sub), getattr(sub, "consts", ()), *ins)
        elif name == "platform_index":  # `affectjax.models.kernels`' per-device choice
            outs = [np.int32(_default_branch(p["platforms"]))]
        elif name == "cond" and p.get("branches_platforms"):  # ... takes XLA's own operations
            branch = p["branches"][_default_branch(p["branches_platforms"])]
            outs = inline(branch.jaxpr, branch.consts, *ins[1:])
        elif name == "pad" and all(i == 0 for _, _, i in p["padding_config"]):
            outs = [_pad(*ins, [(lo, hi) for lo, hi, _ in p["padding_config"]])]
        elif (name in ("reduce_window_max", "reduce_window_sum")
              and set(p["base_dilation"]) | set(p["window_dilation"]) == {1}):
            outs = [_window_taps(ins[0], p, eqn.outvars[0].aval.shape, name == "reduce_window_sum")]
        else:
            outs = _bind(eqn, ins)
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars]


@contextlib.contextmanager
def _quiet():
    """Silences jax2onnx's and onnx_ir's log warnings (other libraries' plugins, value types)."""
    loggers = {lg: lg.level for lg in map(logging.getLogger, ("jax2onnx", "onnx_ir"))}
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in loggers.items():
            lg.setLevel(level)


def failure_reason(exc: BaseException, version: str) -> str:
    """One line saying why jax2onnx could not convert: the primitive when it names one."""
    found = re.search(r"primitive '([^']+)'", str(exc))
    return (f"jax2onnx {version} cannot convert primitive '{found.group(1)}'" if found else
            f"jax2onnx {version} failed: {type(exc).__name__}: {one_line(exc)}"[:400])


def convert(closed: Any, spec: jax.ShapeDtypeStruct, fields: Sequence[str], opset: int):
    """The ONNX ModelProto of `closed` (see `trace`), input ``images``, outputs `fields`."""
    try:
        import jax2onnx  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise ExportError('jax2onnx is not installed: pip install -e ".[export]"') from None
    with _quiet():
        try:
            return jax2onnx.to_onnx(lambda x: tuple(inline(closed.jaxpr, closed.consts, x)), [spec],
                                    model_name="affectjax", opset=opset, input_names=[INPUT],
                                    output_names=list(fields))
        except Exception as exc:  # pylint: disable=broad-except
            raise ExportError(failure_reason(exc, metadata.version("jax2onnx"))) from exc


def _output(field: str, aval: Any, inference: Inference) -> dict[str, Any]:
    meaning = MEANINGS.get(field.removeprefix("member_"), "")
    if field.startswith("member_"):
        meaning = f"per ensemble member (axis 1): {meaning}"
    out = {"name": field, "dtype": str(aval.dtype), "shape": _dims(aval.shape), "meaning": meaning}
    if field in inference.names:
        out["names"] = list(inference.names[field])
    if field in inference.thresholds:
        out["threshold"] = np.round(np.asarray(inference.thresholds[field], np.float64), 6).tolist()
    return out


def sidecar(inference: Inference, closed: Any, fields: Sequence[str], *, opset: int,
            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What an ONNX Runtime user needs around the model (JSON-ready)."""
    preprocessing = {
        "image_size": int(inference.image_size), "value_range": [0.0, 1.0], "scale": "uint8 / 255",
        "resize": "bilinear, half-pixel centres, no antialiasing, whole image (no crop) to "
                  "image_size x image_size (affectjax.data.preprocess.warp)",
        "mean": list(inference.mean), "std": list(inference.std), "normalise": "(x - mean) / std"}
    return {"format": "affectjax-onnx/1", **dict(extra or {}), "origin": inference.origin,
            "opset": opset, "input": {"name": INPUT, "dtype": "float32", "layout": "NHWC",
                                      "channels": "RGB", "shape": _dims(closed.in_avals[0].shape)},
            "preprocessing": preprocessing,
            "outputs": [_output(f, a, inference) for f, a in zip(fields, closed.out_avals)]}


def check(path: str, inference: Inference, batch: int) -> dict[str, float]:
    """Largest |ONNX Runtime - JAX| per output on `batch` random normal images."""
    import onnxruntime  # pylint: disable=import-outside-toplevel
    size = int(inference.image_size)
    x = np.random.default_rng(0).standard_normal((batch, size, size, 3), np.float32)
    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {INPUT: x})))
    except Exception as exc:  # pylint: disable=broad-except
        raise ExportError(f"onnxruntime {onnxruntime.__version__} cannot run it: "
                          f"{one_line(exc)}"[:400]) from exc
    want = jax.device_get(jax.jit(inference.apply)(inference.variables, x))
    return {k: float(np.max(np.abs(got[k] - np.asarray(want[k], got[k].dtype)), initial=0.0))
            for k in sorted(want)}


def export_onnx(inference: Inference, path: str, *, batch_size: int | None = None,
                opset: int = DEFAULT_OPSET, check_outputs: bool = True,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Writes `inference` (e.g. ``predict.load(run).inference``) as the ONNX model `path`;
    returns its sidecar, also written to ``path + ".json"`` (`extra`: more entries).

    `batch_size` fixes the batch (None: symbolic ``B``); `check_outputs` records the largest
    |ONNX Runtime - JAX| per output. Raises `ExportError` (one line): jax2onnx missing, a
    primitive it cannot convert, or a model that ONNX Runtime cannot run."""
    closed, spec, fields = trace(inference, batch_size)
    model = convert(closed, spec, fields, opset)
    info = sidecar(inference, closed, fields, opset=opset, extra=extra)
    import onnx  # pylint: disable=import-outside-toplevel
    onnx.helper.set_model_props(model, {"affectjax": json.dumps(info)})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    onnx.save(model, path)
    if check_outputs:
        diffs = check(path, inference, batch_size or 2)
        info["check"] = {"inputs": "random normal", "max_abs_diff": diffs}
    with open(f"{path}.json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
    return info


def main(argv: Sequence[str] | None = None, *, load: Callable | None = None) -> int:
    """The command; `load` replaces `affectjax.predict.load` (tests pass a fake)."""
    parser = argparse.ArgumentParser(prog="python -m affectjax.export",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a train.py run directory")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--latest", action="store_true", help="the latest checkpoint, not the best")
    parser.add_argument("--batch-size", type=int, help="a fixed batch (default: symbolic)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="18: older runtimes")
    args = parser.parse_args(argv)
    from affectjax import predict  # pylint: disable=import-outside-toplevel
    from affectjax.train.loop import cli_errors  # pylint: disable=import-outside-toplevel
    with cli_errors():
        predictor = (load or predict.load)(args.run, best=not args.latest)
        try:
            extra = {"run": args.run, "method": predictor.method}
            info = export_onnx(predictor.inference, args.out, batch_size=args.batch_size,
                               opset=args.opset, extra=extra)
        except ExportError as exc:
            raise ExportError(f"cannot export {args.run}: {exc}") from None
    diff = max(info["check"]["max_abs_diff"].values(), default=0.0)
    print(f"wrote {args.out} and {args.out}.json ({info['method']}, {info['origin']}; outputs "
          f"{', '.join(o['name'] for o in info['outputs'])}; max |onnxruntime - jax| {diff:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
