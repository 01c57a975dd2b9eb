"""Drift MPC solve time: the JAX solver of `DriftMPC` against acados and CasADi + IPOPT.

The same optimal-control problem every way: the nominal model (plant's mass, inertias and
geometry, Fiala tyres with the friction-circle coupling), a donut of R = 11 m at β = 30°,
`DriftMPC`'s default horizon grid (`DEFAULT_GRID_S`, printed as `grid_s`), the ROS2 Rosenbrock
discretisation with the exact 4×4 Jacobian, the same least-squares cost and the same amplitude
and rate boxes.
- physml: projected Gauss–Newton/LM on the input rates (`DriftMPC.step`), warm (its shifted
  previous plan, as in closed loop) and cold (holding the last command).
- acados (`_acados_mpc.py`): multiple shooting with the ROS2 map as discrete dynamics,
  Gauss–Newton Hessian, HPIPM with full condensing and without condensing; SQP-RTI (one
  iteration per sample, warm-started from its own shifted previous solution: the real-time
  mode) and SQP with a merit line search to convergence, warm and cold. Skipped, with a
  message, when `acados` (the `comma-deps-acados` wheel) is not importable.
- IPOPT: multiple shooting with the exact Hessian, cold.
Cold starts hold the last command. Every plan is scored with physml's own cost
(`DriftMPC.cost`), so the costs compare.

Problems: the states of a 2-s closed loop of the MPC on the model itself from a perturbed drift
(e = 0.6 m, β 4° off, V 0.5 m/s off). Each solve is timed as the best of 3 repeats. Run:
`python benchmarks/drift_mpc.py [--problems 40] [--no-ipopt] [--no-acados] [--out FILE]`;
prints a table and a JSON summary (also written to FILE) with the machine load (`uptime`),
since the timings depend on it. acados's generated code goes to benchmarks/out/acados/.
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
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from physml.kernels import ROS2_GAMMA, rollout, write_text_atomic  # noqa: E402
from physml.vehicle import (  # noqa: E402
    Donut,
    DriftMPC,
    DriftPlant,
    Fiala,
    SingleTrackModel,
    params_from_plant,
)

try:  # benchmarks/ is on sys.path
    from _acados_mpc import AcadosDriftMPC, solve_sequence
except ImportError as error:  # the `bench` extra is not installed
    AcadosDriftMPC, ACADOS_MISSING = None, f"{type(error).__name__}: {error}"
else:
    ACADOS_MISSING = None

CODE_DIR = Path(__file__).resolve().parent / "out" / "acados"


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
    the same equations as `SingleTrackModel.path_vector_field` (CoRL 2024, A.1), with its
    longitudinal load transfer F_z = m g (b, a)/L ∓ h E(τ)/(R L) and its front brake share
    F_xf = max(b_f min(E, 0)/R, −μ_f F_zf), the rear wheel driven by E − b_f min(E, 0)
    (`VehicleParams.normal_loads`, `axle_torques`, `SingleTrackModel.front_brake_force`)."""
    p = model.params
    m, iz, iw = float(p.mass_kg), float(p.yaw_inertia_kgm2), float(p.wheel_inertia_kgm2)
    radius, a, b, g = float(p.wheel_radius_m), float(p.a_m), float(p.b_m), float(p.gravity_mps2)
    gain = float(p.torque_gain)
    offset = 0.0 if p.torque_offset_nm is None else float(p.torque_offset_nm)
    height, split = float(p.cg_height_m), float(p.brake_split_front)
    tf, tr = model.front, model.rear
    floor = model.speed_floor_mps
    x = ca.SX.sym("x", 7)
    u = ca.SX.sym("u", 2)
    r, v, beta, omega, e, dphi = x[0], x[1], x[2], x[3], x[4], x[5]
    delta, tau = u[0], u[1]
    torque = gain * tau + offset  # E(τ)
    shift = height * torque / (radius * (a + b))
    fz_f, fz_r = m * g * b / (a + b) - shift, m * g * a / (a + b) + shift
    t_front = split * ca.fmin(torque, 0.0)
    f_xf = ca.fmax(t_front / radius, -abs(float(tf.mu)) * fz_f)
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
    r_dot = (a * f_yf * ca.cos(delta) + a * f_xf * ca.sin(delta) - b * f_yr) / iz
    v_dot = (-f_yf * ca.sin(db) + f_xf * ca.cos(db) + f_yr * ca.sin(beta) + f_xr * ca.cos(beta)) / m
    lateral = f_yf * ca.cos(db) + f_xf * ca.sin(db) + f_yr * ca.cos(beta) - f_xr * ca.sin(beta)
    beta_dot = lateral / (m * _soft_floor(v, floor)) - r
    omega_dot = (torque - t_front - f_xr * radius) / iw
    s_dot = v * ca.cos(dphi) / ca.fmax(1.0 - e * kappa, 0.05)
    dyn = ca.vertcat(r_dot, v_dot, beta_dot, omega_dot)
    full = ca.vertcat(dyn, v * ca.sin(dphi), beta_dot + r - kappa * s_dot, s_dot)
    return ca.Function("f", [x, u], [full]), ca.Function("dyn", [x, u], [dyn]), x, u


