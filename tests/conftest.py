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
- JAX's compilation caches are cleared after a test once the process holds more than 20 000
  memory mappings. Every compiled CPU program keeps a few mappings (tests/quantum/test_vmc_2d.py
  alone leaves about 15 000), a worker of `pytest -n 2` runs about 300 tests, and at Linux's
  default limit (vm.max_map_count = 65 530) LLVM's next code allocation fails and XLA
  segfaults while compiling: in CI, and reproduced here, a worker crashed in whichever compile
  crossed it (2026-12-02). Clearing unmaps them (15 554 → 1 313 measured).
- `strict_promotion` is a fixture that turns on JAX's strict dtype promotion for a test, where
  an implicit float32/float64 or int/float mix would be a bug.
"""

import os

OPTIMIZE = os.environ.get("PHYSML_TEST_XLA_OPTIMIZE") == "1"
os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "0" if OPTIMIZE else "1"  # and for subprocesses

import gc  # noqa: E402

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


_MAPS = "/proc/self/maps"
_MAX_MAPPINGS = 20_000


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Free the compiled programs when the process holds too many mappings (module docstring)."""
    yield
    if os.path.exists(_MAPS):
        with open(_MAPS, "rb") as maps:
            count = sum(1 for _ in maps)
        if count > _MAX_MAPPINGS:
            jax.clear_caches()
            gc.collect()
