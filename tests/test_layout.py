"""The package's layers: imports only go down, with no cycle (DESIGN.md, "Layout").

pure library (losses, balancing, metrics, schedules, tuning, labels, registry, ensemble)
<- models (and convert), data <- train <- methods <- entry points (sweep, bench, predict).
Every import of every module is read from its source, those inside functions included.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "affectjax")

PURE = ("losses", "balancing", "metrics", "schedules", "tuning", "labels", "registry",
        "ensemble")
LAYERS = {**{name: 0 for name in PURE}, "models": 1, "convert": 1, "data": 1, "train": 2,
          "methods": 3}
ENTRY = 4  # sweep, bench, predict, the package itself: may import anything


def _modules():
    """``{dotted module name: path}`` of every module of the package."""
    found = {}
    for folder, _, files in os.walk(ROOT):
        for file in files:
            if not file.endswith(".py"):
                continue
            path = os.path.join(folder, file)
            rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            found[".".join(rel)] = path
    return found


MODULES = _modules()


def _imports(name, path):
    """The affectjax modules that module `name` imports (resolved to known modules)."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in MODULES else base)
    out = set()
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target.startswith("affectjax") and target != name:
            out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer(name):
    parts = name.split(".")
    if len(parts) < 2:
        return ENTRY
    return LAYERS.get(parts[1], ENTRY)


def test_the_package_is_read():
    assert "affectjax.train.loop" in MODULES and "affectjax.methods" in MODULES
    assert "affectjax.losses" in GRAPH["affectjax.losses.consensus"] or GRAPH[
        "affectjax.losses.consensus"], "the import reader finds nothing"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_only_go_down(name):
    upward = sorted(t for t in GRAPH[name] if layer(t) > layer(name))
    assert not upward, f"{name} (layer {layer(name)}) imports higher layers: {upward}"


def test_models_and_data_do_not_import_each_other_both_ways():
    models_to_data = [(a, b) for a in GRAPH for b in GRAPH[a]
                      if a.startswith("affectjax.models") and b.startswith("affectjax.data")]
    data_to_models = [(a, b) for a in GRAPH for b in GRAPH[a]
                      if a.startswith("affectjax.data") and b.startswith("affectjax.models")]
    assert not (models_to_data and data_to_models), (models_to_data, data_to_models)


def _cycle(graph):
    """One import cycle between distinct non-package modules, or None."""
    def edges(node):  # a package's __init__ re-exporting its children is not a cycle
        return [t for t in graph[node] if not node.startswith(t + ".")
                and not t.startswith(node + ".")]

    state = {}
    for start in graph:
        stack = [(start, iter(edges(start)))]
        path = [start]
        if state.get(start):
            continue
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(edges(nxt))))
                path.append(nxt)
    return None


def test_no_import_cycle():
    assert _cycle(GRAPH) is None, f"import cycle: {' -> '.join(_cycle(GRAPH))}"


def test_cycle_finder_finds_one():
    assert _cycle({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}}) == [
        "a.x", "a.y", "a.z", "a.x"]


def test_importing_the_trainer_imports_no_method():
    code = ("import sys, affectjax.train; "
            "print(sorted(m for m in sys.modules if m.startswith('affectjax.methods')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(ROOT))
    assert out.stdout.strip() == "[]", out.stdout
