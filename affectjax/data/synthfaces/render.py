"""SynthFaces rasteriser: implicit shapes on a pixel grid, painted back to front.

Every shape is a signed distance d (canonical face units, negative inside) evaluated on the
whole batch at once; its anti-aliased coverage is clip(0.5 - d * pixels_per_unit, 0, 1). Colour
layers are alpha-composited in painter's order, and the parsing class of a pixel is the class
of the top-most labelled shape whose boundary lies beyond the pixel centre (coverage >= 0.5),
so mask and image come from the same shapes. Classes (Helen): 0 background (also the neck,
shoulders and occluders), 1 skin, 2/3 left/right brow, 4/5 left/right eye, 6 nose, 7 upper lip,
8 inner mouth (teeth included), 9 lower lip, 10 hair.

Painter's order: background (flat or cluttered), back hair, neck, shoulders, face (skin),
wrinkles/folds/cheeks (colour only, AU cues), nose, eyes (iris, pupil, lid line), brows,
inner mouth and teeth, lips, front hair, occluder; then lighting gradient and tint, blur,
Gaussian pixel noise, colour saturation (0 = grayscale), uint8 quantisation.
"""

from __future__ import annotations

import functools

import numpy as np

from affectjax.data.synthfaces import geometry
from affectjax.data.synthfaces.geometry import FACE_CY, JAW_Y

_F32 = np.float32


def _resize_bilinear(a: np.ndarray, n: int) -> np.ndarray:
    """(B, C, h, h) -> (B, C, n, n), pixel centres aligned, edges clamped (elementwise only)."""
    h = a.shape[-1]
    pos = np.clip((np.arange(n) + 0.5) * h / n - 0.5, 0, h - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, h - 1)
    w = (pos - i0).astype(_F32)
    a = a[:, :, i0] * (1 - w)[:, None] + a[:, :, i1] * w[:, None]
    return a[..., i0] * (1 - w) + a[..., i1] * w


@functools.lru_cache(maxsize=8)
def _noise_table(num_pixels: int) -> np.ndarray:
    """A fixed table of standard normal noise (3, num_pixels + 2**16), read-only."""
    t = np.random.default_rng(0x5EED).standard_normal((3, num_pixels + 2**16), dtype=_F32)
    t.flags.writeable = False
    return t


def _binomial_blur(img: np.ndarray, n: int) -> np.ndarray:
    """One separable [1, 2, 1] / 4 pass on flattened images (B, C, n * n), edges replicated.

    Shifts along the flattened axis keep numpy's inner loops long; the columns where a
    horizontal shift wraps to the next row are then fixed up.
    """
    out = np.empty_like(img)
    out[..., n:-n] = 0.25 * (img[..., :-2 * n] + img[..., 2 * n:]) + 0.5 * img[..., n:-n]
    out[..., :n] = 0.75 * img[..., :n] + 0.25 * img[..., n:2 * n]
    out[..., -n:] = 0.75 * img[..., -n:] + 0.25 * img[..., -2 * n:-n]
    img = out
    out = np.empty_like(img)
    out[..., 1:-1] = 0.25 * (img[..., :-2] + img[..., 2:]) + 0.5 * img[..., 1:-1]
    out[..., ::n] = 0.75 * img[..., ::n] + 0.25 * img[..., 1::n]
    out[..., n - 1::n] = 0.75 * img[..., n - 1::n] + 0.25 * img[..., n - 2::n]
    return out


# Parsing is tracked as the index of the top-most painted layer (layers are numbered in
# painting order, so a running maximum finds the top one); LAYER_CLASS maps it to Helen.
LAYER_CLASS = np.array([0, 10, 0, 0, 1, 6, 4, 5, 2, 3, 8, 7, 9, 10, 0], np.uint8)
(_BG, _HAIR_BACK, _NECK, _CLOTHES, _FACE, _NOSE, _EYE, _, _BROW, _, _INNER, _UPPER, _LOWER,
 _HAIR_FRONT, _OCCLUDER) = range(len(LAYER_CLASS))


