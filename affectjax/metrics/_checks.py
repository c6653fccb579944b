"""Input checks shared by the metric modules.

Shape and rank checks use static shapes, so they also run while tracing under
`jax.jit`. Value checks (labels in range, non-degenerate landmarks) need the
values and are skipped for traced arrays; the docstrings of the public
functions say what happens to bad values under `jit`.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when `x` holds values on the host (not a tracer inside `jit`)."""
    return not isinstance(x, jax.core.Tracer)


def as_array(x: Any, name: str) -> jax.Array:
    """Converts `x` to a jax array, naming `name` if that fails."""
    try:
        return jnp.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: cannot be read as an array ({e})") from None


def check_rank(x: jax.Array, ranks: tuple[int, ...], name: str) -> None:
    """Raises ValueError unless `x.ndim` is one of `ranks`."""
    if x.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name}: expected rank {want}, got shape {x.shape}")


def check_same_shape(a: jax.Array, b: jax.Array, name_a: str, name_b: str) -> None:
    """Raises ValueError unless `a` and `b` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b}: shape {b.shape} does not match {name_a} shape {a.shape}")


def check_mask(where: Any, ref: jax.Array, name: str = "where") -> Any:
    """Checks the shape of an optional mask against `ref`; returns it as an array.

    `where` may have the shape of `ref` or, for `ref` of rank >= 2, the shape
    of its leading axis (one flag per item, broadcast over the other axes).
    """
    if where is None:
        return None
    where = as_array(where, name)
    if where.shape == ref.shape or (ref.ndim >= 2 and where.shape == ref.shape[:1]):
        return where
    raise ValueError(
        f"{name}: shape {where.shape} matches neither {ref.shape} nor "
        f"{ref.shape[:1]}")


def broadcast_mask(where: jax.Array | None, ref: jax.Array) -> jax.Array:
    """Boolean mask of `ref.shape` from a mask accepted by `check_mask`."""
    if where is None:
        return jnp.ones(ref.shape, bool)
    where = where.astype(bool)
    if where.shape != ref.shape:
        where = where.reshape(where.shape + (1,) * (ref.ndim - where.ndim))
    return jnp.broadcast_to(where, ref.shape)


def check_labels(labels: jax.Array, num_classes: int, name: str,
                 allow_missing: bool = True, only: Any = None) -> None:
    """Raises ValueError if concrete `labels` fall outside [0, num_classes).

    With `allow_missing`, the value -1 (missing label) is also accepted.
    `only` (a boolean array of the same shape) restricts the check to the
    entries where it is True.
    """
    if not jnp.issubdtype(labels.dtype, jnp.integer) and labels.dtype != bool:
        raise TypeError(f"{name}: expected integer labels, got dtype {labels.dtype}")
    if not is_concrete(labels) or labels.size == 0:
        return
    if only is not None and not is_concrete(only):
        return
    values = np.asarray(labels)
    low = -1 if allow_missing else 0
    bad = (values < low) | (values >= num_classes)
    if only is not None:
        bad &= np.asarray(only, bool)
    if bad.any():
        value = values[bad].flat[0]
        allowed = f"[{low}, {num_classes})"
        raise ValueError(
            f"{name}: label {value} outside {allowed} (num_classes={num_classes})")


def host_mask(where: Any, labels: jax.Array) -> Any:
    """Concrete numpy mask of present labels (where & labels != -1), or None under jit."""
    if not is_concrete(labels) or (where is not None and not is_concrete(where)):
        return None
    present = np.asarray(labels) != -1
    if where is not None:
        w = np.asarray(where, bool)
        present &= w.reshape(w.shape + (1,) * (present.ndim - w.ndim))
    return present
