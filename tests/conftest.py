"""Test configuration shared by the whole suite.

- float64 is on: reference checks compare against closed forms and exact diagonalisation.
- hypothesis profiles: `ci` (default; bounded examples, no deadline since the first call of a
  jitted function compiles) and `dev` (more examples). Pick with HYPOTHESIS_PROFILE=dev.
- `slow` marks long accuracy / learning runs; they are deselected by default (pyproject addopts)
  and run with `pytest -m slow`.
- XLA's LLVM backend runs at optimisation level 0 (`jax_disable_most_optimizations`; the HLO
  passes still run, so the programs are the same and results differ from the optimised build
  only in rounding): the suite is dominated by compiling many small programs, and this cuts its
  time on 2 cores by about a fifth (1051 s → 868 s for `pytest -n 2`, 2026-12-01). Subprocess
  tests inherit it through the environment. PHYSML_TEST_XLA_OPTIMIZE=1 runs the suite with the
  default, optimised backend instead; both must pass (one receptive-field test that leaned on
  derivatives of 1e-24 was made robust when this was introduced).
- `strict_promotion` is a fixture that turns on JAX's strict dtype promotion for a test, where
  an implicit float32/float64 or int/float mix would be a bug.
"""

import os

OPTIMIZE = os.environ.get("PHYSML_TEST_XLA_OPTIMIZE") == "1"
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "0" if OPTIMIZE else "1"  # and for subprocesses

import jax  # noqa: E402  (after the environment is set)
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_enable_x64", True)
# Also here: a plugin may have imported JAX before this file set the environment.
jax.config.update("jax_disable_most_optimizations", not OPTIMIZE)

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
