"""Model tests compile many small programs: skip XLA's slow optimisation passes (as the Flax
examples' tests do), and restore the setting afterwards so other test modules are unaffected."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _fast_compile():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
