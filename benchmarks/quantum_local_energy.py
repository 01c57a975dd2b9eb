"""Local energies of 2D states: the full network pass on every connected configuration against
the incremental path (`local_energies(..., incremental=True)`: only the rows at and below each
connected configuration's first changed row, and no work for zero matrix elements), on one
batch of exact samples.

Systems (name: lattice, Hamiltonian): heisenberg:6 (6×6 periodic, Sᶻ = 0, the Marshall rule in
H), heisenberg:10 (10×10 open, Sᶻ = 0), tfim:6 (6×6 periodic, h = 3), tfim:10 (10×10 open,
h = 3): the lattices of `quantum_2d_gpu.py`. State: a positive `ARConv2D` of the default depth
(every site sees all earlier ones: 5 layers on 6×6, 9 on 10×10), in `FixedMagnetization` for
Heisenberg, symmetrised over the spin flip (2 base-network images per configuration, as
`quantum_2d_gpu.py --train-symmetry flip`), untrained. The configurations (`--configurations`):
exact samples of that state ("model"), or, for Heisenberg, Néel configurations with random
exchanges of an up and a down spin until the share of antiparallel bonds is at most
`--antiparallel` ("neel"; default 0.73, about that of the ground state, ⟨σᶻσᶻ⟩ ≈ −0.45 per bond
on the periodic 6×6 lattice (QMC energy / 3)); a trained state's samples look like these, an
untrained one's may not, and only antiparallel bonds have non-zero off-diagonal elements.

Printed per system and width: milliseconds per batch of local energies (the least over
`--repeats` timed calls after a compiling one; wall time, and the process's CPU time, which is
steadier on a shared machine), the speed-up, the largest difference of the two paths relative
to the largest |E_loc|, and the share of connections that need a network pass (σ' ≠ σ with a
non-zero matrix element; the full path evaluates all of `get_conn_padded`'s slots).

    nice -n 10 python benchmarks/quantum_local_energy.py                    # the table
    python benchmarks/quantum_local_energy.py --systems heisenberg:6 --features 12 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from physml.kernels import check_writable, write_text_atomic  # noqa: E402
from physml.quantum import (  # noqa: E402
    ARConv2D,
    FixedMagnetization,
    Symmetrized,
    draw_samples,
    heisenberg_2d,
    lattice_group,
    local_energies,
    tfim_2d,
)

SYSTEMS = {
    # name: (Hamiltonian, L, periodic)
    "heisenberg:6": ("heisenberg", 6, True),
    "heisenberg:10": ("heisenberg", 10, False),
    "tfim:6": ("tfim", 6, True),
    "tfim:10": ("tfim", 10, False),
}


def build(system: str, features: int, seed: int):
    """(H, the spin-flip-symmetrised state, its depth) for a name in `SYSTEMS`."""
    kind, L, pbc = SYSTEMS[system]
    base = ARConv2D(L, features=features, positive=True, key=jax.random.key(seed))
    if kind == "heisenberg":
        H, model = heisenberg_2d(L, pbc=pbc, total_sz=0), FixedMagnetization(base)
    else:
        H, model = tfim_2d(L, 3.0, pbc=pbc), base
    identity = lattice_group(L, pbc=pbc)[:1]
    return H, Symmetrized(model, identity, spin_flip=True), base.layers


def _time(f, *args, repeats: int) -> tuple[float, float, jax.Array]:
    """(least wall seconds, least CPU seconds, result) over `repeats` calls after a first one."""
    out = jax.block_until_ready(f(*args))
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(f(*args))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu), out


def neel_like(H, L: int, samples: int, antiparallel: float, seed: int) -> np.ndarray:
    """Néel configurations (σᶻ = ±1, Σσᶻ = 0) with random up–down exchanges until at most a
    share `antiparallel` of the bonds of `H`'s lattice are antiparallel."""
    rng = np.random.default_rng(seed)
    edges = _edges(L, H)
    r, c = np.divmod(np.arange(L * L), L)
    neel = np.where((r + c) % 2 == 0, 1.0, -1.0)
    out = np.empty((samples, L * L))
    for i in range(samples):
        s = neel.copy()
        while np.mean(s[edges[:, 0]] != s[edges[:, 1]]) > antiparallel:
            up, down = rng.choice(np.flatnonzero(s > 0)), rng.choice(np.flatnonzero(s < 0))
            s[up], s[down] = -1.0, 1.0
        out[i] = s
    return out


