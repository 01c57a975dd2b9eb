"""VMC through `fit` on 2 processes × 2 CPU devices (`jax.distributed`, gloo) equals one process.

Two workers (`_multihost_worker.py`) form a 4-device cluster on this machine; the batch is
split over all 4, so each process draws and evaluates only its 2 devices' rows, and XLA
all-reduces the means. The same run in this process (its own devices) is the reference: the
samples do not depend on the device count, the update agrees to round-off.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _multihost_worker import N_SAMPLES, STEPS, UNAVAILABLE, vmc_fit

WORKER = Path(__file__).with_name("_multihost_worker.py")
N_PROCESSES, DEVICES_PER_PROCESS, TIMEOUT_S = 2, 2, 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_workers(out_dir: Path) -> list[dict]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={DEVICES_PER_PROCESS}"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(out_dir), str(i), str(N_PROCESSES), str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(N_PROCESSES)
    ]
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        logs = "\n".join(
            f"--- worker {i}\n{p.communicate()[0][-3000:]}" for i, p in enumerate(procs)
        )
        pytest.fail(f"The workers did not finish within {TIMEOUT_S} s:\n{logs}")
    if any(p.returncode == UNAVAILABLE for p in procs):
        pytest.skip(
            "jax.distributed with gloo CPU collectives is unavailable: " + outputs[0][-500:]
        )
    for i, (p, out) in enumerate(zip(procs, outputs, strict=True)):
        assert p.returncode == 0, f"worker {i} exited with {p.returncode}:\n{out[-5000:]}"
    return [dict(np.load(out_dir / f"result_{i}.npz")) for i in range(N_PROCESSES)]


def test_two_processes_equal_one(tmp_path):
    multi_dir, single_dir = tmp_path / "multi", tmp_path / "single"
    multi_dir.mkdir()
    single_dir.mkdir()
    results = _run_workers(multi_dir)
    first, second = results

    n_devices = N_PROCESSES * DEVICES_PER_PROCESS
    for r in results:
        assert int(r["n_devices"]) == n_devices and int(r["n_local_devices"]) == 2
        # Each process holds its 2 devices' rows of the batch, not the whole batch.
        np.testing.assert_array_equal(r["x_rows_per_device"], [N_SAMPLES // n_devices] * 2)
    assert {int(r["x_first_row"]) for r in results} == {0, N_SAMPLES // 2}
    # Every process ends with the same (replicated) parameters and the same log.
    np.testing.assert_array_equal(first["params"], second["params"])
    np.testing.assert_array_equal(first["loss"], second["loss"])
    # Process 0 alone writes the checkpoints (one per step and the final one).
    assert int(first["n_checkpoints_written"]) == STEPS + 1
    assert int(second["n_checkpoints_written"]) == 0
    assert len((multi_dir / "log.jsonl").read_text().splitlines()) == STEPS
    # A process started with its own key is refused, on every process (no hang).
    assert all(bool(r["mismatch_refused"]) for r in results)
    # shard_batch of the same host batch everywhere: each process keeps its half.
    batch = np.arange(3 * N_SAMPLES).reshape(N_SAMPLES, 3)
    for r in results:
        start = int(r["x_first_row"])
        np.testing.assert_array_equal(r["shard_batch_rows"], batch[start : start + N_SAMPLES // 2])

    reference = vmc_fit(single_dir)
    scale = np.max(np.abs(reference["params"]))
    np.testing.assert_allclose(first["params"], reference["params"], rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(first["loss"], reference["loss"], rtol=1e-12)
    np.testing.assert_allclose(first["loss_error"], reference["loss_error"], rtol=1e-9)
    assert np.ptp(reference["loss"]) > 0.1, "a vacuous run: the energy did not move"

    # The rows each process drew are the reference's rows at the same place.
    x_ref = reference["x_rows"]
    for r in results:
        start = int(r["x_first_row"])
        np.testing.assert_array_equal(r["x_rows"], x_ref[start : start + N_SAMPLES // 2])
