"""One ``python -m affectjax.predict`` command: its inputs, model calls, rows and pictures.

`run` connects the modules of the package for the parsed command line
(`affectjax.predict.__main__`): `affectjax.predict.media` yields the frames,
`affectjax.predict.faces` the faces in them, the predictor their fields,
`affectjax.predict.writers` the rows and the per-video summary, and
`affectjax.predict.annotate` the pictures. `Session` holds the state of one command.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable

import tqdm

from affectjax.predict import annotate as annotate_lib
from affectjax.predict import faces as faces_lib
from affectjax.predict import media
from affectjax.predict import writers
from affectjax.train.errors import DataError, UserError


def check_args(args: argparse.Namespace) -> None:
    """One-line `UserError`s for bad values, before anything is read or loaded."""
    writers.check_out(args.out)
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if not args.fps >= 0:
        raise UserError(f"--fps must be 0 (every frame) or positive, got {args.fps}")


def load_config_file(spec: str) -> Any:
    """``get_config([arg])`` of a config file ``path[:arg]``, as ``train.py --config`` reads it.

    The folder above the file's own is put on ``sys.path``, so configs that import
    ``configs.common`` load from any working directory.
    """
    import importlib.util  # pylint: disable=import-outside-toplevel

    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise UserError(f"config file {path!r} does not exist (--config)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if root not in sys.path:
        sys.path.insert(0, root)
    module_spec = importlib.util.spec_from_file_location("_affectjax_predict_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


class Session:
    """The state of one command: writers, pictures and counts, fed frame by frame.

    Args:
      args: the parsed command line.
      predictor: the run's predictor (`affectjax.predict.load`).
      detector: a `faces.FaceDetector`, or None (each image is one face).
      print_fn, warn_fn: print one line on stdout (the table) and on stderr.
      batch_size: faces per model call.
    """

    def __init__(self, args: argparse.Namespace, predictor: Any, detector: Callable | None,
                 print_fn: Callable[[str], None], warn_fn: Callable[[str], None],
                 batch_size: int):
        self.args, self.predictor, self.detector = args, predictor, detector
        self.batch_size = batch_size
        self.writer = writers.open_writer(args.out, print_fn)
        self.summary = writers.VideoSummary()
        self.print_fn, self.warn_fn = print_fn, warn_fn
        self.pending: list[tuple[media.Frame, list[faces_lib.Face]]] = []
        self.sheets: dict[str, annotate_lib.ContactSheet] = {}
        self.tracks: dict[str, annotate_lib.VATrack] = {}
        self.counts = {"images": 0, "frames": 0, "faces": 0, "no_face": 0, "pictures": 0,
                       "failed": 0}
        self.plot_dir = args.annotate or (os.path.dirname(os.path.abspath(args.out))
                                          if args.out else os.getcwd())

    def add(self, frame: media.Frame) -> None:
        found = (self.detector or faces_lib.whole_image)(frame.image)
        self.pending.append((frame, found))
        if sum(len(f) for _, f in self.pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Predicts the pending faces and hands every frame's rows on.

        The crops are padded (with the last one) to a multiple of the batch size, so every
        model call has one shape and the model is compiled once.
        """
        crops = [face.image for _, found in self.pending for face in found]
        rows = []
        if crops:
            padded = crops + [crops[-1]] * (-len(crops) % self.batch_size)
            out = self.predictor(padded, batch_size=self.batch_size)
            rows = self.predictor.rows(out)[:len(crops)]
        at = 0
        for frame, found in self.pending:
            base = {"file": frame.source.path, "frame": frame.frame, "time_s": frame.time_s}
            if found:
                frame_rows = [{**base, "face": face.index, "box_x": face.box[0],
                               "box_y": face.box[1], "box_w": face.box[2],
                               "box_h": face.box[3], **faces_lib.to_image_pixels(row, face.box)}
                              for face, row in zip(found, rows[at:at + len(found)])]
                at += len(found)
            else:
                frame_rows = [{**base, "face": -1, "box_x": None, "box_y": None,
                               "box_w": None, "box_h": None}]
                self.counts["no_face"] += 1
            self.counts["faces"] += len(found)
            self.counts["frames" if frame.frame is not None else "images"] += 1
            for row in frame_rows:
                self.writer.write(row)
                self.summary.add(row)
            self.draw(frame, found, frame_rows)
        self.pending = []

    def draw(self, frame: media.Frame, found: list, rows: list[dict]) -> None:
        """Writes an image's picture, or keeps a video frame for its sheet and plot."""
        marks = [(face.box, row) for face, row in zip(found, rows)] or [(None, rows[0])]
        boxes = self.detector is not None
        if frame.frame is None:
            if self.args.annotate:
                picture = annotate_lib.annotate(frame.image, marks, draw_boxes=boxes)
                picture.save(annotate_lib.output_path(self.args.annotate, frame.source.name,
                                                      ".png"))
                self.counts["pictures"] += 1
            return
        key = frame.source.path
        if self.args.annotate:
            self.sheets.setdefault(key, annotate_lib.ContactSheet(draw_boxes=boxes)).add(
                frame.image, marks, frame.time_s)
        if self.args.plot:
            self.tracks.setdefault(key, annotate_lib.VATrack()).add(
                frame.time_s, [r for r in rows if r["face"] != -1])

    def input_done(self, item: media.Input) -> None:
        """After an input: a video's frames are predicted and its pictures written."""
        if item.kind != "video":
            return
        self.flush()
        sheet = self.sheets.pop(item.path, None)
        picture = sheet.render() if sheet else None
        if picture is not None:
            picture.save(annotate_lib.output_path(self.args.annotate, item.name, "_sheet.png"))
            self.counts["pictures"] += 1
        track = self.tracks.pop(item.path, None)
        if track is not None:
            path = annotate_lib.output_path(self.plot_dir, item.name, "_va.png")
            if annotate_lib.plot_va(track, path, title=item.path):
                self.counts["pictures"] += 1
            else:
                self.warn_fn(f"warning: {item.path}: the model gives no valence/arousal "
                             "to plot")

    def close(self) -> list[str]:
        """Flushes, closes the writers; returns the end-of-run lines for stderr."""
        self.flush()
        self.writer.close()
        lines = []
        summary = self.summary.write(self.args.out, self.print_fn)
        c = self.counts
        what = [f"{c['images']} image(s)"] + ([f"{c['frames']} video frame(s)"]
                                              if c["frames"] else [])
        lines.append(f"predicted {c['faces']} face(s) in {' and '.join(what)}"
                     + (f"; wrote {self.args.out}" if self.args.out else "")
                     + (f" and {summary}" if summary else ""))
        if self.detector is not None and c["no_face"]:
            lines.append(f"no face found in {c['no_face']} image(s)/frame(s)")
        if c["pictures"]:
            lines.append(f"wrote {c['pictures']} picture(s) to "
                         f"{self.args.annotate or self.plot_dir}")
        if c["failed"]:
            lines.append(f"{c['failed']} file(s) could not be read")
        return lines


