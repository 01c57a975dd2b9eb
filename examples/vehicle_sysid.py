"""Collect three minutes of driving on the plant, identify a neural-ExpTanh tyre model, and
report its held-out rollout error.   python examples/vehicle_sysid.py"""

import jax

from physml import vehicle


def main(seed: int = 0, steps: int = 2000, minutes: float = 3.0):
    key_train, key_test, key_model, key_fit = jax.random.split(jax.random.key(seed), 4)
    plant = vehicle.DriftPlant()
    train = vehicle.collect(plant, minutes, key=key_train)
    heldout = vehicle.collect(plant, 1.0, key=key_test, mix="heldout")
    model = vehicle.make_model("neural_exptanh", key=key_model)
    fitted = vehicle.identify(train, model, key=key_fit, steps=steps)
    rmse = vehicle.rollout_rmse(fitted.model, heldout)
    print(vehicle.format_rmse_table({"neural_exptanh": rmse}))
    print({k: fitted.report[k] for k in ("val_loss", "steps", "wall_time_s", "n_params")})
    return fitted, rmse


if __name__ == "__main__":
    jax.config.update("jax_enable_x64", True)
    main()
