"""Face crops for ``python -m affectjax.predict``: the whole image, or OpenCV's Haar detector.

Without ``--detect-faces`` each image is one face: `whole_image` gives face 0 with the box
``(0, 0, W, H)``, and the model sees the whole image (resized by the predictor).

With ``--detect-faces``, `FaceDetector` runs OpenCV's frontal-face Haar cascade
(``haarcascade_frontalface_default.xml``, shipped inside the ``opencv-python-headless``
wheel; nothing is downloaded) on the grayscale image. Its boxes are tight around the eyes,
nose and mouth, while the training images of affectjax (SynthFaces, and the aligned crops of
AffectNet or Aff-Wild2) frame the whole head: each box is therefore widened by `MARGIN` (25 %
of its width on the left and on the right, 25 % of its height above and below) and clipped to
the image (`expand`). The box then covers 2/3 of the crop's side, as the cascade's box covers
about 0.65 of a 256-pixel SynthFaces "studio" image.
The faces of an image are numbered from left to right (then top to bottom).

A `Face`'s ``box`` is the region the model saw, in pixels of the full image: the clipped,
widened box with a detector, the whole image without one. The CLI writes it as ``box_x,
box_y, box_w, box_h`` and adds its corner to the predicted landmarks, so they are in pixels of
the full image.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from affectjax.predict.media import require_cv2

MARGIN = 0.25
CASCADE = "haarcascade_frontalface_default.xml"

Box = tuple[int, int, int, int]  # x, y, width, height in pixels


@dataclasses.dataclass(frozen=True)
class Face:
    """One face of an image.

    Attributes:
      index: 0, 1, ... from left to right.
      box: ``(x, y, w, h)`` of `image` in the full image (the region the model sees).
      image: the crop, RGB uint8 (h, w, 3).
    """

    index: int
    box: Box
    image: np.ndarray


def expand(box: Box, margin: float, width: int, height: int) -> Box:
    """`box` widened by `margin` times its size on every side, clipped to the image.

    ``(x, y, w, h)`` becomes ``(x - m·w, y - m·h, w + 2m·w, h + 2m·h)``, rounded outwards
    to whole pixels and then cut to ``[0, width) × [0, height)``; the result is never empty.
    """
    x, y, w, h = box
    x0 = max(0, math.floor(x - margin * w))
    y0 = max(0, math.floor(y - margin * h))
    x1 = min(width, math.ceil(x + w + margin * w))
    y1 = min(height, math.ceil(y + h + margin * h))
    x0, y0 = min(x0, width - 1), min(y0, height - 1)
    return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """The pixels of `box` (a view of `image`)."""
    x, y, w, h = box
    return image[y:y + h, x:x + w]


def to_image_pixels(row: dict, box: Box) -> dict:
    """`row` with its landmark columns (``landmark<i>_x/_y``, also a member's) moved from
    pixels of the crop to pixels of the full image, i.e. plus the corner of `box`."""
    x0, y0 = box[0], box[1]
    out = dict(row)
    for key, value in row.items():
        leaf = key.rsplit("/", 1)[-1]
        if leaf.startswith("landmark") and leaf.endswith(("_x", "_y")) and isinstance(
                value, numbers.Real) and not isinstance(value, bool):
            out[key] = float(value) + (x0 if leaf.endswith("_x") else y0)
    return out


def whole_image(image: np.ndarray) -> list[Face]:
    """The image as face 0 (no detection)."""
    return [Face(0, (0, 0, int(image.shape[1]), int(image.shape[0])), image)]


class FaceDetector:
    """OpenCV's Haar cascade for frontal faces, with the crop margin.

    Args:
      margin: the widening of each detected box (see `expand`).
      scale_factor, min_neighbors: `cv2.CascadeClassifier.detectMultiScale` settings.
      min_size: the smallest face, as a fraction of the image's shorter side (at least
        24 pixels, the cascade's window).

    Raises:
      UserError: OpenCV is not installed (the message says how to install it).
    """

    def __init__(self, *, margin: float = MARGIN, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: float = 0.05):
        cv2 = require_cv2("--detect-faces")
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE)
        if self._cascade.empty():
            raise RuntimeError(f"OpenCV could not load {cv2.data.haarcascades + CASCADE}")
        self.margin, self.scale_factor = float(margin), float(scale_factor)
        self.min_neighbors, self.min_size = int(min_neighbors), float(min_size)

    def detect(self, image: np.ndarray) -> list[Box]:
        """The detected boxes ``(x, y, w, h)`` (before the margin), left to right."""
        gray = self._cv2.cvtColor(np.ascontiguousarray(image), self._cv2.COLOR_RGB2GRAY)
        side = max(24, round(self.min_size * min(gray.shape)))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(side, side))
        boxes = [tuple(int(v) for v in b) for b in np.asarray(found).reshape(-1, 4)]
        return sorted(boxes, key=lambda b: (b[0], b[1]))

    def __call__(self, image: np.ndarray) -> list[Face]:
        """The faces of `image`, cropped with the margin; empty when none is found."""
        height, width = image.shape[:2]
        faces = []
        for i, box in enumerate(self.detect(image)):
            region = expand(box, self.margin, width, height)
            faces.append(Face(i, region, crop(image, region)))
        return faces
