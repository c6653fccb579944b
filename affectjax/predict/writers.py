"""Where ``python -m affectjax.predict`` writes its rows: CSV, JSONL or a table on stdout.

Every row is one face of one image or sampled video frame. Its columns are `BASE_COLUMNS`
(``file``; ``frame`` and ``time_s`` for a video frame, empty for an image; ``face``, -1 when
``--detect-faces`` found none; ``box_x, box_y, box_w, box_h``: the region the model saw),
then the predictor's own columns (`affectjax.predict.Predictor.rows`: ``expr_label``,
``expr_prob/<Name>``, ``valence``, ``arousal``, ``au/<AUn>``, ``au_prob/<AUn>``,
``landmark<i>_x/_y``, ...) in the order they first appear. A row with ``face=-1`` has only
the base columns.

* ``--out preds.csv``: `CsvWriter` (one header; an empty cell where a row has no value).
* ``--out preds.jsonl``: `JsonlWriter` (one JSON object per line with that row's keys;
  ``null`` for an image's frame and time).
* no ``--out``: `TableWriter` prints a short fixed table (file, time, face, expression and
  its probability, valence, arousal, active AUs) on stdout.

Any other extension is a one-line `UserError` (`check_out`). Rows are written as they come, so
a long run can be followed, and a run stopped early keeps what it wrote.

For each video, `VideoSummary` gives one row over its sampled frames: ``file``, ``frames``
(sampled), ``faces`` (rows with predictions), the mean ``valence`` and ``arousal``, the most
frequent ``expr_label`` (a tie goes to the label of higher mean probability), and the mean of
every ``expr_prob/``, ``au_prob/`` and ``attr_prob/`` column. These rows go to
``<out stem>_videos.csv`` (or ``.jsonl``) beside ``--out`` (`summary_path`), or to a second
table on stdout.
"""

from __future__ import annotations

import collections
import csv
import json
import math
import numbers
import os
from typing import Any, Callable, Mapping

from affectjax.train.errors import UserError

BASE_COLUMNS = ("file", "frame", "time_s", "face", "box_x", "box_y", "box_w", "box_h")
EXTENSIONS = (".csv", ".jsonl")
MEAN_PREFIXES = ("expr_prob/", "au_prob/", "attr_prob/")


def check_out(out: str | None) -> None:
    """Raises a one-line `UserError` unless `out` is None or ends in .csv or .jsonl."""
    if out is not None and os.path.splitext(out)[1].lower() not in EXTENSIONS:
        raise UserError(f"--out {out}: the extension must be .csv or .jsonl")


def _value(value: Any) -> Any:
    """A JSON-ready value: floats to 6 significant digits, non-finite ones to None."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return float(f"{value:.6g}") if math.isfinite(value) else None
    return str(value)


def clean(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with plain Python values (see `_value`)."""
    return {k: _value(v) for k, v in row.items()}


class CsvWriter:
    """Writes rows to a CSV file; the header is the union of the columns, in stable order.

    The header is written with the first row that has predictions (rows before it are held
    back), so the usual file is written in one pass. Should a later row bring a new column,
    the file is rewritten with the wider header when it is closed.
    """

    def __init__(self, path: str):
        self.path = path
        self.columns: list[str] = list(BASE_COLUMNS)
        self._held: list[dict[str, Any]] = []
        self._writer: csv.DictWriter | None = None
        self._grown = False
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "w", newline="", encoding="utf-8")

    def _add_columns(self, row: Mapping[str, Any]) -> bool:
        new = [k for k in row if k not in self.columns]
        self.columns.extend(new)
        return bool(new)

    def _start(self) -> None:
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, restval="")
        self._writer.writeheader()
        self._writer.writerows(self._held)
        self._held = []

    def write(self, row: Mapping[str, Any]) -> None:
        row = clean(row)
        grew = self._add_columns(row)
        if self._writer is None:
            self._held.append(row)
            if len(row) > len(BASE_COLUMNS):
                self._start()
            return
        if grew:
            self._grown = True
            self._writer.fieldnames = list(self.columns)
        self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        if self._writer is None:
            self._start()
        self._file.close()
        if self._grown:  # rewrite with the union of the columns
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                next(reader)  # the narrower header; new columns were only ever appended
                rows = [dict(zip(self.columns, line)) for line in reader]
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
                writer.writeheader()
                writer.writerows(rows)


