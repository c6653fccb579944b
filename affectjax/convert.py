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
        [--head-order affectnet|abaw]

writes `DIR/variables/` (an Orbax `StandardCheckpointer` checkpoint of the PyTree
`{"params", "batch_stats"}`) and `DIR/meta.json` (`arch`, `model_kwargs` for
`affectjax.models.create`, `source`, `head_order`). `load_converted(DIR)` reads both back.
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

from affectjax import models

# MT-EmotiEffNet head: ABAW expression i is the authors' (AffectNet-order) logit AFFECTNET_TO_ABAW[i].
# AffectNet: Neutral, Happy, Sad, Surprise, Fear, Disgust, Anger, Contempt.
# ABAW:      Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other (<- Contempt).
AFFECTNET_TO_ABAW = (0, 6, 5, 4, 1, 2, 3, 7)

TIMM_NAMES = tuple(n for n in models.MODELS if "efficientnet" in n) + ("emotieffnet",)
TORCHVISION_NAMES = ("resnet18",)
_CLASSIFIER_KEY = {"resnet18": "fc.weight"}


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
        raise KeyError(f"from_timm: model {name!r} has no timm layout; choices: {list(TIMM_NAMES)}")
    return convert_state_dict(state_dict, name, **kwargs)


def from_torchvision(state_dict: Mapping[str, Any], name: str, **kwargs: Any) -> dict[str, Any]:
    """Converts a torchvision ResNet state dict; see `convert_state_dict`."""
    if name not in TORCHVISION_NAMES:
        raise KeyError(f"from_torchvision: model {name!r} has no torchvision layout; choices: {list(TORCHVISION_NAMES)}")
    return convert_state_dict(state_dict, name, **kwargs)


def head_to_abaw(variables: dict[str, Any]) -> dict[str, Any]:
    """Reorders an MT-EmotiEffNet head's 8 expression outputs from AffectNet to ABAW order.

    Args:
        variables: converted `emotieffnet` variables (classifier with 8 + 2 outputs).

    Returns:
        The same variables with the classifier's expression columns permuted by
        `AFFECTNET_TO_ABAW`; valence/arousal columns unchanged.
    """
    head = variables["params"]["classifier"]
    n = head["kernel"].shape[-1]
    if n != len(AFFECTNET_TO_ABAW) + 2:
        raise ValueError(f"head_to_abaw needs an 8 + 2 output head, got {n} outputs")
    order = jnp.asarray(AFFECTNET_TO_ABAW + (8, 9))
    new_head = {"kernel": head["kernel"][:, order], "bias": head["bias"][order]}
    params = {**variables["params"], "classifier": new_head}
    return {**variables, "params": params}


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
        choices=("affectnet", "abaw"),
        default="affectnet",
        help="emotieffnet only: keep the authors' AffectNet expression order or permute it to ABAW order",
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
    path = save_converted(args.out, variables, meta)
    n = sum(x.size for x in jax.tree.leaves(variables["params"]))
    print(f"wrote {path} ({args.arch}, {n:,} parameters) and meta.json")
    return path


if __name__ == "__main__":
    main()
