"""ExpTanh and neural-ExpTanh tyres (Djeumou et al., CoRL 2024, eq. 14), with a sliding floor.

The paper's curve is E(z) = c1 + c2 exp(−c3 |z|) tanh(c4 (z − c5)): bounded, one extremum on
each side of c5, and E → c1 as |z| → ∞. That last property lets the force beyond the peak fall
to the offset c1 (about 0): the slip angles of a drift controller's full lock lie far beyond a
3-minute log, where such a curve predicts a front axle that loses almost all its force, and an
MPC exploits it. Rubber does not: the sliding friction coefficient is at least about 0.7 of the
peak on every surface in Gillespie's table (dry and wet asphalt and concrete, gravel, snow, ice;
T. D. Gillespie, "Fundamentals of Vehicle Dynamics", SAE 1992, Table 10.1). So both axles use
the ExpTanh shape written with a sliding level λ in place of the offset:

    M(ρ) = |c2| tanh(c4 ρ) (λ + (1 − λ) e^{−c3 ρ}),   λ = λ_min + (1 − λ_min) sigmoid(c1),

c3 = softplus(ĉ3), c4 = softplus(ĉ4) ≥ 0, λ_min = `SLIDE_MIN`. For every parameter value
M(0) = 0, 0 ≤ M ≤ |c2|, M'(0) = |c2| c4 > 0 and M(∞) = λ |c2| ≥ λ_min |c2|: the force
saturates beyond the data instead of vanishing.

Front axle (pure slip): F_y = −F_z sgn(u) M(|u|), u = tan α − c5 (c5: a small lateral offset).
Rear axle (combined slip): magnitude F_z M(ρ) with ρ = sqrt(tan²α + c0 σ²), along the unit vector
(−tan α, d σ)/|(tan α, d σ)|, c0 = softplus(ĉ0), d = softplus(d̂) (c5 unused). At α = 0 the drive
force F_x σ ≥ 0 opposes wheel spin, so the free wheel (ω̇_r = (k τ − R F_x) / I_w, τ = 0) is
stable for every parameter value. Coefficients are per unit load.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ...kernels._validate import check_key
from .base import (
    SLIDE_MIN,
    AbstractTireModel,
    Features,
    Scalar,
    float_array,
    inverse_softplus,
    smooth_norm,
    softplus,
)


def _constrain(raw: Float[Array, "5"]) -> Float[Array, "5"]:
    return raw.at[2].set(softplus(raw[2])).at[3].set(softplus(raw[3]))


def slip_magnitude(rho: Array, c: Float[Array, "5"]) -> Array:
    """M(ρ) = |c2| tanh(c4 ρ) (λ + (1 − λ) e^{−c3 ρ}), ρ ≥ 0, with constrained c (module
    docstring): zero at ρ = 0, non-negative, sliding level λ |c2| ≥ `SLIDE_MIN` |c2|."""
    lam = SLIDE_MIN + (1.0 - SLIDE_MIN) * jax.nn.sigmoid(c[0])
    decay = lam + (1.0 - lam) * jnp.exp(-c[2] * rho)
    return jnp.abs(c[1]) * jnp.tanh(c[3] * rho) * decay


def lateral_exptanh(tan_alpha: Array, c: Float[Array, "5"]) -> Array:
    """sgn(u) M(|u|), u = tan α − c5: the pure-slip curve per unit load (F_y = −F_z times it)."""
    u = tan_alpha - c[4]
    lam = SLIDE_MIN + (1.0 - SLIDE_MIN) * jax.nn.sigmoid(c[0])
    return jnp.abs(c[1]) * jnp.tanh(c[3] * u) * (lam + (1.0 - lam) * jnp.exp(-c[2] * jnp.abs(u)))


def _combined(coeffs, c0, d, slip_angle, slip_ratio, normal_load):
    tan_a = jnp.tan(slip_angle)
    sigma = jnp.asarray(slip_ratio, float)
    magnitude = normal_load * slip_magnitude(smooth_norm(tan_a, jnp.sqrt(c0) * sigma), coeffs)
    norm = smooth_norm(tan_a, d * sigma)
    return -magnitude * tan_a / norm, magnitude * d * sigma / norm


def _default_raw() -> Array:
    # c1 = 0, c2 ≈ μ = 1, c3 = 0.3 (slow post-peak decay), c4 = 12 (initial slope per unit load)
    return jnp.array([0.0, 1.0, inverse_softplus(0.3), inverse_softplus(12.0), 0.0])


class ExpTanh(AbstractTireModel):
    """ExpTanh tyre (per axle). `raw` holds (c1, c2, ĉ3, ĉ4, c5); c1 is the logit of the sliding
    level λ, so |F| ≤ F_z |c2| (the bound reported adds |c1|, a looser one kept for the
    neural variant's margin). `lateral` is −F_z sgn(u) M(|u|), `combined` the magnitude M(ρ)
    (module docstring).
    """

    raw: Float[Array, "5"] = eqx.field(default_factory=_default_raw, converter=float_array)
    raw_c0: Float[Array, ""] = eqx.field(default=inverse_softplus(1.0), converter=float_array)
    raw_d: Float[Array, ""] = eqx.field(default=inverse_softplus(1.0), converter=float_array)

    @property
    def coefficients(self) -> Float[Array, "5"]:
        """(c1, c2, c3, c4, c5) with c3, c4 ≥ 0."""
        return _constrain(self.raw)

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        return -normal_load * lateral_exptanh(jnp.tan(slip_angle), self.coefficients)

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        return _combined(
            self.coefficients,
            softplus(self.raw_c0),
            softplus(self.raw_d),
            slip_angle,
            slip_ratio,
            normal_load,
        )

    def force_bound(self, normal_load: Scalar) -> Array:
        return normal_load * (jnp.abs(self.raw[0]) + jnp.abs(self.raw[1]))


#: Centre and scale of the state features (r [rad/s], V [m/s], β [rad], ω_r [rad/s]) fed to the
#: MLP: (x − centre) / scale is O(1) and centred over drift driving (8–17 m/s, ω_r ≈ V / R with
#: R ≈ 0.35 m plus wheel spin), so that the tanh units start in their linear range.
FEATURE_CENTER = (0.0, 11.0, 0.0, 35.0)
FEATURE_SCALE = (1.0, 4.0, 0.5, 15.0)


class NeuralExpTanh(AbstractTireModel):
    """ExpTanh whose coefficients depend on the vehicle state through a small MLP.

    raw(x) = base.raw + Δ ⊙ tanh(MLP((x − FEATURE_CENTER) / FEATURE_SCALE)), x = (r, V, β, ω_r);
    the last layer is initialised at zero so the tyre starts as `base`. Every structural property
    of ExpTanh holds at every state (c3, c4 ≥ 0 still come from softplus; the rear magnitude
    M(ρ) opposes wheel spin with a sliding level ≥ `SLIDE_MIN` |c2| whatever the network
    outputs, so the network cannot make the free wheel unstable); the bound over all states is
    F_z (|c1| + |c2| + Δ1 + Δ2).
    """

    base: ExpTanh
    net: eqx.nn.MLP
    max_delta: tuple[float, ...] = eqx.field(static=True, default=(0.3, 0.5, 2.0, 2.0, 0.1))

    def __init__(
        self,
        base: ExpTanh | None = None,
        *,
        width: int = 16,
        depth: int = 2,
        key: PRNGKeyArray,
        max_delta: tuple[float, ...] = (0.3, 0.5, 2.0, 2.0, 0.1),
    ):
        check_key(key)
        self.base = ExpTanh() if base is None else base
        net = eqx.nn.MLP(4, 5, width, depth, activation=jax.nn.tanh, key=key)
        last = net.layers[-1]
        last = eqx.tree_at(
            lambda layer: (layer.weight, layer.bias),
            last,
            (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
        )
        self.net = eqx.tree_at(lambda n: n.layers[-1], net, last)
        if len(max_delta) != 5 or any(m < 0 for m in max_delta):
            raise ValueError(f"`max_delta` must be 5 non-negative numbers, got {max_delta!r}.")
        self.max_delta = tuple(float(m) for m in max_delta)

    def coefficients(self, features: Features) -> Float[Array, "5"]:
        x = (jnp.asarray(features, float) - jnp.asarray(FEATURE_CENTER)) / jnp.asarray(
            FEATURE_SCALE
        )
        delta = jnp.asarray(self.max_delta) * jnp.tanh(self.net(x))
        return _constrain(self.base.raw + delta)

    def lateral(self, slip_angle: Scalar, normal_load: Scalar, features: Features) -> Array:
        return -normal_load * lateral_exptanh(jnp.tan(slip_angle), self.coefficients(features))

    def combined(
        self, slip_angle: Scalar, slip_ratio: Scalar, normal_load: Scalar, features: Features
    ) -> tuple[Array, Array]:
        return _combined(
            self.coefficients(features),
            softplus(self.base.raw_c0),
            softplus(self.base.raw_d),
            slip_angle,
            slip_ratio,
            normal_load,
        )

    def fitted_to_forces(
        self, fit: Callable[[AbstractTireModel], AbstractTireModel]
    ) -> AbstractTireModel:
        """The base ExpTanh fitted to axle forces; the network stays at its neutral start."""
        return eqx.tree_at(lambda t: t.base, self, fit(self.base))

    def force_bound(self, normal_load: Scalar) -> Array:
        m = self.max_delta
        return normal_load * (jnp.abs(self.base.raw[0]) + jnp.abs(self.base.raw[1]) + m[0] + m[1])
