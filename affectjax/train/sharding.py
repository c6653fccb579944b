"""Data parallelism with `jax.sharding`: batches split over devices, state replicated.

One 1-D mesh over every device of every process, axis ``"data"``. A batch's leading axis
is sharded over it (``P("data")``); parameters, optimizer and balancer state are
replicated (``P()``). XLA inserts the gradient all-reduce and the cross-device BatchNorm
statistics itself, so the step is the single-device step, and a run on N devices computes
the same function as on one (up to float summation order).

Multi-host: call ``jax.distributed.initialize()`` first (``config.distributed = True`` does
it in `affectjax.train.run`), start the same command on every host; every process builds
the same global batch from the deterministic loader and contributes the rows that belong
to its devices (`shard_batch`).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from affectjax.train.errors import ConfigError

DATA_AXIS = "data"


def make_mesh(devices: Any = None) -> Mesh:
    """A 1-D ``("data",)`` mesh over `devices` (default: all devices of all processes)."""
    devices = np.asarray(jax.devices() if devices is None else devices)
    return Mesh(devices.reshape(-1), (DATA_AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch: leading axis split over the ``data`` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of parameters and optimizer state: a full copy on every device."""
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raises `ConfigError` unless `batch_size` splits evenly over the mesh."""
    n = mesh.devices.size
    if batch_size % n:
        raise ConfigError(f"batch_size={batch_size} is not divisible by the {n} devices; "
                          f"use a multiple of {n}")


def shard_batch(batch: Mapping[str, Any], sharding: NamedSharding, *,
                keys: tuple[str, ...] | None = None) -> dict[str, jax.Array]:
    """Places a global host batch on the mesh, each process contributing its own rows.

    Args:
      batch: dict of numpy arrays with the global batch on axis 0 (identical on every
        process). Non-numeric entries (strings) are dropped.
      sharding: `data_sharding(mesh)`.
      keys: the entries to place (None = every numeric entry).

    Returns:
      Global `jax.Array`s sharded over the ``data`` axis.
    """
    n, i = jax.process_count(), jax.process_index()
    out = {}
    for key, value in batch.items():
        if keys is not None and key not in keys:
            continue
        x = np.asarray(value)
        if x.dtype.kind not in "biuf":
            continue
        per = x.shape[0] // n
        out[key] = jax.make_array_from_process_local_data(
            sharding, x[i * per:(i + 1) * per], x.shape)
    return out


def replicate(tree: Any, sharding: NamedSharding) -> Any:
    """Places every array leaf of `tree` fully replicated on the mesh."""
    def put(x):
        if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
            return x
        x = np.asarray(jax.device_get(x))
        return jax.make_array_from_process_local_data(sharding, x, x.shape)
    return jax.tree.map(put, tree)
