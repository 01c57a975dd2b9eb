"""The abstract tyre model: (slip, normal load, state features) -> force per axle [N].

Sign conventions (SAE-like, as in the single-track model of Djeumou et al., CoRL 2024, A.1):
- slip angle α [rad] > 0 gives a lateral force F_y < 0 (the force opposes the slip);
- slip ratio σ [-] > 0 (wheel faster than the ground) gives a drive force F_x > 0.
- state features are (r [rad/s], V [m/s], β [rad], ω_r [rad/s]); only the neural-ExpTanh tyre
  uses them, the others ignore them.
The front axle uses `lateral`, the rear (driven) axle uses `combined`. Each tyre also says how
it is started from axle forces estimated from a log (`fit_starts`, `fit_bounds`,
`fitted_to_forces`; used by `physml.vehicle.fit_tires_to_forces`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

Scalar = Float[ArrayLike, ""]
Features = Float[ArrayLike, "4"]
#: Box bounds on the raw values of named fields, for a fit to axle forces.
FitBounds = dict[str, tuple[float, float]]

#: Smoothing of the combined-slip magnitude sqrt(x² + ε²) so that its gradient is finite at zero.
SLIP_EPS = 1e-4

#: Least sliding force of a learned tyre curve beyond its peak, as a fraction of its peak scale
#: (λ_min): the sliding friction coefficient is 0.7 or more of the peak on every surface of
#: T. D. Gillespie, "Fundamentals of Vehicle Dynamics", SAE 1992, Table 10.1 (dry and wet
#: asphalt and concrete, gravel, snow, ice). Learned curves keep at least this much force far
#: beyond their data, where a 3-minute log says nothing and a controller would exploit a curve
#: that falls away.
SLIDE_MIN = 0.7


def float_array(x) -> Array:
    """`x` as a float array of the default float dtype (the converter of parameter fields)."""
    return jnp.asarray(x, dtype=float)


def float_field(default: float):
    """A parameter field holding a float array, `default` when not given, converted by
    `float_array` when given."""
    return eqx.field(default_factory=lambda: float_array(default), converter=float_array)


def smooth_norm(x: Array, y: Array, eps: float = SLIP_EPS) -> Array:
    """sqrt(x² + y² + ε²): a norm with a finite gradient at the origin (error ≤ ε)."""
    return jnp.sqrt(x * x + y * y + eps * eps)


class AbstractTireModel(eqx.Module):
    """A tyre (axle) force model. Subclasses are final and implement `lateral` and `combined`.

    Both methods take scalars; `jax.vmap` them for batches. They are differentiable in every
    argument and in the model's parameters.
    """

    @abc.abstractmethod
    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        """Pure lateral force F_y [N] at slip angle α [rad] and normal load F_z [N]."""

    @abc.abstractmethod
    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        """Combined-slip forces (F_y, F_x) [N] at slip angle α [rad] and slip ratio σ [-]."""

    def prepare(self) -> AbstractTireModel:
        """A tyre with the same forces, precomputed for many evaluations with fixed parameters.

        The default returns `self`; the neural-ODE tyre returns its tabulated solution so that a
        rollout solves the ODE once, not once per force evaluation. Differentiable.
        """
        return self

    def force_bound(self, normal_load: Scalar) -> Array:
        """An upper bound on |F| [N] valid for every input (inf where the model has none)."""
        return jnp.asarray(jnp.inf)

    def lateral_curve(self, slip_angle: Float[Array, " n"], normal_load: Scalar) -> Array:
        """`lateral` over a grid of slip angles (features zero): for plots and tests."""
        prepared = self.prepare()
        feats = jnp.zeros(4)
        return jax.vmap(lambda a: prepared.lateral(a, normal_load, feats))(slip_angle)

    def fit_starts(self, *, combined: bool) -> tuple[AbstractTireModel, ...]:
        """Tyres of this class to start a fit to axle forces from: of `lateral` (front axle) or,
        with `combined=True`, of `combined` (rear). The default is this tyre alone."""
        return (self,)

    def fit_bounds(self) -> FitBounds | None:
        """The fields fitted to axle forces with box bounds on their values, or None: every
        inexact array of the tyre, unbounded (the default)."""
        return None

    def fitted_to_forces(
        self, fit: Callable[[AbstractTireModel], AbstractTireModel]
    ) -> AbstractTireModel:
        """This tyre started from axle forces: `fit(tyre)` fits a tyre from its `fit_starts`
        within its `fit_bounds`. The default fits this tyre itself; a tyre may fit a part of
        itself (neural-ExpTanh: its base curve) or nothing (the MLP)."""
        return fit(self)


def softplus(x: Array) -> Array:
    return jax.nn.softplus(x)


def inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))
