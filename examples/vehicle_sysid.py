"""Collect three minutes of driving on the plant, identify a neural-ODE tyre model by the
library's one recipe (`identify_tire`: for the neural ODE a start from the log's axle forces,
then the defaults of `identify`; the recipe of `physml sysid` and `physml drift`,
docs/notes/2026-12-02-identification-recipe.md), and report its held-out rollout error.
    python examples/vehicle_sysid.py"""

import jax

from physml import vehicle


def main(seed: int = 0, steps: int = 3000, minutes: float = 3.0):
    key_train, key_test, key_fit = jax.random.split(jax.random.key(seed), 3)
    plant = vehicle.DriftPlant()
    train = vehicle.collect(plant, minutes, key=key_train)
    heldout = vehicle.collect(plant, 1.0, key=key_test, mix="heldout")
    params = vehicle.params_from_plant(plant)  # measured mass, inertia, geometry
    fitted = vehicle.identify_tire(train, "neural_ode", key=key_fit, params=params, steps=steps)
    rmse = vehicle.rollout_rmse(fitted.model, heldout)
    print(vehicle.format_rmse_table({"neural_ode": rmse}))
    print({k: fitted.report[k] for k in ("val_loss", "steps", "wall_time_s", "n_params")})
    return fitted, rmse


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
