"""Named errors of `physml.vehicle` that a caller may want to catch (NetKet's `errors.py`
naming: <Verb><Object><Kind>Error)."""

from __future__ import annotations


class NoDriftEquilibriumError(ValueError):
    """The model has no admissible steady drift where one was asked for: no equilibrium was
    found, or the one found is below the model's valid speed or needs inputs beyond the car's
    limits (`solve_equilibrium`), or a path has stretches without one (`drift_reference`).

    A `ValueError`, so that code catching the broader class keeps working; catch this one to
    tell "the model cannot drift there" from a bad argument."""


__all__ = ["NoDriftEquilibriumError"]