def _edges(L: int, H) -> np.ndarray:
    """The bonds of `H` (sites coupled by an off-diagonal element), from the Néel state."""
    r, c = np.divmod(np.arange(L * L), L)
    neel = np.where((r + c) % 2 == 0, 1.0, -1.0)
    sigma_p, mels = H.get_conn_padded(neel[None])
    changed = np.asarray(sigma_p[0] != neel)[np.asarray(mels[0]) != 0]
    return np.stack([np.flatnonzero(row) for row in changed if row.sum() == 2])


def measure(
    system: str,
    features: int,
    samples: int,
    repeats: int,
    seed: int,
    configurations: str = "model",
    antiparallel: float = 0.73,
) -> dict:
    H, model, layers = build(system, features, seed)
    if configurations == "neel" and SYSTEMS[system][0] == "heisenberg":
        L = SYSTEMS[system][1]
        sigma = jnp.asarray(neel_like(H, L, samples, antiparallel, seed), model.dtype)
    else:
        sigma = model.to_spins(draw_samples(model, samples, key=jax.random.key(seed + 1)))
    sigma_p, mels = H.get_conn_padded(sigma)
    needed = float(jnp.mean(jnp.any(sigma_p != sigma[:, None], -1) & (mels != 0)))
    row = {
        "system": system,
        "features": features,
        "layers": layers,
        "samples": samples,
        "configurations": configurations,
        "connections": int(mels.shape[1]),
        "needed_fraction": needed,
    }
    results = {}
    for name, incremental in (("full", False), ("incremental", True)):
        f = eqx.filter_jit(lambda m, s, inc=incremental: local_energies(m, H, s, incremental=inc))
        wall, cpu, results[name] = _time(f, model, sigma, repeats=repeats)
        row[f"{name}_ms"], row[f"{name}_cpu_ms"] = 1e3 * wall, 1e3 * cpu
    full, fast = np.asarray(results["full"]), np.asarray(results["incremental"])
    row["max_rel_diff"] = float(np.max(np.abs(fast - full)) / np.max(np.abs(full)))
    row["speedup"] = row["full_ms"] / row["incremental_ms"]
    row["speedup_cpu"] = row["full_cpu_ms"] / row["incremental_cpu_ms"]
    return row


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--systems", default="heisenberg:6,heisenberg:10", help=", ".join(SYSTEMS))
    p.add_argument("--features", default="12,24", help="widths, comma-separated")
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--configurations", choices=["model", "neel"], default="neel")
    p.add_argument("--antiparallel", type=float, default=0.73, help="for --configurations neel")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        p.error(f"--systems: unknown {unknown}; choose from {', '.join(SYSTEMS)}")
    try:
        widths = [int(f) for f in args.features.split(",")]
    except ValueError:
        p.error(f"--features must be comma-separated integers, got {args.features!r}")
    if args.samples < 1 or args.repeats < 1:
        p.error(f"--samples and --repeats must be >= 1, got {args.samples}, {args.repeats}")
    if not 0.6 <= args.antiparallel <= 1:  # random exchanges drift towards about one half
        p.error(f"--antiparallel must be in [0.6, 1], got {args.antiparallel}")
    if args.out:
        check_writable(args.out)

    print(
        f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs, float64, {args.samples} "
        f"configurations ({args.configurations})"
    )
    header = (
        f"{'system':>14} {'F':>3} {'D':>2} {'conn':>4} {'needed':>6} | {'full ms':>9} "
        f"{'incr ms':>9} {'speed-up':>8} | {'full cpu':>9} {'incr cpu':>9} {'speed-up':>8} "
        f"| {'max rel diff':>12}"
    )
    print(header)
    rows = []
    for system in systems:
        for features in widths:
            r = measure(
                system,
                features,
                args.samples,
                args.repeats,
                args.seed,
                args.configurations,
                args.antiparallel,
            )
            rows.append(r)
            print(
                f"{system:>14} {features:>3} {r['layers']:>2} {r['connections']:>4} "
                f"{r['needed_fraction']:>6.2f} | {r['full_ms']:>9.0f} {r['incremental_ms']:>9.0f} "
                f"{r['speedup']:>7.1f}× | {r['full_cpu_ms']:>9.0f} {r['incremental_cpu_ms']:>9.0f} "
                f"{r['speedup_cpu']:>7.1f}× | {r['max_rel_diff']:>12.1e}",
                flush=True,
            )
    if args.out:
        write_text_atomic(args.out, json.dumps(rows, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
