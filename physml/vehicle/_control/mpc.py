"""Real-time nonlinear MPC that holds the single-track model in a drift along a path.

Djeumou et al., "Autonomous drifting with 3 minutes of data via learned tire models", ICRA 2023,
Sec. IV; cost and input boxes as in "One model to drift them all", CoRL 2024, App. A, on a
uniform 0.05-s grid (`DEFAULT_GRID_S`). The problem (ROS2 prediction, tracking cost, rate
parametrisation, condensed Jacobian) is `DriftProblem`; each control step solves it by projected
Gauss–Newton on the box of scaled input rates (`solve_box_least_squares`) within
`max_iterations`, warm-started from the previous plan shifted by one control period, and sends
the plan's first input. A non-finite prediction or solve falls back to the shifted previous plan
(`MPCStatus.nonfinite_fallback`).

With `wheel_speed="quasi_steady"` the measured rear wheel speed is replaced by the model's
quasi-steady one (`quasi_steady_wheel_speed`) and the torque box is capped at 95 % of the
model's traction limit, where that wheel speed ceases to exist. With `ensemble=True` the model
is a stack of posterior particles (`stack_models`) and their tracking terms are averaged.

Integral action (`lateral_integral_gain` k_I > 0, off by default): a model that is not the car
holds a drift at a steady lateral offset, since the MPC's predicted correction is not what the
car does. The controller integrates the measured lateral error, I ← I + e h_0, and solves from
the measurement with e shifted by k_I I (|k_I I| ≤ `lateral_integral_limit_m`): the plan then
brings the car to e = −k_I I, which moves until the measured offset is gone (integral action
by shifting the tracked output, the simplest form of offset-free MPC; G. Pannocchia and
J. B. Rawlings, "Disturbance models for offset-free model-predictive control", AIChE J. 49,
426 (2003)). `MPCInfo.predicted` is given back in the car's own e.

The reference is a `DriftReference` (quasi-equilibria, Goh & Gerdes, IEEE IV 2016), computed by
`DriftMPC.from_path`. Findings on the plant and the figure-eight:
docs/notes/2026-12-01-drift-mpc-findings.md.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._model.single_track import SingleTrackModel
from .._plant.actuators import Actuators
from .options import check_integral, check_model, check_options, check_settings, torque_box
from .paths import AbstractPath
from .problem import DriftProblem, MPCWeights, mean_model, quasi_steady_wheel_speed
from .reference import DriftReference, drift_reference
from .solver import solve_box_least_squares

#: Default horizon grid [s]: 30 steps of 0.05 s (1.5 s). CoRL 2024 (App. A) ends its 2-s grid
#: with 5 steps of 0.15 s; a W-method step that long can diverge in the fast transient of a
#: drift that snaps back to grip, and the blown-up prediction then misleads the solver
#: (docs/notes/2026-12-02-drift-robustness-causes.md), so the grid stays at 0.05 s throughout.
DEFAULT_GRID_S = (0.05,) * 30


class MPCStatus(eqx.Enumeration):
    """How a control step's solve ended (`MPCInfo.status`)."""

    converged = "converged: the cost stopped decreasing within the iteration budget"
    max_iterations = "max_iterations: the iteration budget ran out"
    nonfinite_fallback = "nonfinite_fallback: not finite; the shifted previous plan was used"


def stack_models(models: Sequence[SingleTrackModel]) -> SingleTrackModel:
    """Posterior particles as one model whose arrays have a leading particle axis (for
    `DriftMPC(..., ensemble=True)`); all models must share their structure."""
    models = list(models)
    if not models:
        raise ValueError("`models` must hold at least one SingleTrackModel, got none.")
    arrays = [eqx.filter(m, eqx.is_array) for m in models]
    static = eqx.filter(models[0], eqx.is_array, inverse=True)
    stacked = jtu.tree_map(lambda *xs: jnp.stack(xs), *arrays)
    return eqx.combine(stacked, static)


class MPCState(eqx.Module):
    """The controller's state between steps.

    Attributes:
        last_command: (δ [rad], τ [N·m]) sent at the previous step.
        rates: (N, 2) scaled input rates ∈ [−1, 1] of the plan to warm-start from.
        damping: Levenberg–Marquardt damping carried over [-].
        lateral_integral: I = Σ e h_0 [m s], the integrated measured lateral error (0 unless
            the MPC has a `lateral_integral_gain`).
    """

    last_command: Float[Array, "2"]
    rates: Float[Array, "N 2"]
    damping: Float[Array, ""]
    lateral_integral: Float[Array, ""]