def _raster(p: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders float images (B, 3, n, n) in about [0, 1] and parsing (B, n, n) uint8."""
    b = len(p["expr"])
    f = geometry.features(p)

    # Pixels are flattened (B, C, n * n) so that per-example constants broadcast over one
    # long contiguous axis (numpy's inner loops stay long).
    def g(x):  # per-example scalar -> (B, 1, 1) float32
        return np.asarray(x, _F32).reshape(b, 1, 1)

    def c3(x):  # per-example colour -> (B, 3, 1)
        return np.broadcast_to(np.asarray(x, _F32), (b, 3)).reshape(b, 3, 1)

    grid = ((np.arange(n, dtype=_F32) + 0.5) / n * 2 - 1)
    px, py = np.tile(grid, n).reshape(1, 1, -1), np.repeat(grid, n).reshape(1, 1, -1)
    ca, sa, sc = g(np.cos(p["angle"])), g(np.sin(p["angle"])), g(p["scale"])
    dx, dy = px - g(p["tx"]), py - g(p["ty"])
    x = (ca * dx + sa * dy) / sc
    y = (ca * dy - sa * dx) / sc
    ppu = sc * (n / 2)
    yd, yk = geometry.yaw_terms(p)
    xs = x - g(yd)
    sgn = np.sign(xs)
    xf = xs / (1 - g(yk) * sgn)
    ax = np.abs(xf)
    right = (xf <= 0).view(np.uint8)
    tmp = np.empty((b, 3, n * n), _F32)
    layer = np.zeros((b, 1, n * n), np.uint8)

    def cov(d):
        out = 0.5 - d * ppu
        return np.clip(out, 0, 1, out=out)

    def paint(alpha, col, index=None):
        np.subtract(col, img, out=tmp)
        np.multiply(tmp, alpha, out=tmp)
        img[...] += tmp
        if index is not None:
            np.maximum(layer, (alpha >= 0.5) * np.uint8(index), out=layer)

    def cue(strength, dist, col):  # a colour-only AU cue; skipped when absent (exact)
        if np.any(strength > 0):
            paint(cov(dist()) * strength, col)

    def ellipse(cx, cy, rx, ry, xx=x):
        r = np.sqrt(((xx - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
        return (r - 1) * np.minimum(rx, ry)

    # Background: base colour, blocky and blotchy clutter.
    cl = g(p["clutter"])
    blocks = np.asarray(p["bg_blocks"], _F32).transpose(0, 3, 1, 2)
    idx = (np.arange(n) * blocks.shape[-1]) // n
    img = np.broadcast_to(c3(p["bg"]), (b, 3, n * n)).copy()
    if np.any(p["clutter"] > 0):
        blobs = _resize_bilinear(np.asarray(p["bg_blobs"], _F32).transpose(0, 3, 1, 2), n)
        clutter = (0.55 * blocks[:, :, idx][..., idx] + 0.45 * blobs).reshape(b, 3, -1)
        img += cl * (clutter - img)
    skin, hair = c3(p["skin"]), c3(p["hair"])
    tex = 0.9 + 0.1 * np.sin(60 * x + 8 * y)
    hg = [g(p["hair_geom"][:, k]) for k in range(9)]

    # Back hair, neck, shoulders.
    if np.any(p["hair_geom"][:, 0] > 0):
        d_long = np.maximum(np.maximum(np.abs(x) - hg[2], hg[1] - y), y - hg[4])
        d = np.minimum(ellipse(0, hg[1], hg[2], hg[3]), d_long)
        paint(cov(d) * hg[0], hair * tex * 0.8, _HAIR_BACK)
    fw = g(p["face_w"])
    paint(cov(np.maximum(np.abs(x) - 0.2 * fw, 0.3 - y)), skin * 0.8, _NECK)
    paint(cov(ellipse(0, 1.42, 1.0, 0.55)), c3(p["clothes"]), _CLOTHES)

    # Face: egg-shaped ellipse; AU26 stretches it below the jaw line.
    yr = y - FACE_CY - np.maximum(y - JAW_Y, 0) * g(1 - 1 / f["jaw_stretch"])
    inv_top, inv_bot = g(1 / f["face_ry_top"]), g(1 / f["face_ry_bot"])
    inv_ry = inv_bot + (inv_top - inv_bot) * (yr < 0)
    rx = g(f["face_rx"]) * (1 - 0.22 * np.clip(yr * inv_bot, 0, 1) ** 2)
    r_face = np.sqrt((x / rx) ** 2 + (yr * inv_ry) ** 2)
    a_face = cov((r_face - 1) * rx)
    paint(a_face, skin * (1.05 - 0.15 * r_face ** 2), _FACE)
    dark = skin * 0.62

    # AU cues on the skin (colour only).
    a = {k: g(geometry.au(p, k)) for k in (1, 2, 4, 6, 12, 15)}
    by = g(f["brow_y"])
    ex, ey, ew = g(f["eye_x"]), g(f["eye_y"]), g(f["eye_w"])
    hu, hl = g(f["eye_hu"]), g(f["eye_hl"])
    mw, my, mc = g(f["mouth_w"]), g(f["mouth_y"]), g(f["mouth_c"])

    def forehead():
        t = y - (by - 0.12) + 0.025 * (1 - (ax / 0.26) ** 2)
        return np.maximum(np.minimum(np.abs(t), np.abs(t + 0.05)) - 0.007, ax - 0.26)

    cue(0.3 * (a[1] + a[2]) * a_face, forehead, dark)  # AU1/AU2 forehead wrinkles
    cue(0.6 * a[4], lambda: np.maximum(np.abs(ax - 0.035) - 0.006,
                                       np.abs(y - by - 0.065) - 0.055), dark)  # AU4 furrows
    cue(0.35 * a[6], lambda: ellipse(ex + 0.01, 0.11, 0.11, 0.06, ax),
        skin * 1.1 + c3([0.06, 0.0, 0.0]))  # AU6 cheek bulge
    cue(0.5 * a[6], lambda: np.maximum(
        np.abs(y - ey - hl - 0.022 - 0.02 * ((ax - ex) / ew) ** 2) - 0.006,
        np.abs(ax - ex) - 0.8 * ew), dark)  # AU6 lower-lid crease
    cue(0.55 * a[6], lambda: np.maximum(np.abs(ax - 0.1 - 0.42 * (y - 0.16)) - 0.007,
                                        np.abs(y - 0.28) - 0.12), dark)  # AU6 nasolabial folds
    yc = my - mc
    cue(0.5 * a[12], lambda: np.maximum(np.abs(ax - mw - 0.03 + 2.0 * (y - yc) ** 2) - 0.006,
                                        np.abs(y - yc) - 0.045), dark)  # AU12 smile lines
    cue(0.45 * a[15], lambda: np.maximum(np.abs(ax - mw - 0.01 - 0.25 * (y - yc)) - 0.006,
                                         np.abs(y - yc - 0.05) - 0.05), dark)  # AU15 lines

    # Nose, narrow at the top; nostrils.
    nyc, nh, nw = g(f["nose_y"]), g(f["nose_h"]), g(f["nose_w"])
    nw_eff = nw * (0.45 + 0.55 * np.clip((y - nyc + nh) / (2 * nh), 0, 1))
    d_nose = (np.sqrt((ax / nw_eff) ** 2 + ((y - nyc) / nh) ** 2) - 1) * nw_eff
    paint(cov(d_nose), skin * 0.93, _NOSE)
    paint(cov(np.abs(d_nose) - 0.005) * (y > nyc) * 0.5, dark)
    paint(cov(ellipse(0.034 * nw / 0.072, nyc + 0.86 * nh, 0.022, 0.012, ax)), skin * 0.3)

    # Eyes: lens between two parabolic lids; iris, pupil, upper lid line.
    ddx, ddy = ax - ex, y - ey
    q = np.clip(1 - (ddx / ew) ** 2, 0, 1)
    d_up = -ddy - hu * q
    upper = ddy < 0
    d_eye = np.maximum(d_up * upper + (ddy - hl * q) * ~upper, np.abs(ddx) - ew)
    a_eye = cov(d_eye)
    paint(a_eye, c3([0.94, 0.93, 0.9]), _EYE + right)
    gx, gy = g(p["gaze"][:, 0]), g(p["gaze"][:, 1])
    r_iris = np.sqrt((xf - sgn * ex - gx) ** 2 + (ddy - gy) ** 2)
    ri = g(0.05 * p["eye_size"])
    paint(cov(r_iris - ri) * a_eye, c3(p["iris"]))
    paint(cov(r_iris - 0.45 * ri) * a_eye, c3([0.03, 0.03, 0.03]))
    paint(cov(np.maximum(np.abs(d_up + 0.004) - 0.007, np.abs(ddx) - ew)) * (ddy < 0),
          c3([0.08, 0.06, 0.05]))

    # Brows: tapered quadratic strokes; AU1 lifts the inner end, AU2 the outer, AU4 lowers.
    t = (ax - g(f["brow_in"])) / g(f["brow_len"])
    tc = np.clip(t, 0, 1)
    yb = (by - g(f["brow_arch"]) * 4 * tc * (1 - tc) - g(f["brow_lift_in"]) * (1 - tc)
          - g(f["brow_lift_out"]) * tc)
    th = g(f["brow_th"]) * (1 - 0.45 * tc)
    d = np.maximum(np.abs(y - yb) - th / 2, np.maximum(-t, t - 1) * g(f["brow_len"]))
    paint(cov(d), hair * 0.55 + 0.04, _BROW + right)

    # Mouth: lip line with corner lift, opening, lips tapering to the corners.
    s = np.minimum(ax / mw, 1)
    q = 1 - s * s
    sq = np.sqrt(q)
    yl = my - mc * s * s
    ot, ob = yl - g(f["open_u"]) * q, yl + g(f["open_d"]) * q
    d_side = ax - mw
    a_in = cov(np.maximum(np.maximum(ot - y, y - ob), d_side))
    paint(a_in, c3([0.32, 0.06, 0.08]), _INNER)
    gap = g(f["open_u"] + f["open_d"])
    # (A layer skipped for the whole batch must add exactly zero to every example, so the
    # pixels of an example never depend on the rest of its batch.)
    if np.any(gap > 0):
        d = np.maximum(y - ot - np.minimum(0.028, 0.5 * gap), ax - 0.78 * mw)
        paint(a_in * cov(d) * (gap > 0), c3([0.95, 0.93, 0.86]))
    if np.any(gap > 0.08):
        d = np.maximum(ob - 0.018 - y, ax - 0.6 * mw)
        paint(a_in * cov(d) * (gap > 0.08), c3([0.9, 0.88, 0.8]))
    lip = c3(p["lip"])
    paint(cov(np.maximum(np.maximum(ot - g(f["lip_u"]) * sq - y, y - ot), d_side)), lip, _UPPER)
    paint(cov(np.maximum(np.maximum(ob - y, y - ob - g(f["lip_l"]) * sq), d_side)),
          lip * 1.1, _LOWER)

    # Front hair: a cap above the hairline, and beside the face down to side_limit.
    if np.any(p["hair_geom"][:, 5] > 0):
        d_cap = ellipse(0, -0.08, g(f["face_rx"]) + 0.07, 0.82)
        d_hl = y - (hg[6] + hg[7] * x * x)
        d_side = np.maximum((1 - r_face) * rx, y - hg[8])
        paint(cov(np.maximum(d_cap, np.minimum(d_hl, d_side))) * hg[5], hair * tex, _HAIR_FRONT)

    # Occluder: a rounded rectangle over the face (parsing: background).
    if np.any(p["occ_on"]):
        og = [g(p["occ_geom"][:, k]) for k in range(6)]
        co, so = np.cos(og[4]), np.sin(og[4])
        u, v = co * (x - og[0]) + so * (y - og[1]), co * (y - og[1]) - so * (x - og[0])
        rr = og[5] * np.minimum(og[2], og[3])
        qx, qy = np.abs(u) - (og[2] - rr), np.abs(v) - (og[3] - rr)
        d = (np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
             + np.minimum(np.maximum(qx, qy), 0) - rr)
        paint(cov(d) * g(p["occ_on"]), c3(p["occ_col"]) * (0.85 + 0.15 * np.cos(9 * u)),
              _OCCLUDER)

    # Camera: lighting gradient and tint, blur, noise, saturation.
    la = p["light_angle"]
    img *= (1 + g(p["light"]) * (g(np.cos(la)) * px + g(np.sin(la)) * py)) * c3(p["tint"])
    blur = np.asarray(p["blur"], _F32)
    for k in range(int(np.ceil(blur.max(initial=0.0)))):  # only the examples that blur
        sel = np.flatnonzero(blur > k)
        w = np.minimum(blur[sel] - k, 1).reshape(-1, 1, 1)
        part = img[sel]
        img[sel] = part + w * (_binomial_blur(part, n) - part)
    table = _noise_table(n * n)
    for i in range(b):  # a per-example window into a fixed Gaussian table
        if p["noise"][i] > 0:
            start = int(p["noise_seed"][i]) % (table.shape[1] - n * n)
            img[i] += _F32(p["noise"][i]) * table[:, start:start + n * n]
    sel = np.flatnonzero(p["saturation"] != 1)  # only the examples that lose colour
    if sel.size:
        part = img[sel]
        gray = 0.299 * part[:, 0:1] + 0.587 * part[:, 1:2] + 0.114 * part[:, 2:3]
        img[sel] = gray + np.asarray(p["saturation"], _F32)[sel].reshape(-1, 1, 1) * (
            part - gray)
    return img.reshape(b, 3, n, n), LAYER_CLASS[layer[:, 0]].reshape(b, n, n)


def render(params: dict[str, np.ndarray], *, image_size: int = 64,
           render_size: int | None = None) -> dict[str, np.ndarray]:
    """Renders a batch of faces from `sample_params` output (edited or not).

    Args:
      params: dict of per-example arrays with leading batch axis (see `params.PARAM_KEYS`).
      image_size: output height = width in pixels.
      render_size: rasterise at this size, then upsample the image bilinearly and the parsing
        by nearest neighbour to `image_size` (low-resolution domains); None = `image_size`.

    Returns:
      dict with `image` uint8 (B, S, S, 3), `parsing` uint8 (B, S, S), `landmarks` float32
      (B, 5, 2) in pixels of the output image.
    """
    n = image_size if render_size is None else int(render_size)
    img, parsing = _raster(params, n)
    if n != image_size:
        img = _resize_bilinear(img, image_size)
        idx = ((np.arange(image_size) + 0.5) * n / image_size).astype(np.int64)
        parsing = parsing[:, idx][:, :, idx]
    img = np.clip(img * 255 + 0.5, 0, 255, out=img)
    image = np.ascontiguousarray(img.astype(np.uint8).transpose(0, 2, 3, 1))
    return dict(image=image, parsing=parsing,
                landmarks=geometry.landmarks(params, image_size))
