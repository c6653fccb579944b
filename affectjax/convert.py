"""PyTorch (timm / torchvision) weights -> affectjax Flax variables, and a command to do it.

Parameter names of `affectjax.models` mirror the PyTorch state-dict keys: a key is split at
its dots, every numeric part is joined to the part before it with `_`, and the leaf is
renamed. So `blocks.1.0.conv_dw.weight` -> `params/blocks_1_0/conv_dw/kernel` and
`layer2.0.downsample.1.running_var` -> `batch_stats/layer2_0/downsample_1/var`.

| PyTorch leaf | Flax leaf | transform |
|---|---|---|
| conv `weight` (O, I/g, kh, kw) | `kernel` (kh, kw, I/g, O) | transpose (2, 3, 1, 0); depthwise: (C, 1, k, k) -> (k, k, 1, C) |
| 1x1 conv `weight` into a dense layer (SE) | `kernel` (I, O) | `w[:, :, 0, 0].T` |
| linear `weight` (O, I) | `kernel` (I, O) | transpose |
| BN `weight`, `bias` | `scale`, `bias` | - |
| BN `running_mean`, `running_var` | `batch_stats` `mean`, `var` | - |
| `num_batches_tracked` | - | ignored |

Every unmatched PyTorch key, every Flax variable left unfilled and every shape mismatch is
reported together in one `ConversionError`.

Command line (a state dict or a whole pickled model, e.g. the MT-EmotiEffNet authors'
`torch.save(model)` files):

    python -m affectjax.convert SRC.pt --arch emotieffnet --out DIR [--num-classes N]
        [--head-order alphabetical|abaw]

`--arch` is a timm name (`TIMM_NAMES`: the EfficientNets and `emotieffnet`) or a
torchvision one (`TORCHVISION_NAMES`: `resnet18`, `resnet34`, `resnet50`).

writes `DIR/variables/` (an Orbax `StandardCheckpointer` checkpoint of the PyTree
`{"params", "batch_stats"}`) and `DIR/meta.json` (`arch`, `model_kwargs` for
`affectjax.models.create`, `source`, and for `emotieffnet` `head_order` and
`expressions`). `load_converted(DIR)` reads both back.

Expression order of the authors' released MT-EmotiEffNet heads (e.g. `enet_b0_8_va_mtl`):
they were trained with an ImageFolder-style `class_to_idx`, so their expression logits are
in alphabetical order, `RELEASED_EXPRESSIONS` (the `idx_to_class` of the authors'
hsemotion / EmotiEffLib inference code), not AffectNet's code order. `--head-order
alphabetical` (default) keeps that order; `--head-order abaw` permutes the head into
affectjax's ABAW order (`head_to_abaw`). `meta.json` records `head_order` and the source
class of every expression column (`expressions`); `meta_head_order` reads it back.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from affectjax import labels
from affectjax import models
from affectjax import registry

RELEASED_EXPRESSIONS: tuple[str, ...] = (
    "Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
"""Expression logits 0-7 of the authors' released 8-class MT-EmotiEffNet / EmotiEffNet
checkpoints (e.g. `enet_b0_8_va_mtl`, `enet_b0_8_best_afew`): alphabetical, as the
ImageFolder-style `class_to_idx` they were trained with gives, and as the `idx_to_class`
of the authors' hsemotion / EmotiEffLib inference code lists them."""

