"""Test configuration shared by the whole suite.

- float64 is on: reference checks compare against closed forms and exact diagonalisation.
- hypothesis profiles: `ci` (default; bounded examples, no deadline since the first call of a
  jitted function compiles) and `dev` (more examples). Pick with HYPOTHESIS_PROFILE=dev.
- `slow` marks long accuracy / learning runs; they are deselected by default (pyproject addopts)
  and run with `pytest -m slow`.
- `strict_promotion` is a fixture that turns on JAX's strict dtype promotion for a test, where
  an implicit float32/float64 or int/float mix would be a bug.
"""

import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

settings.register_profile(
    "ci",
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def strict_promotion():
    with jax.numpy_dtype_promotion("strict"):
        yield
