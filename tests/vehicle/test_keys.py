"""Every public vehicle entry that takes a PRNG key checks it with the project's `check_key`
(an int seed or a string gets the project's message, not JAX's key-data error), and
`identify`'s learning rate is a finite number > 0."""

import jax
import numpy as np
import pytest

from physml.vehicle import (
    DriftPlant,
    DriveLog,
    MLPTire,
    NeuralExpTanh,
    NeuralODETire,
    PoseSensor,
    Sensors,
    drive,
    fit_model,
    identify,
    identify_bayes,
    make_model,
    make_tire,
    run_drift,
    simulate,
)
from physml.vehicle._drift_run import make_path, nominal_model

KEY_ERROR = r"`key` must be a JAX PRNG key such as `jax\.random\.key\(0\)`"


def _log(n=400):
    t = np.arange(n) * 0.01
    state = np.tile([0.5, 10.0, -0.3, 30.0], (n, 1)) + 0.01 * np.sin(t)[:, None]
    return DriveLog(t, state, np.zeros((n, 2)), metadata={"seed": 0})


def _model():
    return make_model("fiala", key=jax.random.key(0))


CALLS = {
    "NeuralExpTanh": lambda key: NeuralExpTanh(key=key),
    "MLPTire": lambda key: MLPTire(key=key),
    "NeuralODETire": lambda key: NeuralODETire(key=key),
    "make_tire": lambda key: make_tire("neural_ode", key=key),
    "make_tire fiala": lambda key: make_tire("fiala", key=key),
    "make_model": lambda key: make_model("fiala", key=key),
    "identify": lambda key: identify(_log(), _model(), key=key, steps=1, progress=False),
    "identify_bayes": lambda key: identify_bayes(_log(), key=key, progress=False),
    "simulate": lambda key: simulate(DriftPlant(), None, make_path("donut"), 1.0, key=key),
    "Sensors.measure": lambda key: Sensors().measure(np.ones(4), key=key),
    "PoseSensor.measure": lambda key: PoseSensor().measure(np.ones(3), key=key),
    "nominal_model": lambda key: nominal_model(DriftPlant(), key=key),
    "fit_model": lambda key: fit_model("nominal", _log(), DriftPlant(), key=key),
    "drive": lambda key: drive("nominal", _model(), DriftPlant(), make_path("donut"), 1.0, key=key),
    "run_drift": lambda key: run_drift("donut", key=key, tires=["nominal"], progress=False),
}


@pytest.mark.parametrize("key", [0, "seed"])
@pytest.mark.parametrize("entry", list(CALLS))
def test_a_bad_key_gets_the_projects_message(entry, key, without_runtime_typecheck):
    with pytest.raises(TypeError, match=KEY_ERROR):
        CALLS[entry](key)


@pytest.mark.parametrize("rate", [0.0, -1e-3, float("nan"), float("inf")])
def test_identify_refuses_a_learning_rate_that_is_not_a_finite_positive_number(rate):
    with pytest.raises(ValueError, match="`learning_rate` must be"):
        identify(_log(), _model(), key=jax.random.key(0), learning_rate=rate, progress=False)