class MPCInfo(eqx.Module):
    """What a solve did.

    Attributes:
        iterations: Gauss–Newton iterations used (≤ `max_iterations`).
        cost: cost J of the returned plan; cost_initial: of the warm start.
        violation: largest violation of the input boxes by the plan (amplitudes [rad, N·m],
            rates [rad/s, N·m/s]); 0 up to rounding, by construction.
        status: an `MPCStatus`.
        plan: (N, 2) inputs (δ, τ) of the plan; predicted: (N + 1, 7) its predicted states
            (of the first particle for an ensemble).
    """

    iterations: Int[Array, ""]
    cost: Float[Array, ""]
    cost_initial: Float[Array, ""]
    violation: Float[Array, ""]
    status: MPCStatus
    plan: Float[Array, "N 2"]
    predicted: Float[Array, "N_plus_1 7"]

    @property
    def failed(self) -> Bool[Array, ""]:
        return self.status == MPCStatus.nonfinite_fallback


class DriftMPC(eqx.Module):
    """Drift MPC on a path (module docstring): `init` then `step` once per control period.

    Attributes:
        problem: the `DriftProblem` (model, path, reference, weights, grid, input boxes).
        max_iterations: Gauss–Newton budget per step; tol: relative cost decrease below which
            a solve counts as converged.
        wheel_speed: "measured" or "quasi_steady".
        lateral_integral_gain: k_I [1/s] of the integral action (module docstring; 0: off).
        lateral_integral_limit_m: the largest shift |k_I I| [m].
    """

    problem: DriftProblem
    max_iterations: int = eqx.field(static=True)
    tol: float = eqx.field(static=True)
    wheel_speed: str = eqx.field(static=True)
    lateral_integral_gain: float = eqx.field(static=True)
    lateral_integral_limit_m: float = eqx.field(static=True)

    def __init__(
        self,
        model: SingleTrackModel,
        path: AbstractPath,
        reference: DriftReference,
        *,
        weights: MPCWeights | None = None,
        grid_s: Sequence[float] = DEFAULT_GRID_S,
        actuators: Actuators | None = None,
        torque_rate_max_nmps: float = 10000.0,
        max_iterations: int = 8,
        tol: float = 1e-3,
        ensemble: bool = False,
        wheel_speed: str = "measured",
        reference_clock: str = "path",
        lateral_integral_gain: float = 0.0,
        lateral_integral_limit_m: float = 1.0,
    ):
        """
        Args:
            model: a `SingleTrackModel` with any tyre (prepared here), or with `ensemble=True`
                a stack of particles (`stack_models`).
            path: an `AbstractPath`; reference: its `drift_reference` (for an ensemble, of
                the particles' mean model). `DriftMPC.from_path` computes it.
            weights: cost tolerances (default `MPCWeights()`).
            grid_s: horizon step lengths [s] (default `DEFAULT_GRID_S`, 30 × 0.05 s).
            actuators: amplitude and steering-rate boxes (default `Actuators()`).
            torque_rate_max_nmps: |τ̇| box [N·m/s] (a design choice: 500 N·m per 0.05 s).
            max_iterations: Gauss–Newton iterations per step (bounds the solve time).
            tol: relative cost decrease that ends a solve early.
            ensemble: `model` is a stack of particles; the cost averages their tracking terms.
            wheel_speed: "measured" (the measured ω_r) or "quasi_steady" (the model's
                quasi-steady wheel speed at the measured (r, V, β) and the last torque, for
                a model whose slip-to-force map is unreliable, e.g. un-identified); the torque
                box is then capped at 95 % of the model's traction limit.
            reference_clock: where step k is scored against β_ref, V_ref: "path" (its predicted
                s_k) or "time" (s_0 + V_ref(s_0) t_k), see `DriftProblem`.
            lateral_integral_gain: k_I ≥ 0 [1/s] of the integral action on the lateral error
                (module docstring); 0 (the default) switches it off.
            lateral_integral_limit_m: > 0, the largest shift |k_I I| [m] (anti-windup).
        """
        check_integral(lateral_integral_gain, lateral_integral_limit_m)
        check_model(model, ensemble)
        if not isinstance(path, AbstractPath):
            raise TypeError(f"`path` must be an AbstractPath, got {type(path).__name__}.")
        if not isinstance(reference, DriftReference):
            raise TypeError(
                f"`reference` must be a DriftReference (see `drift_reference` or "
                f"`DriftMPC.from_path`), got {type(reference).__name__}."
            )
        if reference.length_m != path.length_m or reference.closed != path.closed:
            raise ValueError(
                f"`reference` ({reference.length_m:.3g} m, closed={reference.closed}) is not "
                f"the reference of `path` ({path.length_m:.3g} m, closed={path.closed})."
            )
        grid = check_settings(
            grid_s, max_iterations, tol, torque_rate_max_nmps, wheel_speed, reference_clock
        )
        actuators = Actuators() if actuators is None else actuators
        torque_min, torque_max = torque_box(model, actuators, wheel_speed, ensemble)
        self.problem = DriftProblem(
            model=eqx.filter_vmap(lambda m: m.prepare())(model) if ensemble else model.prepare(),
            path=path,
            reference=reference,
            weights=MPCWeights() if weights is None else weights,
            dt_s=jnp.asarray(grid),
            steer_max_rad=float(actuators.steer_max_rad),
            steer_rate_max_radps=float(actuators.steer_rate_max_radps),
            torque_min_nm=torque_min,
            torque_max_nm=torque_max,
            torque_rate_max_nmps=float(torque_rate_max_nmps),
            ensemble=ensemble,
            reference_clock=reference_clock,
        )
        self.max_iterations = max_iterations
        self.tol = float(tol)
        self.wheel_speed = wheel_speed
        self.lateral_integral_gain = float(lateral_integral_gain)
        self.lateral_integral_limit_m = float(lateral_integral_limit_m)

    @classmethod
    def from_path(
        cls,
        model: SingleTrackModel,
        path: AbstractPath,
        *,
        bridge_m: float = 0.0,
        reference_accel_limit_mps2: float = math.inf,
        actuators: Actuators | None = None,
        ensemble: bool = False,
        wheel_speed: str = "measured",
        weights: MPCWeights | None = None,
        grid_s: Sequence[float] = DEFAULT_GRID_S,
        torque_rate_max_nmps: float = 10000.0,
        max_iterations: int = 8,
        tol: float = 1e-3,
        reference_clock: str = "path",
        lateral_integral_gain: float = 0.0,
        lateral_integral_limit_m: float = 1.0,
    ) -> DriftMPC:
        """The MPC with the model's `drift_reference` along `path` within the input limits
        (for an ensemble, of the particles' mean model); `bridge_m` [m]: the longest stretch
        without a drift equilibrium to interpolate over (0: none);
        `reference_accel_limit_mps2` [m/s²]: the largest |dV/dt| the reference may ask between
        its points (`drift_reference`'s `accel_limit_mps2`; default ∞). Other arguments as
        `DriftMPC`. Raises `NoDriftEquilibriumError` where the model cannot hold the path."""
        options = dict(
            actuators=actuators,
            ensemble=ensemble,
            wheel_speed=wheel_speed,
            weights=weights,
            grid_s=grid_s,
            torque_rate_max_nmps=torque_rate_max_nmps,
            max_iterations=max_iterations,
            tol=tol,
            reference_clock=reference_clock,
            lateral_integral_gain=lateral_integral_gain,
            lateral_integral_limit_m=lateral_integral_limit_m,
        )
        check_mpc_options(
            {"bridge_m": bridge_m, "reference_accel_limit_mps2": reference_accel_limit_mps2}
            | options
        )
        check_model(model, ensemble)
        if not isinstance(path, AbstractPath):
            raise TypeError(f"`path` must be an AbstractPath, got {type(path).__name__}.")
        actuators = Actuators() if actuators is None else actuators
        reference = drift_reference(
            mean_model(model) if ensemble else model,
            path,
            steer_limit_rad=actuators.steer_max_rad,
            torque_limits_nm=torque_box(model, actuators, wheel_speed, ensemble),
            bridge_m=bridge_m,
            accel_limit_mps2=reference_accel_limit_mps2,
        )
        return cls(model, path, reference, **options)

    model = property(lambda self: self.problem.model, doc="The prepared model (or particles).")
    path = property(lambda self: self.problem.path, doc="The path.")
    reference = property(lambda self: self.problem.reference, doc="The `DriftReference`.")
    weights = property(lambda self: self.problem.weights, doc="The `MPCWeights`.")
    dt_s = property(lambda self: self.problem.dt_s, doc="(N,) horizon grid [s].")
    steer_max_rad = property(lambda self: self.problem.steer_max_rad)
    steer_rate_max_radps = property(lambda self: self.problem.steer_rate_max_radps)
    torque_min_nm = property(lambda self: self.problem.torque_min_nm)
    torque_max_nm = property(lambda self: self.problem.torque_max_nm)
    torque_rate_max_nmps = property(lambda self: self.problem.torque_rate_max_nmps)
    ensemble = property(lambda self: self.problem.ensemble)
    reference_clock = property(lambda self: self.problem.reference_clock)
    horizon_steps = property(lambda self: self.problem.horizon_steps)

    def inputs(self, rates: Float[Array, "N 2"], last_command: Float[Array, "2"]):
        """`DriftProblem.inputs`: the plan's inputs (N, 2) of scaled rates."""
        return self.problem.inputs(rates, last_command)

    def linearise(self, rates, x0, last_command):
        """`DriftProblem.linearise`: residuals ρ and ∂ρ/∂z by condensing."""
        return self.problem.linearise(rates, x0, last_command)

    def residuals(self, rates, x0, last_command):
        """`DriftProblem.residuals`: ρ with J = ½ |ρ|²."""
        return self.problem.residuals(rates, x0, last_command)

    def cost(self, rates, x0, last_command):
        """`DriftProblem.cost`: J of a plan given as scaled rates (+inf if not finite)."""
        return self.problem.cost(rates, x0, last_command)

    def violation(self, plan, last_command):
        """`DriftProblem.violation`: largest violation of the boxes by a plan of inputs."""
        return self.problem.violation(plan, last_command)

    def predict(self, x0: Float[ArrayLike, "7"], plan: Float[ArrayLike, "N 2"]):
        """`DriftProblem.predict`: predicted states (N + 1, 7) of a plan of inputs."""
        return self.problem.predict(x0, plan)

    def quasi_steady_wheel_speed(
        self, y: Float[Array, "4"], torque_nm: Float[ArrayLike, ""]
    ) -> Float[Array, ""]:
        """The model's (particles' mean) quasi-steady ω_r [rad/s] at (r, V, β) and τ."""
        model = mean_model(self.model) if self.ensemble else self.model
        return quasi_steady_wheel_speed(model, y, torque_nm)

    def init(
        self,
        measurement: Float[ArrayLike, "7"],
        last_command: Float[ArrayLike, "2"] | None = None,
    ) -> MPCState:
        """Cold start: hold `last_command` (default: the reference's feed-forward input at the
        measured s) over the horizon."""
        measurement = self._check_measurement(measurement)
        if last_command is None:
            last_command = self.reference.at(measurement[6])[1]
        last_command = jnp.asarray(last_command, float)
        if last_command.shape != (2,):
            raise ValueError(
                f"`last_command` must be (δ [rad], τ [N·m]) of shape (2,), got shape "
                f"{last_command.shape}."
            )
        lo, hi = self.problem.bounds()
        return MPCState(
            jnp.clip(last_command, lo, hi),
            jnp.zeros((self.horizon_steps, 2)),
            jnp.asarray(1e-3),
            jnp.zeros(()),
        )

    def _check_measurement(self, measurement):
        measurement = jnp.asarray(measurement, float)
        if measurement.shape != (7,):
            raise ValueError(
                "`measurement` must be the state (r, V, β, ω_r, e, Δφ, s) of shape (7,), got "
                f"shape {measurement.shape}."
            )
        return measurement

    def step(
        self, state: MPCState, measurement: Float[ArrayLike, "7"]
    ) -> tuple[Float[Array, "2"], MPCState, MPCInfo]:
        """One control step: solve from `measurement` = (r [rad/s], V [m/s], β [rad],
        ω_r [rad/s], e [m], Δφ [rad], s [m]) warm-started from `state`.

        Returns the command (δ [rad], τ [N·m]) for the coming control period (the plan's first
        input), the next state (its plan shifted by one step of the grid, `dt_s[0]`: call
        `step` once every `dt_s[0]` seconds) and an `MPCInfo`. Jitted; pure.
        """
        measurement = self._check_measurement(measurement)
        return _step(self, state, measurement)

    def shift(self, plan: Float[Array, "N 2"]) -> Float[Array, "N 2"]:
        """Scaled rates of `plan` advanced by one step dt_s[0] (held at its end), relative to
        its first input (the command just sent)."""
        starts = jnp.cumsum(self.dt_s) - self.dt_s
        idx = jnp.searchsorted(starts, starts + self.dt_s[0], side="right") - 1
        shifted = plan[jnp.clip(idx, 0, plan.shape[0] - 1)]
        prev = jnp.concatenate([plan[:1], shifted[:-1]])
        rates = (shifted - prev) / self.dt_s[:, None] / self.problem.rate_scale()
        return jnp.clip(rates, -1.0, 1.0)


