"""SynthFaces labels: FACS expression prototypes, action-unit intensities, circumplex affect.

Expression classes follow the ABAW order, action units the ABAW 12-AU order. Each expression
activates its FACS prototype (Ekman & Friesen's FACS; the ABAW expression set) with a random
intensity in [0.3, 1]; valence/arousal come from the class's place on Russell's circumplex
("A circumplex model of affect", 1980) scaled by that intensity, plus Gaussian noise.

Sampling is vectorised over a batch but reads, for each example, only that example's own
uniforms (drawn from a generator seeded by (seed, domain, index)), so every label is a pure
function of those three values.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from affectjax.labels import AU_IDS, EXPRESSIONS, NUM_AUS, NUM_EXPRESSIONS

AU_INDEX: dict[int, int] = {au: k for k, au in enumerate(AU_IDS)}

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


def _au_mask(aus) -> np.ndarray:
    m = np.zeros(NUM_AUS, bool)
    for a in aus:
        m[AU_INDEX[a]] = True
    return m


# Vectorised prototype tables (rows in ABAW order).
_CORE = np.stack([_au_mask(PROTOTYPES[e]["core"]) for e in EXPRESSIONS])
_GROUP_A = np.stack([_au_mask(PROTOTYPES[e]["choose"][0][:1] if PROTOTYPES[e]["choose"] else ())
                     for e in EXPRESSIONS])
_GROUP_B = np.stack([_au_mask(PROTOTYPES[e]["choose"][0][1:] if PROTOTYPES[e]["choose"] else ())
                     for e in EXPRESSIONS])
_EXTRA_P = np.zeros((NUM_EXPRESSIONS, NUM_AUS))
for _e, _name in enumerate(EXPRESSIONS):
    for _au, _prob in PROTOTYPES[_name]["extra"]:
        _EXTRA_P[_e, AU_INDEX[_au]] = _prob
_CORE_MASKS = np.stack([_au_mask(c) for c in _CORE_SETS])
_CENTRES = np.array([CIRCUMPLEX.get(e, (0.0, 0.0)) for e in EXPRESSIONS])
_OTHER = EXPRESSIONS.index("Other")
_NEUTRAL = EXPRESSIONS.index("Neutral")


def aus_from_uniforms(expr: np.ndarray, col: Callable[..., np.ndarray], *, intensity: tuple[float, float],
                      extra_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """AU intensities (B, 12) in [0, 1] (active >= 0.3) and the global intensity g (B,).

    `col(n)` returns the next n uniform columns (B, n). "Other" draws 1-3 AUs by random rank;
    if they contain a basic prototype's core, only the first one is kept (one AU never does).
    """
    g = intensity[0] + (intensity[1] - intensity[0]) * col()
    pick = np.floor(3 * col())  # 0: first of the group, 1: second, 2: both
    active = _CORE[expr] | (col(NUM_AUS) < _EXTRA_P[expr])
    active |= _GROUP_A[expr] & (pick != 1)[:, None]
    active |= _GROUP_B[expr] & (pick != 0)[:, None]
    k = 1 + np.floor(3 * col())
    ranks = np.argsort(np.argsort(col(NUM_AUS), axis=1), axis=1)
    mix = ranks < k[:, None]
    proto = np.any(np.all(mix[:, None] | ~_CORE_MASKS[None], axis=2), axis=1)
    mix = np.where(proto[:, None], ranks < 1, mix)
    other = (expr == _OTHER)[:, None]
    active = np.where(other, mix, active)
    strong = np.clip(g[:, None] * (0.85 + 0.3 * col(NUM_AUS)), 0.3, 1.0)
    extra = (col(NUM_AUS) < extra_rate) & ((expr != _NEUTRAL) & (expr != _OTHER))[:, None]
    weak = 0.3 + 0.3 * col(NUM_AUS)
    au = np.where(active, strong, np.where(extra, weak, 0.0))
    return au.astype(np.float32), g


def va_from_uniforms(expr: np.ndarray, g: np.ndarray, col: Callable[..., np.ndarray], normals: np.ndarray,
                     noise: float = 0.08) -> np.ndarray:
    """Valence/arousal (B, 2): circumplex centre times g (other: uniform), plus noise, clipped."""
    centre = _CENTRES[expr] * g[:, None]
    anywhere = -0.8 + 1.6 * col(2)
    centre = np.where((expr == _OTHER)[:, None], anywhere, centre)
    return np.clip(centre + noise * normals, -1.0, 1.0).astype(np.float32)