def check_casadi_model(model: SingleTrackModel, kappa: float, points: int = 200) -> float:
    """Largest relative difference between the CasADi right-hand side and
    `SingleTrackModel.path_vector_field` at random drift states and inputs (driving and
    braking); raises if it exceeds 1e-9, so the peers never solve another problem."""
    f = casadi_vector_field(model, kappa)[0]
    jax_f = jax.jit(lambda y, u: model.path_vector_field(0.0, y, u, kappa))
    rng = np.random.default_rng(0)
    radius = float(model.params.wheel_radius_m)
    worst = 0.0
    for _ in range(points):
        v = rng.uniform(4.0, 16.0)
        y = np.array([rng.uniform(-1.5, 1.5), v, rng.uniform(-0.8, 0.8),
                      v / radius * rng.uniform(0.6, 2.5), rng.uniform(-1, 1),
                      rng.uniform(-0.3, 0.3), rng.uniform(0, 50)])  # fmt: skip
        u = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-2000.0, 2500.0)])
        ref = np.asarray(jax_f(jnp.asarray(y), jnp.asarray(u)))
        got = np.asarray(f(y, u)).ravel()
        worst = max(worst, float(np.max(np.abs(got - ref) / (np.abs(ref) + 1e-6))))
    if worst > 1e-9:
        raise RuntimeError(
            f"the CasADi model differs from physml's by {worst:.2e} (relative): the peers "
            "would solve another problem."
        )
    return worst


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


def closed_loop_problems(mpc: DriftMPC, path: Donut, problems: int) -> list:
    """(state, MPCState) of `problems` control steps of the MPC on the model itself (1-ms RK4
    between steps) from a perturbed drift: e = 0.6 m, β + 4°, V + 0.5 m/s."""
    y_ref, u_ref = mpc.reference.at(0.0)
    f = lambda t, y, u, a: mpc.model.path_vector_field(t, y, u, path.curvature)
    advance = jax.jit(
        lambda y, u: rollout(f, y, jnp.broadcast_to(u, (50, 2)), 1e-3, check=False)[-1]
    )
    x = jnp.concatenate([y_ref, jnp.zeros(3)])
    x = x.at[4].set(0.6).at[2].add(np.radians(4)).at[1].add(0.5)
    state = mpc.init(x, u_ref)
    records = []
    for _ in range(problems):
        u, new_state, _ = mpc.step(state, x)
        records.append((x, state))
        state = new_state
        x = advance(x, u)
    return records


def best_of(repeats: int, solve, *args):
    """The shortest wall time [s] of `repeats` calls `solve(*args) -> (result, seconds)`, and
    the results."""
    runs = [solve(*args) for _ in range(repeats)]
    return min(seconds for _, seconds in runs), [out for out, _ in runs]


def timed_step(mpc: DriftMPC):
    """`solve(state, x) -> ((u, state, info), seconds)`: one `DriftMPC.step`, timed."""

    def solve(st, xk):
        tic = time.perf_counter()
        out = mpc.step(st, xk)
        jax.block_until_ready(out[0])
        return out, time.perf_counter() - tic

    return solve


def run_physml(mpc: DriftMPC, records, warm: bool) -> dict:
    """`DriftMPC.step` per problem, warm (the closed loop's state) or cold (`init`)."""

    times, costs, iterations = [], [], []
    for xk, st in records:
        st = st if warm else mpc.init(xk, st.last_command)
        t, runs = best_of(3, timed_step(mpc), st, xk)
        info = runs[-1][2]
        times.append(t)
        costs.append(float(info.cost))
        iterations.append(int(info.iterations))
    return {"wall_s": times, "cost": costs, "iterations": iterations}


