"""`load` a trained run and predict on face images: batched, jitted, on every local device.

    from affectjax import predict
    predictor = predict.load("runs/quickstart")       # the best checkpoint
    out = predictor(images)                           # list of (H, W, 3) uint8, any sizes
    out["expr_label"], out["valence"], out["au"]      # NumPy, one row per image

A run directory holds ``config.json`` (written by the trainer) and its checkpoints; the
run's method builds its inference function (`affectjax.train.inference`). Images are
preprocessed exactly as the trainer's evaluation does (`affectjax.data.preprocess`):
scaled to [0, 1], resized to the model's input with the pipeline's bilinear resize (zoom
1: the whole image, no crop), normalised with the run's mean and std.

The outputs are the method's fields (`affectjax.train.inference`: ``expr_probs``,
``valence``, ``arousal``, ``au_probs``, ``attr_probs``, ``landmarks``, ``parsing``,
``member_*``) and, derived here: ``expr`` (argmax) and ``expr_label`` (its name), ``au``
and ``attr`` (0/1 at the run's thresholds), ``member_expr``/``member_expr_label`` for
ensembles. ``landmarks`` are returned in pixels of each given image (the model predicts
them in pixels of its input); ``parsing`` stays at the model's input size.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import jax
import numpy as np

from affectjax.data import preprocess as pp
from affectjax.train import logs
from affectjax.train import sharding
from affectjax.train.errors import ConfigError, DataError, UserError
from affectjax.train.inference import Inference

DEFAULT_BATCH_SIZE = 32
_THRESHOLDED = {"au_probs": "au", "attr_probs": "attr"}
_ROW_ORDER = ("expr_label", "expr", "expr_probs", "valence", "arousal", "au", "au_probs",
              "attr", "attr_probs", "landmarks")


def _predicting_methods() -> list[str]:
    from affectjax import methods  # pylint: disable=import-outside-toplevel
    return sorted(n for n, m in methods.METHODS.items() if m.predictor is not None)


def load(run_dir: str, *, best: bool = True, config: Any = None) -> "Predictor":
    """The predictor of the trained run in `run_dir`.

    Args:
      run_dir: a run directory of ``train.py`` (``--workdir``).
      best: its best checkpoint (``best/``, else the latest); False: the latest.
      config: the run's config (default: ``run_dir/config.json``).

    Raises:
      UserError: no such directory, no config or checkpoint, a damaged checkpoint, or a
        method whose runs cannot predict from images (one line each).
    """
    from affectjax import methods  # pylint: disable=import-outside-toplevel
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: no such run directory (--run)")
    if config is None:
        try:
            config = logs.load_config(run_dir)
        except FileNotFoundError:
            raise UserError(f"{run_dir}: no {logs.CONFIG_FILE}; is it a train.py run "
                            "directory? (for a run trained before the trainer wrote it, "
                            "give its config: --config FILE, or config= in Python)") from None
        except ValueError as exc:
            raise DataError(str(exc)) from None
    name = config.get("method", "")
    try:
        method = methods.get_method(name)
    except KeyError as exc:
        raise ConfigError(f"{run_dir}: config.method: {exc.args[0]}") from None
    if method.specialize is not None:
        method = method.specialize(config)
    if method.predictor is None:
        raise UserError(f"{run_dir}: runs of method {name!r} do not predict from face "
                        f"images; methods that do: {_predicting_methods()}")
    try:
        spec = method.predictor(config, os.path.abspath(run_dir), best=best)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    return Predictor(spec, method=name, config=config)


def _as_float_image(image: Any, index: int) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from uint8 or float (grey and RGBA accepted)."""
    x = np.asarray(image)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or x.shape[-1] not in (1, 3, 4) or min(x.shape[:2]) < 1:
        raise ValueError(f"image {index}: shape {x.shape} is not (H, W, 3)")
    x = x[..., :3] if x.shape[-1] == 4 else np.repeat(x, 3, -1) if x.shape[-1] == 1 else x
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if x.dtype.kind != "f":
        raise ValueError(f"image {index}: dtype {x.dtype}; give uint8 or float in [0, 1]")
    return x.astype(np.float32)


