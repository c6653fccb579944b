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
_HAIR_PALETTE = np.array([  # rows in the order of HAIR_COLOURS
    [0.08, 0.06, 0.05],  # black
    [0.25, 0.15, 0.08],  # dark brown
    [0.48, 0.32, 0.17],  # brown
    [0.86, 0.72, 0.42],  # blond
    [0.62, 0.27, 0.12],  # red
    [0.72, 0.72, 0.72],  # grey
])
HAIR_STYLES = ("short", "long", "fringe", "bald", "bun")
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
# Label-only fields: the draws behind `skin`, `hair` and `hair_geom` (0 = lightest tone; an
# index into HAIR_COLOURS and HAIR_STYLES). Editing them does not change the render.
LABEL_KEYS = ("skin_tone", "hair_colour", "hair_style")
HAIR_COLOURS = ("black", "dark_brown", "brown", "blond", "red", "grey")


_IRIS = np.array([[0.25, 0.15, 0.08], [0.35, 0.5, 0.7], [0.35, 0.45, 0.25], [0.12, 0.08, 0.05]])
_SHAPE = [  # name, low, high
    ("face_w", 0.92, 1.08), ("face_h", 0.93, 1.06), ("eye_spacing", 0.93, 1.07),
    ("eye_size", 0.9, 1.1), ("brow_y", -0.02, 0.02), ("brow_thick", 0.8, 1.25),
    ("brow_arch", 0.4, 1.5), ("nose_len", 0.88, 1.12), ("nose_w", 0.85, 1.2),
    ("mouth_w", 0.9, 1.1), ("mouth_y", -0.02, 0.02), ("lip_u", 0.8, 1.2), ("lip_l", 0.8, 1.25)]
_NUM_UNIFORMS = 256  # per-example uniforms; every field reads its own fixed columns


class _Columns:
    """Hands out consecutive columns of the (B, _NUM_UNIFORMS) uniform matrix."""

    def __init__(self, u: np.ndarray):
        self.u, self.k = u, 0

    def __call__(self, n: int | None = None) -> np.ndarray:
        m = 1 if n is None else n
        out = self.u[:, self.k:self.k + m]
        self.k += m
        assert self.k <= self.u.shape[1]
        return out[:, 0] if n is None else out


def _gauss(col: _Columns, n: int) -> np.ndarray:
    """Standard normals (B, n) by Box-Muller from 2n uniform columns."""
    u1, u2 = col(n), col(n)
    return np.sqrt(-2 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)


def _inverse_cdf(prior: np.ndarray, u: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(prior / prior.sum())
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(prior) - 1)