def run_physml_sequence(mpc: DriftMPC, records) -> dict:
    """`DriftMPC.step` over the problems in order, each warm-started from this solver's own
    previous plan shifted by one control period (its returned state), with the problem's own
    last command: the real-time iteration when `mpc.max_iterations` is 1 (as acados SQP-RTI's
    sequence, `solve_sequence`). The first problem starts from the closed loop's state."""

    times, costs, iterations = [], [], []
    state = records[0][1]
    for xk, st in records:
        state = eqx.tree_at(lambda s: s.last_command, state, st.last_command)
        t, runs = best_of(3, timed_step(mpc), state, xk)
        _, state, info = runs[-1]
        times.append(t)
        costs.append(float(info.cost))
        iterations.append(int(info.iterations))
    return {"wall_s": times, "cost": costs, "iterations": iterations}


def plan_cost(mpc: DriftMPC, cost, plan, x0, last_command) -> float:
    """physml's cost J of a plan of inputs (N, 2): the plan as scaled rates from the clipped
    last command (within the boxes up to the solver's tolerance; `DriftMPC.inputs` clips)."""
    lo = np.array([-mpc.steer_max_rad, mpc.torque_min_nm])
    hi = np.array([mpc.steer_max_rad, mpc.torque_max_nm])
    plan = np.asarray(plan)
    prev = np.concatenate([np.clip(np.asarray(last_command), lo, hi)[None], plan[:-1]])
    rate_max = np.array([mpc.steer_rate_max_radps, mpc.torque_rate_max_nmps])
    z = (plan - prev) / np.asarray(mpc.dt_s)[:, None] / rate_max
    return float(cost(jnp.clip(jnp.asarray(z), -1, 1), x0, last_command))


def run_ipopt(mpc, cost, records, kappa, beta_ref, v_ref) -> dict:
    ipopt = IpoptMPC(mpc, kappa, beta_ref, v_ref)
    times, costs, ok = [], [], []
    for xk, st in records:
        plan, wall, converged = ipopt.solve(xk, st.last_command)
        times.append(wall)
        costs.append(plan_cost(mpc, cost, plan, xk, st.last_command))
        ok.append(converged)
    return {"wall_s": times, "cost": costs, "converged": int(np.sum(ok))}


def summarise(results: dict, reference: str = "physml warm") -> list[dict]:
    """Per solver: time median and p99 [ms] (wall; acados's own time_tot too), the median and
    sum of the costs, and per problem the cost ratio against `reference`."""
    q = lambda a, p: float(np.percentile(np.asarray(a), p))
    base = np.asarray(results[reference]["cost"])
    rows = []
    for name, r in results.items():
        c = np.asarray(r["cost"])
        row = {
            "solver": name,
            "median_ms": 1e3 * q(r["wall_s"], 50),
            "p99_ms": 1e3 * q(r["wall_s"], 99),
            "cost_median": float(np.median(c)),
            "cost_sum": float(np.sum(c)),
            f"{reference} / this, median": float(np.median(base / c)),
            f"{reference} / this, max": float(np.max(base / c)),
            f"{reference} within 0.1%": int(np.sum(base <= 1.001 * c)),
        }
        if "acados_time_tot_s" in r:
            row["acados_time_tot_median_ms"] = 1e3 * q(r["acados_time_tot_s"], 50)
            row["acados_time_tot_p99_ms"] = 1e3 * q(r["acados_time_tot_s"], 99)
        rows.append(row)
    return rows


def table(rows: list[dict], problems: int) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| solver | median [ms] | p99 [ms] | acados time_tot median / p99 [ms] | cost median "
        "| cost sum | physml warm / this (median, max) "
        f"| physml warm ≤ 1.001 × this (of {problems}) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        internal = (
            f"{r['acados_time_tot_median_ms']:.2f} / {r['acados_time_tot_p99_ms']:.2f}"
            if "acados_time_tot_median_ms" in r
            else "-"
        )
        lines.append(
            f"| {r['solver']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {internal} | "
            f"{r['cost_median']:.4g} | {r['cost_sum']:.4g} | "
            f"{r['physml warm / this, median']:.3f}, {r['physml warm / this, max']:.3g} | "
            f"{r['physml warm within 0.1%']} |"
        )
    return "\n".join(lines)


