"""Spreading a batch over all devices with `jax.sharding` (no-op on one device).

Work that is independent per sample (exact autoregressive sampling, local energies, rollouts of
a batch of trajectories) is sharded along its leading axis over `batch_mesh()`, all of
`jax.devices()`; XLA's SPMD partitioner then runs each device's slice where it lives and
all-reduces the means.

Several processes (hosts) follow JAX's multi-controller model: every process calls
`jax.distributed.initialize()` first, before importing `physml.quantum` (NetKet starts the XLA
backend on import); under SLURM or on Cloud TPU it finds the coordinator by itself, elsewhere
pass `coordinator_address`, `num_processes` and `process_id`. Every process then runs the same
program with the same arguments and PRNG key. The mesh then spans every process's devices,
so each process computes only its own devices' slice of the batch. A result sharded over the
batch lives partly on other hosts and cannot be fetched with `np.asarray`; its means and other
replicated scalars can.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.tree_util as jtu
import numpy as np
from jax.sharding import AbstractMesh, Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def batch_mesh() -> Mesh | AbstractMesh:
    """The mesh the batch is split over, along all of its axes.

    The mesh set with `jax.sharding.set_mesh` if there is one: importing NetKet (as
    `physml.quantum` does) sets a one-axis mesh "S" over `jax.devices()` and commits the arrays
    it creates to it, and one jitted program cannot mix two meshes. Otherwise a one-axis mesh
    named "batch" over `jax.devices()` (all devices of all processes). A set mesh is returned
    as `jax.sharding.get_abstract_mesh()` gives it, which also works inside `jit`.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return Mesh(np.asarray(jax.devices()), (BATCH_AXIS,))
    return mesh


def _batch_spec(mesh: Mesh | AbstractMesh, ndim: int) -> PartitionSpec:
    names = mesh.axis_names
    return PartitionSpec(names[0] if len(names) == 1 else names, *([None] * (ndim - 1)))


def batch_sharding(ndim: int = 1) -> NamedSharding:
    """Sharding that splits the leading axis over `batch_mesh()` and replicates the rest."""
    mesh = batch_mesh()
    return NamedSharding(mesh, _batch_spec(mesh, ndim))


def can_shard(n: int) -> bool:
    """Whether a leading axis of length `n` can be split evenly over the devices of
    `batch_mesh()` (by default `jax.device_count()`, every process's)."""
    n_dev = batch_mesh().size
    return n_dev > 1 and n % n_dev == 0


def shard_batch(tree: Any) -> Any:
    """Place every array leaf's leading axis across all devices.

    Each leaf is the *global* batch. With several processes it must hold the same values on
    every process (`jax.device_put` checks this with a collective); each process then keeps only
    the rows of its own devices. Leaves whose leading size is not divisible by the device count
    are left where they are (a no-op on one device). Returns the tree with sharded leaves.
    """
    mesh = batch_mesh()
    if mesh.size == 1:
        return tree
    if isinstance(mesh, AbstractMesh):  # device_put needs the devices of the set mesh
        mesh = jax.sharding.get_mesh()
    multi_process = jax.process_count() > 1

    def put(x):
        if not (hasattr(x, "shape") and len(x.shape) >= 1 and can_shard(x.shape[0])):
            return x
        if multi_process and isinstance(x, jax.Array) and x.is_fully_addressable:
            # A local array committed to one device cannot be placed on other hosts' devices;
            # its host copy can (device_put then treats it as the same global value everywhere).
            x = np.asarray(x)
        return jax.device_put(x, NamedSharding(mesh, _batch_spec(mesh, len(x.shape))))

    return jtu.tree_map(put, tree)
