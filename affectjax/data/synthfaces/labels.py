"""SynthFaces labels: FACS expression prototypes, action-unit intensities, circumplex affect.

Expression classes follow the ABAW order, action units the ABAW 12-AU order. Each expression
activates its FACS prototype (Ekman & Friesen's FACS; the ABAW expression set) with a random
intensity in [0.3, 1]; valence/arousal come from the class's place on Russell's circumplex
("A circumplex model of affect", 1980) scaled by that intensity, plus Gaussian noise.

All sampling here is per example, from a `numpy.random.Generator` that the caller derives from
(seed, domain, index), so every label is a pure function of those three values.
"""

from __future__ import annotations

import numpy as np

EXPRESSIONS: tuple[str, ...] = (
    "Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Other")
AU_IDS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
AU_INDEX: dict[int, int] = {au: k for k, au in enumerate(AU_IDS)}
NUM_EXPRESSIONS = len(EXPRESSIONS)
NUM_AUS = len(AU_IDS)

# FACS prototypes: (AUs always active, [(alternative group, how many of it), ...] optional
# extras as (AU, probability)). AU5, AU9 and AU20 are not among the 12, so surprise and fear
# lose AU5/AU20 and disgust uses AU10 for AU9/10.
PROTOTYPES: dict[str, dict] = {
    "Neutral": dict(core=(), choose=(), extra=()),
    "Anger": dict(core=(4, 7), choose=((23, 24),), extra=()),
    "Disgust": dict(core=(10, 15), choose=(), extra=()),
    "Fear": dict(core=(1, 2, 4, 25), choose=(), extra=((26, 0.3),)),
    "Happiness": dict(core=(6, 12), choose=(), extra=((25, 0.5),)),
    "Sadness": dict(core=(1, 4, 15), choose=(), extra=()),
    "Surprise": dict(core=(1, 2), choose=((25, 26),), extra=()),
    "Other": dict(core=(), choose=(), extra=()),
}

# Russell's circumplex: (valence, arousal) of a full-intensity prototype.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "Neutral": (0.0, 0.0),
    "Anger": (-0.6, 0.7),
    "Disgust": (-0.7, 0.3),
    "Fear": (-0.6, 0.8),
    "Happiness": (0.8, 0.5),
    "Sadness": (-0.7, -0.4),
    "Surprise": (0.2, 0.8),
}

_CORE_SETS = [frozenset(p["core"]) for name, p in PROTOTYPES.items()
              if name not in ("Neutral", "Other")]


def _is_prototypical(aus: set[int]) -> bool:
    """True when `aus` contains the core of a basic-expression prototype."""
    return any(core <= aus for core in _CORE_SETS)


def sample_aus(rng: np.random.Generator, expr: int, *, intensity: tuple[float, float],
               extra_rate: float) -> tuple[np.ndarray, float]:
    """Samples the 12 AU intensities of one face showing expression `expr`.

    Args:
      rng: the example's generator.
      expr: ABAW expression index 0..7.
      intensity: (low, high) range of the expression's global intensity, within [0.3, 1].
      extra_rate: probability that each non-prototype AU is also active (weakly).

    Returns:
      (au_intensity float32 (12,) in [0, 1] with 0 = inactive and active AUs >= 0.3,
       the global intensity g used for valence/arousal).
    """
    name = EXPRESSIONS[expr]
    proto = PROTOTYPES[name]
    g = float(rng.uniform(*intensity))
    active: set[int] = set(proto["core"])
    for group in proto["choose"]:
        pick = rng.integers(3)  # one of the two, or both
        active |= set(group) if pick == 2 else {group[pick]}
    for au, p in proto["extra"]:
        if rng.random() < p:
            active.add(au)
    if name == "Other":  # a random non-prototypical mix of 1-3 AUs
        while True:
            k = int(rng.integers(1, 4))
            mix = set(int(a) for a in rng.choice(AU_IDS, size=k, replace=False))
            if not _is_prototypical(mix):
                break
        active = mix
    out = np.zeros(NUM_AUS, np.float32)
    jitter = rng.uniform(0.85, 1.15, size=NUM_AUS)
    extra = rng.random(NUM_AUS) < extra_rate
    weak = rng.uniform(0.3, 0.6, size=NUM_AUS)
    for au in AU_IDS:
        k = AU_INDEX[au]
        if au in active:
            out[k] = np.clip(g * jitter[k], 0.3, 1.0)
        elif extra[k] and name != "Neutral":
            out[k] = weak[k]
    return out, g


def sample_va(rng: np.random.Generator, expr: int, g: float, *,
              noise: float = 0.08) -> np.ndarray:
    """Valence/arousal of one face: the class's circumplex point times intensity, plus noise.

    "Other" lies anywhere in [-0.8, 0.8]^2; neutral stays near 0 (noise only).

    Returns:
      float32 (2,) [valence, arousal] clipped to [-1, 1].
    """
    name = EXPRESSIONS[expr]
    if name == "Other":
        centre = rng.uniform(-0.8, 0.8, size=2)
    else:
        centre = np.asarray(CIRCUMPLEX[name]) * g
    va = centre + noise * rng.standard_normal(2)
    return np.clip(va, -1.0, 1.0).astype(np.float32)
