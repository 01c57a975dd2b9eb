"""The single-track (bicycle) drift model being learned, with rear wheel-speed dynamics.

Equations of Djeumou et al., "One model to drift them all", CoRL 2024, appendix A.1 (rear-wheel
drive), state y = (r, V, β, ω_r) [rad/s, m/s, rad, rad/s], input u = (δ, τ) [rad, N m]:

    ṙ   = (a F_yf cos δ + a F_xf sin δ − b F_yr) / I_z
    V̇   = (−F_yf sin(δ−β) + F_xf cos(δ−β) + F_yr sin β + F_xr cos β) / m
    β̇   = (F_yf cos(δ−β) + F_xf sin(δ−β) + F_yr cos β − F_xr sin β) / (m V) − r
    ω̇_r = (T_r(τ) − F_xr R) / I_w,   E(τ) = k_τ τ + τ_0 (the drive map, `VehicleParams`)
    F_xf = max(T_f(τ) / R, −F̄_f(F_zf))   (front brake force; F̄_f the front tyre's force bound)
    α_f = atan((V sin β + a r) / (V cos β)) − δ,  α_r = atan((V sin β − b r) / (V cos β)),
    σ_r = (R ω_r − V cos β) / (V cos β)

where (T_f, T_r) = `VehicleParams.axle_torques`(τ) split a brake torque E < 0 between the front
axle and the rear wheel (b_f = `brake_split_front`; A.1 has b_f = 0: T_r = E, F_xf = 0), and
with the tyres at the normal loads F_zf, F_zr of `VehicleParams.normal_loads` under τ (A.1's
static split where `cg_height_m` = 0; with a centre-of-mass height, the quasi-static
longitudinal load transfer h E(τ) / (R L)), and the path-relative states (e, Δφ, s) for a
path of curvature κ(s) [1/m]:
    ė = V sin Δφ,  ṡ = V cos Δφ / (1 − e κ(s)),  Δφ̇ = β̇ + r − κ(s) ṡ.

Low-speed regularisation. The slip denominators V cos β and the V in β̇ are replaced by the smooth
floor x ↦ v_f log(e^{x/v_f} + e) (a log-sum-exp max of x and v_f) with v_f = `speed_floor_mps`
(default 0.5 m/s). It is smooth, ≥ v_f everywhere (also for V cos β ≤ 0), and equals x up to
v_f e^{1 − x/v_f} (< 3.4e-3 m/s above 3 m/s, < 3e-9 m/s above 10 m/s), so the model and its
gradients stay finite at V = 0 while drift data (V ≫ 3 m/s) see the unregularised equations.
Below ~3 v_f the model is a regularised one, not the physics.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ...kernels import rollout
from .._tires.base import AbstractTireModel
from .params import VehicleParams

State = Float[Array, "4"]
Control = Float[ArrayLike, "2"]


def soft_floor(x: Array, floor: float) -> Array:
    """floor · log(e^{x/floor} + e): smooth, ≥ floor, equal to x up to floor · e^{1 − x/floor}."""
    return floor * jnp.logaddexp(x / floor, 1.0)


class SingleTrackModel(eqx.Module):
    """Single-track drift model: vehicle parameters and one tyre model per axle.

    The front tyre's `lateral` and the rear tyre's `combined` are used, so any
    `AbstractTireModel` can be swapped in. `vector_field` follows `physml.kernels.rollout`'s
    convention `f(t, y, u, args)`; call `prepare()` once before a rollout (it pre-solves
    tyres such as the neural ODE; `rollout_model` does it for you).
    """

    params: VehicleParams
    front: AbstractTireModel
    rear: AbstractTireModel
    speed_floor_mps: float = eqx.field(static=True, default=0.5)

    def __check_init__(self):
        if not self.speed_floor_mps > 0:
            raise ValueError(f"`speed_floor_mps` must be > 0, got {self.speed_floor_mps!r}.")

    def prepare(self) -> SingleTrackModel:
        """The same model with both tyres prepared for repeated evaluation (differentiable)."""
        return eqx.tree_at(
            lambda m: (m.front, m.rear), self, (self.front.prepare(), self.rear.prepare())
        )

    def slips(self, y: State, u: Control) -> tuple[Array, Array, Array]:
        """(α_f, α_r, σ_r) [rad, rad, -] with the low-speed floor on V cos β."""
        r, v, beta, omega = y[0], y[1], y[2], y[3]
        delta = jnp.asarray(u)[0]
        p = self.params
        vx = soft_floor(v * jnp.cos(beta), self.speed_floor_mps)
        vy = v * jnp.sin(beta)
        alpha_f = jnp.arctan((vy + p.a_m * r) / vx) - delta
        alpha_r = jnp.arctan((vy - p.b_m * r) / vx)
        sigma_r = (p.wheel_radius_m * omega - v * jnp.cos(beta)) / vx
        return alpha_f, alpha_r, sigma_r

    def forces(self, y: State, u: Control) -> tuple[Array, Array, Array]:
        """Axle forces (F_yf, F_yr, F_xr) [N], at the normal loads of `VehicleParams.normal_loads`
        under the drive input u[1] (static where `cg_height_m` = 0)."""
        alpha_f, alpha_r, sigma_r = self.slips(y, u)
        fz_f, fz_r = self.params.normal_loads(jnp.asarray(u)[1])
        f_yf = self.front.lateral(alpha_f, fz_f, y)
        f_yr, f_xr = self.rear.combined(alpha_r, sigma_r, fz_r, y)
        return f_yf, f_yr, f_xr

    def front_brake_force(self, u: Control) -> Array:
        """F_xf = max(T_f / R, −F̄_f(F_zf)) [N] ≤ 0: the front axle's quasi-static brake force
        under the input u (module docstring); 0 for a drive torque or b_f = 0."""
        tau = jnp.asarray(u)[1]
        p = self.params
        t_front = p.axle_torques(tau)[0]
        bound = self.front.force_bound(p.normal_loads(tau)[0])
        return jnp.maximum(t_front / p.wheel_radius_m, -bound)

    def vector_field(self, t, y: State, u: Control, args=None) -> State:
        """dy/dt of (r, V, β, ω_r) (CoRL 2024, A.1)."""
        r, v, beta = y[0], y[1], y[2]
        u = jnp.asarray(u)
        delta, tau = u[0], u[1]
        p = self.params
        f_yf, f_yr, f_xr = self.forces(y, u)
        f_xf = self.front_brake_force(u)
        db = delta - beta
        r_dot = (
            p.a_m * f_yf * jnp.cos(delta) + p.a_m * f_xf * jnp.sin(delta) - p.b_m * f_yr
        ) / p.yaw_inertia_kgm2
        v_dot = (
            -f_yf * jnp.sin(db) + f_xf * jnp.cos(db) + f_yr * jnp.sin(beta) + f_xr * jnp.cos(beta)
        ) / p.mass_kg
        beta_dot = (
            f_yf * jnp.cos(db) + f_xf * jnp.sin(db) + f_yr * jnp.cos(beta) - f_xr * jnp.sin(beta)
        ) / (p.mass_kg * soft_floor(v, self.speed_floor_mps)) - r
        omega_dot = (p.axle_torques(tau)[1] - f_xr * p.wheel_radius_m) / p.wheel_inertia_kgm2
        return jnp.stack([r_dot, v_dot, beta_dot, omega_dot])

    __call__ = vector_field

    def path_vector_field(
        self,
        t,
        y: Float[Array, "7"],
        u: Control,
        curvature: Callable[[Array], Array] | float | None = None,
    ) -> Float[Array, "7"]:
        """dy/dt of (r, V, β, ω_r, e, Δφ, s) along a path of curvature κ(s) [1/m].

        `curvature` is a callable s -> κ(s), a constant, or None (straight path). The denominator
        1 − e κ is kept ≥ 0.05 (the car is within 95% of the local radius of curvature).
        """
        dyn = self.vector_field(t, y[:4], u)
        v, e, dphi, s = y[1], y[4], y[5], y[6]
        if curvature is None:
            kappa = jnp.zeros_like(s)
        elif callable(curvature):
            kappa = curvature(s)
        else:
            kappa = jnp.asarray(curvature, float)
        s_dot = v * jnp.cos(dphi) / jnp.maximum(1.0 - e * kappa, 0.05)
        e_dot = v * jnp.sin(dphi)
        dphi_dot = dyn[2] + y[0] - kappa * s_dot
        return jnp.concatenate([dyn, jnp.stack([e_dot, dphi_dot, s_dot])])


def rollout_model(
    model: SingleTrackModel,
    y0: ArrayLike,
    controls: ArrayLike,
    dt: float | Float[ArrayLike, ""],
    *,
    method: str = "rk4",
    substeps: int = 2,
) -> Float[Array, "*batch steps_plus_1 4"]:
    """Roll the model out from `y0` (*batch, 4) under zero-order-hold `controls` (*batch, T, 2)
    with step `dt` [s]; returns (*batch, T + 1, 4).

    Each control step is integrated with `substeps` RK steps of dt / substeps: the rear
    wheel-speed mode is stiff (eigenvalue ≈ −C_σ R² / (V cos β I_w), about −400 1/s at 8 m/s
    for the Supra with a grip tyre), beyond RK4's stability limit 2.78 / dt at dt = 10 ms.
    Batched over any leading axes (vmapped); one jitted `physml.kernels.rollout` underneath.
    """
    y0 = jnp.asarray(y0, float)
    controls = jnp.asarray(controls, float)
    if (
        y0.shape[-1:] != (4,)
        or controls.shape[-1:] != (2,)
        or controls.ndim != y0.ndim + 1
        or (controls.shape[:-2] != y0.shape[:-1])
    ):
        raise ValueError(
            "expected y0 of shape (*batch, 4) and controls of shape (*batch, steps, 2) with the "
            f"same batch shape, got y0 {y0.shape} and controls {controls.shape}."
        )
    if not (isinstance(substeps, int) and substeps >= 1):
        raise ValueError(f"`substeps` must be a positive integer, got {substeps!r}.")
    return rollout_substeps(model, y0, controls, jnp.asarray(dt, float), method, substeps)


@eqx.filter_jit
def rollout_substeps(model, y0, controls, dt, method, substeps):
    """`rollout_model` without its checks: y0 (*batch, 4), controls (*batch, T, 2), dt [s]."""
    prepared = model.prepare()

    def one(y, c):
        fine = jnp.repeat(c, substeps, axis=0)
        ys = rollout(prepared.vector_field, y, fine, dt / substeps, method=method, check=False)
        return ys[::substeps]

    for _ in range(y0.ndim - 1):
        one = jax.vmap(one)
    return one(y0, controls)
