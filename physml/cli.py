"""The `physml` command line: thin, no numerics of its own.

physml info            versions, JAX backend and devices, float64 status
physml ground-state    VMC ground state of a spin chain or square lattice (physml.quantum)
physml sysid           collect on the plant, identify a tyre model, held-out RMSE (physml.vehicle)
physml drift           collect → identify → closed-loop drift MPC on the plant (physml.vehicle)
physml demo            a small ground-state estimate, a vehicle identification and a short drift
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import sys
import time

_PACKAGES = (
    "physml",
    "jax",
    "jaxlib",
    "equinox",
    "diffrax",
    "optimistix",
    "optax",
    "netket",
    "numpyro",
)


def info() -> dict:
    """Versions of physml and its numerical stack, the JAX backend and devices."""
    import jax

    out: dict = {}
    for name in _PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    out["python"] = sys.version.split()[0]
    out["backend"] = jax.default_backend()
    out["devices"] = [str(d) for d in jax.devices()]
    out["float64"] = bool(jax.config.jax_enable_x64)
    return out


def _cmd_info(args: argparse.Namespace) -> int:
    data = info()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        width = max(map(len, data))
        for k, v in data.items():
            print(f"{k:<{width}}  {', '.join(v) if isinstance(v, list) else v}")
    return 0


def _optional(module: str):
    """Import a domain CLI module if that part of physml is installed, else None."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and (module == e.name or module.startswith(e.name + ".")):
            return None
        raise


def _cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    summary: dict = {"info": info()}
    parts = [("quantum", "physml.quantum._cli"), ("vehicle", "physml.vehicle._cli")]
    ran = 0
    for name, module in parts:
        mod = _optional(module)
        if mod is None or not hasattr(mod, "demo"):
            print(f"[demo] {name}: not available in this build, skipped")
            continue
        print(f"[demo] {name} ...", flush=True)
        summary[name] = mod.demo(seed=args.seed, quick=args.quick)
        ran += 1
    summary["wall_time_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps({k: v for k, v in summary.items() if k != "info"}, indent=2, default=str))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2, default=str)
    return 0 if ran or args.allow_empty else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="physml", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="versions, JAX backend and devices")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "demo", help="small ground-state, identification and drift runs on CPU defaults"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="even smaller sizes (for smoke tests)")
    p.add_argument("--out", default=None, help="write a JSON summary here")
    p.add_argument("--allow-empty", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_demo)

    for module in ("physml.quantum._cli", "physml.vehicle._cli"):
        mod = _optional(module)
        if mod is not None and hasattr(mod, "add_parser"):
            mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
