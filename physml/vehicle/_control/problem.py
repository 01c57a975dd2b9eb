"""The drift MPC's optimal-control problem: prediction, residuals, cost and their Jacobian.

Djeumou et al., ICRA 2023, Sec. IV; grid, cost terms and input boxes from "One model to drift
them all", CoRL 2024, App. A. Over a horizon grid h_k the state x = (r, V, β, ω_r, e, Δφ, s)
(`SingleTrackModel.path_vector_field`) is predicted by ROS2 steps (`physml.kernels.ros2_step`,
W-method on the stiff vehicle block (r, V, β, ω_r), the path states explicit) under inputs
u_k = (δ_k [rad], τ_k [N·m]) held over step k, and J = ½ |ρ|² with

    J = ½ Σ_k h_k [ ((β_k − β_ref)/σ_β)² + (e_k/σ_e)² + (Δφ_k/σ_Δφ)² + ρ_V,k² + ρ_α,k²
                    + (δ̇_k/σ_δ̇)² + (τ̇_k/σ_τ̇)² ],
    ρ_V = (V − V_ref)/σ_V + min(V − V_ref + m_V, 0)/σ_floor   (a one-sided soft speed floor),
    ρ_α = max(|α_f(x_{k+1}, u_k)| − α_max, 0)/σ_α            (the data's front-slip envelope),

(σ: Bryson's rule, `MPCWeights`), β_ref and V_ref from `DriftReference` at the predicted s_k
(`reference_clock="path"`) or at s_0 + V_ref(s_0) t_k ("time"). ρ_α keeps the plan where the
model has data: α_max is the largest front slip angle of the log it was identified on
(`front_slip_envelope`); beyond it a learned tyre curve is extrapolation, which an optimiser
would otherwise exploit (off by default: α_max = ∞). Decision variables: scaled input
rates z ∈ [−1, 1]^{N×2}, u_k = clip(u_{k−1} + h_k ż_k, amplitude box), so every plan meets the
rate and amplitude boxes. ∂ρ/∂z by condensing: S_{k+1} = A_k S_k + B_k ∂u_k/∂z, S = ∂x/∂z.

Quasi-steady wheel speed: the root of ω̇_r = 0 at (r, V, β) and τ, the singular-perturbation
reduction of the fast wheel mode (Kokotović, Khalil & O'Reilly, "Singular Perturbation Methods
in Control", 1986, ch. 1); it exists while E(τ) < F_max(F_zr(τ)) R (`traction_torque_limit_nm`).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Float

from ...kernels import ros2_step
from .._model.single_track import SingleTrackModel
from .paths import AbstractPath
from .reference import DriftReference

#: The implicit (stiff) block of the ROS2 predictor: the vehicle states (r, V, β, ω_r).
_VEHICLE_STATES = (0, 1, 2, 3)
#: Horizon steps per loop iteration of the prediction scans (fewer loop trips on a CPU).
_UNROLL = 1


def predictor_step(
    model: SingleTrackModel,
    x: Float[Array, "7"],
    u: Float[Array, "2"],
    h: Float[ArrayLike, ""],
    curvature,
) -> Float[Array, "7"]:
    """One ROS2 step of length h [s] of (r, V, β, ω_r, e, Δφ, s) with u held; `curvature` is
    s ↦ κ(s) [1/m]. W = diag(I₄ − γ h ∂f/∂(r, V, β, ω_r), I₃) (forward mode, 4 directions)."""
    f = lambda y: model.path_vector_field(0.0, y, u, curvature)
    jac = jax.jacfwd(lambda y: model.vector_field(0.0, y, u))(x[:4])
    return ros2_step(f, x, h, jacobian=jac, stiff=_VEHICLE_STATES)


def predict(
    model: SingleTrackModel,
    x0: Float[ArrayLike, "7"],
    controls: Float[ArrayLike, "N 2"],
    dt_s: Float[ArrayLike, " N"],
    curvature,
) -> Float[Array, "N_plus_1 7"]:
    """The MPC's discrete prediction: ROS2 steps of lengths `dt_s` [s] under zero-order-hold
    `controls` (δ [rad], τ [N·m]) from x0 = (r, V, β, ω_r, e, Δφ, s); returns (N + 1, 7).
    Call `model.prepare()` first for tyres that need it (`DriftMPC` does)."""
    x0 = jnp.asarray(x0, float)

    def body(x, uh):
        u, h = uh
        x = predictor_step(model, x, u, h, curvature)
        return x, x

    inputs = (jnp.asarray(controls, float), jnp.asarray(dt_s, float))
    _, xs = jax.lax.scan(body, x0, inputs, unroll=_UNROLL)
    return jnp.concatenate([x0[None], xs])


def mean_model(model: SingleTrackModel) -> SingleTrackModel:
    """The mean over the leading particle axis of a stack of models (`stack_models`)."""
    arrays, static = eqx.partition(model, eqx.is_inexact_array)
    return eqx.combine(jtu.tree_map(lambda a: jnp.mean(a, axis=0), arrays), static)


def traction_torque_limit_nm(model: SingleTrackModel) -> float:
    """The drive input τ [N·m] at which E(τ) = k_τ τ + τ_0 = F_max(F_zr(τ)) R: the largest
    drive torque the model's rear tyre can transmit at the rear load that torque itself
    produces (`VehicleParams.normal_loads`; the static load where `cg_height_m` = 0); above it
    no quasi-steady wheel speed exists (the wheel spins up). Solved by fixed-point iteration
    from the static load, a contraction while the transfer h F_max / (F_z L) stays below 1
    (about 0.25 for h = 0.6 m, L = 2.6 m, μ = 1).

    Returns inf for a rear tyre without a finite force bound (no limit to impose).

    Raises:
        ValueError if the iteration has not converged (change ≤ 1e-9 max(|τ|, 1 N·m)) in 50
        steps."""
    p = model.params
    radius, gain = float(p.wheel_radius_m), float(p.torque_gain)
    offset = 0.0 if p.torque_offset_nm is None else float(p.torque_offset_nm)

    def torque_at(fz_rear):
        return (float(model.rear.force_bound(fz_rear)) * radius - offset) / gain

    torque = torque_at(p.normal_loads()[1])
    if not math.isfinite(torque):
        return math.inf
    for _ in range(50):
        updated = torque_at(p.normal_loads(jnp.asarray(torque))[1])
        if abs(updated - torque) <= 1e-9 * max(abs(torque), 1.0):
            return updated
        torque = updated
    raise ValueError(
        f"the traction torque limit did not converge (last iterate {torque!r} N·m): the load "
        "transfer h F_max / (F_z L) must stay below 1."
    )


def quasi_steady_wheel_speed(
    model: SingleTrackModel, y: Float[Array, "4"], torque_nm: Float[ArrayLike, ""]
) -> Float[Array, ""]:
    """ω_r [rad/s] with ω̇_r = 0 at (r, V, β) of y and torque τ (bisection in the slip
    σ ∈ [−0.9, 4]; the end nearer a root if ω̇_r does not change sign there)."""
    radius = model.params.wheel_radius_m
    vx = y[1] * jnp.cos(y[2])
    omega_of = lambda sigma: (1.0 + sigma) * vx / radius
    rate = lambda sigma: model.vector_field(
        0.0, y.at[3].set(omega_of(sigma)), jnp.stack([jnp.zeros(()), torque_nm])
    )[3]

    def body(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        up = rate(mid) > 0  # ω̇_r decreases with σ: a positive rate means the root is above
        return jnp.where(up, mid, lo), jnp.where(up, hi, mid)

    lo, hi = jax.lax.fori_loop(0, 40, body, (jnp.asarray(-0.9), jnp.asarray(4.0)))
    return omega_of(0.5 * (lo + hi))


class MPCWeights(eqx.Module):
    """Tolerated size σ of each cost term (weight 1/σ², Bryson's rule; module docstring).

    Attributes:
        sideslip_rad: σ_β, 2° of sideslip error.
        lateral_m: σ_e, 0.25 m of lateral error.
        heading_rad: σ_Δφ, 5° of course error against the path tangent.
        speed_mps: σ_V, 1.5 m/s of speed error from the reference (a weak term).
        steer_rate_radps: σ_δ̇, 1 rad/s of steering rate.
        torque_rate_nmps: σ_τ̇, 5000 N·m/s of torque rate.
        speed_floor_margin_mps: m_V, how far V may fall below V_ref(s) before the soft speed
            floor acts; default inf (off; `run_drift` uses 2 m/s).
        speed_floor_mps: σ_floor, tolerance of the soft speed floor (0.25 m/s): below
            V_ref − m_V the speed residual grows with slope 1/σ_V + 1/σ_floor.
        front_slip_limit_rad: α_max, the front slip angle |α_f| [rad] beyond which the plan
            pays ρ_α (the identification data's envelope, `front_slip_envelope`); default inf
            (off).
        front_slip_rad: σ_α, tolerance of the envelope term (1° beyond α_max costs as much as
            2° of sideslip error at the defaults).
    """

    sideslip_rad: float = math.radians(2.0)
    lateral_m: float = 0.25
    heading_rad: float = math.radians(5.0)
    speed_mps: float = 1.5
    steer_rate_radps: float = 1.0
    torque_rate_nmps: float = 5000.0
    speed_floor_margin_mps: float = math.inf
    speed_floor_mps: float = 0.25
    front_slip_limit_rad: float = math.inf
    front_slip_rad: float = math.radians(1.0)

    def __check_init__(self):
        for name in (
            "sideslip_rad",
            "lateral_m",
            "heading_rad",
            "speed_mps",
            "steer_rate_radps",
            "torque_rate_nmps",
            "speed_floor_margin_mps",
            "speed_floor_mps",
            "front_slip_limit_rad",
            "front_slip_rad",
        ):
            value = getattr(self, name)
            finite = math.isfinite(value) if isinstance(value, int | float) else False
            if name in ("speed_floor_margin_mps", "front_slip_limit_rad") and value == math.inf:
                continue  # the soft speed floor / the slip envelope switched off (the default)
            if not (isinstance(value, int | float) and finite and value > 0):
                raise ValueError(f"MPCWeights.{name} must be a finite number > 0, got {value!r}.")


class DriftProblem(eqx.Module):
    """The tracking problem over one horizon (module docstring), as functions of the scaled
    rates z (N, 2), the measured state x0 (7,) and the last command u_{−1} = (δ, τ).

    Attributes:
        model: the prepared single-track model (a stack of particles if `ensemble`: the
            tracking terms of every particle, scaled by 1/√P).
        path: the path; reference: its quasi-equilibrium table; weights: `MPCWeights`.
        dt_s: (N,) horizon grid [s].
        steer_max_rad, steer_rate_max_radps, torque_min_nm, torque_max_nm,
        torque_rate_max_nmps: the input boxes.
        ensemble: whether `model` is a stack of particles.
        reference_clock: "path" or "time" (module docstring).
    """

    model: SingleTrackModel
    path: AbstractPath
    reference: DriftReference
    weights: MPCWeights
    dt_s: Float[Array, " N"]
    steer_max_rad: float = eqx.field(static=True)
    steer_rate_max_radps: float = eqx.field(static=True)
    torque_min_nm: float = eqx.field(static=True)
    torque_max_nm: float = eqx.field(static=True)
    torque_rate_max_nmps: float = eqx.field(static=True)
    ensemble: bool = eqx.field(static=True)
    reference_clock: str = eqx.field(static=True)

    @property
    def horizon_steps(self) -> int:
        return int(self.dt_s.shape[0])

    def rate_scale(self) -> Float[Array, "2"]:
        """(δ̇_max [rad/s], τ̇_max [N·m/s]): the rates of z = ±1."""
        return jnp.asarray([self.steer_rate_max_radps, self.torque_rate_max_nmps])

    def bounds(self) -> tuple[Float[Array, "2"], Float[Array, "2"]]:
        """The amplitude box (lower, upper) of (δ [rad], τ [N·m])."""
        lo = jnp.asarray([-self.steer_max_rad, self.torque_min_nm])
        hi = jnp.asarray([self.steer_max_rad, self.torque_max_nm])
        return lo, hi

    def first_model(self) -> SingleTrackModel:
        """The model (the first particle of an ensemble)."""
        return jtu.tree_map(lambda a: a[0], self.model) if self.ensemble else self.model

    def inputs_and_sensitivity(self, rates, last_command):
        """u_k = clip(u_{k−1} + h_k ż_k) (N, 2) and du_k/dz (N, 2, 2N) (zero where clipped)."""
        lo, hi = self.bounds()
        n = self.horizon_steps
        scale = self.rate_scale()

        def body(carry, kzh):
            u, du = carry
            k, z, h = kzh
            pre = u + h * z * scale
            active = (pre > lo) & (pre < hi)
            unit = jnp.zeros((2, n, 2)).at[:, k, :].set(jnp.diag(h * scale)).reshape(2, 2 * n)
            du = jnp.where(active[:, None], du + unit, 0.0)
            u = jnp.clip(pre, lo, hi)
            return (u, du), (u, du)

        start = (jnp.clip(last_command, lo, hi), jnp.zeros((2, 2 * n)))
        _, (us, dus) = jax.lax.scan(body, start, (jnp.arange(n), rates, self.dt_s))
        return us, dus

    def inputs(
        self, rates: Float[Array, "N 2"], last_command: Float[Array, "2"]
    ) -> Float[Array, "N 2"]:
        """The plan's inputs (δ, τ): u_k = clip(u_{k−1} + h_k ż_k) from the last command."""
        return self.inputs_and_sensitivity(rates, last_command)[0]

    def reference_arc_lengths(self, x0: Float[Array, "7"]) -> Float[Array, " N"]:
        """s_0 + V_ref(s_0) t_k [m] for each horizon step k: where the "time" clock scores it
        (the "path" clock uses the predicted s_k instead)."""
        t_end = jnp.cumsum(self.dt_s)
        v0 = self.reference.at(x0[6])[0][1]
        return x0[6] + v0 * t_end

    def step_residual(self, x, h, s_ref=None) -> Float[Array, "4"]:
        """√h (ρ_β, ρ_e, ρ_Δφ, ρ_V) of a predicted state x over a step of length h [s]."""
        w = self.weights
        s_ref = x[6] if (s_ref is None or self.reference_clock == "path") else s_ref
        v_ref = self.reference.at(s_ref)[0][1]
        beta_ref = self.path.sideslip(s_ref)
        res = jnp.stack(
            [
                (x[2] - beta_ref) / w.sideslip_rad,
                x[4] / w.lateral_m,
                x[5] / w.heading_rad,
                (x[1] - v_ref) / w.speed_mps
                + jnp.minimum(x[1] - v_ref + w.speed_floor_margin_mps, 0.0) / w.speed_floor_mps,
            ]
        )
        return res * jnp.sqrt(h)

    def envelope_residual(self, model, x, u, h) -> Float[Array, "1"]:
        """√h ρ_α of a predicted state x (7,) under the input u (2,) held over the step."""
        w = self.weights
        alpha_f = model.slips(x[:4], u)[0]
        excess = jnp.maximum(jnp.abs(alpha_f) - w.front_slip_limit_rad, 0.0)
        return (excess / w.front_slip_rad * jnp.sqrt(h))[None]

    def _residuals_of_step(self, model, x, u, h, s_ref):
        return jnp.concatenate(
            [self.step_residual(x, h, s_ref), self.envelope_residual(model, x, u, h)]
        )

    def _tracking_linearised(self, model, x0, us, dus, xs=None):
        """Tracking residuals (N, 5) and their Jacobian (N, 5, 2N) by condensing: the ROS2
        rollout x_0 … x_N (`xs`, if already predicted for these inputs), then the step
        Jacobians A_k = ∂x_{k+1}/∂x_k, B_k = ∂x_{k+1}/∂u_k at every x_k at once (forward mode,
        9 directions, vmapped over the horizon: the rollout is the only sequential part), then
        S_{k+1} = A_k S_k + B_k du_k/dz."""
        curv = self.path.curvature
        xs = predict(model, x0, us, self.dt_s, curv) if xs is None else xs
        step = lambda x, u, h: predictor_step(model, x, u, h, curv)
        a, b = jax.vmap(jax.jacfwd(step, argnums=(0, 1)))(xs[:-1], us, self.dt_s)

        def body(sens, abd):
            a_k, b_k, du = abd
            sens = a_k @ sens + b_k @ du
            return sens, sens

        _, sens = jax.lax.scan(body, jnp.zeros((7, dus.shape[-1])), (a, b, dus))
        s_ref = self.reference_arc_lengths(x0)
        one = lambda x, u, h, sr: self._residuals_of_step(model, x, u, h, sr)
        res = jax.vmap(one)(xs[1:], us, self.dt_s, s_ref)
        dres_x, dres_u = jax.vmap(jax.jacfwd(one, argnums=(0, 1)))(xs[1:], us, self.dt_s, s_ref)
        jac = jnp.einsum("kij,kjm->kim", dres_x, sens) + jnp.einsum("kij,kjm->kim", dres_u, dus)
        return res, jac, xs

    def _effort_scale(self):
        return jnp.asarray([self.weights.steer_rate_radps, self.weights.torque_rate_nmps])

    def linearise(
        self,
        rates: Float[Array, "N 2"],
        x0: Float[Array, "7"],
        last_command: Float[Array, "2"],
        predicted: Float[Array, "*P N_plus_1 7"] | None = None,
    ) -> tuple[Float[Array, " M"], Float[Array, "M N2"]]:
        """Residual vector ρ (as `residuals`) and its Jacobian ∂ρ/∂z (M, 2N) by condensing.
        `predicted`: the prediction of this plan (per particle for an ensemble), as
        `cost_and_prediction` returns it, to reuse instead of predicting again."""
        us, dus = self.inputs_and_sensitivity(rates, last_command)
        if self.ensemble:
            lin = lambda m, xs: self._tracking_linearised(m, x0, us, dus, xs)
            res, jac, _ = eqx.filter_vmap(lin)(self.model, predicted)
            p = res.shape[0]
            res, jac = res / jnp.sqrt(p), jac / jnp.sqrt(p)
        else:
            res, jac, _ = self._tracking_linearised(self.model, x0, us, dus, predicted)
        lo, hi = self.bounds()
        prev_u = jnp.concatenate([jnp.clip(last_command, lo, hi)[None], us[:-1]])
        prev_du = jnp.concatenate([jnp.zeros_like(dus[:1]), dus[:-1]])
        factor = 1.0 / (jnp.sqrt(self.dt_s)[:, None] * self._effort_scale())
        effort = (us - prev_u) * factor
        d_effort = (dus - prev_du) * factor[:, :, None]
        rho = jnp.concatenate([res.ravel(), effort.ravel()])
        jac = jnp.concatenate(
            [jac.reshape(-1, jac.shape[-1]), d_effort.reshape(-1, d_effort.shape[-1])]
        )
        return rho, jac

    def predict(
        self, x0: Float[ArrayLike, "7"], plan: Float[ArrayLike, "N 2"]
    ) -> Float[Array, "N_plus_1 7"]:
        """Predicted states (N + 1, 7) of a plan of inputs (δ, τ) from x0 (first particle)."""
        return predict(self.first_model(), x0, plan, self.dt_s, self.path.curvature)

    def _tracking(self, model, x0, us):
        xs = predict(model, x0, us, self.dt_s, self.path.curvature)
        s_ref = self.reference_arc_lengths(x0)
        one = lambda x, u, h, sr: self._residuals_of_step(model, x, u, h, sr)
        return jax.vmap(one)(xs[1:], us, self.dt_s, s_ref), xs

    def _residuals_and_prediction(self, rates, x0, last_command):
        us = self.inputs(rates, last_command)
        if self.ensemble:
            track, xs = eqx.filter_vmap(lambda m: self._tracking(m, x0, us))(self.model)
            track = track / jnp.sqrt(track.shape[0])
        else:
            track, xs = self._tracking(self.model, x0, us)
        lo, hi = self.bounds()
        du = jnp.diff(jnp.concatenate([jnp.clip(last_command, lo, hi)[None], us]), axis=0)
        effort = du / (jnp.sqrt(self.dt_s)[:, None] * self._effort_scale())
        return jnp.concatenate([track.ravel(), effort.ravel()]), xs

    def residuals(
        self, rates: Float[Array, "N 2"], x0: Float[Array, "7"], last_command: Float[Array, "2"]
    ) -> Float[Array, " M"]:
        """Residual vector ρ with J = ½ |ρ|²: the tracking terms (N, 5) (per particle for an
        ensemble, scaled by 1/√P), then the rate terms (N, 2)."""
        return self._residuals_and_prediction(rates, x0, last_command)[0]

    def cost_and_prediction(
        self, rates: Float[Array, "N 2"], x0: Float[Array, "7"], last_command: Float[Array, "2"]
    ) -> tuple[Float[Array, ""], Float[Array, "*P N_plus_1 7"]]:
        """J of a plan given as scaled rates (+inf where the prediction is not finite) and the
        prediction (N + 1, 7) it scored (per particle, (P, N + 1, 7), for an ensemble)."""
        rho, xs = self._residuals_and_prediction(rates, x0, last_command)
        value = 0.5 * jnp.sum(rho**2)
        return jnp.where(jnp.isfinite(value), value, jnp.inf), xs

    def cost(
        self, rates: Float[Array, "N 2"], x0: Float[Array, "7"], last_command: Float[Array, "2"]
    ) -> Float[Array, ""]:
        """J of a plan given as scaled rates; +inf where the prediction is not finite."""
        return self.cost_and_prediction(rates, x0, last_command)[0]

    def violation(
        self, plan: Float[Array, "N 2"], last_command: Float[Array, "2"]
    ) -> Float[Array, ""]:
        """Largest violation of the amplitude and rate boxes by a plan of inputs."""
        rate = jnp.diff(jnp.concatenate([last_command[None], plan]), axis=0) / self.dt_s[:, None]
        over = jnp.stack(
            [
                jnp.abs(plan[:, 0]) - self.steer_max_rad,
                plan[:, 1] - self.torque_max_nm,
                self.torque_min_nm - plan[:, 1],
                jnp.abs(rate[:, 0]) - self.steer_rate_max_radps,
                jnp.abs(rate[:, 1]) - self.torque_rate_max_nmps,
            ]
        )
        return jnp.maximum(jnp.max(over), 0.0)


__all__ = [
    "DriftProblem",
    "MPCWeights",
    "mean_model",
    "predict",
    "predictor_step",
    "quasi_steady_wheel_speed",
    "traction_torque_limit_nm",
]
