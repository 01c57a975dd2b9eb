"""`physml sysid`, `physml drift` and the vehicle half of `physml demo`.

- sysid: collect → identify → held-out report, or with `--log FILE.csv --columns MAP.json` a
  user's own table (`read_table`) → identify on its first part → held-out report on its last
  `--heldout-minutes`; with `--out DIR`, the identified model (`model.eqx`,
  `eqx.tree_serialise_leaves`, described by `model.json`), the training log (`train_log.npz`)
  and `sysid_summary.json`. Both identify by the one recipe, `identify_tire`;
- drift: collect → identify → the drift MPC on the plant along a donut or a figure-eight
  (`_drift_run.py`), optionally comparing the chosen tyre with an identified Fiala and the
  un-identified nominal model; `--log` / `--model` reuse what `sysid --out` saved;
- demo: a short sysid run, then a short donut with the model it identified (and its log's
  front-slip envelope).

One module per command (`sysid.py`, `drift.py`; the demo here). Every argument, input file
and output folder is checked before any work (`prepare_*`); see `physml.cli` for the exit
statuses. Thin glue over `collect`, `identify`, `rollout_rmse` and `_drift_run`; no numerics
of its own.
"""

from __future__ import annotations

import time

import jax

from .._drift_run import drive, format_drift_table, make_path
from . import drift, sysid
from .sysid import run_sysid


def demo(seed: int = 0, quick: bool = False) -> dict:
    """The vehicle part of `physml demo`: a short collection and identification on CPU, then
    the drift MPC holding a donut with the model just identified and its log's front-slip
    envelope (`drive(..., log=...)`; 10 s, 1 s with `quick`).

    Keys: those of `run_sysid`'s summary, plus "drift" (`DriftRunResult.summary()`).
    """
    summary, plant, log, model = run_sysid(
        return_model=True,
        tire="neural_exptanh",
        minutes=0.5 if quick else 3.0,
        heldout_minutes=0.25 if quick else 1.0,
        steps=60 if quick else 600,
        seed=seed,
        progress=not quick,
    )
    path = make_path("donut")
    key = jax.random.fold_in(jax.random.key(seed), 1)
    tic = time.perf_counter()
    run = drive(
        "neural_exptanh",
        model,
        plant,
        path,
        1.0 if quick else 10.0,
        key=key,
        time_solves=not quick,
        log=log,
    )
    print(format_drift_table({"neural_exptanh": run}))
    summary["drift"] = {**run.summary(), "wall_time_s": round(time.perf_counter() - tic, 2)}
    return summary


def add_parser(sub) -> None:
    """Add `physml sysid` and `physml drift` to the subcommands `sub`."""
    sysid.add_parser(sub)
    drift.add_parser(sub)
