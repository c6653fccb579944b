"""Trains a model: ``python train.py --config configs/NAME.py [--config.key=value] [--workdir DIR]``.

This file is intentionally kept short: it only parses flags. The training logic lives
in `affectjax.train` so it can be tested and imported (Flax examples' ``main.py`` rule).
``--workdir`` defaults to ``runs/<config file name>``; rerunning the same command in the
same workdir resumes from its latest checkpoint.
"""

import os
import re
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file (configs/*.py).",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")


def default_workdir(config_path: str) -> str:
    """``runs/<config file stem>`` (a ``:arg`` suffix of the config path is dropped)."""
    stem = os.path.splitext(os.path.basename(config_path.split(":")[0]))[0]
    return os.path.join("runs", stem)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.ERROR)  # keep library INFO/WARNING logs off the console
    from affectjax import methods  # pylint: disable=import-outside-toplevel
    workdir = FLAGS.workdir or default_workdir(FLAGS["config"].config_filename)
    methods.run(FLAGS.config, workdir)


def _config_path(argv: list[str]) -> str:
    """The ``--config`` file named in ``argv`` ("" if none), without a ``:arg`` suffix."""
    for i, arg in enumerate(argv):
        if re.match(r"^--?config=", arg):
            return arg.split("=", 1)[1].split(":")[0]
        if arg in ("--config", "-config") and i + 1 < len(argv):
            return argv[i + 1].split(":")[0]
    return ""


def _config_file_problem(path: str, exc: OSError) -> str:
    """One line on why the config file ``path`` could not be loaded."""
    if not path:
        return " ".join(str(exc).split())
    if not os.path.exists(path):
        return f"config file {path!r} does not exist (--config)"
    cause = exc.__cause__ or exc
    reason = getattr(cause, "strerror", None) or str(cause)
    return f"cannot load config file {path!r} (--config): {' '.join(reason.split())}"


def _exit_with(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def parse_flags(argv: list[str]) -> list[str]:
    """Parses flags; a bad ``--config`` or ``--config.key`` is one line on stderr, exit 2."""
    try:
        rest = FLAGS(argv)
        # ml_collections defers a missing or unreadable config file: the flag then holds a
        # stand-in that raises OSError on first use (or while applying --config.key).
        getattr(FLAGS.config, "get", None)
    except OSError as exc:
        _exit_with(_config_file_problem(_config_path(argv), exc))
    except SyntaxError as exc:  # in the config file
        _exit_with(f"config file {exc.filename}:{exc.lineno}: {exc.msg}")
    except (AttributeError, KeyError) as exc:  # an override of a key the config lacks
        name = str(exc).strip("'\" ")
        given = [a.split("=")[0] for a in argv[1:] if a.startswith("--config.") and name in a]
        where = f" ({given[0]})" if given else ""
        _exit_with(f"unknown config key {name!r}{where}; see the config file for the keys")
    except (flags.Error, ValueError, TypeError) as exc:
        _exit_with(" ".join(str(exc).split()))
    if FLAGS.config is None:
        _exit_with("--config is required, e.g. --config configs/quickstart.py")
    return rest


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