ACADOS_RUNS = {  # name: (mode, QP condensing, warm, first problem from a converged SQP)
    "acados SQP-RTI, full cond., cold start": ("rti", "full", True, False),
    "acados SQP-RTI, full cond., SQP start": ("rti", "full", True, True),
    "acados SQP-RTI, no cond., SQP start": ("rti", "partial", True, True),
    "acados SQP warm, full cond.": ("sqp", "full", True, False),
    "acados SQP warm, no cond.": ("sqp", "partial", True, False),
    "acados SQP cold, full cond.": ("sqp", "full", False, False),
}


def main(
    problems: int = 40, max_iterations: int = 5, ipopt: bool = True, acados: bool = True
) -> dict:
    plant = DriftPlant()
    fiala = Fiala(coupling="friction_circle")
    model = SingleTrackModel(params_from_plant(plant), fiala, fiala)
    path = Donut(11.0, np.radians(30.0))
    mpc = DriftMPC.from_path(model, path, max_iterations=max_iterations)
    y_ref, _ = mpc.reference.at(0.0)
    kappa, beta_ref, v_ref = 1.0 / path.radius_m, float(path.sideslip(0.0)), float(y_ref[1])
    model_check = check_casadi_model(model, kappa)  # the peers' model is physml's
    cost = jax.jit(lambda z, x0, last: mpc.cost(z, x0, last))
    records = closed_loop_problems(mpc, path, problems)

    results = {
        "physml warm": run_physml(mpc, records, warm=True),
        "physml cold": run_physml(mpc, records, warm=False),
    }
    for iterations in (1, 2):
        mpc_rti = DriftMPC.from_path(model, path, max_iterations=iterations)
        name = f"physml {iterations} iteration{'s' if iterations > 1 else ''}, own sequence"
        results[name] = run_physml_sequence(mpc_rti, records)
    notes = {}
    if acados and AcadosDriftMPC is None:
        notes["acados"] = (
            f"skipped: acados is not importable ({ACADOS_MISSING}); install the bench extra "
            "(pip install -e '.[bench]')"
        )
        print(notes["acados"])
    elif acados:
        step = casadi_ros2(mpc.model, kappa)
        sequence = [(xk, np.asarray(st.last_command)) for xk, st in records]
        hold = lambda xk, last: mpc.predict(xk, np.tile(last, (mpc.horizon_steps, 1)))
        score = lambda plan, xk, last: plan_cost(mpc, cost, plan, xk, last)
        solvers = {}  # one generated and compiled solver per (mode, condensing)
        for key in sorted({run[:2] for run in ACADOS_RUNS.values()}):
            solvers[key] = AcadosDriftMPC(
                mpc, step, beta_ref, v_ref, mode=key[0], qp=key[1], code_dir=CODE_DIR
            )
        sqp = solvers["sqp", "full"]
        x0, last = sequence[0]
        converged = sqp.solve(x0, last, sqp.cold_guess(last, hold(x0, last)))[0]
        for name, (mode, qp, warm, sqp_start) in ACADOS_RUNS.items():
            results[name] = solve_sequence(
                solvers[mode, qp],
                sequence,
                warm=warm,
                first=converged if sqp_start else None,
                hold=hold,
                score=score,
            )
    if ipopt:
        results["IPOPT cold"] = run_ipopt(mpc, cost, records, kappa, beta_ref, v_ref)

    rows = summarise(results)
    return {
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "problems": problems,
        "max_iterations": max_iterations,
        "grid_s": [float(h) for h in np.asarray(mpc.dt_s)],
        "table": table(rows, problems),
        "summary": rows,
        "notes": notes,
        "casadi_model_max_relative_difference": model_check,
        "per_problem": results,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=40)
    parser.add_argument("--max-iterations", type=int, default=5)
    parser.add_argument("--no-ipopt", action="store_true", help="skip CasADi + IPOPT")
    parser.add_argument("--no-acados", action="store_true", help="skip acados")
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the JSON result to this file"
    )
    args = parser.parse_args()
    print(
        "uptime at start:",
        subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    )
    result = main(args.problems, args.max_iterations, not args.no_ipopt, not args.no_acados)
    text = json.dumps(result, indent=2)
    print(result["table"])
    print(json.dumps({k: v for k, v in result.items() if k != "per_problem"}, indent=2))
    if args.out is not None:
        write_text_atomic(args.out, text + "\n")
