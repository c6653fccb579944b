"""SynthFaces parameter sampling: one face's labels, geometry, appearance and nuisances.

`sample_params` draws every random quantity of a batch of faces, each example from its own
generator seeded by (seed, domain, index) only, and returns a dict of arrays with a leading
batch axis. `render.render` turns that dict into pixels, so a test can edit one field (say one
AU intensity) and render the same face again.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from affectjax.data.synthfaces import labels
from affectjax.data.synthfaces.domains import Domain, domain_key, get_domain

_SKIN_LIGHT = np.array([0.96, 0.80, 0.69])
_SKIN_DARK = np.array([0.36, 0.23, 0.16])
_HAIR_PALETTE = np.array([
    [0.08, 0.06, 0.05],  # black
    [0.25, 0.15, 0.08],  # dark brown
    [0.48, 0.32, 0.17],  # brown
    [0.86, 0.72, 0.42],  # blond
    [0.62, 0.27, 0.12],  # red
    [0.72, 0.72, 0.72],  # grey
])
_HAIR_STYLES = ("short", "long", "fringe", "bald", "bun")
# Per style: back_on, back_cy, back_rx, back_ry, back_down, cap_on, hairline_y0,
# hairline_curv, side_limit. Canonical face frame: x right, y down, face centre near 0.
_HAIR_TABLE = np.array([
    [0, 0.00, 0.70, 0.90, -9.0, 1, -0.50, 0.9, -0.05],   # short
    [1, 0.05, 0.76, 0.95, 1.60, 1, -0.52, 0.8, 0.30],    # long
    [0, 0.00, 0.70, 0.90, -9.0, 1, -0.40, 0.25, 0.05],   # fringe
    [0, 0.00, 0.70, 0.90, -9.0, 0, -0.90, 0.0, -0.90],   # bald
    [1, -0.78, 0.30, 0.24, -9.0, 1, -0.55, 0.9, -0.10],  # bun
], np.float64)

PARAM_KEYS = (
    "expr", "au", "va", "angle", "scale", "tx", "ty", "yaw", "face_w", "face_h", "eye_spacing",
    "eye_size", "gaze", "brow_y", "brow_thick", "brow_arch", "nose_len", "nose_w", "mouth_w",
    "mouth_y", "lip_u", "lip_l", "skin", "hair", "lip", "iris", "clothes", "bg", "hair_geom",
    "clutter", "bg_blocks", "bg_blobs", "light_angle", "light", "tint", "blur", "noise",
    "noise_seed", "occ_on", "occ_geom", "occ_col", "saturation")


def _example(rng: np.random.Generator, dom: Domain) -> dict[str, np.ndarray]:
    """All random quantities of one face (float64 scalars/arrays, batch-free)."""
    p: dict[str, np.ndarray] = {}
    expr = int(rng.choice(labels.NUM_EXPRESSIONS, p=dom.prior()))
    au, g = labels.sample_aus(rng, expr, intensity=dom.intensity, extra_rate=dom.extra_au_rate)
    p["expr"], p["au"], p["va"] = np.int32(expr), au, labels.sample_va(rng, expr, g)
    u = rng.random(24)
    p["angle"] = np.deg2rad(dom.rotation_deg) * (2 * u[0] - 1)
    p["scale"] = dom.scale[0] + (dom.scale[1] - dom.scale[0]) * u[1]
    p["tx"], p["ty"] = dom.shift * (2 * u[2] - 1), dom.shift * (2 * u[3] - 1)
    p["yaw"] = dom.yaw * (2 * u[4] - 1)
    for k, (name, lo, hi) in enumerate([
            ("face_w", 0.92, 1.08), ("face_h", 0.93, 1.06), ("eye_spacing", 0.93, 1.07),
            ("eye_size", 0.9, 1.1), ("brow_y", -0.02, 0.02), ("brow_thick", 0.8, 1.25),
            ("brow_arch", 0.4, 1.5), ("nose_len", 0.88, 1.12), ("nose_w", 0.85, 1.2),
            ("mouth_w", 0.9, 1.1), ("mouth_y", -0.02, 0.02), ("lip_u", 0.8, 1.2),
            ("lip_l", 0.8, 1.25)]):
        p[name] = lo + (hi - lo) * u[5 + k]
    p["gaze"] = np.array([0.02, 0.01]) * (2 * rng.random(2) - 1)
    tone = rng.random()
    p["skin"] = np.clip(_SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * tone
                        + 0.03 * rng.standard_normal(3), 0, 1)
    hair = _HAIR_PALETTE[rng.integers(len(_HAIR_PALETTE))]
    p["hair"] = np.clip(hair * rng.uniform(0.8, 1.15) + 0.02 * rng.standard_normal(3), 0, 1)
    p["lip"] = np.clip(0.55 * p["skin"] + 0.45 * np.array([0.72, 0.22, 0.25])
                       + 0.04 * rng.standard_normal(3), 0, 1)
    p["iris"] = rng.choice([[0.25, 0.15, 0.08], [0.35, 0.5, 0.7], [0.35, 0.45, 0.25],
                            [0.12, 0.08, 0.05]]) * rng.uniform(0.8, 1.2)
    p["clothes"] = rng.random(3)
    style = rng.choice(len(_HAIR_STYLES), p=np.asarray(dom.hair_prior) / sum(dom.hair_prior))
    p["hair_geom"] = _HAIR_TABLE[style] + np.r_[0, 0.03, 0.04, 0.04, 0, 0, 0.03, 0.1, 0.05] * (
        2 * rng.random(9) - 1)
    p["clutter"] = dom.clutter[0] + (dom.clutter[1] - dom.clutter[0]) * rng.random()
    if dom.clutter[1] > 0:
        p["bg"] = rng.random(3)
    else:  # studio backdrop: pale, low saturation
        p["bg"] = 0.55 + 0.35 * rng.random() + 0.08 * (rng.random(3) - 0.5)
    p["bg_blocks"] = rng.random((4, 4, 3))
    p["bg_blobs"] = rng.random((6, 6, 3))
    p["light_angle"] = 2 * np.pi * rng.random()
    p["light"] = dom.light * rng.random()
    p["tint"] = 1 + dom.light * 0.3 * (2 * rng.random(3) - 1)
    p["blur"] = dom.blur[0] + (dom.blur[1] - dom.blur[0]) * rng.random()
    p["noise"] = dom.noise[0] + (dom.noise[1] - dom.noise[0]) * rng.random()
    p["noise_seed"] = rng.integers(2**32, dtype=np.uint64)
    p["occ_on"] = rng.random() < dom.occluder_prob
    # centre x, y, half-width, half-height, angle, roundness (canonical face frame)
    p["occ_geom"] = np.array([0.8, 0.9, 0.23, 0.22, np.pi, 1.0]) * rng.random(6) + np.array(
        [-0.4, -0.3, 0.12, 0.08, 0.0, 0.0])
    p["occ_col"] = rng.random(3)
    p["saturation"] = 0.0 if dom.grayscale else 1.0
    return p


def sample_params(indices: Sequence[int], *, seed: int, domain: str) -> dict[str, np.ndarray]:
    """Samples the parameters of the faces `indices` of the data set (seed, domain).

    Args:
      indices: example indices (non-negative integers).
      seed: the data set's seed (non-negative integer).
      domain: a key of `DOMAINS`.

    Returns:
      dict of arrays with leading batch axis len(indices): `expr` int32, `au` float32 (B, 12)
      intensities in [0, 1], `va` float32 (B, 2), and the nuisance/appearance fields of
      `PARAM_KEYS` (float64).
    """
    dom = get_domain(domain)
    key = domain_key(domain)
    examples = []
    for i in indices:
        i = int(i)
        if i < 0:
            raise ValueError(f"index must be non-negative, got {i}")
        examples.append(_example(np.random.default_rng([int(seed), key, i]), dom))
    if not examples:
        raise ValueError("indices must not be empty")
    out = {k: np.stack([e[k] for e in examples]) for k in PARAM_KEYS}
    out["expr"] = out["expr"].astype(np.int32)
    out["au"] = out["au"].astype(np.float32)
    out["va"] = out["va"].astype(np.float32)
    return out
