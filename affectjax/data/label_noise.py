"""Label-noise injection for expression labels, deterministic per (seed, example index).

Two kinds, as in the noisy-label literature (e.g. Patrini et al., CVPR 2017; the CCT paper's
noisy-label experiments):

* `symmetric`: with probability `rate`, the label is replaced by one of the OTHER classes drawn
  uniformly, so a fraction `rate` of the labels is wrong in expectation.
* `class_dependent`: with probability `rate`, the label becomes its most confusable class
  (`CONFUSABLE`, ABAW order: anger <-> disgust, fear <-> surprise, sadness/happiness/other ->
  neutral, neutral -> sadness): a structured, asymmetric noise.

The noisy label of example i depends only on (seed, i, clean label), so a random-access source
stays deterministic per index.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from affectjax import registry

KINDS = ("symmetric", "class_dependent")
# ABAW order: Neutral, Anger, Disgust, Fear, Happiness, Sadness, Surprise, Other.
CONFUSABLE = np.array([5, 2, 1, 6, 0, 0, 3, 0], np.int32)
_STREAM = 0x4E4F4953  # separates this stream from the data's own randomness


def check_spec(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """Validates a `label_noise` dict: kind (required), rate in [0, 1], seed (default 0)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise TypeError(f"label_noise must be a dict or None, got {type(spec).__name__}")
    unknown = sorted(set(spec) - {"kind", "rate", "seed"})
    if unknown:
        raise ValueError(registry.unknown_name_message(
            "label_noise key", unknown[0], ("kind", "rate", "seed")))
    if spec.get("kind") not in KINDS:
        raise registry.unknown_name_error("label_noise kind", spec.get("kind"), KINDS)
    rate = float(spec.get("rate", 0.2))
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"label_noise rate must lie in [0, 1], got {rate}")
    seed = int(spec.get("seed", 0))
    if seed < 0:
        raise ValueError(f"label_noise seed must be non-negative, got {seed}")
    return dict(kind=spec["kind"], rate=rate, seed=seed)


def flip_labels(labels: np.ndarray, indices: Sequence[int], *, kind: str, rate: float,
                seed: int = 0, num_classes: int = 8) -> np.ndarray:
    """Returns noisy copies of `labels` (int, -1 = missing stays -1).

    Args:
      labels: clean labels (B,) in 0..num_classes-1 or -1.
      indices: the examples' indices (B,), which seed each example's draw.
      kind: "symmetric" or "class_dependent" (the latter needs num_classes == 8, ABAW order).
      rate: flip probability.
      seed: noise seed (independent of the data's seed).
      num_classes: number of classes.

    Returns:
      int32 (B,) noisy labels.
    """
    spec = check_spec(dict(kind=kind, rate=rate, seed=seed))
    labels = np.asarray(labels, np.int32)
    indices = np.asarray(indices, np.int64)
    if labels.shape != indices.shape:
        raise ValueError(f"labels {labels.shape} and indices {indices.shape} differ in shape")
    if kind == "class_dependent" and num_classes != len(CONFUSABLE):
        raise ValueError(f"class_dependent noise is defined for 8 ABAW classes, "
                         f"got num_classes={num_classes}")
    draws = np.array([np.random.default_rng([spec["seed"], _STREAM, int(i)]).random(2)
                      for i in indices]).reshape(-1, 2)
    flip = (draws[:, 0] < spec["rate"]) & (labels >= 0)
    if kind == "symmetric":
        shift = 1 + np.floor(draws[:, 1] * (num_classes - 1)).astype(np.int32)
        noisy = (labels + shift) % num_classes
    else:
        noisy = CONFUSABLE[np.clip(labels, 0, None)]
    return np.where(flip, noisy, labels).astype(np.int32)
