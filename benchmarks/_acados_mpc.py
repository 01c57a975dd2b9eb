"""The drift MPC's optimal-control problem in acados (SQP-RTI or SQP, HPIPM), for `drift_mpc.py`.

The same problem as `DriftMPC` (`physml.vehicle.DriftProblem`), in multiple-shooting form over
the augmented state ξ_k = (x_k, u_{k−1}) ∈ R⁹ (x = (r, V, β, ω_r, e, Δφ, s), u = (δ, τ)):

    ξ_{k+1} = (F(x_k, u_k, h_k), u_k)        (acados `disc_dyn_expr`; h_k a stage parameter)
    J = ½ Σ_{k=1..N} h_{k−1} |ρ_track(x_k)|² + ½ Σ_{k=0..N−1} h_k |(u_k − u_{k−1}) / (h_k σ_u̇)|²

with ρ_track = ((β − β_ref)/σ_β, e/σ_e, Δφ/σ_Δφ, ρ_V) and ρ_V with the one-sided speed floor of
`MPCWeights` (its front-slip envelope term must be off), as nonlinear least squares with stage
weights W_k. acados scales stage k's cost by its time step, so the grid is handed to it as unit
steps and h_k enters W_k and the dynamics' parameter instead. Constraints: the amplitude box
on u_k and the rate box |u_k − u_{k−1}| ≤ h_k u̇_max as the linear constraint D u_k + C ξ_k.
F is the CasADi function the caller passes (the ROS2 map of `DriftMPC`'s predictor), so both
solvers predict with one map; β_ref and V_ref are stage parameters (constant along a donut).
States and inputs are scaled to O(1) (an interior-point QP is not scale-invariant), as in the
IPOPT baseline. Hessian: Gauss–Newton, as `DriftMPC`'s solver.

acados: Verschueren et al., "acados — a modular open-source framework for fast embedded optimal
control", Math. Prog. Comp. 14 (2022); SQP-RTI: Diehl, Bock & Schlöder, SIAM J. Control Optim.
43 (2005); HPIPM: Frison & Diehl, IFAC-PapersOnLine 53 (2020). The libraries, headers and the
template renderer `t_renderer` ship in the `comma-deps-acados` wheel (`acados.DIR`), so nothing
is downloaded; the generated C code is compiled with the system C compiler into `code_dir`.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

import acados
import casadi as ca
import numpy as np
from acados.acados_template import AcadosModel, AcadosOcp, AcadosOcpSolver

__all__ = ["AcadosDriftMPC", "solve_sequence", "use_bundled_acados"]

#: The wheel's shared libraries in dependency order (they carry no rpath).
_LIBRARIES = ("libblasfeo.so", "libhpipm.so", "libqpOASES_e.so.3.1", "libacados.so")
_MODES = {"rti": "SQP_RTI", "sqp": "SQP"}
_QP_SOLVERS = {"full": "FULL_CONDENSING_HPIPM", "partial": "PARTIAL_CONDENSING_HPIPM"}
#: Typical magnitudes of (r [rad/s], V [m/s], β [rad], ω_r [rad/s], e [m], Δφ [rad], s [m]).
_STATE_SCALE = np.array([1.0, 10.0, 1.0, 40.0, 1.0, 1.0, 10.0])


def use_bundled_acados() -> None:
    """Point `acados_template` at the wheel's install tree (headers, libraries, `t_renderer`)
    and at its own folder (layout files), and preload the libraries with `RTLD_GLOBAL`, so
    that neither a download nor LD_LIBRARY_PATH is needed."""
    os.environ["ACADOS_SOURCE_DIR"] = acados.DIR
    os.environ["TERA_PATH"] = acados.TERA_PATH
    os.environ["ACADOS_PYTHON_INTERFACE_PATH"] = acados.TEMPLATE_DIR
    for name in _LIBRARIES:
        ctypes.CDLL(os.path.join(acados.LIB_DIR, name), mode=ctypes.RTLD_GLOBAL)


def _model(name: str, step: ca.Function, weights, x_scale: np.ndarray) -> AcadosModel:
    """The scaled augmented model ξ̃ = ξ / x_scale, ũ = u / u_scale, with the residuals."""
    xi_scaled = ca.SX.sym("xi", 9)
    u_scaled = ca.SX.sym("u", 2)
    p = ca.SX.sym("p", 3)  # (h [s], β_ref [rad], V_ref [m/s])
    xi = xi_scaled * x_scale
    x, u_prev = xi[:7], xi[7:]
    u = u_scaled * x_scale[7:]
    speed_error = x[1] - p[2]
    rho_v = speed_error / weights.speed_mps
    if np.isfinite(weights.speed_floor_margin_mps):
        floor = ca.fmin(speed_error + weights.speed_floor_margin_mps, 0.0)
        rho_v = rho_v + floor / weights.speed_floor_mps
    track = ca.vertcat(
        (x[2] - p[1]) / weights.sideslip_rad,
        x[4] / weights.lateral_m,
        x[5] / weights.heading_rad,
        rho_v,
    )
    effort = (u - u_prev) / np.array([weights.steer_rate_radps, weights.torque_rate_nmps])
    model = AcadosModel()
    model.name = name
    model.x, model.u, model.p = xi_scaled, u_scaled, p
    model.disc_dyn_expr = ca.vertcat(step(x, u, p[0]) / x_scale[:7], u_scaled)
    model.cost_y_expr = ca.vertcat(track, effort)
    model.cost_y_expr_e = track
    return model


class AcadosDriftMPC:
    """One horizon of the drift MPC (module docstring) in acados, built once, solved per problem.

    Args:
        mpc: the `DriftMPC` whose grid, weights and input boxes are transcribed.
        step: CasADi function (x (7), u (2), h [s]) ↦ x⁺ (7), the discrete prediction step.
        beta_ref_rad, speed_ref_mps: the reference sideslip [rad] and speed [m/s].
        mode: "rti" (one Gauss–Newton SQP iteration per call: SQP-RTI) or "sqp" (SQP with a
            merit line search to `tol`, at most `max_iterations`).
        qp: "full" (FULL_CONDENSING_HPIPM) or "partial" (PARTIAL_CONDENSING_HPIPM, no
            condensing: N stages kept).
        code_dir: folder for the generated and compiled C code (one subfolder per solver).
        qp_tol: the QP's KKT tolerance; tol: the SQP's.
        options: further `AcadosOcpOptions` attributes; tag: suffix of the solver's name.
    """

    def __init__(
        self,
        mpc,
        step: ca.Function,
        beta_ref_rad: float,
        speed_ref_mps: float,
        *,
        mode: str,
        qp: str,
        code_dir: Path,
        max_iterations: int = 200,
        tol: float = 1e-6,
        qp_tol: float = 1e-6,
        options: dict | None = None,
        tag: str = "",
    ):
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {sorted(_MODES)}, got {mode!r}.")
        if qp not in _QP_SOLVERS:
            raise ValueError(f"`qp` must be one of {sorted(_QP_SOLVERS)}, got {qp!r}.")
        envelope = getattr(mpc.weights, "front_slip_limit_rad", np.inf)
        if np.isfinite(envelope):
            raise ValueError(
                "The front-slip envelope term (MPCWeights.front_slip_limit_rad = "
                f"{envelope!r}) is not transcribed; use an MPC with it off (inf)."
            )
        use_bundled_acados()
        self.mode = mode
        self.dt = np.asarray(mpc.dt_s, float)
        self.n = n = self.dt.size
        self.lo = np.array([-mpc.steer_max_rad, mpc.torque_min_nm])
        self.hi = np.array([mpc.steer_max_rad, mpc.torque_max_nm])
        self.rate_max = np.array([mpc.steer_rate_max_radps, mpc.torque_rate_max_nmps])
        self.u_scale = np.maximum(np.abs(self.lo), np.abs(self.hi))
        self.x_scale = np.concatenate([_STATE_SCALE, self.u_scale])
        refs = [beta_ref_rad, speed_ref_mps]

        name = f"drift_{mode}_{qp}{tag}"
        folder = Path(code_dir).resolve() / name
        folder.mkdir(parents=True, exist_ok=True)
        ocp = AcadosOcp(acados_path=acados.DIR)
        ocp.model = _model(name, step, mpc.weights, self.x_scale)
        ocp.code_export_directory = str(folder / "c_generated_code")
        ocp.dims.N = n
        ocp.parameter_values = np.array([self.dt[0], *refs])
        ocp.cost.cost_type = ocp.cost.cost_type_e = "NONLINEAR_LS"
        ocp.cost.W, ocp.cost.yref = np.eye(6), np.zeros(6)  # W_k per stage below
        ocp.cost.W_e, ocp.cost.yref_e = self.dt[-1] * np.eye(4), np.zeros(4)
        ocp.constraints.x0 = np.zeros(9)
        ocp.constraints.idxbu = np.array([0, 1])
        ocp.constraints.lbu = self.lo / self.u_scale
        ocp.constraints.ubu = self.hi / self.u_scale
        ocp.constraints.C = np.hstack([np.zeros((2, 7)), -np.eye(2)])
        ocp.constraints.D = np.eye(2)
        ocp.constraints.lg = -self._rate_bound(0)
        ocp.constraints.ug = self._rate_bound(0)

        opts = ocp.solver_options
        opts.integrator_type = "DISCRETE"
        opts.hessian_approx = "GAUSS_NEWTON"
        opts.qp_solver = _QP_SOLVERS[qp]
        if qp == "partial":
            opts.qp_solver_cond_N = n
        opts.nlp_solver_type = _MODES[mode]
        if mode == "sqp":
            # Full Gauss–Newton steps diverge from the poor starts (the perturbed first problem).
            opts.globalization = "MERIT_BACKTRACKING"
        opts.nlp_solver_max_iter = max_iterations
        opts.tol = tol
        opts.qp_tol = qp_tol
        opts.qp_solver_iter_max = 100
        opts.print_level = 0
        opts.tf = float(n)  # unit steps: h_k is in W_k (module docstring)
        for key, value in (options or {}).items():
            setattr(opts, key, value)

        self.solver = AcadosOcpSolver(ocp, json_file=str(folder / f"{name}.json"), verbose=False)
        for k in range(n):
            self.solver.set(k, "p", np.array([self.dt[k], *refs]))
            track = 0.0 if k == 0 else self.dt[k - 1]  # x_0 is fixed: its term is a constant
            self.solver.cost_set(k, "W", np.diag([track] * 4 + [1.0 / self.dt[k]] * 2))
            self.solver.constraints_set(k, "lg", -self._rate_bound(k))
            self.solver.constraints_set(k, "ug", self._rate_bound(k))
        self.solver.set(n, "p", np.array([self.dt[-1], *refs]))

    def _rate_bound(self, k: int) -> np.ndarray:
        return self.dt[k] * self.rate_max / self.u_scale

    def cold_guess(self, u_prev, predicted) -> dict:
        """Hold the (clipped) last command over the horizon; `predicted` (N + 1, 7): its
        predicted states. Returns {"x": (N + 1, 9), "u": (N, 2)}."""
        u = np.tile(np.clip(u_prev, self.lo, self.hi), (self.n, 1))
        return {"x": np.hstack([np.asarray(predicted), np.vstack([u[:1], u])]), "u": u}

    def shifted_guess(self, solution: dict) -> dict:
        """A solution advanced by one control period dt_s[0]: node k takes the node whose
        interval holds t_k + dt_s[0] (the last one held), as `DriftMPC.shift` does."""
        starts = np.cumsum(self.dt) - self.dt
        idx = np.searchsorted(starts, starts + self.dt[0], side="right") - 1
        idx = np.clip(idx, 0, self.n - 1)
        return {"x": np.vstack([solution["x"][idx], solution["x"][-1:]]), "u": solution["u"][idx]}

    def solve(self, x0, u_prev, guess: dict) -> tuple[dict, float, dict]:
        """Solve from x0 (7,) after the command u_prev (2,), starting at `guess`.

        The solver's memory is reset first (untimed; the duals start at zero), so a repeated
        call repeats the same solve. Returns the solution {"x": (N + 1, 9), "u": (N, 2)}, the
        wall time [s] of setting x0 and the guess and solving (Python interface included),
        and acados's statistics (status, sqp_iter, cost, its own time_tot/lin/qp [s]).
        """
        s = self.solver
        s.reset()
        xi0 = np.concatenate([np.asarray(x0, float), np.clip(u_prev, self.lo, self.hi)])
        xs = np.asarray(guess["x"]) / self.x_scale
        us = np.asarray(guess["u"]) / self.u_scale
        tic = time.perf_counter()
        s.set(0, "lbx", xi0 / self.x_scale)
        s.set(0, "ubx", xi0 / self.x_scale)
        for k in range(self.n):
            s.set(k, "x", xs[k])
            s.set(k, "u", us[k])
        s.set(self.n, "x", xs[self.n])
        status = s.solve()
        wall = time.perf_counter() - tic
        solution = {
            "x": np.array([s.get(k, "x") for k in range(self.n + 1)]) * self.x_scale,
            "u": np.array([s.get(k, "u") for k in range(self.n)]) * self.u_scale,
        }
        stat = lambda field: np.ravel(s.get_stats(field))[0].item()
        stats = {
            "status": int(status),
            "sqp_iter": int(stat("sqp_iter")),
            "cost": float(s.get_cost()),
            "time_tot": stat("time_tot"),
            "time_lin": stat("time_lin"),
            "time_qp": stat("time_qp"),
        }
        return solution, wall, stats


def solve_sequence(
    solver: AcadosDriftMPC, problems, *, warm: bool, first, hold, score, repeats: int = 3
) -> dict:
    """Solve a sequence of problems [(x0 (7,), last command (2,)), ...] in order.

    Each starts warm, from the solver's own previous solution shifted by one control period
    (`warm=True`), or cold: holding the last command, with `hold(x0, last)` its predicted
    states (N + 1, 7). The first problem starts cold or from `first` (a solution of it, e.g. a
    converged SQP: the usual start-up of SQP-RTI). Each solve is repeated `repeats` times from
    the same start (the best time kept); `score(plan, x0, last)` is the cost of its plan.
    Returns per problem the wall time and acados's time_tot [s], the score and the SQP
    iterations, and the count of each acados status.
    """
    out = {"wall_s": [], "acados_time_tot_s": [], "cost": [], "iterations": []}
    status = []
    previous = None
    for i, (x0, last) in enumerate(problems):
        if i == 0 and first is not None:
            guess = first
        elif warm and previous is not None:
            guess = solver.shifted_guess(previous)
        else:
            guess = solver.cold_guess(last, hold(x0, last))
        runs = [solver.solve(x0, last, guess) for _ in range(repeats)]
        previous, _, stats = runs[-1]
        out["wall_s"].append(min(wall for _, wall, _ in runs))
        out["acados_time_tot_s"].append(min(s["time_tot"] for _, _, s in runs))
        out["cost"].append(score(previous["u"], x0, last))
        out["iterations"].append(stats["sqp_iter"])
        status.append(stats["status"])
    out["status_counts"] = {str(k): status.count(k) for k in sorted(set(status))}
    return out
