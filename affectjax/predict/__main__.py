"""``python -m affectjax.predict``: a trained run's predictions on images, folders and videos.

    python -m affectjax.predict --run runs/quickstart photos/ clip.mp4 --out preds.csv
    python -m affectjax.predict --run runs/cct_quick face.jpg                 # table on stdout
    python -m affectjax.predict --run runs/quickstart group.jpg --detect-faces --annotate seen/
    python -m affectjax.predict --run runs/quickstart talk.mp4 --fps 2 --annotate seen/ --plot

Each PATH is an image, a video or a folder searched recursively (`affectjax.predict.media`).
Every image and every video frame sampled at ``--fps`` is one face, or, with
``--detect-faces``, the faces OpenCV finds (`affectjax.predict.faces`). The rows and the
per-video summary go to ``--out`` or to a table on stdout (`affectjax.predict.writers`);
``--annotate`` and ``--plot`` draw them (`affectjax.predict.annotate`).

Exit status: 0 when at least one input was read; files that cannot be read are named on
stderr as they come (``warning: cannot read FILE: REASON``) and counted at the end (``N
file(s) could not be read``). 2, after one ``error: ...`` line, for the user's mistakes (a
run directory without a checkpoint or whose method cannot predict, a missing PATH, an
``--out`` that is not .csv or .jsonl, OpenCV missing for a video or ``--detect-faces``) and
when no input at all could be read.

This file only parses the arguments; `affectjax.predict.session` runs the command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from affectjax.predict import session
from affectjax.train.loop import cli_errors


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m affectjax.predict",
        description="Predict expressions, valence/arousal, AUs (and whatever the run's "
                    "method predicts) on images, folders and videos.")
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="image, video, or folder (searched recursively)")
    parser.add_argument("--run", required=True, metavar="DIR",
                        help="the trained run directory (its best checkpoint by default)")
    parser.add_argument("--latest", action="store_true",
                        help="use the latest checkpoint instead of the best one")
    parser.add_argument("--config", metavar="FILE[:ARG]",
                        help="the run's config file (configs/NAME.py[:arg], as given to "
                             "train.py), for a run directory without config.json")
    parser.add_argument("--out", metavar="FILE",
                        help="write the rows to FILE.csv or FILE.jsonl (default: a table "
                             "on stdout)")
    parser.add_argument("--batch-size", type=int, default=32, metavar="N",
                        help="faces per model call (default 32)")
    parser.add_argument("--fps", type=float, default=1.0, metavar="F",
                        help="video frames sampled per second (default 1; 0 = every frame)")
    parser.add_argument("--detect-faces", action="store_true",
                        help="find the faces with OpenCV's Haar cascade; one row per face")
    parser.add_argument("--annotate", metavar="DIR",
                        help="write each image with its predictions drawn, and a contact "
                             "sheet per video, as PNGs under DIR")
    parser.add_argument("--plot", action="store_true",
                        help="plot each video's valence and arousal over time "
                             "(<video>_va.png in --annotate DIR, else beside --out)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None, *, load: Callable | None = None) -> int:
    """The command; `load` replaces `affectjax.predict.load` (tests pass a fake)."""
    args = parse_args(argv)
    with cli_errors():
        return session.run(args, load)


if __name__ == "__main__":
    sys.exit(main())
