"""Model tests compile many small programs: skip XLA's slow optimisation passes (as the Flax
examples' tests do), and restore the setting afterwards so other test modules are unaffected."""

import pytest


@pytest.fixture(autouse=True)
def _fast_compile(fast_compiled):
    del fast_compiled
    yield
