"""The inputs of ``python -m affectjax.predict``: image files, folders and videos.

`discover` turns the command's PATH arguments into an ordered list of `Input`:

* an image file (any extension: Pillow decides whether it can read it) or a video file
  (extension in `VIDEO_EXTENSIONS`) is one input;
* a folder is searched recursively for files whose extension (case-insensitive) is in
  `IMAGE_EXTENSIONS` or `VIDEO_EXTENSIONS`, in sorted order of their path inside the folder;
  other files are ignored.

A PATH that does not exist, or PATHs that hold no image or video, are the user's mistake
(`affectjax.train.errors.DataError`, one line, before the model is loaded).

`read_image` decodes an image with Pillow into RGB uint8 (H, W, 3), applying the EXIF
orientation; grayscale and palette images are converted, and transparent pixels are put on
white. `read_video` decodes a video with OpenCV (``pip install -e ".[faces]"``) and yields
the frames sampled at `fps` per second with their time in seconds, one at a time, so a long
video streams. A file that cannot be read raises `UnreadableError` with a short reason;
`iter_frames` reports it through a callback and goes on with the next input.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from affectjax.train.errors import DataError, UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
INSTALL_HINT = 'pip install -e ".[faces]"'


class UnreadableError(Exception):
    """An input file that cannot be decoded; ``str()`` is the reason (one line)."""


@dataclasses.dataclass(frozen=True)
class Input:
    """One input file.

    Attributes:
      path: the file as the user can find it (the PATH argument, or the folder argument
        joined with the file's path inside it).
      kind: ``"image"`` or ``"video"``.
      name: the file's path relative to its folder argument (its base name for a file
        argument): the name of its pictures under ``--annotate``.
    """

    path: str
    kind: str
    name: str


@dataclasses.dataclass(frozen=True)
class Frame:
    """One image to predict on: a whole image file, or one sampled video frame.

    Attributes:
      source: the `Input` it comes from.
      image: RGB uint8 (H, W, 3).
      frame: the video frame index (0-based, in the video's own frame rate); None for images.
      time_s: the frame's time in seconds; None for images.
    """

    source: Input
    image: np.ndarray
    frame: int | None = None
    time_s: float | None = None


def kind_of(path: str) -> str | None:
    """``"image"`` or ``"video"`` from the extension (case-insensitive); None otherwise."""
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    return None


def discover(paths: Sequence[str]) -> list[Input]:
    """The inputs named by `paths`, in argument order, each folder's files sorted.

    Raises:
      DataError: a path does not exist, or no image or video was found.
    """
    found: list[Input] = []
    for path in paths:
        if os.path.isdir(path):
            inside = []
            for folder, dirs, files in os.walk(path):
                dirs.sort()
                for file in files:
                    full = os.path.join(folder, file)
                    if kind_of(file) is not None:
                        inside.append(os.path.relpath(full, path))
            for rel in sorted(inside, key=lambda r: r.replace(os.sep, "/")):
                found.append(Input(os.path.join(path, rel), kind_of(rel), rel))
        elif os.path.isfile(path):
            found.append(Input(path, kind_of(path) or "image", os.path.basename(path)))
        else:
            raise DataError(f"no such file or folder: {path}")
    if not found:
        raise DataError(f"no image ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) or video "
                        f"({', '.join(e[1:] for e in VIDEO_EXTENSIONS)}) found in "
                        f"{' '.join(paths)}")
    return _unique_names(found)


def _unique_names(inputs: list[Input]) -> list[Input]:
    """Makes the `name`s distinct (two folder arguments may hold ``a.jpg``): ``a~2.jpg``."""
    seen: set[str] = set()
    out = []
    for item in inputs:
        name, n = item.name, 1
        stem, ext = os.path.splitext(item.name)
        while name.lower() in seen:
            n += 1
            name = f"{stem}~{n}{ext}"
        seen.add(name.lower())
        out.append(dataclasses.replace(item, name=name))
    return out


def read_image(path: str) -> np.ndarray:
    """The image at `path` as RGB uint8 (H, W, 3).

    Raises:
      UnreadableError: the file is not an image Pillow can decode (or is truncated).
    """
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                img = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img.alpha_composite(rgba)
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise UnreadableError("not an image Pillow can decode") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise UnreadableError(" ".join(str(exc).split()) or type(exc).__name__) from None
    except Image.DecompressionBombError as exc:
        raise UnreadableError(str(exc)) from None


def require_cv2(purpose: str):
    """Imports OpenCV, or raises a one-line `UserError` that says how to install it."""
    try:
        import cv2  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise UserError(f"{purpose} needs OpenCV: {INSTALL_HINT}") from None
    return cv2


def read_video(path: str, fps: float = 1.0) -> Iterator[Frame]:
    """Yields the frames of the video at `path` sampled at `fps` per second.

    A frame is kept when its time ``index / native_fps`` reaches the next sampling time
    (0, 1/fps, 2/fps, ...), so the first frame is always kept; ``fps=0`` keeps every frame.
    When the container does not state its frame rate, the decoder's timestamps are used.

    Raises:
      UnreadableError: the file cannot be opened (unknown container or codec) or has no
        decodable frame. A video that breaks off after some frames ends there.
    """
    cv2 = require_cv2("reading videos")
    source = Input(path, "video", os.path.basename(path))
    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise UnreadableError("cannot open the video (unknown container or codec)")
        native = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        native = native if np.isfinite(native) and 0 < native < 1000 else 0.0
        step = 1.0 / fps if fps > 0 else 0.0
        next_time, index, kept = 0.0, 0, 0
        while capture.grab():
            time_s = index / native if native else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000
            if time_s + 1e-6 >= next_time:
                ok, bgr = capture.retrieve()
                if ok and bgr is not None and bgr.size:
                    if bgr.ndim == 2:
                        bgr = np.repeat(bgr[..., None], 3, axis=-1)
                    kept += 1
                    yield Frame(source, np.ascontiguousarray(bgr[..., 2::-1]), index,
                                round(float(time_s), 3))
                    if step:
                        next_time = (np.floor((time_s + 1e-6) / step) + 1) * step
            index += 1
        if not kept:
            raise UnreadableError("no decodable frame" if index else
                                  "no frame (empty, truncated or unknown codec)")
    finally:
        capture.release()


def iter_frames(inputs: Sequence[Input], *, fps: float = 1.0,
                on_error: Callable[[Input, str], None],
                on_input: Callable[[Input], None] | None = None) -> Iterator[Frame]:
    """Every image and sampled video frame of `inputs`, in order.

    Args:
      inputs: from `discover`.
      fps: video sampling rate (frames per second; 0 = every frame).
      on_error: called with the input and the reason when a file cannot be read; the
        remaining inputs are still read.
      on_input: called once an input has been read completely (or has failed).
    """
    for item in inputs:
        try:
            if item.kind == "video":
                for frame in read_video(item.path, fps):
                    yield dataclasses.replace(frame, source=item)
            else:
                yield Frame(item, read_image(item.path))
        except UnreadableError as exc:
            on_error(item, str(exc))
        if on_input is not None:
            on_input(item)
