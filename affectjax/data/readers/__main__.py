"""Checks that a real data set is laid out as its reader expects, and summarises it.

    python -m affectjax.data.readers --reader=affectnet --path=/data/AffectNet --split=train
    python -m affectjax.data.readers --reader=fer2013 --path=/data/fer2013.csv --split=test
    python -m affectjax.data.readers --reader=celeba --path=/data/celeba --split=val
    python -m affectjax.data.readers --reader=image_folder --path=/data/bnu --limit=0

Prints the number of listed items, the keys of the first example (shape, dtype), and for
the first ``--limit`` examples (0 = all) the ABAW expression histogram, label-mask
rates and the positive rate of each AU and attribute.  A layout or format problem ends
with the reader's one-line `DataFormatError`.
"""

from __future__ import annotations

import collections
import itertools
import sys

import numpy as np
from absl import app, flags

from affectjax.data import readers

_READER = flags.DEFINE_enum("reader", None, sorted(readers.READERS), "Which reader.")
_PATH = flags.DEFINE_string("path", None, "Data-set folder (or csv / pickle file).")
_SPLIT = flags.DEFINE_string("split", "train", "train, val or test (ignored by image_folder).")
_LIMIT = flags.DEFINE_integer("limit", 100, "Examples to decode for the summary; 0 = all.")
_ON_ERROR = flags.DEFINE_enum("on_error", "raise", ["raise", "skip"], "Bad items: raise or skip.")
flags.mark_flags_as_required(["reader", "path"])


def summarise(examples: list[dict]) -> list[str]:
    """Human-readable lines: keys of the first example, expression counts, mask rates."""
    if not examples:
        return ["no examples"]
    lines = [f"  {k}: {getattr(v, 'shape', '')} {getattr(v, 'dtype', type(v).__name__)}"
             for k, v in examples[0].items()]
    if "expr" in examples[0]:
        counts = collections.Counter(int(e["expr"]) for e in examples)
        names = ("missing",) + readers.ABAW_EXPRESSIONS
        lines.append("expr: " + ", ".join(f"{names[k + 1]} {counts[k]}" for k in sorted(counts)))
    for mask in ("va_mask", "landmarks_mask"):
        if mask in examples[0]:
            lines.append(f"{mask}: {np.mean([bool(e[mask]) for e in examples]):.3f} labelled")
    if "au" in examples[0]:
        au = np.stack([e["au"] for e in examples])
        lines.append(f"au labelled: {np.mean(au >= 0):.3f}; active rate per AU: "
                     + " ".join(f"{n}={np.mean(au[:, i] == 1):.2f}"
                                for i, n in enumerate(readers.AU_NAMES)))
    if "attr" in examples[0]:
        attr = np.stack([e["attr"] for e in examples])
        lines.append("attr positive rate: " + " ".join(
            f"{n}={r:.2f}" for n, r in zip(readers.CELEBA_ATTRIBUTES, np.mean(attr == 1, 0))))
    return lines


def main(argv: list[str]) -> None:
    del argv
    name, path = _READER.value, _PATH.value
    args = (path,) if name == "image_folder" else (path, _SPLIT.value)
    try:
        print(f"{name}: {readers.COUNTERS[name](*args)} items listed")
        stream = readers.get_reader(name)(*args, on_error=_ON_ERROR.value)
        examples = list(itertools.islice(stream, _LIMIT.value or None))
    except readers.DataFormatError as e:
        sys.exit(f"error: {e}")
    print(f"decoded {len(examples)} examples")
    print("\n".join(summarise(examples)))


if __name__ == "__main__":
    app.run(main)
