"""Drift a figure-eight with three minutes of data (Djeumou et al., ICRA 2023): collect 3 min on
the plant, identify a neural-ExpTanh tyre model, then swing the car from a left into a right
30° drift and back along two 11-m circles for 60 s (about four laps) with the drift MPC.
Known open problem (issue 6): the car does not complete the reversal; the run reports where and
why it stops.
    python examples/drift_figure8.py"""

import jax

from physml.vehicle import format_drift_table, run_drift
from physml.vehicle.plot import plot_drift

#: The identified model has no drift equilibrium through part of each sideslip reversal (the
#: findings in docs/notes/2026-12-01-drift-mpc-findings.md): interpolate its reference over
#: stretches up to this long [m].
BRIDGE_M = 20.0


def main(
    seed: int = 0,
    steps: int = 3000,
    minutes: float = 3.0,
    duration_s: float = 60.0,
    bridge_m: float = BRIDGE_M,
):
    results = run_drift(
        "figure8",
        key=jax.random.key(seed),
        minutes=minutes,
        duration_s=duration_s,
        steps=steps,
        mpc_options={"bridge_m": bridge_m},
    )
    print(format_drift_table(results))
    run = results["neural_exptanh"]
    plot_drift(run, "drift_figure8.png")
    if run.closed_loop is None:
        print(f"no closed loop: {run.error}")
    else:
        print(
            f"laps: {run.metrics['laps']:.2f}, spin-out: {run.metrics['spin_out']}, reference "
            f"bridged over {100 * run.bridged_fraction:.1f} % of the lap"
        )
    return run


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
