"""Drift MPC solve time: the JAX solver of `DriftMPC` against CasADi + IPOPT on the same problem.

The same optimal-control problem both ways: the nominal model (plant's mass, inertias and
geometry, Fiala tyres with the friction-circle coupling), a donut of R = 11 m at β = 30°, the
2-s horizon of 25 × 0.05 s + 5 × 0.15 s, the ROS2 Rosenbrock discretisation with the exact 4×4
Jacobian (`DriftMPC`), the same cost and the same amplitude and rate boxes. CasADi
gets it in multiple-shooting form (states and inputs as variables, the ROS2 map as equality
constraints, the rate boxes as linear inequalities) with IPOPT's exact Hessian; the JAX solver
runs its projected Gauss–Newton on the input rates. Both solutions are scored with the same
JAX cost function (`DriftMPC.cost`).

Problems: the states of a 2-s closed loop of the MPC on the model itself from a perturbed drift
(e = 0.6 m, β 4° off, V 0.5 m/s off). JAX is timed warm (its shifted previous plan, as in
closed loop) and cold (holding the last command); IPOPT cold from the same hold-the-last-command
guess. Run: `python benchmarks/drift_mpc.py [--problems 40] [--out FILE]`; prints a JSON
summary (and writes it to FILE) with the machine load (`uptime`), since the timings depend on it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import casadi as ca  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from physml.kernels import ROS2_GAMMA, rollout  # noqa: E402
from physml.vehicle import (  # noqa: E402
    Donut,
    DriftMPC,
    DriftPlant,
    Fiala,
    SingleTrackModel,
    params_from_plant,
)


def _soft_floor(x, floor):
    return floor * ca.log(ca.exp(x / floor) + np.e)


def _brush(z, stiffness, f_max):
    z_sl = 3.0 * f_max / stiffness
    zc = ca.fmin(ca.fmax(z, -z_sl), z_sl)
    return (
        -stiffness * zc
        + stiffness**2 / (3.0 * f_max) * ca.fabs(zc) * zc
        - stiffness**3 / (27.0 * f_max**2) * zc**3
    )


def casadi_vector_field(model: SingleTrackModel, kappa: float):
    """The single-track model with Fiala (friction-circle) tyres and the path states, in CasADi:
    the same equations as `SingleTrackModel.path_vector_field` (CoRL 2024, A.1)."""
    p = model.params
    m, iz, iw = float(p.mass_kg), float(p.yaw_inertia_kgm2), float(p.wheel_inertia_kgm2)
    radius, a, b, g = float(p.wheel_radius_m), float(p.a_m), float(p.b_m), float(p.gravity_mps2)
    gain = float(p.torque_gain)
    fz_f, fz_r = m * g * b / (a + b), m * g * a / (a + b)
    tf, tr = model.front, model.rear
    floor = model.speed_floor_mps
    x = ca.SX.sym("x", 7)
    u = ca.SX.sym("u", 2)
    r, v, beta, omega, e, dphi = x[0], x[1], x[2], x[3], x[4], x[5]
    delta, tau = u[0], u[1]
    vx = _soft_floor(v * ca.cos(beta), floor)
    vy = v * ca.sin(beta)
    alpha_f = ca.atan((vy + a * r) / vx) - delta
    alpha_r = ca.atan((vy - b * r) / vx)
    sigma = (radius * omega - v * ca.cos(beta)) / vx
    f_yf = _brush(ca.tan(alpha_f), abs(float(tf.c_alpha)) * fz_f, abs(float(tf.mu)) * fz_f)
    mu_fz = abs(float(tr.mu)) * fz_r
    f_xr = _brush(-sigma, abs(float(tr.c_sigma)) * fz_r, mu_fz)
    f_xr = ca.fmin(ca.fmax(f_xr, -(1 - 1e-3) * mu_fz), (1 - 1e-3) * mu_fz)
    f_yr = _brush(ca.tan(alpha_r), abs(float(tr.c_alpha)) * fz_r, ca.sqrt(mu_fz**2 - f_xr**2))
    db = delta - beta
    r_dot = (a * f_yf * ca.cos(delta) - b * f_yr) / iz
    v_dot = (-f_yf * ca.sin(db) + f_yr * ca.sin(beta) + f_xr * ca.cos(beta)) / m
    beta_dot = (f_yf * ca.cos(db) + f_yr * ca.cos(beta) - f_xr * ca.sin(beta)) / (
        m * _soft_floor(v, floor)
    ) - r
    omega_dot = (gain * tau - f_xr * radius) / iw
    s_dot = v * ca.cos(dphi) / ca.fmax(1.0 - e * kappa, 0.05)
    dyn = ca.vertcat(r_dot, v_dot, beta_dot, omega_dot)
    full = ca.vertcat(dyn, v * ca.sin(dphi), beta_dot + r - kappa * s_dot, s_dot)
    return ca.Function("f", [x, u], [full]), ca.Function("dyn", [x, u], [dyn]), x, u


def casadi_ros2(model, kappa):
    """x_{k+1} = ROS2(x_k, u_k, h) with W = I − γ h J(vehicle states), as the MPC's predictor
    (`physml.kernels.ros2_step` on the stiff block (r, V, β, ω_r))."""
    f, dyn, x, u = casadi_vector_field(model, kappa)
    h = ca.SX.sym("h")
    jac = ca.jacobian(dyn(x, u), x[:4])
    w = ca.SX.eye(7)
    w[:4, :4] = w[:4, :4] - ROS2_GAMMA * h * jac
    k1 = ca.solve(w, f(x, u))
    k2 = ca.solve(w, f(x + h * k1, u) - 2 * k1)
    return ca.Function("ros2", [x, u, h], [x + h * (1.5 * k1 + 0.5 * k2)])


class IpoptMPC:
    """The same OCP in CasADi / IPOPT (multiple shooting), built once, solved per problem."""

    def __init__(self, mpc: DriftMPC, kappa: float, beta_ref: float, v_ref: float):
        step = casadi_ros2(mpc.model, kappa)
        n = mpc.horizon_steps
        dts = np.asarray(mpc.dt_s)
        w = mpc.weights
        opti = ca.Opti()
        # Variables scaled to O(1) (IPOPT is not scale-invariant): states by typical drift
        # magnitudes, inputs by their limits.
        x_scale = np.array([1.0, 10.0, 1.0, 40.0, 1.0, 1.0, 10.0])
        u_scale = np.array([mpc.steer_max_rad, mpc.torque_max_nm])
        xs_scaled = opti.variable(7, n + 1)
        us_scaled = opti.variable(2, n)
        xs = ca.diag(x_scale) @ xs_scaled
        us = ca.diag(u_scale) @ us_scaled
        x0 = opti.parameter(7)
        u_prev = opti.parameter(2)
        opti.subject_to(xs_scaled[:, 0] == x0 / x_scale)
        cost = 0
        scale = np.array([w.steer_rate_radps, w.torque_rate_nmps])
        rate_max = np.array([mpc.steer_rate_max_radps, mpc.torque_rate_max_nmps])
        prev = u_prev
        for k in range(n):
            h = float(dts[k])
            opti.subject_to(xs_scaled[:, k + 1] == step(xs[:, k], us[:, k], h) / x_scale)
            xk = xs[:, k + 1]
            cost += (
                0.5
                * h
                * (
                    ((xk[2] - beta_ref) / w.sideslip_rad) ** 2
                    + (xk[4] / w.lateral_m) ** 2
                    + (xk[5] / w.heading_rad) ** 2
                    + ((xk[1] - v_ref) / w.speed_mps) ** 2
                )
            )
            du = (us[:, k] - prev) / h
            cost += 0.5 * h * ca.sumsqr(du / scale)
            opti.subject_to(opti.bounded(-1, du / rate_max, 1))
            prev = us[:, k]
        opti.subject_to(opti.bounded(-1, us_scaled[0, :], 1))
        opti.subject_to(opti.bounded(mpc.torque_min_nm / mpc.torque_max_nm, us_scaled[1, :], 1))
        opti.minimize(cost)
        opti.solver(
            "ipopt",
            {"print_time": False},
            {"print_level": 0, "tol": 1e-8, "max_iter": 500, "sb": "yes"},
        )
        self.opti, self.xs, self.us, self.x0, self.u_prev = opti, xs_scaled, us_scaled, x0, u_prev
        self.x_scale, self.u_scale = x_scale, u_scale
        self.mpc = mpc

    def solve(self, x0, u_prev):
        """(plan (N, 2), wall time [s] from IPOPT's statistics, success)."""
        opti = self.opti
        opti.set_value(self.x0, np.asarray(x0))
        opti.set_value(self.u_prev, np.asarray(u_prev))
        # The same initial guess as the JAX cold start: hold the last command.
        plan0 = np.tile(np.asarray(u_prev), (self.mpc.horizon_steps, 1))
        pred = np.asarray(self.mpc.predict(np.asarray(x0), plan0))
        opti.set_initial(self.us, (plan0 / self.u_scale).T)
        opti.set_initial(self.xs, (pred / self.x_scale).T)
        tic = time.perf_counter()
        try:
            sol = opti.solve()
            ok = True
        except RuntimeError:
            sol = opti.debug
            ok = False
        wall = time.perf_counter() - tic
        return np.asarray(sol.value(self.us)).T * self.u_scale, wall, ok


def main(problems: int = 40, max_iterations: int = 5) -> dict:
    plant = DriftPlant()
    fiala = Fiala(coupling="friction_circle")
    model = SingleTrackModel(params_from_plant(plant), fiala, fiala)
    path = Donut(11.0, np.radians(30.0))
    mpc = DriftMPC.from_path(model, path, max_iterations=max_iterations)
    y_ref, u_ref = mpc.reference.at(0.0)

    # Problems: a closed loop of the MPC on the model from a perturbed drift.
    f = lambda t, y, u, a: mpc.model.path_vector_field(t, y, u, path.curvature)
    advance = jax.jit(
        lambda y, u: rollout(f, y, jnp.broadcast_to(u, (50, 2)), 1e-3, check=False)[-1]
    )
    x = (
        jnp.concatenate([y_ref, jnp.zeros(3)])
        .at[4]
        .set(0.6)
        .at[2]
        .add(np.radians(4))
        .at[1]
        .add(0.5)
    )
    state = mpc.init(x, u_ref)
    records = []
    for _ in range(problems):
        u, new_state, _ = mpc.step(state, x)
        records.append((x, state))
        state = new_state
        x = advance(x, u)

    def timed(st, meas, repeats=3):
        best = np.inf
        for _ in range(repeats):
            tic = time.perf_counter()
            out = mpc.step(st, meas)
            jax.block_until_ready(out[0])
            best = min(best, time.perf_counter() - tic)
        return best, out

    warm_t, cold_t, warm_cost, cold_cost, iters_warm, iters_cold = [], [], [], [], [], []
    for xk, st in records:
        t, (_, _, info) = timed(st, xk)
        warm_t.append(t)
        warm_cost.append(float(info.cost))
        iters_warm.append(int(info.iterations))
        cold = mpc.init(xk, st.last_command)
        t, (_, _, info) = timed(cold, xk)
        cold_t.append(t)
        cold_cost.append(float(info.cost))
        iters_cold.append(int(info.iterations))

    ipopt = IpoptMPC(mpc, 1.0 / path.radius_m, float(path.sideslip(0.0)), float(y_ref[1]))
    ip_t, ip_cost, ip_ok = [], [], []
    for xk, st in records:
        plan, wall, ok = ipopt.solve(xk, st.last_command)
        # Scored by the JAX cost: the plan as scaled rates (within the boxes up to IPOPT's
        # tolerance, clipped onto them by `DriftMPC.inputs`).
        prev = np.concatenate(
            [np.clip(np.asarray(st.last_command), [-0.6, -2000], [0.6, 2500])[None], plan[:-1]]
        )
        z = (
            (plan - prev)
            / np.asarray(mpc.dt_s)[:, None]
            / np.array([mpc.steer_rate_max_radps, mpc.torque_rate_max_nmps])
        )
        ip_cost.append(float(mpc.cost(jnp.clip(jnp.asarray(z), -1, 1), xk, st.last_command)))
        ip_t.append(wall)
        ip_ok.append(ok)

    q = lambda a, p: float(np.percentile(np.asarray(a), p))
    out = {
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "problems": problems,
        "max_iterations": max_iterations,
        "jax_warm_ms": {"median": 1e3 * q(warm_t, 50), "p99": 1e3 * q(warm_t, 99)},
        "jax_cold_ms": {"median": 1e3 * q(cold_t, 50), "p99": 1e3 * q(cold_t, 99)},
        "ipopt_ms": {"median": 1e3 * q(ip_t, 50), "p99": 1e3 * q(ip_t, 99)},
        "ipopt_converged": int(np.sum(ip_ok)),
        "iterations_warm_mean": float(np.mean(iters_warm)),
        "iterations_cold_mean": float(np.mean(iters_cold)),
        "speedup_median_warm": q(ip_t, 50) / q(warm_t, 50),
        "speedup_median_cold": q(ip_t, 50) / q(cold_t, 50),
        "cost_ratio_warm_over_ipopt_median": float(
            np.median(np.asarray(warm_cost) / np.asarray(ip_cost))
        ),
        "cost_ratio_cold_over_ipopt_median": float(
            np.median(np.asarray(cold_cost) / np.asarray(ip_cost))
        ),
        # Per problem: the worst ratio, how many plans are within 0.1% of IPOPT's cost or below
        # it (IPOPT's own local solution is not always the better one), and which are not
        # (problem 0 is the first step from the perturbed start, with no previous plan).
        "cost_ratio_warm_over_ipopt_max": float(
            np.max(np.asarray(warm_cost) / np.asarray(ip_cost))
        ),
        "warm_within_0p1pct_of_ipopt": int(
            np.sum(np.asarray(warm_cost) <= 1.001 * np.asarray(ip_cost))
        ),
        "warm_above_0p1pct": [
            [i, round(float(w / c), 4)]
            for i, (w, c) in enumerate(zip(warm_cost, ip_cost, strict=True))
            if w > 1.001 * c
        ],
        "cost_sum": {
            "jax_warm": float(np.sum(warm_cost)),
            "jax_cold": float(np.sum(cold_cost)),
            "ipopt": float(np.sum(ip_cost)),
        },
    }
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--max-iterations", type=int, default=5)
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the JSON result to this file"
    )
    args = parser.parse_args()
    print(
        "uptime at start:",
        subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    )
    text = json.dumps(main(args.problems, args.max_iterations), indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
