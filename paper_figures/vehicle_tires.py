"""Figures for issue 5: learned tyre curves against the plant's true magic-formula curves (front
lateral, rear combined), and a 10-s held-out open-loop rollout of every model against the plant.

    python paper_figures/vehicle_tires.py [out_dir]      (default paper_figures/out/)

Uses the models and logs saved by `benchmarks/vehicle_sysid.py` in benchmarks/out/ (run it
first), or fits them here with `--steps` if they are missing.
"""

import sys
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
from physml.kernels import write_atomic  # noqa: E402


def _models(plant, train, tires, seed, cache, steps):
    params = vehicle.params_from_plant(plant)
    models = {}
    for i, tire in enumerate(tires):
        skeleton = vehicle.make_model(tire, key=model_key(seed, i), params=params)
        path = model_path(cache, tire, seed)
        if path.is_file():
            models[tire] = eqx.tree_deserialise_leaves(path, skeleton)
        else:
            # as in benchmarks/vehicle_sysid.py: start from the force fit to the training log
            start = vehicle.make_model(tire, key=model_key(seed, i), params=params, data=train)
            fit = vehicle.identify(train, start, key=fit_key(seed, i), steps=steps)
            models[tire] = fit.model
            write_atomic(path, lambda f, m=fit.model: eqx.tree_serialise_leaves(f, m))
    return models


def tire_curves(plant, models, out: Path):
    c = plant.params.tire
    m = next(iter(models.values()))
    fz_f, fz_r = (float(x) for x in m.params.normal_loads())
    alpha = jnp.linspace(-0.6, 0.6, 241)
    feats = jnp.array([0.0, 10.0, 0.0, 10.0 / float(m.params.wheel_radius_m)])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    # the plant's tyre at brake slip s = −σ (s = 0: free rolling), F_y is the second force
    true_f = jax.vmap(lambda a: vehicle.plant_tire_forces(a, 0.0, fz_f, c)[1])(alpha)
    axes[0].plot(alpha, true_f / fz_f, "k", lw=3, alpha=0.4, label="plant (magic formula)")
    for sigma, ax in ((0.0, axes[1]), (0.15, axes[2])):
        plant_rear = jax.vmap(lambda a, s=sigma: vehicle.plant_tire_forces(a, -s, fz_r, c)[1])
        ax.plot(alpha, plant_rear(alpha) / fz_r, "k", lw=3, alpha=0.4, label="plant")
    for name, model in models.items():
        front, rear = model.front.prepare(), model.rear.prepare()
        axes[0].plot(
            alpha, jax.vmap(lambda a, t=front: t.lateral(a, fz_f, feats))(alpha) / fz_f, label=name
        )
        for sigma, ax in ((0.0, axes[1]), (0.15, axes[2])):
            fy = jax.vmap(lambda a, s=sigma, t=rear: t.combined(a, s, fz_r, feats)[0])(alpha)
            ax.plot(alpha, fy / fz_r, label=name)
    titles = (
        "front lateral F_yf / F_zf",
        "rear lateral F_yr / F_zr, sigma = 0",
        "rear lateral F_yr / F_zr, sigma = 0.15",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set(title=title, xlabel="slip angle [rad]")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "vehicle_tire_curves.png", dpi=130)
    plt.close(fig)


def heldout_rollout(test, models, out: Path, seconds: float = 10.0):
    n = round(seconds * 100)
    starts = vehicle.window_starts(test.flags, 0, test.n_samples, n)
    score = [np.mean(np.abs(test.state[k : k + n, 2])) for k in starts[::50]]
    k = int(starts[::50][int(np.argmax(score))])  # the most drifting 10 s of the held-out log
    t = test.time_s[k : k + n + 1] - test.time_s[k]
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    truth = test.state_true if test.state_true is not None else test.state
    labels = ("r [rad/s]", "V [m/s]", "beta [deg]", "omega_r [rad/s]")
    conv = (1.0, 1.0, np.degrees(1.0), 1.0)
    for i, ax in enumerate(axes):
        ax.plot(t, truth[k : k + n + 1, i] * conv[i], "k", lw=3, alpha=0.4, label="plant")
    for name, model in models.items():
        ys = np.asarray(vehicle.rollout_model(model, test.state[k], test.control[k : k + n], 0.01))
        for i, ax in enumerate(axes):
            ax.plot(t, np.clip(ys[:, i], -1e3, 1e3) * conv[i], label=name)
    for ax, lab in zip(axes, labels, strict=True):
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, ncol=4)
    axes[-1].set_xlabel("time [s]")
    axes[0].set_title(f"10-s open-loop rollout on held-out data (t0 = {test.time_s[k]:.1f} s)")
    fig.tight_layout()
    fig.savefig(out / "vehicle_heldout_rollout.png", dpi=130)
    plt.close(fig)


def main(
    out_dir: str = "paper_figures/out",
    seed: int = 0,
    steps: int = 3000,
    tires=vehicle.TIRES,
    cache: str = "benchmarks/out",
    minutes: float = 3.0,
):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plant = vehicle.DriftPlant()
    train, test, _ = sysid_logs(plant, minutes, seed, cache)
    models = _models(plant, train, tires, seed, cache, steps)
    tire_curves(plant, models, out)
    heldout_rollout(test, models, out)
    return sorted(str(p) for p in out.glob("vehicle_*.png"))


if __name__ == "__main__":
    print(main(*(sys.argv[1:2] or [])))