def check_mpc_options(options: Mapping) -> None:
    """Validate keyword options of `DriftMPC.from_path` before any work (`run_drift` calls
    it first): unknown names and invalid settings raise `ValueError` / `TypeError`."""
    params = inspect.signature(DriftMPC.from_path).parameters
    defaults = {n: p.default for n, p in params.items() if p.kind is p.KEYWORD_ONLY}
    check_options(options, defaults)


@eqx.filter_jit
def _step(mpc: DriftMPC, state: MPCState, x0):
    problem = mpc.problem
    if mpc.wheel_speed == "quasi_steady":
        x0 = x0.at[3].set(mpc.quasi_steady_wheel_speed(x0[:4], state.last_command[1]))
    integral, shift = state.lateral_integral, jnp.zeros(())
    if mpc.lateral_integral_gain > 0:  # integral action (module docstring)
        bound = mpc.lateral_integral_limit_m / mpc.lateral_integral_gain
        integral = jnp.clip(integral + x0[4] * mpc.dt_s[0], -bound, bound)
        shift = mpc.lateral_integral_gain * integral
        x0 = x0.at[4].add(shift)
    shape = state.rates.shape
    z_start = state.rates
    u_prev = state.last_command
    sol = solve_box_least_squares(
        lambda z, xs: problem.linearise(z.reshape(shape), x0, u_prev, xs),
        lambda z: problem.cost_and_prediction(z.reshape(shape), x0, u_prev),
        z_start.ravel(),
        damping=state.damping,
        max_iterations=mpc.max_iterations,
        tol=mpc.tol,
    )
    plan = problem.inputs(sol.z.reshape(shape), u_prev)
    predicted = sol.aux[0] if problem.ensemble else sol.aux  # the plan's (first particle's)
    finite = (
        jnp.isfinite(sol.cost)
        & jnp.all(jnp.isfinite(plan))
        & jnp.all(jnp.isfinite(predicted))
        & jnp.all(jnp.isfinite(x0))
    )
    # Fallback: the warm start (the previous plan, shifted), never a non-finite command.
    fallback = problem.inputs(z_start, u_prev)
    fallback = jnp.where(jnp.all(jnp.isfinite(fallback)), fallback, u_prev)
    plan = jnp.where(finite, plan, fallback)
    converged = sol.iterations < mpc.max_iterations
    status = MPCStatus.where(
        finite,
        MPCStatus.where(converged, MPCStatus.converged, MPCStatus.max_iterations),
        MPCStatus.nonfinite_fallback,
    )
    u = plan[0]
    integral = jnp.where(jnp.isfinite(integral), integral, state.lateral_integral)
    new_state = MPCState(u, mpc.shift(plan), jnp.where(finite, sol.damping, 1e-3), integral)
    info = MPCInfo(
        iterations=sol.iterations,
        cost=jnp.where(finite, sol.cost, jnp.inf),
        cost_initial=sol.cost_initial,
        violation=problem.violation(plan, u_prev),
        status=status,
        plan=plan,
        predicted=predicted.at[:, 4].add(-shift),
    )
    return u, new_state, info


__all__ = [
    "DEFAULT_GRID_S",
    "DriftMPC",
    "MPCInfo",
    "MPCState",
    "MPCStatus",
    "check_mpc_options",
    "stack_models",
]
