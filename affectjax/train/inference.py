"""What a trained run predicts from face images: the `Inference` a method's ``predictor`` builds.

A method that can be applied to new faces sets ``Method.predictor`` to a function
``(config, workdir, *, best) -> Inference``; `affectjax.predict.load` calls it with the
run's saved config and wraps the result in a batched, jitted predictor. Most methods
build it with `from_checkpoint`, which restores the run's variables and composes the
method's forward pass with a *fields* function that turns raw outputs into named
predictions. The field names are one vocabulary across methods:

==================  =====================  ==============================================
field               shape                  meaning
==================  =====================  ==============================================
``expr_probs``      (B, C)                 expression probabilities (ABAW order)
``valence``         (B,)                   valence in [-1, 1]
``arousal``         (B,)                   arousal in [-1, 1]
``au_probs``        (B, 12)                AU probabilities (`affectjax.labels.AUS`)
``attr_probs``      (B, K)                 binary attribute probabilities
``landmarks``       (B, 5, 2)              (x, y) in pixels of the model input
``parsing``         (B, S, S)              Helen class per pixel of the model input
``member_<field>``  (B, M, ...)            one network's ``<field>`` per ensemble member
==================  =====================  ==============================================

`Inference.names` names the last axis of a field (``expr_probs``: the expression names;
``au_probs``: the AU names), and `Inference.thresholds` the decision threshold of each
probability field whose classes are independent (the run's tuned AU thresholds when it
has them, else 0.5): `affectjax.predict` derives ``expr`` (argmax), ``au`` and ``attr``
(thresholded) from them on the host.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from affectjax.train import checkpoint as ckpt_lib

Fields = Callable[[Any, Any], dict[str, jax.Array]]


@dataclasses.dataclass(frozen=True)
class Inference:
    """A run's inference function and what it needs around it.

    Attributes:
      apply: ``apply(variables, images) -> {field: array}``, pure and jittable; `images`
        are float32 (B, image_size, image_size, 3), normalised with `mean` and `std`.
      variables: the arrays `apply` takes (a pytree).
      image_size: the square model input size (``config.data.image_size``).
      mean, std: per-channel normalisation of images in [0, 1].
      names: field -> the names along its last axis.
      thresholds: probability field -> decision thresholds (scalar or one per class).
      origin: where the weights come from (checkpoint directory and step).
    """

    apply: Callable[[Any, jax.Array], dict[str, jax.Array]]
    variables: Any
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    names: Mapping[str, tuple[str, ...]]
    thresholds: Mapping[str, Any]
    origin: str


def restore_variables(workdir: str, *, best: bool = True) -> tuple[dict[str, Any], str]:
    """The model variables of the run in `workdir`: its best checkpoint, or its latest.

    Args:
      workdir: a trainer run directory.
      best: ``best/`` when it exists (else ``checkpoints/``); False: the latest checkpoint.

    Raises:
      FileNotFoundError: no checkpoint to restore (one line naming the directory).
      DataError: the checkpoint is damaged.
    """
    subdirs = ("best", "checkpoints") if best else ("checkpoints",)
    return ckpt_lib.restore_run_variables(workdir, subdirs=subdirs)


def data_normalisation(data: Any) -> tuple[int, tuple, tuple]:
    """``(image_size, mean, std)`` of a data section (``config.data``; pipeline defaults)."""
    return (int(data.image_size), tuple(float(v) for v in data.get("mean", (0.485, 0.456, 0.406))),
            tuple(float(v) for v in data.get("std", (0.229, 0.224, 0.225))))


def from_checkpoint(method: Any, config: Any, workdir: str, *, best: bool, fields: Fields,
                    names: Mapping[str, tuple[str, ...]],
                    thresholds: Mapping[str, Any] | None = None) -> Inference:
    """The `Inference` of a run of the generic loop: its model, checkpoint and `fields`.

    Args:
      method: the run's (specialised) `affectjax.train.Method`.
      config: the run's config.
      workdir: the run directory.
      best: see `restore_variables`.
      fields: ``(outputs, intermediates) -> {field: array}`` (jnp, under jit).
      names: field -> the names along its last axis.
      thresholds: probability field -> thresholds (default 0.5 for ``au_probs`` and
        ``attr_probs`` when `fields` gives them).
    """
    model = method.build_model(config)
    forward = method.apply_fn(model)
    variables, origin = restore_variables(workdir, best=best)

    def apply(variables, images):
        (outputs, intermediates), _ = forward(variables, images, train=False)
        return fields(outputs, intermediates)

    size, mean, std = data_normalisation(config.data)
    return Inference(apply=apply, variables=variables, image_size=size, mean=mean, std=std,
                     names=dict(names), thresholds=dict(thresholds or {}), origin=origin)


def softmax(logits: jax.Array) -> jax.Array:
    """Probabilities in float32 (logits may be bfloat16)."""
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def sigmoid(logits: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(logits.astype(jnp.float32))


def split_va(va: jax.Array) -> dict[str, jax.Array]:
    """``{"valence", "arousal"}`` of a (..., 2) array."""
    va = va.astype(jnp.float32)
    return {"valence": va[..., 0], "arousal": va[..., 1]}


def default_thresholds(fields: Mapping[str, Any]) -> dict[str, float]:
    """0.5 for each independent-probability field present (``au_probs``, ``attr_probs``)."""
    return {k: 0.5 for k in ("au_probs", "attr_probs") if k in fields}


def as_numpy(tree: Any) -> Any:
    return jax.tree.map(np.asarray, jax.device_get(tree))
