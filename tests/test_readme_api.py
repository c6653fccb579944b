"""The README's API tables agree with the code's signatures.

The tables of the sections below give a signature in their first column, e.g.
``ccc(x, y, *, where=None, axis=0, ddof=0, eps=0.0)``. Each one is resolved against its
section's modules (a ``schedules.`` prefix picks that module) and compared with
`inspect.signature`: every named parameter exists, in the same order, positional before
``*`` and keyword-only after it, with the same default (none when the row shows none).
A row without ``...`` lists every parameter the code requires; ``...`` elides the rest.
"""

import ast
import importlib
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

SECTIONS = {  # heading prefix -> modules its bare names resolve in, in order
    "Losses and schedules": ("affectjax.losses", "affectjax.schedules"),
    "Loss balancing": ("affectjax.balancing",),
    "Metrics and post-hoc tuning": ("affectjax.metrics", "affectjax.tuning"),
}
CALL = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.S)
NO_DEFAULT = inspect.Parameter.empty
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _section(prefix: str) -> str:
    match = re.search(rf"^## {re.escape(prefix)}[^\n]*\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no section starting '## {prefix}'"
    return match.group(1)


def _split_args(text: str) -> list[str]:
    """Splits an argument list on its top-level commas."""
    out, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        current += char
    if current.strip():
        out.append(current.strip())
    return out


def _rows():
    """(section, signature text) for every backticked call in a table's first column."""
    found = []
    for prefix in SECTIONS:
        for line in _section(prefix).splitlines():
            if not line.startswith("|") or line.startswith("|---"):
                continue
            first = line.split("|")[1]
            for code in re.findall(r"`([^`]+)`", first):
                if CALL.match(code.strip()):
                    found.append((prefix, code.strip()))
    return found


ROWS = _rows()


def _resolve(prefix: str, name: str):
    modules = [importlib.import_module(m) for m in SECTIONS[prefix]]
    if "." in name:
        module_name, attr = name.rsplit(".", 1)
        modules = [m for m in modules if m.__name__.rsplit(".", 1)[-1] == module_name]
        name = attr
    for module in modules:
        if hasattr(module, name):
            return module, getattr(module, name)
    raise AssertionError(f"README names {name!r}, which none of {SECTIONS[prefix]} defines")


def _same_default(text: str, value, module) -> bool:
    """Whether the README's default `text` (a literal, or a name of `module`) is `value`."""
    try:
        return value == ast.literal_eval(text)
    except (ValueError, SyntaxError):
        assert hasattr(module, text), f"default {text!r} is neither a literal nor a name"
        return value is getattr(module, text)


def test_the_sections_have_signature_rows():
    for prefix in SECTIONS:
        assert any(p == prefix for p, _ in ROWS), f"no signature rows under '## {prefix}'"


@pytest.mark.parametrize("prefix,code", ROWS,
                         ids=[f"{p.split()[0].lower()}:{c.split('(')[0]}" for p, c in ROWS])
def test_row_matches_the_signature(prefix, code):
    name, args = CALL.match(code).groups()
    module, fn = _resolve(prefix, name)
    params = inspect.signature(fn).parameters
    keyword_only, elided, seen = False, False, []
    for arg in _split_args(args):
        if arg == "...":
            elided = True
            continue
        if arg == "*":
            keyword_only = True
            continue
        if arg.startswith("**"):
            assert any(p.kind is p.VAR_KEYWORD for p in params.values()), (code, arg)
            continue
        if arg.startswith("*"):
            assert any(p.kind is p.VAR_POSITIONAL for p in params.values()), (code, arg)
            keyword_only = True
            continue
        arg_name, _, default = (s.strip() for s in arg.partition("="))
        assert arg_name in params, f"{code}: {name} has no parameter {arg_name!r}"
        param = params[arg_name]
        if keyword_only:
            assert param.kind is param.KEYWORD_ONLY, f"{code}: {arg_name} is not keyword-only"
        else:
            assert param.kind in POSITIONAL, f"{code}: {arg_name} is keyword-only in the code"
        if default:
            assert param.default is not NO_DEFAULT, f"{code}: {arg_name} has no default"
            assert _same_default(default, param.default, module), (
                f"{code}: {arg_name} defaults to {param.default!r} in the code")
        else:
            assert param.default is NO_DEFAULT, (
                f"{code}: {arg_name} defaults to {param.default!r} in the code; show it")
        seen.append(arg_name)
    order = [p for p in params if p in seen]
    assert seen == order, f"{code}: the code's order is {order}"
    if not elided:
        required = [p.name for p in params.values()
                    if p.default is NO_DEFAULT and p.kind not in (p.VAR_POSITIONAL,
                                                                  p.VAR_KEYWORD)]
        missing = [p for p in required if p not in seen]
        assert not missing, f"{code}: the row omits the required {missing} (or add ...)"
