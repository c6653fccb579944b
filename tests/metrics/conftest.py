"""Shared helpers for the metric tests: uneven batch splits."""

import numpy as np
import pytest


def _uneven_splits(n: int, rng: np.random.Generator, num_batches: int = 5) -> list[slice]:
    """Random uneven batch slices covering [0, n), one of them empty."""
    cuts = np.sort(rng.choice(np.arange(1, n), size=num_batches - 2, replace=False))
    cuts = np.concatenate([[0], cuts[:1], cuts, [n]])  # cuts[0] twice: an empty batch.
    return [slice(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


@pytest.fixture
def splits():
    """splits(n, seed) -> list of slices, including an empty one."""
    def make(n: int, seed: int = 0) -> list[slice]:
        out = _uneven_splits(n, np.random.default_rng(seed))
        assert any(s.start == s.stop for s in out)
        assert sum(s.stop - s.start for s in out) == n
        return out
    return make


@pytest.fixture
def masked_batch_mask():
    """mask(n, batches) -> bool (n,) that is False on every item of the last non-empty batch."""
    def make(n: int, batches: list[slice], rng_seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(rng_seed)
        mask = rng.random(n) < 0.8
        last = [s for s in batches if s.stop > s.start][-1]
        mask[last] = False
        return mask
    return make
