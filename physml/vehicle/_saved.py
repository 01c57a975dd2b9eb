"""The files of `physml sysid --out DIR` and how `physml drift --log/--model` reads them back:
`model.eqx` (the identified model's leaves), `model.json` (its description: format, version,
tyre, drive map, how to rebuild the structure), `train_log.npz` (`save_log`) and
`sysid_summary.json`. Every file is written atomically; a file that is not what it should be
raises an error naming it."""

from __future__ import annotations

import dataclasses
import importlib.metadata as md
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..kernels import load_tree, save_tree, write_text_atomic
from ._data.log import DriveLog, LogFormatError, load_log, save_log
from ._model.single_track import SingleTrackModel
from ._plant.dynamics import DriftPlant
from ._sysid.identify import make_model, params_from_plant
from ._tires.registry import TIRES

MODEL_FORMAT = "physml.vehicle.SingleTrackModel"
MODEL_FORMAT_VERSION = 3  # 2: VehicleParams.cg_height_m; 3: brake_split_front


def sysid_outputs(
    out_dir: str | Path, summary: dict, log: DriveLog, model: SingleTrackModel, *, seed: int
) -> dict[str, Callable[[], object]]:
    """The files of `physml sysid --out DIR`, as {file: write}, each written atomically:
    `model.eqx` (the identified model's leaves), `model.json` (how to rebuild it: the tyre,
    the plant, the seed, `identify`'s report), `train_log.npz` (`save_log`) and
    `sysid_summary.json`. `physml drift --log DIR/train_log.npz --model DIR/model.eqx` reuses
    them."""
    out = Path(out_dir)
    meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "physml_version": md.version("physml"),
        "tire": summary["tire"],
        "seed": seed,
        "speed_floor_mps": model.speed_floor_mps,
        "drive_map": "gain" if model.params.torque_offset_nm is None else "affine",
        "parameters": "model.eqx",
        "train_log": "train_log.npz",
        "rebuild": "like = make_model(tire, key=jax.random.key(0), speed_floor_mps="
        "speed_floor_mps, params=VehicleParams(torque_offset_nm=0.0 if drive_map == 'affine' "
        "else None)); model = physml.kernels.load_tree('model.eqx', like)",
        "identify": summary["identify"],
    }
    text = lambda obj: json.dumps(obj, indent=2, default=json_default)
    return {
        str(out / "model.eqx"): lambda: save_tree(out / "model.eqx", model),
        str(out / "model.json"): lambda: write_text_atomic(out / "model.json", text(meta)),
        str(out / "train_log.npz"): lambda: save_log(out / "train_log.npz", log),
        str(out / "sysid_summary.json"): lambda: write_text_atomic(
            out / "sysid_summary.json", text(summary)
        ),
    }


def json_default(obj):
    if isinstance(obj, np.ndarray | np.generic | jax.Array):
        value = np.asarray(obj)
        return value.tolist() if np.all(np.isfinite(value)) else str(value.tolist())
    return str(obj)


def read_log(file: Path) -> DriveLog:
    """`load_log`, with any failure to read `file` as a log said as such, naming the file."""
    if not file.is_file():
        raise FileNotFoundError(f"--log {str(file)!r}: no such file.")
    try:
        return load_log(file)
    except LogFormatError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise LogFormatError(
            f"--log {str(file)!r} is not a physml driving log (an .npz written by save_log or "
            f"physml sysid --out): {type(err).__name__}"
        ) from err


def load_model(file: str | Path, plant: DriftPlant) -> tuple[SingleTrackModel, dict]:
    """A model saved by `physml sysid --out` (`file` = its `model.eqx`; `model.json` beside
    it says how to rebuild the structure), in the current default float dtype. Returns the
    model and the description. Raises `ValueError` / `OSError` naming the file."""
    file = Path(file)
    if not file.exists():
        raise FileNotFoundError(f"--model {str(file)!r}: no such file.")
    if file.is_dir():
        raise ValueError(
            f"--model {str(file)!r} is a folder; pass its model file, e.g. "
            f"{str(file / 'model.eqx')!r}."
        )
    sidecar = file.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"--model {str(file)!r} needs its description {str(sidecar)!r} beside it "
            "(both are written by physml sysid --out)."
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(sidecar)!r} is not valid JSON: {err}") from err
    if not (isinstance(meta, dict) and meta.get("format") == MODEL_FORMAT):
        raise ValueError(f"{str(sidecar)!r} does not describe a model written by physml sysid.")
    if meta.get("format_version") != MODEL_FORMAT_VERSION or meta.get("tire") not in TIRES:
        raise ValueError(
            f"{str(sidecar)!r} has format version {meta.get('format_version')!r} and tyre "
            f"{meta.get('tire')!r}; this physml reads version {MODEL_FORMAT_VERSION} with a "
            f"tyre of {TIRES}."
        )
    params = params_from_plant(plant)
    if meta.get("drive_map", "gain") == "affine":
        params = dataclasses.replace(params, torque_offset_nm=0.0)
    like = make_model(
        meta["tire"],
        key=jax.random.key(0),
        params=params,
        speed_floor_mps=float(meta.get("speed_floor_mps", 0.5)),
    )
    model = load_tree(file, like)
    # Saved by a float32 `sysid`, read by the float64 `drift`: take the structure's dtypes.
    model = jax.tree.map(
        lambda x, ref: jnp.asarray(x, ref.dtype) if hasattr(ref, "dtype") else x, model, like
    )
    bad = [
        jax.tree_util.keystr(k)
        for k, x in jax.tree_util.tree_leaves_with_path(model)
        if not np.all(np.isfinite(np.asarray(x)))
    ]
    if bad:
        raise ValueError(f"--model {str(file)!r} holds non-finite parameters ({bad[0]}, ...).")
    return model, meta


__all__ = [
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "json_default",
    "load_model",
    "read_log",
    "sysid_outputs",
]
