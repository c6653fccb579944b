"""SynthFaces geometry: the deformed parametric face and its pose transform.

Coordinates. The canonical face frame has x to the image right (the subject's LEFT) and y
down, the face centre near the origin, the face about 1.2 wide and 1.5 tall. The image frame
is normalised to [-1, 1] on both axes (pixel centres at (j + 0.5) / size * 2 - 1), and pose
maps canonical to image coordinates: p = t + s * R(angle) q. Yaw is a horizontal warp of the
inner features only: x_canon - d = x_feat * (1 - k * sign(x_feat)), with d = 0.25 * yaw and
k = 0.35 * yaw, which shifts the features and squeezes the side the head turns to.

Every feature is symmetric in the feature frame (it is written as a function of |x_feat|), so
the two eyes/brows come from one formula and their left/right parsing class from the sign
of x_feat. Each AU moves only its own features (see `features`).
"""

from __future__ import annotations

import numpy as np

from affectjax.data.synthfaces.labels import AU_INDEX

FACE_CY = 0.02
JAW_Y = 0.30  # below this line, AU26 stretches the face outline down (chin lowers)


def au(params: dict[str, np.ndarray], au_id: int) -> np.ndarray:
    """Intensity (B,) of one AU."""
    return params["au"][:, AU_INDEX[au_id]].astype(np.float64)


def features(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-example feature sizes and positions (B,) after the AU deformations.

    Face: half-width `face_rx`, half-heights `face_ry_top`/`face_ry_bot`, `jaw_stretch` (AU26).
    Eyes: centre (+-`eye_x`, `eye_y`), half-width `eye_w`, upper/lower opening `eye_hu`,
    `eye_hl` (AU7 tightens both lids, AU6 raises the lower lid).
    Brows: inner end `brow_in`, length `brow_len`, base `brow_y`, inner/outer lifts `brow_lift_in`,
    `brow_lift_out` (AU1 raises the inner end, AU2 the outer end, AU4 lowers both, the inner
    end more, and pulls the brows together).
    Nose: centre `nose_y`, half-height `nose_h`, half-width `nose_w`; tip at nose_y + 0.7 nose_h.
    Mouth: centre line `mouth_y`, half-width `mouth_w` (AU12 widens, AU23 narrows), corner lift
    `mouth_c` (AU12 up, AU15 down), opening above/below the lip line `open_u` (AU25, AU26,
    AU10) / `open_d` (AU25, AU26), lip thicknesses `lip_u`, `lip_l` (AU23 thins, AU24 presses).
    """
    a = {k: au(p, k) for k in AU_INDEX}
    f = {}
    f["face_rx"] = 0.60 * p["face_w"]
    f["face_ry_top"] = np.full_like(f["face_rx"], 0.76)
    f["face_ry_bot"] = 0.74 * p["face_h"]
    f["jaw_stretch"] = 1.0 + 0.12 * a[26]
    f["eye_x"] = 0.235 * p["eye_spacing"]
    f["eye_y"] = np.full_like(f["face_rx"], -0.06)
    f["eye_w"] = 0.105 * p["eye_size"]
    f["eye_hu"] = 0.066 * p["eye_size"] * (1 - 0.3 * a[7]) * (1 - 0.1 * a[6])
    f["eye_hl"] = 0.05 * p["eye_size"] * (1 - 0.5 * a[7]) * (1 - 0.4 * a[6])
    f["brow_in"] = 0.085 * p["eye_spacing"] - 0.03 * a[4]
    f["brow_len"] = 0.23 * p["eye_spacing"]
    f["brow_y"] = -0.235 + p["brow_y"]
    f["brow_arch"] = 0.03 * p["brow_arch"]
    f["brow_lift_in"] = 0.085 * a[1] - 0.05 * a[4]
    f["brow_lift_out"] = 0.075 * a[2] - 0.02 * a[4]
    f["brow_th"] = 0.045 * p["brow_thick"]
    f["nose_y"] = np.full_like(f["face_rx"], 0.10)
    f["nose_h"] = 0.13 * p["nose_len"]
    f["nose_w"] = 0.072 * p["nose_w"]
    f["mouth_y"] = 0.42 + p["mouth_y"]
    f["mouth_w"] = 0.19 * p["mouth_w"] * (1 + 0.22 * a[12] - 0.18 * a[23] - 0.06 * a[24]
                                          - 0.05 * a[15])
    f["mouth_c"] = 0.1 * a[12] - 0.075 * a[15]
    press = 1 - 0.8 * a[24]
    f["open_u"] = (0.012 * a[25] + 0.015 * a[26]) * press + 0.03 * a[10]
    f["open_d"] = (0.015 * a[25] + 0.10 * a[26]) * press + 0.006 * a[10]
    thin = np.clip(1 - 0.45 * a[23] - 0.5 * a[24], 0.25, 1)
    f["lip_u"] = 0.05 * p["lip_u"] * thin
    f["lip_l"] = 0.06 * p["lip_l"] * thin
    return f


def yaw_terms(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(d, k) of the yaw warp x_canon - d = x_feat * (1 - k sign(x_feat))."""
    return 0.25 * p["yaw"], 0.35 * p["yaw"]


def to_image(p: dict[str, np.ndarray], xf: np.ndarray, y: np.ndarray,
             size: int) -> np.ndarray:
    """Maps feature-frame points (B, N) to pixel coordinates (B, N, 2) of a size x size image.

    Pixel (j, i) covers [j, j + 1) x [i, i + 1), so its centre is (j + 0.5, i + 0.5): the
    convention of every reader and of the pipeline's flips and resizes.
    """
    d, k = (t[:, None] for t in yaw_terms(p))
    x = d + xf * (1 - k * np.sign(xf))
    c, s = np.cos(p["angle"])[:, None], np.sin(p["angle"])[:, None]
    sc = p["scale"][:, None]
    px = p["tx"][:, None] + sc * (c * x - s * y)
    py = p["ty"][:, None] + sc * (s * x + c * y)
    return np.stack([(px + 1) * size / 2, (py + 1) * size / 2], axis=-1)


def landmarks(p: dict[str, np.ndarray], size: int) -> np.ndarray:
    """The 5 landmarks (B, 5, 2) (x, y) in pixels: left eye, right eye, nose tip, left and right
    mouth corners. "Left" is the subject's left, which appears on the image's right (x > 0)."""
    f = features(p)
    xf = np.stack([f["eye_x"], -f["eye_x"], 0 * f["eye_x"], f["mouth_w"], -f["mouth_w"]], 1)
    corner_y = f["mouth_y"] - f["mouth_c"]
    y = np.stack([f["eye_y"], f["eye_y"], f["nose_y"] + 0.7 * f["nose_h"], corner_y, corner_y], 1)
    return to_image(p, xf, y, size).astype(np.float32)
