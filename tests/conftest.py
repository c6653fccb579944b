"""Fixtures shared by the whole suite.

Tests compile many small XLA programs; skipping XLA's slow optimisation passes (as the Flax
examples' tests do) keeps the suite fast without changing the numerics checked here. The
setting is restored afterwards, so it never leaks into another test.
"""

import contextlib

import jax
import pytest


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
