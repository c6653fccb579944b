"""Fixtures shared by the whole suite.

Tests compile many small XLA programs; skipping XLA's slow optimisation passes (as the Flax
examples' tests do) keeps the suite fast without changing the numerics checked here. The
setting is restored afterwards, so it never leaks into another test.

Each test process also keeps JAX's persistent compilation cache in a directory of its own
(removed when it exits), inherited by the subprocesses its tests start: a run that is
resumed, rerun or started again in a subprocess loads the programs the first run compiled
instead of compiling them again. Entries are keyed by the program and its compile options,
so a cached program is the one a fresh compilation would build.
"""

import atexit
import contextlib
import os
import shutil
import tempfile

_CACHE_DIR = tempfile.mkdtemp(prefix="affectjax-tests-jax-cache-")
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE_DIR
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402  pylint: disable=wrong-import-position
import pytest  # noqa: E402  pylint: disable=wrong-import-position

jax.config.update("jax_compilation_cache_dir", _CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@contextlib.contextmanager
def _fast_compile():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="session")
def fast_compile():
    """A context-manager factory: ``with fast_compile(): ...`` compiles fast inside."""
    return _fast_compile


@pytest.fixture
def fast_compiled():
    """Fast compilation for one test: ``pytestmark = pytest.mark.usefixtures("fast_compiled")``."""
    with _fast_compile():
        yield
