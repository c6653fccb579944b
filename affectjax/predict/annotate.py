"""Pictures of predictions: annotated images, video contact sheets and valence/arousal plots.

`annotate` draws one image's predictions. The image is first resized so that its longer side
lies in [`MIN_SIDE`, `MAX_SIDE`] = [256, 1024] pixels (a 64-pixel face is enlarged 4 times, a
photo reduced), then the face boxes (with ``--detect-faces``) and the landmarks (when the model
predicts them) are drawn on it, and a dark text panel below it gives, per face, the expression
and its probability, valence and arousal, the active AUs and attributes. The font (Pillow's
default) grows with the picture's width, so the text stays readable.

For a video, `ContactSheet` keeps up to 16 sampled frames spread evenly over the whole video
(without holding every frame: it keeps every s-th frame and doubles s when it holds too many)
and `ContactSheet.render` draws them annotated in a grid of 4 columns, each with its time.

`VATrack` and `plot_va` draw a video's valence and arousal over time (matplotlib, Agg). A
frame with several faces contributes their mean; a frame without a face leaves a gap.

The CLI writes ``<name>.png`` for an image, ``<name>_sheet.png`` for a video and
``<name>_va.png`` for its plot, where ``<name>`` is the input's path inside its folder
argument without its extension (`output_path`).
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from affectjax.predict.writers import active, top_probability
from affectjax.train import plots

MIN_SIDE, MAX_SIDE = 256, 1024
SHEET_FRAMES, SHEET_COLUMNS, TILE_SIDE = 16, 4, 320
PANEL, TEXT, BOX, DOT = (24, 24, 24), (240, 240, 240), (255, 196, 0), (0, 230, 80)

Faces = Sequence[tuple[Sequence[int], Mapping[str, Any]]]  # (box, row) per face


def output_path(folder: str, name: str, suffix: str) -> str:
    """``<folder>/<name without extension><suffix>``, its folders created."""
    path = os.path.join(folder, os.path.splitext(name)[0] + suffix)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return path


def face_lines(row: Mapping[str, Any]) -> list[str]:
    """The text of one face: expression, V/A, active AUs and attributes (what it has)."""
    if not any(k not in ("file", "frame", "time_s", "face") and not k.startswith("box_")
               for k in row):
        return ["no face found"]
    head = []
    if row.get("expr_label") is not None:
        prob = top_probability(row)
        head.append(f"{row['expr_label']}" + ("" if prob is None else f" {prob:.2f}"))
    for key, short in (("valence", "V"), ("arousal", "A")):
        if row.get(key) is not None:
            head.append(f"{short} {float(row[key]):+.2f}")
    lines = ["  ".join(head)] if head else []
    if any(k.startswith("au/") for k in row):
        lines.append("AUs: " + (" ".join(active(row, "au/")) or "none"))
    if any(k.startswith("attr/") for k in row):
        on = active(row, "attr/")
        lines.append("attr: " + (", ".join(on[:6]) + (f" (+{len(on) - 6})" if len(on) > 6
                                                       else "") if on else "none"))
    return lines


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font: Any, width: float) -> list[str]:
    words, lines, line = text.split(" "), [], ""
    for word in words:
        trial = f"{line} {word}" if line else word
        if line and font.getlength(trial) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + [line]


def _landmarks(row: Mapping[str, Any]) -> list[tuple[float, float]]:
    points, i = [], 0
    while f"landmark{i}_x" in row and f"landmark{i}_y" in row:
        points.append((float(row[f"landmark{i}_x"]), float(row[f"landmark{i}_y"])))
        i += 1
    return points


def annotate(image: np.ndarray, faces: Faces, *, title: str | None = None,
             draw_boxes: bool = False, coord_scale: float = 1.0,
             min_side: int = MIN_SIDE, max_side: int = MAX_SIDE) -> Image.Image:
    """`image` with its faces' predictions drawn (see the module docstring).

    Args:
      image: RGB uint8 (H, W, 3).
      faces: ``(box, row)`` per face: the box ``(x, y, w, h)`` and the predictor's row with
        landmarks in the same pixels (a row without predictions reads "no face found").
      title: a first panel line (e.g. a video frame's time).
      draw_boxes: draw each face's box and index (with ``--detect-faces``).
      coord_scale: the factor from the boxes' and landmarks' pixels to `image`'s.
      min_side, max_side: the range of the picture's longer side.

    Returns:
      An RGB image of width ``W·s`` and height ``H·s`` plus the panel, where ``s`` brings
      ``max(H, W)`` into ``[min_side, max_side]`` (1 when it already is).
    """
    height, width = image.shape[:2]
    longest = max(height, width)
    scale = min_side / longest if longest < min_side else (
        max_side / longest if longest > max_side else 1.0)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    picture = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
    if scale != 1.0:
        picture = picture.resize(size, Image.LANCZOS if scale < 1 else Image.BICUBIC)
    draw = ImageDraw.Draw(picture)
    font = _font(max(12, min(28, round(size[0] / 18))))
    k = scale * coord_scale
    line_w, dot = max(2, round(size[0] / 200)), max(2.0, size[0] / 110)
    for i, (box, row) in enumerate(faces):
        if draw_boxes and box is not None and row.get("face", i) != -1:
            x, y, w, h = (float(v) * k for v in box)
            draw.rectangle([x, y, x + w - 1, y + h - 1], outline=BOX, width=line_w)
            draw.text((x + line_w + 1, y + line_w), str(row.get("face", i)), fill=BOX,
                      font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        for px, py in _landmarks(row):
            px, py = px * k, py * k
            draw.ellipse([px - dot, py - dot, px + dot, py + dot], fill=DOT, outline=(0, 0, 0))
    text = [title] if title else []
    for i, (_, row) in enumerate(faces):
        lines = face_lines(row)
        if draw_boxes and lines != ["no face found"]:
            lines = [f"#{row.get('face', i)} {lines[0]}"] + lines[1:]
        text.extend(lines)
    pad = max(4, round(font.size * 0.4)) if hasattr(font, "size") else 4
    wrapped = [part for line in text for part in _wrap(line, font, size[0] - 2 * pad)]
    line_h = round(font.getbbox("Ag")[3] * 1.25) if wrapped else 0
    panel_h = len(wrapped) * line_h + 2 * pad if wrapped else 0
    canvas = Image.new("RGB", (size[0], size[1] + panel_h), PANEL)
    canvas.paste(picture, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for j, line in enumerate(wrapped):
        draw.text((pad, size[1] + pad + j * line_h), line, fill=TEXT, font=font)
    return canvas


class ContactSheet:
    """Up to `max_frames` annotated frames of one video, spread over its whole length.

    Args:
      max_frames: the most frames drawn (16).
      draw_boxes: draw face boxes (with ``--detect-faces``).
    """

    def __init__(self, max_frames: int = SHEET_FRAMES, *, draw_boxes: bool = False):
        self.max_frames, self.draw_boxes = int(max_frames), draw_boxes
        self.stride, self.seen = 1, 0
        self.kept: list[tuple[int, np.ndarray, float, float | None, list]] = []

    def add(self, image: np.ndarray, faces: Faces, time_s: float | None) -> None:
        """Offers one sampled frame (kept as a small thumbnail when its turn comes)."""
        n, self.seen = self.seen, self.seen + 1
        if n % self.stride:
            return
        factor = min(1.0, TILE_SIDE / max(image.shape[:2]))
        thumb = Image.fromarray(np.asarray(image, np.uint8))
        if factor < 1.0:
            thumb = thumb.resize((max(1, round(image.shape[1] * factor)),
                                  max(1, round(image.shape[0] * factor))), Image.LANCZOS)
        self.kept.append((n, np.asarray(thumb), factor, time_s, list(faces)))
        if len(self.kept) > 2 * self.max_frames:
            self.stride *= 2
            self.kept = [item for item in self.kept if item[0] % self.stride == 0]

    def render(self) -> Image.Image | None:
        """The grid of annotated frames (4 columns), or None when no frame was added."""
        if not self.kept:
            return None
        pick = np.unique(np.round(np.linspace(0, len(self.kept) - 1,
                                              min(self.max_frames, len(self.kept)))).astype(int))
        tiles = []
        for i in pick:
            _, thumb, factor, time_s, faces = self.kept[i]
            title = None if time_s is None else f"t = {time_s:.1f} s"
            tile = annotate(thumb, faces, title=title, draw_boxes=self.draw_boxes,
                            coord_scale=factor, min_side=TILE_SIDE, max_side=TILE_SIDE)
            if tile.width != TILE_SIDE:
                tile = tile.resize((TILE_SIDE, max(1, round(tile.height * TILE_SIDE
                                                            / tile.width))), Image.LANCZOS)
            tiles.append(tile)
        columns = min(SHEET_COLUMNS, len(tiles))
        rows = math.ceil(len(tiles) / columns)
        cell_h, gap = max(t.height for t in tiles), 4
        sheet = Image.new("RGB", (columns * TILE_SIDE + (columns + 1) * gap,
                                  rows * cell_h + (rows + 1) * gap), (60, 60, 60))
        for j, tile in enumerate(tiles):
            r, c = divmod(j, columns)
            sheet.paste(tile, (gap + c * (TILE_SIDE + gap), gap + r * (cell_h + gap)))
        return sheet


class VATrack:
    """A video's valence and arousal per sampled frame (the mean over its faces)."""

    def __init__(self):
        self.times: list[float] = []
        self.valence: list[float] = []
        self.arousal: list[float] = []

    def add(self, time_s: float, rows: Sequence[Mapping[str, Any]]) -> None:
        self.times.append(float(time_s))
        for key, values in (("valence", self.valence), ("arousal", self.arousal)):
            found = [float(r[key]) for r in rows if r.get(key) is not None]
            values.append(float(np.mean(found)) if found else float("nan"))

    def has_values(self) -> bool:
        return any(math.isfinite(v) for v in self.valence + self.arousal)


def plot_va(track: VATrack, path: str, *, title: str = "") -> str | None:
    """Writes valence and arousal over time to `path` (PNG); None when there is nothing."""
    if not track.has_values():
        return None
    fig, ax = plots.plt.subplots(figsize=(8, 3.2))
    marker = "o" if len(track.times) <= 60 else None
    ax.plot(track.times, track.valence, label="valence", color="tab:blue", marker=marker,
            markersize=3)
    ax.plot(track.times, track.arousal, label="arousal", color="tab:red", marker=marker,
            markersize=3)
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("time (s)")
    ax.set_title(title, fontsize=9)
    return plots.save_figure(fig, path, axes=[ax])
