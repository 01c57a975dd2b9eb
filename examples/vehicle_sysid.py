"""Collect three minutes of driving on the plant, identify a neural-ODE tyre model (started from
a fit to the axle forces estimated from the log), and report its held-out rollout error.
    python examples/vehicle_sysid.py"""

import jax

from physml import vehicle


def main(seed: int = 0, steps: int = 2000, minutes: float = 3.0):
    key_train, key_test, key_model, key_fit = jax.random.split(jax.random.key(seed), 4)
    plant = vehicle.DriftPlant()
    train = vehicle.collect(plant, minutes, key=key_train)
    heldout = vehicle.collect(plant, 1.0, key=key_test, mix="heldout")
    params = vehicle.params_from_plant(plant)  # measured mass, inertia, geometry
    model = vehicle.make_model("neural_ode", key=key_model, params=params, data=train)
    # 1-s validation windows: early stopping judges the open-loop behaviour (as the benchmark)
    fitted = vehicle.identify(train, model, key=key_fit, steps=steps, val_horizon=100)
    rmse = vehicle.rollout_rmse(fitted.model, heldout)
    print(vehicle.format_rmse_table({"neural_ode": rmse}))
    print({k: fitted.report[k] for k in ("val_loss", "steps", "wall_time_s", "n_params")})
    return fitted, rmse


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