class Predictor:
    """A run's inference on face images (made by `load`).

    Attributes:
      inference: the method's `affectjax.train.inference.Inference` (pure function,
        variables, preprocessing), e.g. for `affectjax.export`.
      method: the run's method name.
      config: the run's config.
      names: field -> the names along its last axis (``expr_probs``: expression names).
      thresholds: probability field -> the thresholds ``au``/``attr`` use.
    """

    def __init__(self, inference: Inference, *, method: str, config: Any):
        self.inference, self.method, self.config = inference, method, config
        self.image_size = inference.image_size
        self.names = dict(inference.names)
        self.thresholds = {k: np.asarray(v, np.float32) for k, v in inference.thresholds.items()}
        self.mesh = sharding.make_mesh(jax.local_devices())
        self._devices = self.mesh.devices.size
        self._variables = sharding.replicate(inference.variables, sharding.replicated(self.mesh))
        self._apply = jax.jit(inference.apply, in_shardings=(
            sharding.replicated(self.mesh), sharding.data_sharding(self.mesh)))

    @property
    def origin(self) -> str:
        return self.inference.origin

    def preprocess(self, images: Sequence[Any] | np.ndarray) -> np.ndarray:
        """(B, S, S, 3) float32 model inputs from images of any sizes (see the module)."""
        size, out = self.image_size, []
        for i, image in enumerate(images):
            x = _as_float_image(image, i)[None]
            if x.shape[1:3] != (size, size):
                ones, zeros = np.ones(1), np.zeros(1)
                x = pp.warp({"image": x}, (size, size), ones, zeros, zeros)["image"]
            out.append(x[0])
        if not out:
            return np.zeros((0, size, size, 3), np.float32)
        mean = np.asarray(self.inference.mean, np.float32)
        std = np.asarray(self.inference.std, np.float32)
        return ((np.stack(out) - mean) / std).astype(np.float32)

    def raw(self, inputs: np.ndarray, *, batch_size: int = DEFAULT_BATCH_SIZE
            ) -> dict[str, np.ndarray]:
        """The method's fields for preprocessed `inputs`, in batches of one padded shape."""
        n = len(inputs)
        # One padded shape per call: batch_size, or for fewer images the next power of
        # two (few compiled shapes, little padding); a multiple of the device count.
        batch = min(max(1, int(batch_size)), 1 << max(n - 1, 0).bit_length())
        batch = -(-batch // self._devices) * self._devices
        parts = []
        for start in range(0, n, batch):
            idx = np.minimum(np.arange(start, start + batch), n - 1)  # pad with the last
            out = jax.device_get(self._apply(self._variables, inputs[idx]))
            parts.append({k: np.asarray(v)[:min(batch, n - start)] for k, v in out.items()})
        if not parts:
            raise ValueError("no images to predict on")
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def __call__(self, images: Sequence[Any] | np.ndarray, *,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> dict[str, np.ndarray]:
        """Predictions for `images` (a list of (H, W, 3) arrays of any sizes, or one
        (B, H, W, 3) array; uint8, or float in [0, 1]): a dict of NumPy arrays with the
        batch on axis 0 (module docstring)."""
        images = list(images)
        out = self.raw(self.preprocess(images), batch_size=batch_size)
        return self._derive(out, [np.shape(im)[:2] for im in images])

    def _derive(self, out: dict[str, np.ndarray], sizes: list[tuple[int, int]]
                ) -> dict[str, np.ndarray]:
        for prefix in ("", "member_"):
            probs = out.get(f"{prefix}expr_probs")
            if probs is not None:
                names = np.asarray(self.names.get("expr_probs", ()), object)
                out[f"{prefix}expr"] = np.argmax(probs, -1).astype(np.int32)
                if len(names) == probs.shape[-1]:
                    out[f"{prefix}expr_label"] = names[out[f"{prefix}expr"]]
        for field, key in _THRESHOLDED.items():
            if field in out:
                th = self.thresholds.get(field, np.float32(0.5))
                out[key] = (out[field] >= th).astype(np.int32)
        if "landmarks" in out:
            hw = np.asarray(sizes, np.float32)  # (B, 2): height, width
            scale = hw[:, ::-1] / self.image_size  # (x, y) scale per image
            out["landmarks"] = (out["landmarks"] * scale[:, None, :]).astype(np.float32)
        return out

    def rows(self, out: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """One flat dict per image for CSV/JSONL: labels, probabilities per class name,
        valence/arousal, 0/1 per AU or attribute, landmark coordinates (no parsing)."""
        n = len(next(iter(out.values())))
        rows = [dict() for _ in range(n)]
        rank = lambda k: (_ROW_ORDER.index(k) if k in _ROW_ORDER else len(_ROW_ORDER), k)
        for key in sorted(out, key=rank):
            value = out[key]
            if key == "parsing" or (key.startswith("member_") and key.endswith("_probs")):
                continue
            for i, row in enumerate(rows):
                row.update(_columns(key, value[i], self.names))
        return rows


def _columns(key: str, value: Any, names: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The CSV columns of one image's `key` (see `Predictor.rows`)."""
    v = np.asarray(value)
    if key.startswith("member_"):  # per member: its label, or its valence/arousal
        return {f"member{m}/{key[len('member_'):]}": _scalar(x) for m, x in enumerate(v)
                if np.size(x) == 1}
    if key == "landmarks":
        return {f"landmark{i}_{axis}": float(v[i, j]) for i in range(len(v))
                for j, axis in enumerate("xy")}
    if v.ndim == 0:
        return {key: _scalar(v)}
    field = key if key.endswith("_probs") else f"{key}_probs"
    stem = f"{key[:-len('_probs')]}_prob" if key.endswith("_probs") else key
    given = list(names.get(field, ()))
    labels = given if len(given) == len(v) else [str(k) for k in range(len(v))]
    return {f"{stem}/{name}": _scalar(x) for name, x in zip(labels, v)}


def _scalar(x: Any) -> Any:
    x = np.asarray(x).item()
    return round(x, 6) if isinstance(x, float) else x
