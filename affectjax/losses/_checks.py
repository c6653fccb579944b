"""Input checks shared by the loss modules.

Every check reads only static information (shape, dtype) or, for label values, runs only
when the array is concrete, so the checks work unchanged under `jax.jit` and `jax.vmap`:
a bad call fails at trace time with a one-line message that names the argument.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def as_float(x: Any, name: str) -> jax.Array:
    """Returns `x` as a JAX array, raising TypeError unless its dtype is floating."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name} must be a floating array, got dtype {x.dtype}")
    return x


def as_int(x: Any, name: str) -> jax.Array:
    """Returns `x` as a JAX array, raising TypeError unless its dtype is integer or bool."""
    x = jnp.asarray(x)
    if x.dtype == jnp.bool_:
        return x.astype(jnp.int32)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{name} must be an integer array (class ids, -1 = missing), got dtype {x.dtype}"
        )
    return x


def as_mask(where: Any, shape: tuple[int, ...], name: str = "where") -> jax.Array:
    """Returns `where` as a boolean mask broadcast to `shape`.

    Non-boolean masks are read as `where != 0`, so 0/1 float or int masks work too.
    """
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        where = where != 0
    try:
        return jnp.broadcast_to(where, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {where.shape} does not broadcast to shape {shape}"
        ) from None


def check_rank(x: jax.Array, name: str, *ranks: int) -> None:
    """Raises ValueError unless `x.ndim` is one of `ranks`."""
    if x.ndim not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{name} must have rank {expected}, got shape {x.shape}")


def check_min_rank(x: jax.Array, name: str, rank: int) -> None:
    """Raises ValueError unless `x.ndim >= rank`."""
    if x.ndim < rank:
        raise ValueError(f"{name} must have rank >= {rank}, got shape {x.shape}")


def check_same_shape(a: jax.Array, b: jax.Array, name_a: str, name_b: str) -> None:
    """Raises ValueError unless `a` and `b` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"{name_b} shape {b.shape} does not match {name_a} shape {a.shape}")


def concrete(x: jax.Array) -> np.ndarray | None:
    """Returns `x` as a NumPy array when it is concrete, or None when it is traced."""
    if isinstance(x, jax.core.Tracer):
        return None
    return np.asarray(x)


def check_labels_in_range(labels: jax.Array, num_classes: int, name: str) -> None:
    """Raises ValueError for labels outside {-1, 0, ..., num_classes - 1} (concrete only).

    Under `jax.jit` the values are unknown at trace time; the losses then return NaN for
    out-of-range labels, so the trainer's non-finite check stops the run.
    """
    values = concrete(labels)
    if values is None or values.size == 0:
        return
    bad = (values < -1) | (values >= num_classes)
    if bad.any():
        first = values[bad].flat[0]
        raise ValueError(
            f"{name} must be in [-1, {num_classes - 1}] (-1 = missing), found {first}"
        )


def safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """num / den where den != 0, else 0, with finite gradients (the double-where trick)."""
    ok = den != 0
    return jnp.where(ok, num / jnp.where(ok, den, 1), 0)
