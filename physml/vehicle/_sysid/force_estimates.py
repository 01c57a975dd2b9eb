"""Axle forces estimated from a driving log, and tyre models fitted to them (initialisation).

The single-track equations (Djeumou et al., CoRL 2024, A.1) written in body axes are linear in
the axle forces, so smoothed measured states and their derivatives give them sample by sample,
with the front brake force F_xf = T_f(τ) / R of the input (`VehicleParams.axle_torques`; 0
without a front brake share, as in A.1; the model's cap at the front tyre's force bound is
left out):

    a_x = V̇ cos β − V (β̇ + r) sin β,   a_y = V̇ sin β + V (β̇ + r) cos β     [m/s²]
    m a_y = G + F_yr,   I_z ṙ = a G − b F_yr,   G = F_yf cos δ + F_xf sin δ,
    m a_x = F_xr + F_xf cos δ − F_yf sin δ
 ⇒ G = (I_z ṙ + b m a_y) / (a + b),  F_yf = (G − F_xf sin δ) / cos δ,  F_yr = m a_y − G,
    F_xr = m a_x − F_xf cos δ + F_yf sin δ                                       [N]

(states smoothed and differentiated by a Savitzky–Golay filter, cubic, 0.15 s window;
Savitzky & Golay, Anal. Chem. 36 (1964) 1627). Each tyre is then fitted to these force points
against the model's slips by a robust (soft-L1) nonlinear least-squares fit, from the tyre's
own starts, within its own bounds, on the part of it that it says is fitted
(`AbstractTireModel.fit_starts`, `fit_bounds`, `fitted_to_forces`). This is an initialisation
only: the estimates lump the plant's load transfer, drag and combined-slip effects into the
axle forces, and `identify` refines the tyres on the rollout loss.

Where the drive input τ is a command with an unknown affine map E(τ) = k_τ τ + τ_0 (CoRL 2024,
A.1), the front brake force is unknown too, so the map is fitted from the estimates made
without it: F_xr⁰ = m a_x + G tan δ = F_xr + F_xf / cos δ, and with the rear wheel's equation
I_w ω̇_r = T_r − R F_xr,

    y = I_w ω̇_r + R F_xr⁰ = T_r + T_f / cos δ
      = E(τ) for E ≥ 0,  E(τ) (1 − b_f + b_f / cos δ) for E < 0,

linear in (k_τ, τ_0): least squares of y against (τ, 1) with the brake rows scaled, the brake
rows taken by the sign of τ and then by the sign of the fitted E (`fit_drive_map`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy.optimize import least_squares
from scipy.signal import savgol_filter

from .._data.log import DriveLog
from .._model.params import VehicleParams
from .._model.single_track import SingleTrackModel
from .._tires.base import AbstractTireModel, FitBounds
from .._tires.fiala import Fiala

#: Savitzky–Golay window [samples at 100 Hz] and polynomial order of the state smoother.
SMOOTH_WINDOW = 15
SMOOTH_ORDER = 3
#: Samples within this many steps of a flagged sample are not used (derivatives across a reset).
_GUARD = 15


@dataclasses.dataclass(frozen=True)
class ForceEstimates:
    """Slips and axle forces per unit normal load, on the usable samples.

    Attributes: alpha_f, alpha_r [rad], sigma_r [-], fy_f, fy_r, fx_r [-] (force / F_z), all
    shape (n,); normal_loads (F_zf, F_zr) [N], each shape (n,): the loads under each sample's
    drive input (`VehicleParams.normal_loads`); index: (n,) the samples of the log used;
    wheel_torque: (n,) the torque on the rear wheels, I_w ω̇_r + R F_xr [N m] (T_r).
    """

    alpha_f: np.ndarray
    alpha_r: np.ndarray
    sigma_r: np.ndarray
    fy_f: np.ndarray
    fy_r: np.ndarray
    fx_r: np.ndarray
    normal_loads: tuple[np.ndarray, np.ndarray]
    index: np.ndarray
    wheel_torque: np.ndarray | None = None


def axle_force_estimates(
    log: DriveLog, params: VehicleParams, *, max_samples: int = 2000
) -> ForceEstimates:
    """Axle forces from a log by inverse dynamics (module docstring); at most `max_samples`
    evenly spaced usable samples (away from flagged ones)."""
    if not isinstance(log, DriveLog):
        raise TypeError(f"`log` must be a DriveLog, got {type(log).__name__}.")
    dt = float(np.median(np.diff(log.time_s)))
    if log.n_samples < 4 * SMOOTH_WINDOW:
        raise ValueError(
            f"need at least {4 * SMOOTH_WINDOW} samples to estimate forces, got {log.n_samples}."
        )
    y = np.asarray(log.state, float)
    ys = savgol_filter(y, SMOOTH_WINDOW, SMOOTH_ORDER, axis=0)
    yd = savgol_filter(y, SMOOTH_WINDOW, SMOOTH_ORDER, deriv=1, delta=dt, axis=0)
    r, v, beta = ys[:, 0], ys[:, 1], ys[:, 2]
    r_dot, v_dot, beta_dot = yd[:, 0], yd[:, 1], yd[:, 2]
    delta = np.asarray(log.control, float)[:, 0]
    m, iz = float(params.mass_kg), float(params.yaw_inertia_kgm2)
    a, b = float(params.a_m), float(params.b_m)
    a_x = v_dot * np.cos(beta) - v * (beta_dot + r) * np.sin(beta)
    a_y = v_dot * np.sin(beta) + v * (beta_dot + r) * np.cos(beta)
    wheel_torque = float(params.wheel_inertia_kgm2) * yd[:, 3]
    t_front = np.asarray(params.axle_torques(jnp.asarray(log.control[:, 1], float))[0], float)
    fx_f = t_front / float(params.wheel_radius_m)
    g = (iz * r_dot + b * m * a_y) / (a + b)
    fy_f = (g - fx_f * np.sin(delta)) / np.cos(delta)
    fy_r = m * a_y - g
    fx_r = m * a_x - fx_f * np.cos(delta) + fy_f * np.sin(delta)
    model = SingleTrackModel(params, Fiala(), Fiala())
    slips = jax.jit(jax.vmap(model.slips))(jnp.asarray(ys), jnp.asarray(log.control, float))
    alpha_f, alpha_r, sigma_r = (np.asarray(s) for s in slips)
    bad = np.convolve((np.asarray(log.flags) != 0).astype(float), np.ones(2 * _GUARD + 1), "same")
    keep = np.flatnonzero(bad == 0)
    keep = keep[(keep >= SMOOTH_WINDOW) & (keep < log.n_samples - SMOOTH_WINDOW)]
    if keep.size < 100:
        raise ValueError(f"only {keep.size} usable (unflagged) samples; need >= 100.")
    keep = keep[np.linspace(0, keep.size - 1, min(max_samples, keep.size)).astype(int)]
    tau = np.asarray(log.control, float)[keep, 1]
    fz_f, fz_r = (np.asarray(x, float) for x in params.normal_loads(jnp.asarray(tau)))
    return ForceEstimates(
        alpha_f[keep],
        alpha_r[keep],
        sigma_r[keep],
        fy_f[keep] / fz_f,
        fy_r[keep] / fz_r,
        fx_r[keep] / fz_r,
        (fz_f, fz_r),
        keep,
        wheel_torque[keep] + fx_r[keep] * float(params.wheel_radius_m),
    )


def fit_drive_map(log: DriveLog, params: VehicleParams) -> VehicleParams:
    """`params` with the drive map E(τ) = k_τ τ + τ_0 fitted by least squares to the wheel
    torques estimated from `log`, the front brake share b_f of `params` included (module
    docstring): a start for
    `identify` where τ is a command (`params.torque_offset_nm` not None). Raises `ValueError`
    if `params` has no offset, or if the log does not give a positive gain k_τ (τ barely
    varies, or does not drive the wheel)."""
    if not isinstance(params, VehicleParams) or params.torque_offset_nm is None:
        raise ValueError(
            "`params` must be VehicleParams with a drive-map offset (torque_offset_nm not None), "
            f"got {params!r:.80}."
        )
    # Estimates without the (unknown) front brake force: wheel_torque = T_r + T_f / cos δ.
    est = axle_force_estimates(log, dataclasses.replace(params, brake_split_front=0.0))
    tau, delta = (np.asarray(log.control, float)[est.index, k] for k in (1, 0))
    split = float(params.brake_split_front)
    brake_scale = 1.0 - split + split / np.cos(delta)
    braking = tau < 0
    for _ in range(2):  # brake rows by the sign of τ, then by the sign of the fitted E(τ)
        scale = np.where(braking, brake_scale, 1.0)
        design = scale[:, None] * np.stack([tau, np.ones_like(tau)], axis=-1)
        (gain, offset), *_ = np.linalg.lstsq(design, est.wheel_torque, rcond=None)
        braking = gain * tau + offset < 0
    if not (np.isfinite(gain) and gain > 0):
        raise ValueError(
            f"the log gives a drive-map gain k_τ = {gain!r} (least squares of the wheel torque "
            f"on τ over {tau.size} samples, τ in [{tau.min():.3g}, {tau.max():.3g}]); expected "
            "> 0: the drive input must vary and drive the rear wheels."
        )
    return dataclasses.replace(params, torque_gain=gain, torque_offset_nm=offset)


def _least_squares(
    residual: Callable[[AbstractTireModel], jax.Array],
    starts: tuple[AbstractTireModel, ...],
    fields: FitBounds | None,
    f_scale: float,
) -> AbstractTireModel:
    """Robust least squares of `residual(tire)` in the bounded `fields` of the tyre (None: all
    its inexact arrays, unbounded); the best fit over `starts` (tyres of one class)."""
    first = starts[0]
    if fields is None:
        get = lambda t: eqx.filter(t, eqx.is_inexact_array)
        lo = hi = None
    else:
        get = lambda t: [getattr(t, f) for f in fields]
        lo, hi = (np.array([b[k] for b in fields.values()], float) for k in (0, 1))
    x0, unravel = ravel_pytree(get(first))

    def tire_of(start, x):
        if fields is None:
            return eqx.combine(unravel(x), eqx.filter(start, eqx.is_inexact_array, inverse=True))
        return eqx.tree_at(get, start, unravel(x))

    res = eqx.filter_jit(lambda x, start: residual(tire_of(start, x)))
    try:  # forward mode for the few parameters (a diffrax solve has none: finite differences)
        jfn = eqx.filter_jit(jax.jacfwd(lambda x, start: residual(tire_of(start, x))))
        jfn(x0, first)
        jac = lambda x, start: np.asarray(jfn(jnp.asarray(x), start))
    except TypeError:
        jac = "2-point"
    best, best_cost = first, np.inf
    for start in starts:
        x_start = np.asarray(ravel_pytree(get(start))[0])
        if lo is not None:
            x_start = np.clip(x_start, lo + 1e-9, hi - 1e-9)
        try:
            out = least_squares(
                lambda x, start=start: np.asarray(res(jnp.asarray(x), start)),
                x_start,
                jac=jac if jac == "2-point" else (lambda x, start=start: jac(x, start)),
                bounds=(-np.inf, np.inf) if lo is None else (lo, hi),
                loss="soft_l1",
                f_scale=f_scale,
                max_nfev=100,
            )
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(out.cost) and out.cost < best_cost:
            best, best_cost = tire_of(start, jnp.asarray(out.x)), out.cost
    return best


def fit_tires_to_forces(
    front: AbstractTireModel,
    rear: AbstractTireModel,
    est: ForceEstimates,
    *,
    f_scale: float = 0.1,
) -> tuple[AbstractTireModel, AbstractTireModel]:
    """`front.lateral` fitted to (α_f, F_yf) and `rear.combined` to (α_r, σ_r, F_yr, F_xr), per
    unit load, by soft-L1 least squares (residual scale `f_scale` [force / F_z]).

    Each tyre says what is fitted and from where (`AbstractTireModel.fitted_to_forces`,
    `fit_starts`, `fit_bounds`): e.g. Fiala from a grid of starts, neural-ExpTanh in its base
    curve (its feature network stays neutral), the MLP not at all. Forces are evaluated at
    zero state features.
    """
    for name, tire in (("front", front), ("rear", rear)):
        if not isinstance(tire, AbstractTireModel):
            raise TypeError(f"`{name}` must be a tyre model, got {type(tire).__name__}.")
    if not isinstance(est, ForceEstimates):
        raise TypeError(
            f"`est` must be the ForceEstimates of `axle_force_estimates`, got {type(est).__name__}."
        )
    zeros = jnp.zeros(4)
    a_f, a_r, s_r = (jnp.asarray(x) for x in (est.alpha_f, est.alpha_r, est.sigma_r))
    fy_f, fy_r, fx_r = (jnp.asarray(x) for x in (est.fy_f, est.fy_r, est.fx_r))

    def res_front(t):
        t = t.prepare()
        return jax.vmap(lambda a: t.lateral(a, 1.0, zeros))(a_f) - fy_f

    def res_rear(t):
        t = t.prepare()
        fy, fx = jax.vmap(lambda a, s: t.combined(a, s, 1.0, zeros))(a_r, s_r)
        return jnp.concatenate([fy - fy_r, fx - fx_r])

    def fit(residual, combined):
        return lambda t: _least_squares(
            residual, t.fit_starts(combined=combined), t.fit_bounds(), f_scale
        )

    front = front.fitted_to_forces(fit(res_front, False))
    rear = rear.fitted_to_forces(fit(res_rear, True))
    return front, rear
