"""Fixtures shared by the vehicle tests."""

import jaxtyping
import pytest


@pytest.fixture
def without_runtime_typecheck():
    """Users call the API without the test run's jaxtyping/beartype hook, which would reject a
    wrongly typed argument (an int seed for a key) before the function's own checks: switch it
    off for one test."""
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)