def run(args: argparse.Namespace, load: Callable | None = None) -> int:
    """Predicts on every input of `args`; returns the exit status (see the module docstring)."""
    check_args(args)
    inputs = media.discover(args.paths)
    if any(item.kind == "video" for item in inputs):
        media.require_cv2("reading videos")
    detector = faces_lib.FaceDetector() if args.detect_faces else None
    config = load_config_file(args.config) if args.config else None
    if load is None:
        from affectjax.predict import load  # pylint: disable=import-outside-toplevel
    predictor = load(args.run, best=not args.latest, **({"config": config} if config else {}))
    # Images only, one face each: no batch larger than their number (a single image is
    # not padded to 32); video frames and detected faces are not counted in advance.
    batch_size = args.batch_size
    if detector is None and all(item.kind == "image" for item in inputs):
        batch_size = min(batch_size, len(inputs))
    bar = tqdm.tqdm(total=len(inputs), unit="file", dynamic_ncols=True, file=sys.stderr,
                    mininterval=1.0, disable=None)
    session = Session(args, predictor, detector,
                      lambda line: bar.write(line, file=sys.stdout),
                      lambda line: bar.write(line, file=sys.stderr), batch_size)

    def failed(item: media.Input, reason: str) -> None:
        session.counts["failed"] += 1
        session.warn_fn(f"warning: cannot read {item.path}: {reason}")

    def done(item: media.Input) -> None:
        session.input_done(item)
        bar.update(1)

    try:
        for frame in media.iter_frames(inputs, fps=args.fps, on_error=failed, on_input=done):
            session.add(frame)
        lines = session.close()
    except BaseException:
        session.writer.close()  # keeps the rows written so far
        raise
    finally:
        bar.close()
    for line in lines:
        print(line, file=sys.stderr)
    if session.counts["failed"] == len(inputs):
        raise DataError(f"none of the {len(inputs)} input file(s) could be read")
    return 0