class JsonlWriter:
    """Writes one JSON object per row."""

    def __init__(self, path: str):
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")

    def write(self, row: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(clean(row)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def active(row: Mapping[str, Any], prefix: str) -> list[str]:
    """The names of the ``<prefix><name>`` columns equal to 1 (e.g. the active AUs)."""
    return [k[len(prefix):] for k, v in row.items() if k.startswith(prefix) and v == 1]


def top_probability(row: Mapping[str, Any]) -> float | None:
    """The probability of the predicted expression, when the row has it."""
    value = row.get(f"expr_prob/{row.get('expr_label')}")
    return None if value is None else float(value)


class TableWriter:
    """Prints a short fixed-width table: one line per row, after a header.

    Args:
      print_fn: prints one line (e.g. a progress bar's ``write``, so the bar stays intact).
    """

    HEADER = (f"{'file':<32} {'time_s':>7} {'face':>4} {'expression':<12} {'prob':>5} "
              f"{'valence':>7} {'arousal':>7}  AUs")

    def __init__(self, print_fn: Callable[[str], None] = print):
        self.print_fn = print_fn
        self._started = False

    def write(self, row: Mapping[str, Any]) -> None:
        if not self._started:
            self.print_fn(self.HEADER)
            self._started = True

        def num(key, width, fmt):
            value = row.get(key)
            return ("-" if value is None else format(float(value), fmt)).rjust(width)

        prob = top_probability(row)
        aus = " ".join(active(row, "au/")) if any(k.startswith("au/") for k in row) else "-"
        self.print_fn(
            f"{short(str(row.get('file', ''))):<32} {num('time_s', 7, '.2f')} "
            f"{row.get('face', 0):>4} {str(row.get('expr_label', '-')):<12} "
            f"{'-' if prob is None else f'{prob:.2f}':>5} {num('valence', 7, '+.3f')} "
            f"{num('arousal', 7, '+.3f')}  {aus}")

    def close(self) -> None:
        pass


def short(name: str, width: int = 32) -> str:
    """`name` cut to its last `width` characters (an ellipsis marks the cut)."""
    return name if len(name) <= width else "…" + name[-(width - 1):]


def open_writer(out: str | None, print_fn: Callable[[str], None] = print):
    """The writer for `out`: CSV, JSONL, or the stdout table when `out` is None."""
    check_out(out)
    if out is None:
        return TableWriter(print_fn)
    if out.lower().endswith(".csv"):
        return CsvWriter(out)
    return JsonlWriter(out)


def summary_path(out: str) -> str:
    """``<out stem>_videos.<ext>`` beside `out`."""
    stem, ext = os.path.splitext(out)
    return f"{stem}_videos{ext}"


class VideoSummary:
    """Per-video means over the rows of its sampled frames (see the module docstring)."""

    def __init__(self):
        self._videos: dict[str, dict[str, Any]] = {}

    def add(self, row: Mapping[str, Any]) -> None:
        """Adds one row of a video frame (rows without ``frame`` are ignored)."""
        if row.get("frame") is None:
            return
        video = self._videos.setdefault(row["file"], {
            "frames": set(), "faces": 0, "sums": collections.defaultdict(float),
            "counts": collections.defaultdict(int), "labels": collections.Counter()})
        video["frames"].add(row["frame"])
        if len(row) <= len(BASE_COLUMNS):
            return
        video["faces"] += 1
        for key, value in row.items():
            if (key in ("valence", "arousal") or key.startswith(MEAN_PREFIXES)) and isinstance(
                    value, numbers.Real) and math.isfinite(float(value)):
                video["sums"][key] += float(value)
                video["counts"][key] += 1
        if row.get("expr_label") is not None:
            video["labels"][row["expr_label"]] += 1

    def rows(self) -> list[dict[str, Any]]:
        """One row per video, in the order the videos were first seen."""
        out = []
        for file, video in self._videos.items():
            means = {k: video["sums"][k] / video["counts"][k] for k in video["sums"]}
            row: dict[str, Any] = {"file": file, "frames": len(video["frames"]),
                                   "faces": video["faces"]}
            for key in ("valence", "arousal"):
                if key in means:
                    row[key] = means[key]
            if video["labels"]:
                best = max(video["labels"].values())
                tied = [label for label, n in video["labels"].items() if n == best]
                row["expr_label"] = max(tied, key=lambda l: means.get(f"expr_prob/{l}", 0.0))
            row.update({k: v for k, v in means.items() if k not in row})
            out.append(row)
        return out

    def write(self, out: str | None, print_fn: Callable[[str], None] = print) -> str | None:
        """Writes the summary rows beside `out`, or prints them; returns the path written."""
        rows = self.rows()
        if not rows:
            return None
        if out is None:
            print_fn("")
            print_fn(f"{'video':<32} {'frames':>6} {'faces':>5} {'expression':<12} "
                     f"{'valence':>7} {'arousal':>7}")
            for row in rows:
                name = short(row["file"])
                va = " ".join(f"{row[k]:>7.3f}" if k in row else f"{'-':>7}"
                              for k in ("valence", "arousal"))
                print_fn(f"{name:<32} {row['frames']:>6} {row['faces']:>5} "
                         f"{str(row.get('expr_label', '-')):<12} {va}")
            return None
        path = summary_path(out)
        write_rows(path, rows)
        return path


def write_rows(path: str, rows: list[Mapping[str, Any]]) -> None:
    """Writes complete `rows` to a .csv (header: the union of their columns) or .jsonl."""
    rows = [clean(r) for r in rows]
    if path.lower().endswith(".jsonl"):
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
        return
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
