"""Frozen MT-EmotiEffNet features: batched, jitted extraction and an npz cache per split.

MT-EmotiEffNet (paper 1, Sec. 2.1 and 3.2) trains its MTL heads on features of the frozen
network: the D-dimensional penultimate embedding ``x`` and the 10 logits ``l`` (8
expression scores, valence, arousal). `extract` runs the backbone once over a split in
evaluation mode (padded batches, one compilation) and keeps, per face, ``embedding``
(N, D) float32, ``logits`` (N, L) float32 and the labels of the data contract: ``expr``
(N,) int32 (-1 missing), ``va`` (N, 2) float32 with ``va_mask`` (N,) bool, ``au`` (N, 12)
int32 (-1 missing). Labels a data set lacks are filled as missing.

`extract_splits` writes one ``<out>/<split>.npz`` per split with a JSON ``meta`` entry
(model, data and weights); a rerun with the same meta reuses the file, another meta
re-extracts. `FeatureSource` opens cached arrays as a random-access source (data contract:
deterministic per index) for `affectjax.data.pipeline`-style loaders.

Weights come from a converted checkpoint (``python -m affectjax.convert``, ``--checkpoint``)
or a trainer run directory (``--workdir``: ``best/`` if present, else the latest
checkpoint)::

    python -m affectjax.methods.emotieffnet.features --config configs/mtl_heads_synthfaces.py \\
        --workdir runs/quickstart --out runs/features
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from affectjax.labels import NUM_AUS

FEATURE_KEYS = ("embedding", "logits")
LABEL_KEYS = ("expr", "va", "va_mask", "au")


def _missing_labels(n: int) -> dict[str, np.ndarray]:
    return {"expr": np.full((n,), -1, np.int32), "va": np.zeros((n, 2), np.float32),
            "va_mask": np.zeros((n,), bool), "au": np.full((n, NUM_AUS), -1, np.int32)}


def _labels(batch: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    out = _missing_labels(n)
    for key in LABEL_KEYS:
        if key in batch:
            out[key] = np.asarray(batch[key]).astype(out[key].dtype).reshape(out[key].shape)
    return out


def extract(feature_fn: Callable[[Any, Any], Mapping[str, Any]], variables: Any,
            batches: Iterable[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Features and labels of every valid row of `batches`.

    Args:
      feature_fn: ``fn(variables, images) -> {"embedding", "logits"}``, e.g.
        `affectjax.models.make_feature_fn` (jitted; fixed batch shapes compile once).
      variables: the backbone's ``{"params", "batch_stats"}``.
      batches: evaluation batches with ``image`` (B, H, W, 3) normalised and optionally
        ``valid`` (B,) bool (padding rows are dropped) and contract labels.

    Returns:
      ``{"embedding", "logits", "expr", "va", "va_mask", "au"}`` numpy arrays (see the
      module docstring).
    """
    parts: list[dict[str, np.ndarray]] = []
    pending = None
    for batch in batches:
        if "image" not in batch:
            raise ValueError(f"extract: batch has no 'image' (keys {sorted(batch)})")
        feats = feature_fn(variables, batch["image"])  # Dispatched asynchronously.
        if pending is not None:
            parts.append(_finish(*pending))
        pending = (feats, batch)
    if pending is not None:
        parts.append(_finish(*pending))
    if not parts:
        raise ValueError("extract: no batches")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _finish(feats: Mapping[str, Any], batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
    feats = jax.device_get(feats)
    n = np.asarray(batch["image"]).shape[0]
    keep = np.asarray(batch["valid"], bool) if "valid" in batch else np.ones(n, bool)
    out = {k: np.asarray(feats[k], np.float32)[keep] for k in FEATURE_KEYS}
    out.update({k: v[keep] for k, v in _labels(batch, n).items()})
    return out


def save_cache(path: str, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> str:
    """Writes `arrays` and the JSON `meta` to ``path`` (npz; written then renamed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez(tmp, meta=np.asarray(json.dumps(dict(meta), sort_keys=True)), **arrays)
    os.replace(tmp, path)
    return path


def load_cache(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``(arrays, meta)`` of a cache written by `save_cache`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no feature cache at {path}")
    with np.load(path) as data:
        meta = json.loads(str(data["meta"])) if "meta" in data else {}
        arrays = {k: data[k] for k in data.files if k != "meta"}
    missing = [k for k in FEATURE_KEYS + LABEL_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: feature cache lacks {missing}")
    return arrays, meta


class FeatureSource:
    """Cached features as a random-access source of examples (data contract).

    Args:
      arrays: ``{"embedding", "logits", "expr", "va", "va_mask", "au"}`` with a common
        first axis (`extract` / `load_cache` output).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        sizes = {k: len(v) for k, v in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays: first dimensions differ: {sizes}")
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self._n = next(iter(sizes.values()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {k: v[int(index)] for k, v in self.arrays.items()}

    def __getitems__(self, indices) -> list[dict[str, np.ndarray]]:
        return [self[i] for i in indices]

    def labels(self, key: str) -> np.ndarray:
        """All values of ``key`` (as `affectjax.data.pipeline.Source.labels`)."""
        return self.arrays[key]

    def batch(self, indices) -> dict[str, np.ndarray]:
        """The rows `indices` of every array."""
        idx = np.asarray(indices, np.int64)
        return {k: v[idx] for k, v in self.arrays.items()}


def _as_dict(value: Any) -> dict[str, Any]:
    return value.to_dict() if hasattr(value, "to_dict") else dict(value or {})


def load_backbone(model_config: Mapping[str, Any], *, checkpoint: str = "",
                  workdir: str = "", sample: Any = None, seed: int = 0,
                  ) -> tuple[Any, dict[str, Any], str]:
    """The backbone module, its variables and a description of where they came from.

    Args:
      model_config: ``{"name": ..., **kwargs}`` for `affectjax.models.create`.
      checkpoint: a directory of ``python -m affectjax.convert`` (its ``meta.json`` model
        wins over `model_config`).
      workdir: a trainer run directory (``best/`` if present, else ``checkpoints/``).
      sample: images (1, H, W, 3) for a random initialisation when neither is given
        (tests, or features of an untrained network as a baseline).
      seed: seed of that random initialisation.

    Returns:
      ``(model, variables, origin)``.

    Raises:
      DataError: the workdir's checkpoint is damaged (one line naming its path).
    """
    from affectjax import models  # pylint: disable=import-outside-toplevel

    kwargs = _as_dict(model_config)
    name = kwargs.pop("name", "emotieffnet")
    if checkpoint and workdir:
        raise ValueError("give either checkpoint or workdir, not both")
    if checkpoint:
        from affectjax import convert  # pylint: disable=import-outside-toplevel
        variables, meta = convert.load_converted(checkpoint)
        name, kwargs = meta.get("arch", name), dict(meta.get("model_kwargs", kwargs))
        origin = f"checkpoint:{os.path.abspath(checkpoint)}"
    elif workdir:
        # A damaged checkpoint is a DataError, never a fall-back to other weights: best/
        # keeps one checkpoint, and the feature cache is keyed by the workdir.
        from affectjax.train import checkpoint as checkpoints  # pylint: disable=import-outside-toplevel
        variables, origin = checkpoints.restore_run_variables(workdir)
    else:
        if sample is None:
            raise ValueError("load_backbone: no checkpoint, workdir or sample to initialise")
        model = models.create(name, **kwargs)
        variables = jax.jit(lambda r, x: model.init(r, x, train=False))(
            jax.random.PRNGKey(seed), sample)
        return model, jax.device_get(variables), f"random:{seed}"
    model = models.create(name, **kwargs)
    variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats")}
    check_matches(model, variables, origin)
    return model, variables, origin


def require_abaw_head(checkpoint: str, key: str) -> dict[str, Any]:
    """Checks that a converted checkpoint's expression head is in ABAW order.

    The authors' released heads are alphabetical (`affectjax.convert.RELEASED_EXPRESSIONS`);
    anything that reads the backbone's own expression scores as ABAW classes needs the
    head converted with ``--head-order abaw``.

    Args:
      checkpoint: a ``python -m affectjax.convert`` directory.
      key: the config key that named it, for the error message.

    Returns:
      The checkpoint's ``meta.json``.

    Raises:
      ConfigError: one line, for an alphabetical head or one permuted by an earlier
        version of the converter.
    """
    from affectjax import convert  # pylint: disable=import-outside-toplevel
    from affectjax.train.errors import ConfigError  # pylint: disable=import-outside-toplevel
    with open(os.path.join(checkpoint, "meta.json")) as f:
        meta = json.load(f)
    try:
        order = convert.meta_head_order(meta)
    except ValueError as err:
        raise ConfigError(f"{key}={checkpoint}: {err}") from None
    if order == "alphabetical":
        raise ConfigError(f"{key}={checkpoint} has the released checkpoints' alphabetical "
                          "expression order; its expression scores are read in ABAW order "
                          "here: convert it with --head-order abaw")
    return meta


def check_matches(model: Any, variables: Mapping[str, Any], origin: str) -> None:
    """Raises ValueError (one line) unless `variables` has exactly `model`'s parameter shapes.

    Shapes come from `jax.eval_shape` of ``model.init`` (nothing is computed), so a config
    whose model differs from the checkpoint's (another width, depth or head) is named here
    rather than deep inside ``apply``.
    """
    from flax import traverse_util  # pylint: disable=import-outside-toplevel

    sample = jnp.zeros((1, 32, 32, 3), jnp.float32)
    expected = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), sample, train=False))
    want = traverse_util.flatten_dict(expected["params"], sep="/")
    got = {k: np.shape(v) for k, v in
           traverse_util.flatten_dict(dict(variables["params"]), sep="/").items()}
    problems = [f"{k} missing" for k in sorted(set(want) - set(got))]
    problems += [f"{k} unexpected" for k in sorted(set(got) - set(want))]
    problems += [f"{k} has shape {got[k]} in the checkpoint, {tuple(want[k].shape)} in the model"
                 for k in sorted(set(want) & set(got)) if tuple(want[k].shape) != got[k]]
    if problems:
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more"
                                            if len(problems) > 3 else "")
        raise ValueError(f"the model config does not match {origin}: {shown}")


def extract_splits(config: Any, out: str, *, splits: Iterable[str] | None = None,
                   checkpoint: str = "", workdir: str = "",
                   ) -> dict[str, dict[str, np.ndarray]]:
    """Extracts (or reuses) the features of each split into ``<out>/<split>.npz``.

    Args:
      config: a config with ``backbone`` (model section), ``data`` (as
        `affectjax.data.pipeline.default_config`), ``features.splits``,
        ``features.batch_size`` and optionally ``features.checkpoint`` /
        ``features.workdir`` (overridden by the arguments).
      out: cache directory.
      splits: split names (default ``config.features.splits``).
      checkpoint, workdir: see `load_backbone`.

    Returns:
      ``{split: arrays}``.
    """
    from affectjax.data import pipeline  # pylint: disable=import-outside-toplevel
    from affectjax.models import make_feature_fn  # pylint: disable=import-outside-toplevel

    fcfg = config.features
    checkpoint = checkpoint or fcfg.get("checkpoint", "")
    workdir = workdir or fcfg.get("workdir", "")
    splits = tuple(splits or fcfg.splits)
    data_cfg = config.data
    loaders = {}
    model = variables = feature_fn = origin = None
    result = {}
    for split in splits:
        path = os.path.join(out, f"{split}.npz")
        want = {"split": split, "backbone": _as_dict(config.backbone),
                "data": {k: _as_dict(data_cfg[k]) if hasattr(data_cfg[k], "keys") else
                         data_cfg[k] for k in ("name", "builder_kwargs", "image_size",
                                               "mean", "std", "manual_dir")},
                "weights": checkpoint and f"checkpoint:{os.path.abspath(checkpoint)}"
                or workdir and f"workdir:{os.path.abspath(workdir)}" or
                f"random:{config.get('seed', 0)}"}
        want = json.loads(json.dumps(want, sort_keys=True))
        if os.path.exists(path):
            arrays, meta = load_cache(path)
            if meta.get("key") == want:
                result[split] = arrays
                continue
        source = pipeline.create_source(data_cfg, split)
        loaders[split] = pipeline.Loader(source, batch_size=int(fcfg.batch_size),
                                         shuffle=False, train=False, data_config=data_cfg)
        if model is None:
            sample = next(iter(loaders[split].eval_batches()))["image"][:1]
            model, variables, origin = load_backbone(
                config.backbone, checkpoint=checkpoint, workdir=workdir, sample=sample,
                seed=config.get("seed", 0))
            feature_fn = make_feature_fn(model)
        arrays = extract(feature_fn, variables, loaders[split].eval_batches())
        save_cache(path, arrays, {"key": want, "origin": origin, "num_examples":
                                  int(len(arrays["expr"]))})
        result[split] = arrays
    return result


def main(argv: list[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``python -m affectjax.methods.emotieffnet.features --config FILE [--checkpoint DIR | --workdir DIR] --out DIR``."""
    parser = argparse.ArgumentParser(prog="python -m affectjax.methods.emotieffnet.features",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="config file with get_config()")
    parser.add_argument("--checkpoint", default="", help="converted checkpoint directory")
    parser.add_argument("--workdir", default="", help="trainer run directory")
    parser.add_argument("--out", required=True, help="cache directory (one npz per split)")
    parser.add_argument("--splits", default="", help="comma-separated (default: config)")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    splits = [s for s in args.splits.split(",") if s] or None
    result = extract_splits(config, args.out, splits=splits, checkpoint=args.checkpoint,
                            workdir=args.workdir)
    for split, arrays in result.items():
        print(f"{split}: {len(arrays['expr'])} faces, embedding {arrays['embedding'].shape[1]}"
              f"-d, logits {arrays['logits'].shape[1]}-d -> {os.path.join(args.out, split)}.npz")
    return result


def load_config(path: str) -> Any:
    """``get_config()`` of a config file, with an optional ``:arg`` suffix."""
    import importlib.util  # pylint: disable=import-outside-toplevel

    path, _, arg = path.partition(":")
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file {path} not found")
    spec = importlib.util.spec_from_file_location("_affectjax_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


if __name__ == "__main__":
    main()
