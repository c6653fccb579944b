"""Errors the trainer reports to the user as one line (no traceback).

`run` catches `UserError` (and the `KeyError`/`ValueError`/`TypeError`/`FileNotFoundError`
raised by the registries and input checks while the run is being set up), prints
``error: <message>`` on stderr and exits with status 2. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's config, data or environment, reported as one line."""


class ConfigError(UserError, ValueError):
    """A config value that is missing, of the wrong type or out of range."""


class DataError(UserError):
    """Data that cannot be found or does not fit the batch contract."""


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite.

    Attributes:
      step: the 1-based global step whose update produced the non-finite value.
      name: the metric that was non-finite (e.g. ``loss`` or ``loss/va``).
      value: the offending value.
    """

    def __init__(self, step: int, name: str, value: float):
        self.step, self.name, self.value = int(step), name, float(value)
        super().__init__(
            f"non-finite {name} ({value}) at step {self.step}; training stopped, the last "
            "good checkpoint is kept (lower the learning rate or check the data)")


def one_line(exc: BaseException) -> str:
    """Formats an exception as a single line for stderr."""
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])  # KeyError's str() adds quotes around the message.
    else:
        text = str(exc) or type(exc).__name__
    text = " ".join(text.split())
    if isinstance(exc, FileNotFoundError) and exc.filename and exc.filename not in text:
        text = f"{text}: {exc.filename}"
    return text
