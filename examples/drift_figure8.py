"""Drift a figure-eight with three minutes of data (Djeumou et al., ICRA 2023): collect 3 min on
the plant, identify a neural-ExpTanh tyre model, then swing the car from a left into a right
30° drift and back along two 11-m circles for 60 s (about four laps) with the drift MPC.
    python examples/drift_figure8.py"""

import jax

from physml.vehicle._drift_run import format_drift_table, plot_drift, run_drift


def main(seed: int = 0, steps: int = 3000, minutes: float = 3.0, duration_s: float = 60.0):
    results = run_drift(
        "figure8", key=jax.random.key(seed), minutes=minutes, duration_s=duration_s, steps=steps
    )
    print(format_drift_table(results))
    run = results["neural_exptanh"]
    plot_drift(run, "drift_figure8.png")
    print(f"laps: {run.metrics['laps']:.2f}, spin-out: {run.metrics['spin_out']}")
    return run


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
