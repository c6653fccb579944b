"""Name lookup in the plain-dict registries (models, methods, balancers, data sets, ...).

Every registry of affectjax is a module-level dict from a config name to a factory;
`lookup` is the one place that words the error for an unknown name, so every such error
reads the same and lists the choices. Part of the pure library: it imports nothing of
affectjax.
"""

from __future__ import annotations

from typing import Iterable, Mapping, TypeVar

T = TypeVar("T")


def unknown_name_message(what: str, name: object, choices: Iterable[str]) -> str:
    """The one wording of an unknown name: ``unknown <what> 'x'; choose one of [...]``.

    For errors that must keep another exception type (a data-format or config error);
    otherwise raise `unknown_name_error`.
    """
    return f"unknown {what} {name!r}; choose one of {sorted(choices)}"


def unknown_name_error(what: str, name: object, choices: Iterable[str]) -> KeyError:
    """The KeyError for an unknown `name`: ``unknown <what> 'x'; choose one of [...]``."""
    return KeyError(unknown_name_message(what, name, choices))


def lookup(registry: Mapping[str, T], name: str, what: str) -> T:
    """``registry[name]``, or a KeyError naming `what` and listing the registry's keys.

    Args:
      registry: a dict from names to entries.
      name: the name to resolve (usually a config value).
      what: what the name names, as the error should say it (e.g. ``"method"``,
        ``"config.balancer.name"``).
    """
    if name not in registry:
        raise unknown_name_error(what, name, registry)
    return registry[name]
