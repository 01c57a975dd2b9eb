"""One process of the multi-process VMC check in `test_multihost.py`.

Usage: python _multihost_worker.py OUT_DIR PROCESS_ID NUM_PROCESSES PORT

Joins a `jax.distributed` CPU cluster (gloo collectives) on 127.0.0.1:PORT, runs `vmc_fit`
with the batch sharded over every process's devices, checks that `fit` refuses processes that
pass different keys, records what `shard_batch` keeps here, and writes
`result_{PROCESS_ID}.npz` to OUT_DIR. Exits with `UNAVAILABLE` if this platform cannot form
such a cluster. The test runs `vmc_fit` once more in its own process and compares.
"""

import sys
from pathlib import Path

import numpy as np

# The quantum tests' helpers (this file also runs as a script, outside pytest's path setup).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantum"))

N_SITES, N_SAMPLES, STEPS = 8, 256, 3
UNAVAILABLE = 77  # exit status: no gloo / jax.distributed here (the test skips)


def problem():
    """A perturbed `ARConv1D` on `N_SITES` sites and the VMC objective of the 1D TFIM
    (h = J = 1) for SR (no plain gradient)."""
    import jax
    from quantum_testing import perturbed

    from physml.quantum import ARConv1D, VMCObjective, tfim

    net = ARConv1D(N_SITES, layers=2, features=4, kernel_size=3, key=jax.random.key(0))
    net = perturbed(net, 1, 0.3)
    return net, VMCObjective(tfim(N_SITES, 1.0), N_SAMPLES, gradient=False)


def vmc_fit(out_dir: Path) -> dict:
    """`STEPS` SR steps of `problem()` through `fit`, with a log and a checkpoint in `out_dir`,
    then `N_SAMPLES` samples of the trained model.

    Returns host arrays: the final parameters (flat), the loss and its error per step, how
    many checkpoints this process wrote, and this process's rows of the samples with the
    index of their first row.
    """
    import equinox as eqx
    import jax
    import optax
    from jax.flatten_util import ravel_pytree

    import physml.kernels._outputs as outputs
    from physml.kernels import fit, sample
    from physml.quantum import SR

    net, objective = problem()
    written = []
    save_tree = outputs.save_tree

    def counting_save_tree(path, tree):
        written.append(path)
        return save_tree(path, tree)

    outputs.save_tree = counting_save_tree
    try:
        res = fit(
            objective,
            net,
            optimizer=optax.sgd(0.05),
            preconditioner=SR(1e-3),
            steps=STEPS,
            key=jax.random.key(2),
            log_path=out_dir / "log.jsonl",
            checkpoint_path=out_dir / "state.eqx",
            checkpoint_every=1,
            progress=False,
        )
    finally:
        outputs.save_tree = save_tree
    params = eqx.filter(res.model, eqx.is_inexact_array)
    assert all(leaf.is_fully_replicated for leaf in jax.tree.leaves(params))

    x, _ = sample(res.model, N_SAMPLES, key=jax.random.key(3))
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return {
        "params": np.asarray(ravel_pytree(params)[0]),
        "loss": np.array([rec["loss"] for rec in res.history]),
        "loss_error": np.array([rec["loss_error"] for rec in res.history]),
        "n_checkpoints_written": np.array(len(written)),
        "x_rows": np.concatenate([np.asarray(s.data) for s in shards]),
        "x_first_row": np.array(shards[0].index[0].start or 0),
        "x_rows_per_device": np.array([s.data.shape[0] for s in shards]),
    }


def _refuses_different_keys() -> bool:
    """Whether `fit` stops, before any step, when each process passes its own key."""
    import jax
    import optax

    from physml.kernels import fit

    net, objective = problem()
    try:
        fit(
            objective,
            net,
            optimizer=optax.sgd(0.05),
            steps=1,
            key=jax.random.key(10 + jax.process_index()),
            progress=False,
        )
    except ValueError as err:
        return "same arguments and key" in str(err)
    return False


def _shard_batch_rows() -> np.ndarray:
    """This process's rows of `shard_batch` applied to the same (N_SAMPLES, 3) host batch on
    every process."""
    from physml.kernels import shard_batch

    x = shard_batch(np.arange(3 * N_SAMPLES).reshape(N_SAMPLES, 3))
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return np.concatenate([np.asarray(s.data) for s in shards])


def main(out_dir: str, process_id: int, num_processes: int, port: int) -> None:
    import jax

    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}",
            num_processes=num_processes,
            process_id=process_id,
            initialization_timeout=120,
        )
    except Exception as err:
        print(f"jax.distributed with gloo is unavailable: {err!r}", file=sys.stderr)
        sys.exit(UNAVAILABLE)
    jax.config.update("jax_enable_x64", True)
    result = vmc_fit(Path(out_dir))
    result["mismatch_refused"] = np.array(_refuses_different_keys())
    result["shard_batch_rows"] = _shard_batch_rows()
    result["n_devices"] = np.array(jax.device_count())
    result["n_local_devices"] = np.array(jax.local_device_count())
    np.savez(Path(out_dir) / f"result_{process_id}.npz", **result)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
