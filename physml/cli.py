"""The `physml` command line: thin, no numerics of its own.

physml info            versions, JAX backend and devices, float64 status
physml ground-state    VMC ground state of a spin chain or square lattice (physml.quantum)
physml sysid           collect on the plant, identify a tyre model, held-out RMSE (physml.vehicle)
physml drift           collect → identify → closed-loop drift MPC on the plant (physml.vehicle)
physml demo            a small ground-state estimate, a vehicle identification and a short drift

Each subcommand registers `prepare(args) -> work`: `prepare` checks every argument, every input
file and every output location and builds what the run needs, without doing the work; `work()`
runs and returns the exit status. `main` turns an error raised by `prepare` (argparse's own, a
`ValueError` / `TypeError` from physml's boundary checks, an unreadable input or unwritable
output, `OSError`) into one line `physml <command>: error: <message>` and exit status 2
(`--traceback` re-raises it). An error raised by `work()` is a crash and keeps its traceback:
a long run is not repeated just to see where it failed. Exit statuses: 0 done; 1 the run
finished but failed (e.g. the drift did not hold) or an output could not be written (the result
is still printed); 2 bad arguments, before any work.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from .kernels import OutputWriteError, check_writable, write_text_atomic

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

#: What a subcommand's `prepare(args)` returns: the work, returning the exit status.
Work = Callable[[], int]


# -- argument types ---------------------------------------------------------------------------


def bounded(
    kind: type,
    low: int | float | None = None,
    high: int | float | None = None,
    *,
    closed: str = "[]",
    unit: str = "",
) -> Callable[[str], int | float]:
    """An argparse `type=` for a finite `kind` (int or float) within [low, high] (`closed`
    says which ends are included: "[]", "(]", "[)", "()"; None: unbounded on that side), with
    the bound said in the user's `unit`: "expected a float > 0, got 'x'" when `text` is not
    a number, "must be > 0, got '-1'" when it is out of range."""
    lo_ok = (lambda v: v >= low) if closed[0] == "[" else (lambda v: v > low)
    hi_ok = (lambda v: v <= high) if closed[1] == "]" else (lambda v: v < high)
    u = f" {unit}" if unit else ""
    num = (lambda x: f"{x:d}") if kind is int else (lambda x: f"{x:g}")
    if low is None and high is None:
        bound = ""
    elif high is None:
        bound = f"{'>=' if closed[0] == '[' else '>'} {num(low)}{u}"
    elif low is None:
        bound = f"{'<=' if closed[1] == ']' else '<'} {num(high)}{u}"
    else:
        bound = f"in {closed[0]}{num(low)}, {num(high)}{closed[1]}{u}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a {kind.__name__}{' ' * bool(bound)}{bound}, got {text!r}"
            ) from None
        if not (
            math.isfinite(value)
            and (low is None or lo_ok(value))
            and (high is None or hi_ok(value))
        ):
            raise argparse.ArgumentTypeError(f"must be {bound or 'finite'}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def positive(kind: type = float, *, unit: str = "") -> Callable[[str], int | float]:
    """An argparse `type=`: a finite `kind` > 0."""
    return bounded(kind, 0, closed="()", unit=unit)


#: A PRNG seed: an int in [0, 2³²).
seed = bounded(int, 0, 2**32 - 1)
#: Any finite float (a field, a coupling).
finite_float = bounded(float)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, unless the help already states it or there is
    none to state (a flag, an option that defaults to None: "not given")."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (
            "default" in text
            or action.nargs == 0  # a flag: --quick, --pbc
            or action.default in (None, argparse.SUPPRESS)
        ):
            return text
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse with defaults in every help and usage errors on one line, exit status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def one_line(err: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(err).split()) or type(err).__name__


def write_outputs(command: str, writers: dict[str, Callable[[], object]]) -> int:
    """Run each writer (`{file: write}`); a write that fails is said on stderr on one line
    ("physml <command>: could not write <file>: <reason>"), the others still run. Returns 0 if
    all were written, else 1."""
    failed = 0
    for name, write in writers.items():
        try:
            write()
        except OSError as err:  # OutputWriteError, or an OSError of a writer not yet atomic
            reason = err.reason if isinstance(err, OutputWriteError) else one_line(err)
            print(f"physml {command}: could not write {name}: {reason}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


# -- physml info ------------------------------------------------------------------------------


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


def _prepare_info(args: argparse.Namespace) -> Work:
    def work() -> int:
        data = info()
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            width = max(map(len, data))
            for k, v in data.items():
                print(f"{k:<{width}}  {', '.join(v) if isinstance(v, list) else v}")
        return 0

    return work


# -- physml demo ------------------------------------------------------------------------------


def _optional(module: str):
    """Import a domain CLI module if that part of physml is installed, else None."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and (module == e.name or module.startswith(e.name + ".")):
            return None
        raise


def _prepare_demo(args: argparse.Namespace) -> Work:
    if args.out is not None:
        check_writable(args.out, kind="file", name="--out")

    def work() -> int:
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
        status = 0 if ran or args.allow_empty else 1
        if args.out is not None:
            text = json.dumps(summary, indent=2, default=str)
            status = max(
                status,
                write_outputs("demo", {str(args.out): lambda: write_text_atomic(args.out, text)}),
            )
        return status

    return work


# -- the parser and main ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="physml",
        description=__doc__.split("\n")[0],
        epilog="Exit status: 0 done; 1 the run finished but failed or an output could not be "
        "written (the result is still printed); 2 bad arguments, refused before any work.",
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback of an argument error instead of one line",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="versions, JAX backend and devices")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(prepare=_prepare_info)

    p = sub.add_parser(
        "demo",
        help="small ground-state, identification and drift runs on CPU defaults",
        description="A small ground-state estimate (TFIM, N = 12), a short vehicle "
        "identification and a short drift with the model it identified; prints a JSON summary.",
    )
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed of every part")
    p.add_argument("--quick", action="store_true", help="even smaller sizes (for smoke tests)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the JSON summary (with versions) to FILE; checked writable first "
        "(default: not written)",
    )
    p.add_argument("--allow-empty", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(prepare=_prepare_demo)

    for module in ("physml.quantum._cli", "physml.vehicle._cli"):
        mod = _optional(module)
        if mod is not None and hasattr(mod, "add_parser"):
            mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, prepare the subcommand (argument errors: one line on stderr, exit status 2,
    before any work) and run it (see the module docstring for the exit statuses)."""
    args = build_parser().parse_args(argv)
    try:
        work = args.prepare(args)
    except (ValueError, TypeError, OSError) as err:
        if args.traceback:
            raise
        print(f"physml {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 2
    return int(work() or 0)


if __name__ == "__main__":
    sys.exit(main())
