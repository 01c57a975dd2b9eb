"""Spreading a batch over all local devices with `jax.sharding` (no-op on one device).

Work that is independent per sample (exact autoregressive sampling, local energies, rollouts of
a batch of trajectories) is sharded along its leading axis; XLA's SPMD partitioner then runs
each device's slice locally. On several hosts, call `jax.distributed.initialize()` first; the
leading axis is then split over `jax.local_devices()` of each process.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.tree_util as jtu
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def batch_mesh() -> Mesh:
    """A one-axis mesh named "batch" over all local devices."""
    return Mesh(np.asarray(jax.local_devices()), (BATCH_AXIS,))


def batch_sharding(ndim: int = 1) -> NamedSharding:
    """Sharding that splits the leading axis over all local devices and replicates the rest."""
    return NamedSharding(batch_mesh(), PartitionSpec(BATCH_AXIS, *([None] * (ndim - 1))))


def can_shard(n: int) -> bool:
    """Whether a leading axis of length `n` can be split evenly over the local devices."""
    n_dev = jax.local_device_count()
    return n_dev > 1 and n % n_dev == 0


def shard_batch(tree: Any) -> Any:
    """Place every array leaf's leading axis across all local devices.

    Leaves whose leading size is not divisible by the device count are left where they are
    (a no-op on one device). Returns the tree with sharded leaves.
    """
    if jax.local_device_count() == 1:
        return tree

    def put(x):
        if hasattr(x, "shape") and len(x.shape) >= 1 and can_shard(x.shape[0]):
            return jax.device_put(x, batch_sharding(len(x.shape)))
        return x

    return jtu.tree_map(put, tree)
