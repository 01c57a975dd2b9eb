"""Real-time nonlinear MPC that holds the single-track model in a drift along a path.

Problem (Djeumou et al., "Autonomous drifting with 3 minutes of data via learned tire models",
ICRA 2023, Sec. IV; horizon, grid, cost terms and input boxes as in "One model to drift them
all", CoRL 2024, appendix A): predict the model state x = (r, V, β, ω_r, e, Δφ, s)
(`SingleTrackModel.path_vector_field`) over a ≈ 2 s horizon on a non-uniform grid (by default
25 steps of 0.05 s then 5 of 0.15 s) under the inputs u_k = (δ_k [rad], τ_k [N·m]), held over
step k, and minimise

    J = ½ Σ_k h_k [ ((β_k − β_ref(s_k)) / σ_β)² + (e_k / σ_e)² + (Δφ_k / σ_Δφ)²
                    + ((V_k − V_ref(s_k)) / σ_V)² + (δ̇_k / σ_δ̇)² + (τ̇_k / σ_τ̇)² ]

(σ: the tolerated size of each term, Bryson's rule; h_k the step length, so J approximates a
time integral on the non-uniform grid), subject to the boxes |δ̇| ≤ δ̇_max, |τ̇| ≤ τ̇_max,
|δ| ≤ δ_max, τ_min ≤ τ ≤ τ_max. V_ref(s), β_ref(s) come from the quasi-equilibrium reference
`drift_reference` (Goh & Gerdes, IEEE IV 2016); the σ_V term is weak (it fixes the speed along
the path, which β, e and Δφ alone leave free only to first order).

Soft speed floor (off in `MPCWeights()`; `run_drift` turns it on with m_V = 2 m/s). With a
finite m_V the speed residual gains a second slope below V_ref(s) − m_V:

    ρ_V = (V − V_ref) / σ_V + min(V − V_ref + m_V, 0) / σ_floor,   σ_floor = 0.25 m/s,

an asymmetric penalty that is zero (the plain σ_V term) while V stays within m_V below the
reference. Why: with σ_V = 1.5 m/s alone, braking is the optimiser's cheapest way out of an
over-rotated drift (cutting the drive torque lets the rear tyre grip again and β falls), and
it can then ride the car into the low-speed basin where the drift cannot be re-established:
the car stalls (V < 4 m/s). On the plant, with a neural-ExpTanh model identified from
3 minutes, on the donut (R = 11 m, β = 30°), 20-s runs with 8 sensor-noise seeds (10-17)
stalled in 2 of 8 without the floor and in none with m_V = 2 m/s; the nominal model
(quasi-steady wheel speed) held 6 of 6 with it. It is not a default of the controller itself:
with the nominal friction-circle model as its own plant and the measured wheel speed, from a
large perturbation (e = 0.8 m, β + 5°, V + 0.5 m/s; tests/vehicle/test_mpc.py) the floor keeps
the torque up while the model's saturated rear tyre gives no gradient against wheel spin, and
the drift is lost. A stiffer symmetric term (σ_V = 0.5 m/s) destabilises the steady drift,
and m_V = 1 m/s spins the nominal donut out within 2 s (the predicted V dips below the floor
during the steady drift). On a figure-8 the reference β_ref(s) reverses along s, and braking
also slows the progress along s, which stretches the reversal in time (see the reference
clock below); with the floor the nominal model's dip through the crossing stays ≈ 2 m/s (no
stall), but the car then fails to enter the opposite drift (steering saturated, it leaves the
path ≈ 7.6 s in, 0.54 laps).

Reference clock (option `reference_clock`). By default step k is scored against β_ref and V_ref
at its own predicted arc length s_k. Where β_ref varies along s, as through a figure-8's
sideslip reversal, braking then slows the reference down as well as the car, and the optimiser
uses that: it brakes through the reversal. With `reference_clock="time"` step k is scored at
s_0 + V_ref(s_0) t_k, a reference that advances at its own speed whatever the car does. In
experiments on the figure-8 (R = 11 m, β = 30°, a neural-ExpTanh model identified from 3
minutes, the reversal's states and inputs interpolated between the two mirrored drift
equilibria) the car then followed β_ref from −30° through 0 instead of braking early, but still
braked and stalled after the crossing; with the soft speed floor as well it entered the
opposite drift, about 2 s late, and left the path. The figure-8 remains open. A further finding
(nominal friction-circle model, R = 11 m, β = 30°, transition 12 m, m_V = 2 m/s, start 20 m
before the crossing, 9 s): with the model as its own plant integrated by this predictor (ROS2
at 0.05 s) the MPC completes the crossing (max |e| 0.51 m); integrated at 1 ms (RK4) it does
not (the rear wheel locks under braking, or the drift is not re-entered), with the measured or
the quasi-steady wheel speed and with τ ≥ 0. With a 10-ms grid (100 × 0.01 s + 5 × 0.15 s,
control at 100 Hz) it completes it on the finely integrated model too (max |e| 0.56 m, final β
error 1.3°): the coarse steps misrepresent the tyre and wheel transient of the reversal. On the
plant the 10-ms grid still leaves the path (7.1 s, 0.51 laps): there the rear tyre regains grip
at β ≈ 0 and, at full torque and full lock, only accelerates instead of breaking loose again as
the single-track model predicts. Checked since (2026-12-01): it is the plant's load transfer.
Driving straight at 8 m/s with τ = 2500 N·m the plant's rear wheel settles at 9 % slip (the
force peak) and the car accelerates at about 6.4 m/s²: under that acceleration the rear load
rises to m (g a + a_x h) / L ≈ 6.5 kN, and μ_x F_zr R_w ≈ 2.6 kN·m exceeds the torque, so the
tyre cannot be spun; at 3500 N·m the slip runs away (> 6 within 0.2 s). The nominal model (no
load transfer) in quasi-steady mode clamps τ to 0.95 of its static-load traction limit,
1571 N·m, far below what breaks the plant's rear loose. Two further findings: a neural-ExpTanh
model identified from 3 minutes has no equilibrium at the intermediate sideslips of the
reversal on the 11-m circle (none near β = −25°; at τ_max = 3500 N·m, β = −14° needs δ = 1.23
rad), so `drift_reference` refuses the figure-eight for it; with those points bridged by
interpolating (`bridge_m`) the solved equilibria along s (10 % of the lap at 2500 N·m, 22 % at
3500 N·m), the car on the 2500-N·m plant stalls or leaves the path after ≈ 0.56 laps (both
reference clocks); on a 3500-N·m plant the MPC swings the car round with the brakes (rear wheel
locked, β to +43°) and stalls at 0.5 laps, and with the brakes removed from the MPC (τ ≥ 0) it
completes 25 s and 1.4 laps with the time clock, but by driving the path in grip (sideslip RMSE
29°, drifting 20 % of the time), which is not a figure-eight drift.

Decision variables: the input rates, scaled to z = (δ̇/δ̇_max, τ̇/τ̇_max) ∈ [−1, 1]^{N×2}, so the
rate boxes are a plain box; the inputs follow as u_k = clip(u_{k−1} + h_k ż_k, amplitude box)
from the last command u_{−1}: every plan satisfies all the boxes by construction (a saturating
integrator, as the actuator itself is).

Discretisation. The rear wheel-speed mode is stiff (eigenvalue ≈ −C_σ R² / (V cos β I_w),
−150 … −400 1/s): explicit Euler or RK4 at h = 0.05 s would be unstable (|1 + hλ| up to 19).
Each step is the two-stage Rosenbrock–W method ROS2 (Verwer, Spee, Blom & Hundsdorfer, "A
second-order Rosenbrock method applied to photochemical dispersion problems", SIAM J. Sci.
Comput. 20 (1999), eq. 2.3, γ = 1 + 1/√2):

    W k₁ = f(x_k),   W k₂ = f(x_k + h k₁) − 2 k₁,   x_{k+1} = x_k + h (3/2 k₁ + 1/2 k₂),

with W = I − γ h J, J the Jacobian ∂f/∂(r, V, β, ω_r) of the vehicle states at x_k (forward
mode, 4 directions; the path states (e, Δφ, s) are not stiff and are left explicit: zero
columns in J). ROS2 is of order 2 for any matrix in W (a W-method) and, with the exact
Jacobian, L-stable, so two model evaluations, one 4×4 LU factorisation and two solves per
step replace the < 7 ms RK4 substeps that the stiff mode would need. (Treating only the
(ω_r, ω_r) entry implicitly is also stable, but its error at the 0.15-s steps was several times
larger: the fast mode moves V as well as ω_r.) `tests/vehicle/test_mpc.py` checks the
predictor against a 1-ms RK4 rollout.

Solver: projected Gauss–Newton (Levenberg–Marquardt damping) on the box, the sum-of-squares
structure of J giving the Hessian approximation JᵀJ; each subproblem (a box-constrained QP in
2N variables) starts from the clipped Newton step and is polished by accelerated projected
gradient (FISTA, Beck & Teboulle, SIAM J. Imaging Sci. 2 (2009)); the step length comes from
an Armijo backtracking test on the exact cost, the full step first and the shorter trial
lengths (vmapped) only when it fails. A fixed budget
of `max_iterations` Gauss–Newton iterations bounds the solve time. Warm start: the previous
plan shifted by one control period.

Robust variant: with `ensemble=True` the model's arrays carry a leading axis of posterior
particles (`stack_models`) and the tracking terms are averaged over them (vmapped).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from .._model.single_track import SingleTrackModel
from .._plant.actuators import Actuators
from .equilibria import DriftReference, drift_reference
from .paths import AbstractPath

#: Default horizon grid [s] (CoRL 2024, App. A): 25 steps of 0.05 s, then 5 of 0.15 s (2 s).
DEFAULT_GRID_S = (0.05,) * 25 + (0.15,) * 5
#: ROS2's γ (Verwer et al. 1999): 1 + 1/√2, the L-stable choice.
_GAMMA = 1.0 + 1.0 / math.sqrt(2.0)
#: Trial step lengths of the Armijo test, largest first; Armijo constant.
_STEP_LENGTHS = (1.0, 0.5, 0.25, 0.1, 0.03)
_ARMIJO_C = 1e-4
_FISTA_ITERATIONS = 30
#: Horizon steps per loop iteration of the prediction scans (fewer loop trips on a CPU).
_UNROLL = 1

#: Solve status codes reported in `MPCInfo.status`.
STATUS_CONVERGED = 0
STATUS_MAX_ITERATIONS = 1
STATUS_NONFINITE = 2
STATUS_NAMES = ("converged", "max_iterations", "nonfinite_fallback")


def rosenbrock_step(
    model: SingleTrackModel,
    x: Float[Array, "7"],
    u: Float[Array, "2"],
    h: Float[ArrayLike, ""],
    curvature,
) -> Float[Array, "7"]:
    """One ROS2 Rosenbrock step of length h [s] of (r, V, β, ω_r, e, Δφ, s) with u held
    (the module docstring); `curvature` is a callable s ↦ κ(s) [1/m].

    W = I − γ h J is block diagonal, diag(I₄ − γ h J₄₄, I₃) (the path states are explicit), so
    both stages are one 4×4 LU factorisation and two solves on the vehicle states."""
    f = lambda y: model.path_vector_field(0.0, y, u, curvature)
    jac = jax.jacfwd(lambda y: model.vector_field(0.0, y, u))(x[:4])
    lu = jax.scipy.linalg.lu_factor(jnp.eye(4) - _GAMMA * h * jac)
    solve = lambda rhs: jnp.concatenate([jax.scipy.linalg.lu_solve(lu, rhs[:4]), rhs[4:]])
    k1 = solve(f(x))
    k2 = solve(f(x + h * k1) - 2.0 * k1)
    return x + h * (1.5 * k1 + 0.5 * k2)


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
        x = rosenbrock_step(model, x, u, h, curvature)
        return x, x

    inputs = (jnp.asarray(controls, float), jnp.asarray(dt_s, float))
    _, xs = jax.lax.scan(body, x0, inputs, unroll=_UNROLL)
    return jnp.concatenate([x0[None], xs])


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


class MPCWeights(eqx.Module):
    """Tolerated size σ of each cost term (weight 1/σ², Bryson's rule).

    Attributes:
        sideslip_rad: σ_β, 2° of sideslip error.
        lateral_m: σ_e, 0.25 m of lateral error.
        heading_rad: σ_Δφ, 5° of course error against the path tangent.
        speed_mps: σ_V, 1.5 m/s of speed error from the reference (a weak term).
        steer_rate_radps: σ_δ̇, 1 rad/s of steering rate.
        torque_rate_nmps: σ_τ̇, 5000 N·m/s of torque rate.
        speed_floor_margin_mps: m_V, how far V may fall below V_ref(s) before the soft speed
            floor acts; default inf (off; `run_drift` uses 2 m/s, see the module docstring).
        speed_floor_mps: σ_floor, tolerance of the soft speed floor (0.25 m/s): below
            V_ref − m_V the speed residual grows with slope 1/σ_V + 1/σ_floor (module docstring).
    """

    sideslip_rad: float = math.radians(2.0)
    lateral_m: float = 0.25
    heading_rad: float = math.radians(5.0)
    speed_mps: float = 1.5
    steer_rate_radps: float = 1.0
    torque_rate_nmps: float = 5000.0
    speed_floor_margin_mps: float = math.inf
    speed_floor_mps: float = 0.25

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
        ):
            value = getattr(self, name)
            finite = math.isfinite(value) if isinstance(value, int | float) else False
            if name == "speed_floor_margin_mps" and value == math.inf:
                continue  # the soft speed floor switched off (the default)
            if not (isinstance(value, int | float) and finite and value > 0):
                raise ValueError(f"MPCWeights.{name} must be a finite number > 0, got {value!r}.")


class MPCState(eqx.Module):
    """The controller's state between steps.

    Attributes:
        last_command: (δ [rad], τ [N·m]) sent at the previous step.
        rates: (N, 2) scaled input rates ∈ [−1, 1] of the plan to warm-start from.
        damping: Levenberg–Marquardt damping carried over [-].
    """

    last_command: Float[Array, "2"]
    rates: Float[Array, "N 2"]
    damping: Float[Array, ""]


class MPCInfo(eqx.Module):
    """What a solve did.

    Attributes:
        iterations: Gauss–Newton iterations used (≤ `max_iterations`).
        cost: cost J of the returned plan; cost_initial: of the warm start.
        violation: largest violation of the input boxes by the plan (amplitudes [rad, N·m],
            rates [rad/s, N·m/s]); 0 up to rounding, by construction.
        status: `STATUS_CONVERGED`, `STATUS_MAX_ITERATIONS` or `STATUS_NONFINITE` (the
            prediction or the solve was not finite: the shifted previous plan is used).
        plan: (N, 2) inputs (δ, τ) of the plan; predicted: (N + 1, 7) its predicted states
            (of the first particle for an ensemble).
    """

    iterations: Int[Array, ""]
    cost: Float[Array, ""]
    cost_initial: Float[Array, ""]
    violation: Float[Array, ""]
    status: Int[Array, ""]
    plan: Float[Array, "N 2"]
    predicted: Float[Array, "N_plus_1 7"]

    @property
    def failed(self) -> Bool[Array, ""]:
        return self.status == STATUS_NONFINITE


def _mean_model(model: SingleTrackModel) -> SingleTrackModel:
    arrays, static = eqx.partition(model, eqx.is_inexact_array)
    return eqx.combine(jtu.tree_map(lambda a: jnp.mean(a, axis=0), arrays), static)


class DriftMPC(eqx.Module):
    """Drift MPC on a path (module docstring): `init` then `step` once per control period.

    Attributes:
        model: the prepared single-track model (a stack of particles if `ensemble`).
        path: the path; reference: its quasi-equilibrium table.
        weights: cost tolerances; dt_s: (N,) horizon grid [s].
        steer_max_rad, steer_rate_max_radps, torque_min_nm, torque_max_nm,
        torque_rate_max_nmps: the input boxes.
        max_iterations: Gauss–Newton budget per step; tol: relative cost decrease below which
            a solve counts as converged.
        ensemble: whether `model` is a stack of posterior particles.
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
    max_iterations: int = eqx.field(static=True)
    tol: float = eqx.field(static=True)
    ensemble: bool = eqx.field(static=True)
    wheel_speed: str = eqx.field(static=True)
    reference_clock: str = eqx.field(static=True)

    def __init__(
        self,
        model: SingleTrackModel,
        path: AbstractPath,
        *,
        reference: DriftReference | None = None,
        weights: MPCWeights | None = None,
        grid_s: Sequence[float] = DEFAULT_GRID_S,
        actuators: Actuators | None = None,
        torque_rate_max_nmps: float = 10000.0,
        max_iterations: int = 8,
        tol: float = 1e-3,
        ensemble: bool = False,
        wheel_speed: str = "measured",
        reference_clock: str = "path",
        bridge_m: float = 0.0,
    ):
        """
        Args:
            model: a `SingleTrackModel` with any tyre (prepared here), or with `ensemble=True`
                a stack of particles (`stack_models`).
            path: a `Donut`, `FigureEight` or `TabulatedPath`.
            reference: a precomputed `drift_reference(model, path)`; default: computed (with the
                particles' mean model for an ensemble).
            bridge_m: with the computed reference, the longest stretch of path [m] without a
                drift equilibrium to interpolate over (`drift_reference`); 0: none.
            weights: cost tolerances (default `MPCWeights()`).
            grid_s: horizon step lengths [s] (default 25 × 0.05 s + 5 × 0.15 s).
            actuators: amplitude and steering-rate boxes (default `Actuators()`: |δ| ≤ 0.6 rad,
                |δ̇| ≤ 2 rad/s, τ ∈ [−2000, 2500] N·m).
            torque_rate_max_nmps: |τ̇| box [N·m/s] (a design choice: 500 N·m per 0.05 s).
            max_iterations: Gauss–Newton iterations per step (bounds the solve time).
            tol: relative cost decrease that ends a solve early.
            ensemble: `model` is a stack of particles; the cost is averaged over them.
            reference_clock: where along the path step k of the horizon is scored against
                β_ref and V_ref: "path" (default) at its predicted arc length s_k, or "time" at
                s_0 + V_ref(s_0) t_k, a reference that advances at its own speed. On a donut
                the two agree (β_ref, V_ref constant); on a figure-8 see the module docstring.
            wheel_speed: "measured" (use the measured ω_r) or "quasi_steady": replace it by
                the model's quasi-steady wheel speed, the root of ω̇_r = 0 at the measured
                (r, V, β) and the last torque. The wheel mode is fast (time constant
                |1/λ| ≈ 3-7 ms against a 50 ms control period), so this is its
                singular-perturbation reduction (Kokotović, Khalil & O'Reilly, "Singular
                Perturbation Methods in Control", 1986, ch. 1); use it with an un-identified
                nominal model, whose slip-to-force map is the least reliable part: the
                measured ω_r of the plant can then sit where the model's tyre saturates.
                The torque box is then also capped at 95% of the model's traction limit
                F_max(F_zr) R / k_τ, where the quasi-steady wheel speed ceases to exist.
        """
        if not isinstance(model, SingleTrackModel):
            raise TypeError(f"`model` must be a SingleTrackModel, got {type(model).__name__}.")
        if not isinstance(path, AbstractPath):
            raise TypeError(f"`path` must be an AbstractPath, got {type(path).__name__}.")
        grid = np.asarray(grid_s, float)
        if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise ValueError(f"`grid_s` must be >= 2 finite step lengths > 0 [s], got {grid_s!r}.")
        if not (isinstance(max_iterations, int) and max_iterations >= 1):
            raise ValueError(f"`max_iterations` must be an int >= 1, got {max_iterations!r}.")
        if not (math.isfinite(tol) and tol > 0):
            raise ValueError(f"`tol` must be finite and > 0, got {tol!r}.")
        if not (math.isfinite(torque_rate_max_nmps) and torque_rate_max_nmps > 0):
            raise ValueError(
                f"`torque_rate_max_nmps` must be finite and > 0 [N·m/s], got "
                f"{torque_rate_max_nmps!r}."
            )
        leading = {jnp.shape(a)[:1] for a in jtu.tree_leaves(eqx.filter(model, eqx.is_array))}
        if ensemble and (len(leading) != 1 or leading == {()}):
            raise ValueError(
                "`ensemble=True` needs a model whose arrays all have one leading particle axis "
                f"(see `stack_models`), got leading shapes {sorted(leading)}."
            )
        if not ensemble and any(jnp.ndim(a) > 0 for a in jtu.tree_leaves(model.params)):
            raise ValueError(
                "`model` has batched vehicle parameters; pass `ensemble=True` for a stack of "
                "posterior particles."
            )
        actuators = Actuators() if actuators is None else actuators
        if reference_clock not in ("path", "time"):
            raise ValueError(
                f"`reference_clock` must be 'path' or 'time', got {reference_clock!r}."
            )
        if wheel_speed not in ("measured", "quasi_steady"):
            raise ValueError(
                f"`wheel_speed` must be 'measured' or 'quasi_steady', got {wheel_speed!r}."
            )
        torque_min, torque_max = float(actuators.torque_min_nm), float(actuators.torque_max_nm)
        if wheel_speed == "quasi_steady":
            # A quasi-steady wheel speed exists only while the drive torque stays below what
            # the model's rear tyre can transmit, k_τ τ < F_max(F_zr) R; beyond it the model's
            # wheel spins up without bound and its torque gradient vanishes. Keep 5% margin.
            m0 = _mean_model(model) if ensemble else model
            fz_rear = m0.params.normal_loads()[1]
            traction = float(m0.rear.force_bound(fz_rear)) * float(m0.params.wheel_radius_m)
            limit = 0.95 * traction / float(m0.params.torque_gain)
            torque_max = min(torque_max, limit)
        self.model = eqx.filter_vmap(lambda m: m.prepare())(model) if ensemble else model.prepare()
        self.path = path
        if reference is None:
            reference = drift_reference(
                _mean_model(model) if ensemble else model,
                path,
                steer_limit_rad=actuators.steer_max_rad,
                torque_limits_nm=(torque_min, torque_max),
                bridge_m=bridge_m,
            )
        self.reference = reference
        self.weights = MPCWeights() if weights is None else weights
        self.dt_s = jnp.asarray(grid)
        self.steer_max_rad = float(actuators.steer_max_rad)
        self.steer_rate_max_radps = float(actuators.steer_rate_max_radps)
        self.torque_min_nm = torque_min
        self.torque_max_nm = torque_max
        self.torque_rate_max_nmps = float(torque_rate_max_nmps)
        self.max_iterations = max_iterations
        self.tol = float(tol)
        self.ensemble = ensemble
        self.wheel_speed = wheel_speed
        self.reference_clock = reference_clock

    def quasi_steady_wheel_speed(
        self, y: Float[Array, "4"], torque_nm: Float[ArrayLike, ""]
    ) -> Float[Array, ""]:
        """ω_r [rad/s] with ω̇_r = 0 at (r, V, β) of y and torque τ (bisection in the slip
        σ ∈ [−0.9, 4]; the end nearer a root if ω̇_r does not change sign there)."""
        model = _mean_model(self.model) if self.ensemble else self.model
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

    # -- pieces of the problem ----------------------------------------------------------------

    @property
    def horizon_steps(self) -> int:
        return int(self.dt_s.shape[0])

    def _rate_scale(self):
        return jnp.asarray([self.steer_rate_max_radps, self.torque_rate_max_nmps])

    def _bounds(self):
        lo = jnp.asarray([-self.steer_max_rad, self.torque_min_nm])
        hi = jnp.asarray([self.steer_max_rad, self.torque_max_nm])
        return lo, hi

    def _inputs_and_sensitivity(self, rates, last_command):
        """u_k = clip(u_{k−1} + h_k ż_k) and du_k/dz (N, 2, 2N) (zero where clipped)."""
        lo, hi = self._bounds()
        n = self.horizon_steps
        scale = self._rate_scale()

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
        return self._inputs_and_sensitivity(rates, last_command)[0]

    def _reference_arc_lengths(self, x0):
        """s_0 + V_ref(s_0) t_k [m] for each horizon step k: where the "time" clock scores it
        against β_ref and V_ref (the "path" clock ignores these and uses the predicted s_k)."""
        t_end = jnp.cumsum(self.dt_s)
        v0 = self.reference.at(x0[6])[0][1]
        return x0[6] + v0 * t_end

    def _step_residual(self, x, h, s_ref=None):
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

    def _tracking_linearised(self, model, x0, us, dus):
        """Tracking residuals (N, 4) and their Jacobian (N, 4, 2N) by condensing, in one pass
        along the horizon: each ROS2 step returns its value with its Jacobians A_k = ∂x_{k+1}/∂x_k,
        B_k = ∂x_{k+1}/∂u_k (forward mode, 9 directions), and the sensitivity of the state to
        the scaled rates follows as S_{k+1} = A_k S_k + B_k du_k/dz."""
        curv = self.path.curvature

        def step(x, u, h):
            y = rosenbrock_step(model, x, u, h, curv)
            return y, y

        def body(carry, uhd):
            x, sens = carry
            u, h, du = uhd
            (a, b), y = jax.jacfwd(step, argnums=(0, 1), has_aux=True)(x, u, h)
            sens = a @ sens + b @ du
            return (y, sens), (y, sens)

        start = (x0, jnp.zeros((7, dus.shape[-1])))
        _, (xs, sens) = jax.lax.scan(body, start, (us, self.dt_s, dus), unroll=_UNROLL)
        s_ref = self._reference_arc_lengths(x0)
        res = jax.vmap(self._step_residual)(xs, self.dt_s, s_ref)
        dres = jax.vmap(jax.jacfwd(self._step_residual))(xs, self.dt_s, s_ref)
        return res, jnp.einsum("kij,kjm->kim", dres, sens), jnp.concatenate([x0[None], xs])

    def linearise(
        self, rates: Float[Array, "N 2"], x0: Float[Array, "7"], last_command: Float[Array, "2"]
    ) -> tuple[Float[Array, " M"], Float[Array, "M N2"]]:
        """Residual vector ρ (as `residuals`) and its Jacobian ∂ρ/∂z (M, 2N) by condensing."""
        us, dus = self._inputs_and_sensitivity(rates, last_command)
        if self.ensemble:
            res, jac, _ = eqx.filter_vmap(lambda m: self._tracking_linearised(m, x0, us, dus))(
                self.model
            )
            p = res.shape[0]
            res, jac = res / jnp.sqrt(p), jac / jnp.sqrt(p)
        else:
            res, jac, _ = self._tracking_linearised(self.model, x0, us, dus)
        lo, hi = self._bounds()
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

    def _effort_scale(self):
        return jnp.asarray([self.weights.steer_rate_radps, self.weights.torque_rate_nmps])

    def _tracking(self, model, x0, us):
        xs = predict(model, x0, us, self.dt_s, self.path.curvature)
        s_ref = self._reference_arc_lengths(x0)
        return jax.vmap(self._step_residual)(xs[1:], self.dt_s, s_ref), xs

    def residuals(
        self, rates: Float[Array, "N 2"], x0: Float[Array, "7"], last_command: Float[Array, "2"]
    ) -> Float[Array, " M"]:
        """Residual vector ρ with J = ½ |ρ|² (module docstring): the tracking terms (N, 4)
        (per particle for an ensemble, scaled by 1/√P), then the rate terms (N, 2)."""
        us = self.inputs(rates, last_command)
        if self.ensemble:
            track = eqx.filter_vmap(lambda m: self._tracking(m, x0, us)[0])(self.model)
            track = track / jnp.sqrt(track.shape[0])
        else:
            track = self._tracking(self.model, x0, us)[0]
        lo, hi = self._bounds()
        du = jnp.diff(jnp.concatenate([jnp.clip(last_command, lo, hi)[None], us]), axis=0)
        effort = du / (jnp.sqrt(self.dt_s)[:, None] * self._effort_scale())
        return jnp.concatenate([track.ravel(), effort.ravel()])

    def cost(
        self, rates: Float[Array, "N 2"], x0: Float[Array, "7"], last_command: Float[Array, "2"]
    ) -> Float[Array, ""]:
        """J of a plan given as scaled rates; +inf where the prediction is not finite."""
        rho = self.residuals(rates, x0, last_command)
        value = 0.5 * jnp.sum(rho**2)
        return jnp.where(jnp.isfinite(value), value, jnp.inf)

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

    # -- init / step --------------------------------------------------------------------------

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
        lo = jnp.asarray([-self.steer_max_rad, self.torque_min_nm])
        hi = jnp.asarray([self.steer_max_rad, self.torque_max_nm])
        return MPCState(
            jnp.clip(last_command, lo, hi),
            jnp.zeros((self.horizon_steps, 2)),
            jnp.asarray(1e-3),
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
        return jnp.clip((shifted - prev) / self.dt_s[:, None] / self._rate_scale(), -1.0, 1.0)


def _box_qp(h, g, lo, hi, d0):
    """min ½ dᵀ H d + gᵀ d on lo ≤ d ≤ hi by FISTA from d0 (step 1 / Gershgorin bound)."""
    lip = jnp.max(jnp.sum(jnp.abs(h), axis=1))

    def body(_, carry):
        d, y, t = carry
        d_new = jnp.clip(y - (h @ y + g) / lip, lo, hi)
        t_new = 0.5 * (1 + jnp.sqrt(1 + 4 * t**2))
        y = d_new + (t - 1) / t_new * (d_new - d)
        return d_new, y, t_new

    d, _, _ = jax.lax.fori_loop(0, _FISTA_ITERATIONS, body, (d0, d0, jnp.asarray(1.0)))
    return d


@eqx.filter_jit
def _step(mpc: DriftMPC, state: MPCState, x0):
    if mpc.wheel_speed == "quasi_steady":
        x0 = x0.at[3].set(mpc.quasi_steady_wheel_speed(x0[:4], state.last_command[1]))
    shape = state.rates.shape
    z_start = state.rates
    u_prev = state.last_command
    cost_fn = lambda z: mpc.cost(z.reshape(shape), x0, u_prev)
    alphas = jnp.asarray(_STEP_LENGTHS)

    def cond(carry):
        return (carry[3] < mpc.max_iterations) & ~carry[4]

    def body(carry):
        z, _, mu, it, _, c0 = carry
        # The linearisation at z also gives the cost there (J = ½ |ρ|²).
        rho, jac = mpc.linearise(z.reshape(shape), x0, u_prev)
        c = 0.5 * jnp.sum(rho**2)
        c0 = jnp.where(it == 0, c, c0)
        ok = jnp.isfinite(c) & jnp.all(jnp.isfinite(jac))
        rho = jnp.where(ok, rho, 0.0)
        jac = jnp.where(ok, jac, 0.0)
        g = jac.T @ rho
        hess = jac.T @ jac
        diag = jnp.diag(hess) + 1e-9
        h_damped = hess + mu * jnp.diag(diag)
        lo, hi = -1.0 - z, 1.0 - z
        newton = -jax.scipy.linalg.solve(h_damped, g, assume_a="pos")
        newton = jnp.where(jnp.all(jnp.isfinite(newton)), newton, -g / jnp.max(diag))
        d = _box_qp(h_damped, g, lo, hi, jnp.clip(newton, lo, hi))
        slope = g @ d
        # Armijo backtracking: the full step first (accepted in most iterations), the shorter
        # trial lengths only if it fails, all of them at once (vmapped).
        full = cost_fn(z + d)
        shorter = jax.lax.cond(
            full <= c + _ARMIJO_C * slope,
            lambda: jnp.full(alphas.shape[0] - 1, jnp.inf),
            lambda: jax.vmap(lambda a: cost_fn(z + a * d))(alphas[1:]),
        )
        trial = jnp.concatenate([full[None], shorter])
        armijo = trial <= c + _ARMIJO_C * alphas * slope
        accept = ok & jnp.any(armijo) & (slope < 0)
        first = jnp.argmax(armijo)
        c_new = jnp.where(accept, trial[first], jnp.where(ok, c, jnp.inf))
        z_new = jnp.where(accept, z + alphas[first] * d, z)
        mu_new = jnp.where(accept, jnp.maximum(mu / 3.0, 1e-8), mu * 10.0)
        small = (c - c_new) <= mpc.tol * jnp.maximum(c, 1e-12)
        done = (accept & small) | (mu_new > 1e6) | ~ok
        return z_new, c_new, mu_new, it + 1, done, c0

    inf = jnp.asarray(jnp.inf)
    z, c, mu, iterations, _, c0 = jax.lax.while_loop(
        cond,
        body,
        (z_start.ravel(), inf, jnp.clip(state.damping, 1e-8, 1e2), jnp.asarray(0), False, inf),
    )
    rates = z.reshape(shape)
    plan = mpc.inputs(rates, u_prev)
    model0 = jtu.tree_map(lambda a: a[0], mpc.model) if mpc.ensemble else mpc.model
    predicted = predict(model0, x0, plan, mpc.dt_s, mpc.path.curvature)
    finite = (
        jnp.isfinite(c)
        & jnp.all(jnp.isfinite(plan))
        & jnp.all(jnp.isfinite(predicted))
        & jnp.all(jnp.isfinite(x0))
    )
    # Fallback: the warm start (the previous plan, shifted), never a non-finite command.
    fallback = mpc.inputs(z_start, u_prev)
    fallback = jnp.where(jnp.all(jnp.isfinite(fallback)), fallback, u_prev)
    plan = jnp.where(finite, plan, fallback)
    converged = iterations < mpc.max_iterations
    status = jnp.where(
        finite, jnp.where(converged, STATUS_CONVERGED, STATUS_MAX_ITERATIONS), STATUS_NONFINITE
    )
    u = plan[0]
    new_state = MPCState(u, mpc.shift(plan), jnp.where(finite, mu, 1e-3))
    info = MPCInfo(
        iterations=iterations,
        cost=jnp.where(finite, c, jnp.inf),
        cost_initial=c0,
        violation=mpc.violation(plan, u_prev),
        status=status.astype(int),
        plan=plan,
        predicted=predicted,
    )
    return u, new_state, info


__all__ = [
    "DEFAULT_GRID_S",
    "STATUS_NAMES",
    "DriftMPC",
    "MPCInfo",
    "MPCState",
    "MPCWeights",
    "predict",
    "rosenbrock_step",
    "stack_models",
]
