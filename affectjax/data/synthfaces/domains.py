"""SynthFaces domains: named nuisance and label statistics, so cross-data-set training meets a shift.

* `studio`: colour, frontal, plain background, balanced posed expressions of high intensity
  (a lab set such as RaFD/CK+).
* `wild`: colour, cluttered background, pose (rotation, scale, shift, yaw), occluders, blur,
  sensor noise, strong lighting; neutral/happy-heavy priors like AffectNet.
* `grayscale_lowres`: grayscale, rendered at half the output size then upsampled, mild pose
  and noise; FER2013's class priors (no "Other").
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np

from affectjax import registry


@dataclasses.dataclass(frozen=True)
class Domain:
    """Statistics of one SynthFaces domain (all ranges are (low, high), uniform).

    Attributes:
      class_prior: probabilities of the 8 ABAW expressions (normalised on use).
      intensity: range of the expression intensity (within [0.3, 1]).
      extra_au_rate: probability of each non-prototype AU being weakly active.
      rotation_deg: maximal in-plane head rotation in degrees.
      scale: face scale range (1 = the face fills the frame).
      shift: maximal translation as a fraction of the half image size.
      yaw: maximal yaw (horizontal squeeze/shift of the features).
      clutter: range of the background clutter amount in [0, 1].
      occluder_prob: probability of one random occluder over the face.
      blur: range of blur strength (number of [1, 2, 1] binomial passes, fractional).
      noise: range of the Gaussian pixel-noise std (intensity in [0, 1]).
      light: maximal strength of the linear lighting gradient.
      grayscale: render luminance only (replicated to 3 channels).
      render_scale: render at this fraction of the output size, then upsample bilinearly.
      hair_prior: probabilities of the hair styles (short, long, fringe, bald, bun).
    """
    class_prior: tuple[float, ...]
    intensity: tuple[float, float] = (0.3, 1.0)
    extra_au_rate: float = 0.03
    rotation_deg: float = 0.0
    scale: tuple[float, float] = (0.9, 1.0)
    shift: float = 0.0
    yaw: float = 0.0
    clutter: tuple[float, float] = (0.0, 0.0)
    occluder_prob: float = 0.0
    blur: tuple[float, float] = (0.0, 0.0)
    noise: tuple[float, float] = (0.0, 0.0)
    light: float = 0.0
    grayscale: bool = False
    render_scale: float = 1.0
    hair_prior: tuple[float, ...] = (0.35, 0.3, 0.2, 0.05, 0.1)

    def prior(self) -> np.ndarray:
        p = np.asarray(self.class_prior, np.float64)
        return p / p.sum()


DOMAINS: dict[str, Domain] = {
    "studio": Domain(
        class_prior=(0.14, 0.13, 0.12, 0.12, 0.14, 0.13, 0.13, 0.09),
        intensity=(0.5, 1.0), extra_au_rate=0.02,
        rotation_deg=3.0, scale=(0.92, 1.0), shift=0.02, yaw=0.05,
        noise=(0.0, 0.01), light=0.1),
    "wild": Domain(
        class_prior=(0.25, 0.08, 0.04, 0.04, 0.38, 0.09, 0.06, 0.06),
        intensity=(0.3, 1.0), extra_au_rate=0.05,
        rotation_deg=20.0, scale=(0.72, 1.02), shift=0.1, yaw=0.35,
        clutter=(0.4, 1.0), occluder_prob=0.3, blur=(0.0, 1.5), noise=(0.01, 0.06),
        light=0.4),
    "grayscale_lowres": Domain(
        class_prior=(0.173, 0.138, 0.015, 0.143, 0.25, 0.17, 0.111, 0.0),
        intensity=(0.3, 1.0), extra_au_rate=0.04,
        rotation_deg=10.0, scale=(0.85, 1.0), shift=0.04, yaw=0.2,
        clutter=(0.0, 0.5), occluder_prob=0.1, blur=(0.0, 0.5), noise=(0.01, 0.04),
        light=0.3, grayscale=True, render_scale=0.5),
}


def get_domain(name: str) -> Domain:
    """Looks a domain up by name; an unknown name raises a KeyError listing the choices."""
    return registry.lookup(DOMAINS, name, "SynthFaces domain")


def domain_key(name: str) -> int:
    """A stable 32-bit integer for a domain name (enters every example's seed)."""
    return zlib.crc32(name.encode("utf-8"))
