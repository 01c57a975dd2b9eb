"""Figure for issue 6: the drift-equilibrium map of the plant and of every identified model.

    python paper_figures/drift_equilibria.py [out_dir] [--quick] [--speeds 6,8,10,12]

For each speed V, the steady drifts (ṙ = V̇ = β̇ = ω̇_r = 0 at fixed V and sideslip β, with
steering δ and drive torque τ free: the equilibria of the single-track model of Djeumou et al.,
"One model to drift them all", CoRL 2024, appendix A.1, `solve_equilibrium`) are followed along
β by continuation: each solve starts from the previous one (`equilibrium_guess`), outwards
from β = 30° in both directions, and the 30° drifts are reached by continuation in V from
10 m/s. The plant's steady drifts (`drift_equilibrium`: V̇ = β̇ = ṙ = ω̇_f = ω̇_r = 0 of the
9-state CommonRoad model) are followed the same way. A curve ends where no equilibrium is found
or where it would need inputs beyond the car's actuators (|δ| ≤ 0.6 rad, −2000 ≤ τ ≤ 2500 N·m):
the car cannot hold that drift. Drifts of the right-hand turn are shown (r < 0, β > 0,
counter-steer δ > 0).

Open-loop stability with the inputs held: eigenvalues of the state Jacobian (the model's
`Equilibrium.eigenvalues`; for the plant, of its Jacobian on (δ, V, r, β, ω_f, ω_r), the
position and heading being neutral by symmetry). Drift equilibria of a rear-drive car are
saddles with one unstable real mode (Voser, Hindiyeh & Gerdes, "Analysis and control of high
sideslip manoeuvres", Vehicle System Dynamics 48 (2010)): open markers.

Top row: β vs δ, one panel per speed; bottom row: the required drive torque τ vs β (for the
plant, the torque that acts after its power limit). Writes drift_equilibria.png and
drift_equilibria.json (the curves, the real parts of their eigenvalues and why each curve
ended) to out_dir (default paper_figures/out/).

Uses the models saved by `benchmarks/vehicle_sysid.py` in benchmarks/out/; if none is there,
identifies them here from the 3-minute log (`--steps`, 150 under `--quick`), or with
`--steps 0` falls back to the nominal model (the plant's geometry, a default Fiala tyre). The
figure title says which.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

jax.config.update("jax_enable_x64", True)

from _common import fit_key, model_key, model_path, sysid_logs  # noqa: E402

from physml import vehicle  # noqa: E402
from physml.kernels import write_text_atomic  # noqa: E402
from physml.vehicle import (  # noqa: E402
    IOMEGAF,
    IOMEGAR,
    ISIDESLIP,
    ISPEED,
    ISTEER,
    IYAWRATE,
    equilibrium_guess,
)

SEED_BETA_DEG = 30.0  # well inside the drift branch at 8-12 m/s: continuation starts here
REFERENCE_SPEED_MPS = 10.0  # the speed of the log's drifts: the first speed solved
#: Plant states whose Jacobian decides stability (position and heading are neutral).
PLANT_DYNAMIC_STATES = np.array([ISTEER, ISPEED, IYAWRATE, ISIDESLIP, IOMEGAF, IOMEGAR])


@eqx.filter_jit
def _plant_jacobian(plant, x, u):
    """∂ẋ/∂x of the plant at (x, u) with the inputs held."""
    return jax.jacfwd(lambda xx: plant.vector_field(0.0, xx, u))(x)


def _models(plant, tires, seed, cache, steps, minutes):
    """(models by name, a phrase for the title saying where they came from)."""
    params = vehicle.params_from_plant(plant)
    skeleton = lambda tire: vehicle.make_model(
        tire, key=model_key(seed, vehicle.TIRES.index(tire)), params=params
    )
    models = {}
    for tire in tires:
        path = model_path(cache, tire, seed)
        if path.is_file():
            try:
                models[tire] = eqx.tree_deserialise_leaves(path, skeleton(tire))
            except Exception as err:  # saved by an older tyre class: skip it, say so
                print(f"skipping {path}: {type(err).__name__}: {err}")
    if models:
        return models, f"identified models from {cache}/"
    if steps <= 0:
        return {"fiala (nominal)": skeleton("fiala")}, "no identified models: nominal Fiala model"
    train, _, _ = sysid_logs(plant, minutes, seed, cache)
    for tire in tires:
        i = vehicle.TIRES.index(tire)
        # As benchmarks/vehicle_sysid.py: tyres start from a fit to the log's axle forces.
        start = vehicle.make_model(tire, key=model_key(seed, i), params=params, data=train)
        fit = vehicle.identify(train, start, key=fit_key(seed, i), steps=steps, progress=False)
        models[tire] = fit.model
    return models, f"models identified here ({steps} steps, {minutes:g}-min log)"


def _plant_point(plant, speed, beta, guess):
    """One plant drift as a row dict, and the guess for the next solve."""
    x, u = vehicle.drift_equilibrium(plant, speed, beta, guess)
    jac = np.asarray(_plant_jacobian(plant, jnp.asarray(x), jnp.asarray(u)))
    eig = np.linalg.eigvals(jac[np.ix_(PLANT_DYNAMIC_STATES, PLANT_DYNAMIC_STATES)])
    tau = float(plant.applied_inputs(jnp.asarray(x), jnp.asarray(u))[1])
    row = {
        "steer_rad": float(x[ISTEER]),
        "torque_nm": tau,
        "yaw_rate_radps": float(x[IYAWRATE]),
        "eig_real": sorted(eig.real.tolist(), reverse=True),
        "unstable": bool(np.max(eig.real) > 0),
    }
    act = plant.actuators
    if abs(row["steer_rad"]) > act.steer_max_rad or not (
        act.torque_min_nm <= float(u[1]) <= act.torque_max_nm
    ):
        raise ValueError(
            f"needs δ = {row['steer_rad']:+.3f} rad, τ = {float(u[1]):.0f} N·m: beyond the "
            "actuator limits"
        )
    return row, [x[IYAWRATE], u[0], u[1], x[IOMEGAF], x[IOMEGAR]]


def _model_point(model, speed, beta, guess, plant):
    act = plant.actuators
    eq = vehicle.solve_equilibrium(
        model,
        beta,
        speed_mps=speed,
        guess=guess,
        steer_limit_rad=act.steer_max_rad,
        torque_limits_nm=(act.torque_min_nm, act.torque_max_nm),
    )
    row = {
        "steer_rad": float(eq.control[0]),
        "torque_nm": float(eq.control[1]),
        "yaw_rate_radps": float(eq.state[0]),
        "eig_real": sorted(np.real(np.asarray(eq.eigenvalues)).tolist(), reverse=True),
        "unstable": eq.unstable,
    }
    return row, equilibrium_guess(eq)


def _branch(point, speed, betas_deg, seed_guess):
    """Continuation along β outwards from SEED_BETA_DEG, starting from `seed_guess`."""
    rows, ends = {}, {}
    i0 = int(np.argmin(np.abs(betas_deg - SEED_BETA_DEG)))
    for side, order in (("high", betas_deg[i0:]), ("low", betas_deg[i0::-1])):
        guess = seed_guess
        ends[side] = "end of the β range"
        for b in order:
            if b in rows:  # the seed, solved on the first side
                guess = rows[b][1]
                continue
            try:
                row, guess = point(speed, float(np.radians(b)), guess)
            except (ValueError, RuntimeError) as err:
                ends[side] = f"β = {b:g}°: {str(err).splitlines()[0][:160]}"
                break
            rows[b] = (row, guess)
    keys = sorted(rows)
    curve = {"beta_deg": [float(b) for b in keys]}
    for name in ("steer_rad", "torque_nm", "yaw_rate_radps", "eig_real", "unstable"):
        curve[name] = [rows[b][0][name] for b in keys]
    curve["end"] = ends
    return curve


def _seeds(point, speeds):
    """Guesses at (V, SEED_BETA_DEG) for each speed: continuation in V from the reference speed
    in steps of at most 0.5 m/s (a jump of 2 m/s is too far for the plant's solve)."""
    beta = float(np.radians(SEED_BETA_DEG))
    seeds = {}
    for stop in (min(speeds), max(speeds)):
        grid = np.linspace(
            REFERENCE_SPEED_MPS, stop, round(abs(stop - REFERENCE_SPEED_MPS) / 0.5) + 1
        )
        on_side = [
            v for v in speeds if (v - REFERENCE_SPEED_MPS) * (stop - REFERENCE_SPEED_MPS) >= 0
        ]
        walk = sorted(
            {round(float(v), 6) for v in (*grid, *on_side)},
            key=lambda v: abs(v - REFERENCE_SPEED_MPS),
        )
        guess = None
        for v in walk:
            try:
                _, guess = point(v, beta, guess)
            except (ValueError, RuntimeError):
                break
            seeds[v] = guess
    return [seeds.get(round(float(v), 6)) for v in speeds]


def equilibrium_map(plant, models, speeds, betas_deg):
    """Curves {source: {str(V): curve}} for the plant and each model."""
    points = {"plant": lambda v, b, g: _plant_point(plant, v, b, g)}
    for name, model in models.items():
        points[name] = lambda v, b, g, m=model: _model_point(m, v, b, g, plant)
    out = {}
    for name, point in points.items():
        t0 = time.perf_counter()
        out[name] = {}
        for v, seed in zip(speeds, _seeds(point, speeds), strict=True):
            out[name][f"{v:g}"] = _branch(point, v, betas_deg, seed)
        n = sum(len(c["beta_deg"]) for c in out[name].values())
        print(f"{name:<16} {n:3d} equilibria in {time.perf_counter() - t0:5.1f} s")
    return out


def plot(curves, speeds, title, path, steer_max):
    fig, axes = plt.subplots(2, len(speeds), figsize=(4.2 * len(speeds), 8.2), squeeze=False)
    colours = {name: f"C{i}" for i, name in enumerate(n for n in curves if n != "plant")}
    colours["plant"] = "k"
    for j, v in enumerate(speeds):
        top, bottom = axes[0, j], axes[1, j]
        for name, by_speed in curves.items():
            c = by_speed[f"{v:g}"]
            if not c["beta_deg"]:
                continue
            b, d, tau = (np.asarray(c[k]) for k in ("beta_deg", "steer_rad", "torque_nm"))
            unst = np.asarray(c["unstable"], bool)
            style = dict(color=colours[name], lw=3 if name == "plant" else 1.3)
            style["alpha"] = 0.45 if name == "plant" else 0.9
            for ax, xs, ys in ((top, d, b), (bottom, b, tau)):
                ax.plot(xs, ys, "-", label=name, **style)
                ax.plot(xs[unst], ys[unst], "o", mfc="none", ms=4, color=style["color"])
                ax.plot(xs[~unst], ys[~unst], "o", ms=4, color=style["color"])
        for x in (-steer_max, steer_max):
            top.axvline(x, color="grey", ls=":", lw=1)
        top.set(title=f"V = {v:g} m/s", xlabel="steering δ [rad]", ylabel="sideslip β [deg]")
        bottom.set(xlabel="sideslip β [deg]", ylabel="drive torque τ [N·m]")
        for ax in (top, bottom):
            ax.grid(alpha=0.3)
    axes[0, 0].plot([], [], "o", mfc="none", color="grey", label="open-loop unstable")
    axes[0, 0].plot([], [], "o", color="grey", label="open-loop stable")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"Steady drifts (right-hand turn) of the plant and {title}\n"
        "open markers: open-loop unstable. A curve ends where no equilibrium is found,\n"
        f"or where it needs |δ| > {steer_max:g} rad (dotted) or τ outside the torque limits",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(
    out_dir: str = "paper_figures/out",
    *,
    quick: bool = False,
    speeds=(6.0, 8.0, 10.0, 12.0),
    tires=vehicle.TIRES,
    seed: int = 0,
    steps: int | None = None,
    cache: str = "benchmarks/out",
    minutes: float = 3.0,
):
    """Solve, plot and save the equilibrium map; returns the curves (see `equilibrium_map`)."""
    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plant = vehicle.DriftPlant()
    steps = (150 if quick else 3000) if steps is None else steps
    models, source = _models(plant, tires, seed, cache, steps, minutes)
    betas_deg = np.arange(5.0, 45.0 + 1e-9, 2.5 if quick else 1.0)
    curves = equilibrium_map(plant, models, speeds, betas_deg)
    plot(curves, speeds, source, out / "drift_equilibria.png", plant.actuators.steer_max_rad)
    wall = time.perf_counter() - start
    write_text_atomic(
        out / "drift_equilibria.json",
        json.dumps(
            {"models_from": source, "quick": quick, "wall_time_s": wall, "curves": curves},
            indent=1,
        ),
    )
    print(f"wrote {out / 'drift_equilibria.png'} and .json in {wall:.0f} s")
    return curves


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", default="paper_figures/out")
    ap.add_argument(
        "--quick", action="store_true", help="β every 2.5° (not 1°); 150 steps if identifying"
    )
    ap.add_argument("--speeds", default="6,8,10,12", help="speeds [m/s], comma-separated")
    ap.add_argument("--tires", default=",".join(vehicle.TIRES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="identification steps if needed")
    ap.add_argument("--cache", default="benchmarks/out")
    a = ap.parse_args()
    main(
        a.out_dir,
        quick=a.quick,
        speeds=tuple(float(v) for v in a.speeds.split(",")),
        tires=tuple(a.tires.split(",")),
        seed=a.seed,
        steps=a.steps,
        cache=a.cache,
    )