def _from_uniforms(u: np.ndarray, blocks: np.ndarray, dom: Domain) -> dict[str, np.ndarray]:
    """Maps per-example uniforms (B, _NUM_UNIFORMS) to the parameters, vectorised."""
    col = _Columns(u)
    b = len(u)
    p: dict[str, np.ndarray] = {}
    expr = _inverse_cdf(dom.prior(), col())
    au, g = labels.aus_from_uniforms(expr, col, intensity=dom.intensity,
                                     extra_rate=dom.extra_au_rate)
    p["expr"], p["au"] = expr.astype(np.int32), au
    p["va"] = labels.va_from_uniforms(expr, g, col, _gauss(col, 2))
    p["angle"] = np.deg2rad(dom.rotation_deg) * (2 * col() - 1)
    p["scale"] = dom.scale[0] + (dom.scale[1] - dom.scale[0]) * col()
    p["tx"], p["ty"] = dom.shift * (2 * col() - 1), dom.shift * (2 * col() - 1)
    p["yaw"] = dom.yaw * (2 * col() - 1)
    for name, lo, hi in _SHAPE:
        p[name] = lo + (hi - lo) * col()
    p["gaze"] = np.array([0.02, 0.01]) * (2 * col(2) - 1)
    tone = col()[:, None]
    p["skin"] = np.clip(_SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * tone
                        + 0.05 * (col(3) - 0.5), 0, 1)
    colour = np.minimum((col() * len(_HAIR_PALETTE)).astype(int), 5)
    hair = _HAIR_PALETTE[colour]
    p["hair"] = np.clip(hair * (0.8 + 0.35 * col()[:, None]) + 0.04 * (col(3) - 0.5), 0, 1)
    p["lip"] = np.clip(0.55 * p["skin"] + 0.45 * np.array([0.72, 0.22, 0.25])
                       + 0.08 * (col(3) - 0.5), 0, 1)
    p["iris"] = _IRIS[np.minimum((col() * 4).astype(int), 3)] * (0.8 + 0.4 * col()[:, None])
    p["clothes"] = col(3)
    style = _inverse_cdf(np.asarray(dom.hair_prior, np.float64), col())
    p["hair_geom"] = _HAIR_TABLE[style] + np.array(
        [0, 0.03, 0.04, 0.04, 0, 0, 0.03, 0.1, 0.05]) * (2 * col(9) - 1)
    p["clutter"] = dom.clutter[0] + (dom.clutter[1] - dom.clutter[0]) * col()
    bg = col(4)
    if dom.clutter[1] > 0:
        p["bg"] = bg[:, :3]
    else:  # studio backdrop: pale, low saturation
        p["bg"] = 0.55 + 0.35 * bg[:, 3:] + 0.08 * (bg[:, :3] - 0.5)
    p["bg_blocks"] = blocks[:, :48].reshape(b, 4, 4, 3)
    p["bg_blobs"] = blocks[:, 48:].reshape(b, 6, 6, 3)
    p["light_angle"] = 2 * np.pi * col()
    p["light"] = dom.light * col()
    p["tint"] = 1 + dom.light * 0.3 * (2 * col(3) - 1)
    p["blur"] = dom.blur[0] + (dom.blur[1] - dom.blur[0]) * col()
    p["noise"] = dom.noise[0] + (dom.noise[1] - dom.noise[0]) * col()
    p["noise_seed"] = (col() * 2.0**32).astype(np.uint64)
    p["occ_on"] = col() < dom.occluder_prob
    # centre x, y, half-width, half-height, angle, roundness (canonical face frame)
    p["occ_geom"] = np.array([0.8, 0.9, 0.23, 0.22, np.pi, 1.0]) * col(6) + np.array(
        [-0.4, -0.3, 0.12, 0.08, 0.0, 0.0])
    p["occ_col"] = col(3)
    p["saturation"] = np.full(b, 0.0 if dom.grayscale else 1.0)
    # Label-only copies of discrete draws (the attribute view reads them; render does not).
    p["skin_tone"], p["hair_colour"], p["hair_style"] = tone[:, 0], colour, style
    return p


def sample_params(indices: Sequence[int], *, seed: int, domain: str) -> dict[str, np.ndarray]:
    """Samples the parameters of the faces `indices` of the data set (seed, domain).

    Each example draws one fixed-length vector of uniforms from its own generator seeded by
    (seed, domain, index); the mapping to parameters is vectorised over the batch and reads
    fixed columns, so an example's parameters never depend on the rest of the batch.

    Args:
      indices: example indices (non-negative integers).
      seed: the data set's seed (non-negative integer).
      domain: a key of `DOMAINS`.

    Returns:
      dict of arrays with leading batch axis len(indices): `expr` int32, `au` float32 (B, 12)
      intensities in [0, 1] (0 = inactive), `va` float32 (B, 2), the nuisance/appearance
      fields of `PARAM_KEYS` (float64) and the label-only fields of `LABEL_KEYS`.
    """
    dom = get_domain(domain)
    key = domain_key(domain)
    idx = [int(i) for i in indices]
    if not idx:
        raise ValueError("indices must not be empty")
    if min(idx) < 0 or int(seed) < 0:
        raise ValueError(f"seed and indices must be non-negative, got seed={seed}, "
                         f"min index={min(idx)}")
    draws = np.stack([np.random.default_rng([int(seed), key, i]).random(_NUM_UNIFORMS + 156)
                      for i in idx])
    p = _from_uniforms(draws[:, :_NUM_UNIFORMS], draws[:, _NUM_UNIFORMS:], dom)
    p["au"] = p["au"].astype(np.float32)
    p["va"] = p["va"].astype(np.float32)
    return p
