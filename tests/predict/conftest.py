"""A fake predictor with the interface of `affectjax.predict.load`'s, and small media files.

The fake is tiny and deterministic (its outputs are functions of each image's mean colour
and size), so the tests of the inputs, writers, pictures and the CLI need no trained run.
"""

import os

import numpy as np
import pytest
from PIL import Image

from affectjax.labels import AUS, EXPRESSIONS


class FakePredictor:
    """Predicts from each image's mean colour; records the batch sizes it was called with."""

    method = "emotieffnet"
    image_size = 32
    names = {"expr_probs": EXPRESSIONS, "au_probs": AUS}
    # (x, y) of the 5 landmarks as fractions of the given image's width and height.
    LANDMARKS = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])

    def __init__(self):
        self.calls = []

    def __call__(self, images, batch_size=32):
        images = list(images)
        self.calls.append(len(images))
        means = np.array([np.asarray(im, np.float64).reshape(-1, 3).mean(0) / 255
                          for im in images])
        sizes = np.array([(im.shape[1], im.shape[0]) for im in images], np.float64)
        logits = np.stack([means[:, i % 3] * (i + 1) for i in range(len(EXPRESSIONS))], -1)
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        au_probs = np.stack([means[:, i % 3] for i in range(len(AUS))], -1)
        expr = probs.argmax(-1)
        return {
            "expr_probs": probs, "expr": expr,
            "expr_label": np.array([EXPRESSIONS[i] for i in expr]),
            "valence": means[:, 0] - means[:, 2], "arousal": means[:, 1] - 0.5,
            "au_probs": au_probs, "au": (au_probs >= 0.5).astype(np.int64),
            "landmarks": self.LANDMARKS[None] * sizes[:, None, :],
        }

    def rows(self, out):
        rows = []
        for b in range(len(out["expr"])):
            row = {"expr_label": str(out["expr_label"][b])}
            row.update({f"expr_prob/{n}": float(out["expr_probs"][b, i])
                        for i, n in enumerate(EXPRESSIONS)})
            row.update(valence=float(out["valence"][b]), arousal=float(out["arousal"][b]))
            row.update({f"au/{n}": int(out["au"][b, i]) for i, n in enumerate(AUS)})
            row.update({f"au_prob/{n}": float(out["au_probs"][b, i]) for i, n in enumerate(AUS)})
            for i, (x, y) in enumerate(out["landmarks"][b]):
                row[f"landmark{i}_x"], row[f"landmark{i}_y"] = float(x), float(y)
            rows.append(row)
        return rows


@pytest.fixture
def fake():
    """A fresh `FakePredictor`."""
    return FakePredictor()


@pytest.fixture
def fake_load(fake):
    """A loader with `affectjax.predict.load`'s signature that returns `fake`; it records
    its arguments in ``fake.loaded``."""
    def load(run_dir, *, best=True):
        fake.loaded = (run_dir, best)
        return fake
    return load


def write_image(path, size=(48, 40), color=(200, 80, 40), mode="RGB"):
    """Writes a solid image (width, height) at `path` (the format from its extension)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, color).convert(mode).save(path)
    return path


def write_video(path, frames=10, fps=10.0, size=(64, 48)):
    """Writes an MJPG .avi of `frames` frames whose colour changes with the frame index."""
    cv2 = pytest.importorskip("cv2")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[..., 2] = 20 * i  # red in BGR order
        frame[..., 1] = 100
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def media_helpers():
    """``(write_image, write_video)``."""
    return write_image, write_video