RELEASED_EXPRESSIONS_7: tuple[str, ...] = (
    "Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
"""Expression logits 0-6 of the authors' released 7-class checkpoints (e.g.
`enet_b0_7`): `RELEASED_EXPRESSIONS` without Contempt (their 7-class `idx_to_class`)."""

ABAW_EXPRESSIONS: tuple[str, ...] = labels.EXPRESSIONS
"""affectjax's expression order (`affectjax.labels.EXPRESSIONS`)."""

RELEASED_TO_ABAW: tuple[int, ...] = (5, 0, 2, 3, 4, 6, 7, 1)
"""ABAW expression i is released (alphabetical) logit `RELEASED_TO_ABAW[i]`; Contempt (1)
stands in for Other, which the released models do not have."""

RELEASED_7_TO_ABAW: tuple[int, ...] = (4, 0, 1, 2, 3, 5, 6)
"""For a 7-class released head: ABAW expression i < 7 is logit `RELEASED_7_TO_ABAW[i]`;
there is no logit for ABAW Other (7)."""

HEAD_ORDERS = ("alphabetical", "abaw")
_LEGACY_HEAD_ORDERS = {"affectnet": "alphabetical"}  # earlier name of the unpermuted order

TIMM_NAMES = tuple(n for n in models.MODELS if "efficientnet" in n) + ("emotieffnet",)
TORCHVISION_NAMES = ("resnet18", "resnet34", "resnet50")
_CLASSIFIER_KEY = {name: "fc.weight" for name in TORCHVISION_NAMES}


class ConversionError(ValueError):
    """A state dict does not fit the model; the message lists every offending key."""


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def _flax_path(key: str) -> tuple[tuple[str, ...], str]:
    """`'blocks.1.0.conv_dw.weight'` -> (('blocks_1_0', 'conv_dw'), 'weight')."""
    parts: list[str] = []
    for part in key.split("."):
        if part.isdigit() and parts:
            parts[-1] = f"{parts[-1]}_{part}"
        else:
            parts.append(part)
    return tuple(parts[:-1]), parts[-1]


def _transform(value: np.ndarray, target_ndim: int) -> np.ndarray:
    if value.ndim == 4 and target_ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 4 and target_ndim == 2:
        return value[:, :, 0, 0].T
    if value.ndim == 2 and target_ndim == 2:
        return value.T
    return value


def _model_kwargs(state: Mapping[str, np.ndarray], name: str, num_classes: int | None) -> dict[str, Any]:
    key = _CLASSIFIER_KEY.get(name, "classifier.weight")
    if num_classes is None:
        num_classes = int(state[key].shape[0]) if key in state else 0
    if name == "emotieffnet":
        return {"num_expressions": num_classes - 2}
    return {"num_classes": num_classes}


def convert_state_dict(
    state_dict: Mapping[str, Any], name: str, *, num_classes: int | None = None, **model_kwargs: Any
) -> dict[str, Any]:
    """Maps a PyTorch state dict onto the variables of `affectjax.models.create(name, ...)`.

    Args:
        state_dict: key -> torch tensor or numpy array.
        name: registered model name.
        num_classes: classifier size; default: read from the state dict (0 if it has none).
        **model_kwargs: further `create` arguments that change shapes (e.g. `backbone`).

    Returns:
        `{"params": ..., "batch_stats": ...}` of float32 jax arrays.

    Raises:
        ConversionError: listing unmatched PyTorch keys, missing Flax variables and shape
            mismatches, all at once.
    """
    state = {k: _to_numpy(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    kwargs = {**_model_kwargs(state, name, num_classes), **model_kwargs}
    model = models.create(name, **kwargs)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False))
    target = traverse_util.flatten_dict(shapes)
    leaf_map = {
        "weight": (("params", "kernel"), ("params", "scale")),
        "bias": (("params", "bias"),),
        "running_mean": (("batch_stats", "mean"),),
        "running_var": (("batch_stats", "var"),),
    }
    out: dict[tuple[str, ...], jax.Array] = {}
    unmatched, misshaped, misshaped_paths = [], [], set()
    for key, value in state.items():
        module, leaf = _flax_path(key)
        candidates = [(c, *module, l) for c, l in leaf_map.get(leaf, ())]
        path = next((p for p in candidates if p in target), None)
        if path is None:
            unmatched.append(key)
            continue
        converted = _transform(value, len(target[path].shape))
        if converted.shape != tuple(target[path].shape):
            misshaped.append(f"{key} {tuple(value.shape)} -> {'/'.join(path)} expects {tuple(target[path].shape)}")
            misshaped_paths.add(path)
            continue
        out[path] = jnp.asarray(converted)
    missing = ["/".join(p) for p in target if p not in out and p not in misshaped_paths]
    if unmatched or missing or misshaped:
        lines = [f"state dict does not fit model {name!r} ({kwargs}):"]
        if unmatched:
            lines.append(f"  unmatched PyTorch keys ({len(unmatched)}): {unmatched}")
        if missing:
            lines.append(f"  missing Flax variables ({len(missing)}): {missing}")
        if misshaped:
            lines.append(f"  shape mismatches ({len(misshaped)}): {misshaped}")
        raise ConversionError("\n".join(lines))
    return traverse_util.unflatten_dict(out)


def from_timm(state_dict: Mapping[str, Any], name: str, **kwargs: Any) -> dict[str, Any]:
    """Converts a timm EfficientNet (or MT-EmotiEffNet) state dict; see `convert_state_dict`."""
    if name not in TIMM_NAMES:
        raise registry.unknown_name_error("timm model", name, TIMM_NAMES)
    return convert_state_dict(state_dict, name, **kwargs)


def from_torchvision(state_dict: Mapping[str, Any], name: str, **kwargs: Any) -> dict[str, Any]:
    """Converts a torchvision ResNet state dict; see `convert_state_dict`."""
    if name not in TORCHVISION_NAMES:
        raise registry.unknown_name_error("torchvision model", name, TORCHVISION_NAMES)
    return convert_state_dict(state_dict, name, **kwargs)


def head_to_abaw(variables: dict[str, Any]) -> dict[str, Any]:
    """Reorders a released MT-EmotiEffNet head's expression outputs into ABAW order.

    The released heads list their expressions alphabetically (`RELEASED_EXPRESSIONS`,
    the authors' `idx_to_class`).

    * 8 + 2 outputs: expression columns permuted by `RELEASED_TO_ABAW` into Neutral,
      Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other, with Contempt's column
      in Other's place.
    * 7 + 2 outputs (`RELEASED_EXPRESSIONS_7`, no Contempt): permuted by
      `RELEASED_7_TO_ABAW` into the first 7 ABAW classes (Neutral ... Surprise), so ABAW
      class i < 7 is column i. The head stays 7 + 2: ABAW Other has no logit (none is
      invented), so the model never predicts Other and code that needs all 8 ABAW
      logits must not use it.

    Valence/arousal (the last two columns) are unchanged.

    Args:
        variables: converted `emotieffnet` variables of a released checkpoint.

    Returns:
        The same variables with the classifier's expression columns permuted.

    Raises:
        ValueError: the classifier has neither 8 + 2 nor 7 + 2 outputs.
    """
    head = variables["params"]["classifier"]
    n = head["kernel"].shape[-1]
    perms = {len(RELEASED_TO_ABAW) + 2: RELEASED_TO_ABAW, len(RELEASED_7_TO_ABAW) + 2: RELEASED_7_TO_ABAW}
    if n not in perms:
        raise ValueError(f"head_to_abaw needs a released 8 + 2 or 7 + 2 output head, got {n} outputs")
    order = jnp.asarray(perms[n] + (n - 2, n - 1))
    new_head = {"kernel": head["kernel"][:, order], "bias": head["bias"][order]}
    params = {**variables["params"], "classifier": new_head}
    return {**variables, "params": params}


def head_expressions(num_expressions: int, head_order: str) -> list[str] | None:
    """Source class of each expression column of a converted released head, or None.

    `head_order="alphabetical"`: `RELEASED_EXPRESSIONS` (8) / `RELEASED_EXPRESSIONS_7` (7);
    `"abaw"`: those names in ABAW order (Contempt last, in Other's place). None for
    other head sizes, whose classes are not the released ones.
    """
    released = {8: (RELEASED_EXPRESSIONS, RELEASED_TO_ABAW), 7: (RELEASED_EXPRESSIONS_7, RELEASED_7_TO_ABAW)}
    if num_expressions not in released:
        return None
    names, perm = released[num_expressions]
    return [names[i] for i in perm] if head_order == "abaw" else list(names)


def meta_head_order(meta: Mapping[str, Any]) -> str | None:
    """The expression order of a converted checkpoint's head, from its `meta.json` dict.

    Returns:
        `"alphabetical"` (the released order, unpermuted; also the earlier meta value
        `"affectnet"`, which never permuted the head), `"abaw"`, or None (no `head_order`:
        not an `emotieffnet` conversion, e.g. a trainer run, which is in ABAW order).

    Raises:
        ValueError: `head_order` is `"abaw"` but `expressions` is absent: the checkpoint
            was permuted by an earlier version of this module, which assumed AffectNet
            code order and so put wrong columns in ABAW places; reconvert it.
    """
    order = meta.get("head_order")
    if order is None:
        return None
    order = _LEGACY_HEAD_ORDERS.get(order, order)
    if order not in HEAD_ORDERS:
        raise ValueError(f"meta.json head_order={order!r}; expected one of {list(HEAD_ORDERS)}")
    if order == "abaw" and "expressions" not in meta:
        raise ValueError("meta.json head_order='abaw' without 'expressions': permuted by an earlier "
                         "affectjax.convert that assumed AffectNet order (wrong columns); reconvert with "
                         "python -m affectjax.convert SRC.pt --arch emotieffnet --head-order abaw")
    return order


def load_torch_file(path: str) -> dict[str, Any]:
    """Reads a `.pt`/`.pth` file holding a state dict, a whole pickled `nn.Module`, or a dict
    with a `state_dict`/`model` entry; returns the state dict."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and not isinstance(obj[key], torch.Tensor):
                inner = obj[key]
                return inner.state_dict() if isinstance(inner, torch.nn.Module) else dict(inner)
        return obj
    raise ConversionError(f"{path}: expected a state dict or a pickled torch.nn.Module, got {type(obj).__name__}")


def save_converted(directory: str, variables: dict[str, Any], meta: dict[str, Any]) -> str:
    """Writes `directory/variables` (Orbax) and `directory/meta.json`; returns the variables path."""
    import orbax.checkpoint as ocp

    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "variables")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, variables, force=True)
    checkpointer.wait_until_finished()
    with open(os.path.join(directory, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return path


def load_converted(directory: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads a directory written by `save_converted` / the command line.

    Returns:
        `(variables, meta)`: `{"params", "batch_stats"}` and the `meta.json` dict (with
        `arch` and `model_kwargs`, so `models.create(meta["arch"], **meta["model_kwargs"])`
        builds the matching module).
    """
    import orbax.checkpoint as ocp

    directory = os.path.abspath(directory)
    meta_path = os.path.join(directory, "meta.json")
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f"{meta_path} not found: not a directory written by affectjax.convert")
    with open(meta_path) as f:
        meta = json.load(f)
    variables = ocp.StandardCheckpointer().restore(os.path.join(directory, "variables"))
    return dict(variables), meta


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m affectjax.convert", description=__doc__.split("\n")[0])
    parser.add_argument("src", help="PyTorch file: state dict or whole pickled model")
    parser.add_argument("--arch", required=True, choices=TIMM_NAMES + TORCHVISION_NAMES)
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num-classes", type=int, default=None, help="default: read from the file")
    parser.add_argument("--backbone", default=None, help="emotieffnet only: backbone name (default tf_efficientnet_b0)")
    parser.add_argument(
        "--head-order",
        choices=HEAD_ORDERS,
        default="alphabetical",
        help="emotieffnet only: 'alphabetical' keeps the released checkpoints' expression order "
        "(Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise); 'abaw' permutes "
        "it to ABAW order (Contempt as Other; a 7-class head maps onto the 7 ABAW classes before Other)",
    )
    args = parser.parse_args(argv)
    state = load_torch_file(args.src)
    numpy_state = {k: _to_numpy(v) for k, v in state.items()}
    extra = {}
    if args.backbone is not None:
        if args.arch != "emotieffnet":
            raise SystemExit("--backbone applies to --arch emotieffnet only")
        extra["backbone"] = args.backbone
    model_kwargs = {**_model_kwargs(numpy_state, args.arch, args.num_classes), **extra}
    convert = from_torchvision if args.arch in TORCHVISION_NAMES else from_timm
    variables = convert(numpy_state, args.arch, num_classes=args.num_classes, **extra)
    if args.head_order == "abaw":
        if args.arch != "emotieffnet":
            raise SystemExit("--head-order abaw applies to --arch emotieffnet only")
        variables = head_to_abaw(variables)
    meta = {
        "arch": args.arch,
        "model_kwargs": model_kwargs,
        "source": os.path.basename(args.src),
        "head_order": args.head_order if args.arch == "emotieffnet" else None,
    }
    if args.arch == "emotieffnet":
        meta["expressions"] = head_expressions(model_kwargs["num_expressions"], args.head_order)
    path = save_converted(args.out, variables, meta)
    n = sum(x.size for x in jax.tree.leaves(variables["params"]))
    print(f"wrote {path} ({args.arch}, {n:,} parameters) and meta.json")
    return path


if __name__ == "__main__":
    main()
