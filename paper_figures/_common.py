"""Shared helpers of the vehicle figure scripts (public API only).

The logs and model keys here are those of `benchmarks/vehicle_sysid.py`, so that a figure reuses
the logs and identified models that the benchmark caches in benchmarks/out/ (same file names,
same keys); the benchmark is a script and is not imported.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax

from physml import vehicle


def model_key(seed: int, i: int):
    """Key of tyre i (`vehicle.TIRES` order) that the benchmark gives `vehicle.identify_tire`
    (it builds the initial model from it), so also the key of the cached model's skeleton."""
    return jax.random.key(seed + 100 + i)


def fit_key(seed: int, i: int):
    """Identification key of tyre i for a figure script's own `vehicle.identify` call (the
    benchmark passes `model_key` to `vehicle.identify_tire`, which splits it)."""
    return jax.random.key(seed + 200 + i)


def sysid_logs(plant, minutes: float, seed: int, cache: str | None):
    """(train, held-out test, collect wall time [s]): the benchmark's logs, read from `cache`
    when it holds them, else collected (train: mix "train"; test: another key, mix "heldout")
    and written there."""
    k_train, k_test = jax.random.split(jax.random.key(seed))
    paths = [
        Path(cache or ".") / f"sysid_{kind}_{minutes}min_seed{seed}.npz"
        for kind in ("train", "test")
    ]
    if cache and all(p.is_file() for p in paths):
        return vehicle.load_log(paths[0]), vehicle.load_log(paths[1]), 0.0
    t0 = time.perf_counter()
    train = vehicle.collect(plant, minutes, key=k_train)
    test = vehicle.collect(plant, minutes, key=k_test, mix="heldout")
    if cache:
        vehicle.save_log(paths[0], train)
        vehicle.save_log(paths[1], test)
    return train, test, time.perf_counter() - t0


def model_path(cache: str, tire: str, seed: int) -> Path:
    """Where the benchmark saves the identified model of `tire`."""
    return Path(cache) / f"sysid_{tire}_seed{seed}.eqx"
