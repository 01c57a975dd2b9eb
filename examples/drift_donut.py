"""Drift a donut with three minutes of data (Djeumou et al., ICRA 2023): collect 3 min on the
plant, identify a neural-ExpTanh tyre model, then hold a 30° drift on an 11-m circle for 60 s
with the drift MPC, next to an identified Fiala and the un-identified nominal model.
    python examples/drift_donut.py"""

import jax

from physml.vehicle import format_drift_table, run_drift
from physml.vehicle.plot import plot_comparison


def main(seed: int = 0, steps: int = 3000, minutes: float = 3.0, duration_s: float = 60.0):
    results = run_drift(
        "donut",
        key=jax.random.key(seed),
        tires=("nominal", "fiala", "neural_exptanh"),
        minutes=minutes,
        duration_s=duration_s,
        steps=steps,
    )
    print(format_drift_table(results))
    plot_comparison(results, "drift_donut.png")
    return results


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
