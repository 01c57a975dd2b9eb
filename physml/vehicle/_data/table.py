"""A user's driving table (CSV with their own column names, units and rate) as a `DriveLog`.

`TableSchema` says which column holds which signal and in which unit (a JSON object, documented
in `TableSchema.from_mapping`); `read_table` reads the CSV, converts every signal to SI and the
sign conventions of `DriveLog` (ISO 8855), derives the model's states where the table has other
ones, resamples to the model's uniform rate (100 Hz) and splits at gaps:

    V = √(v_x² + v_y²),  β = atan2(v_y, v_x)      (body-frame velocity at the centre of mass)
    ω_r = (ω_rl + ω_rr) / 2                       (rear axle: mean of the rear wheels)
    ω_r = v_w / R                                 (a wheel speed logged as a linear speed, R =
                                                   the schema's `vehicle.wheel_radius_m`)
    δ = δ_handwheel / ratio                       (steering ratio; `ratio` 1 for a road-wheel angle)

Rows with an empty or non-finite cell in a mapped column are dropped; every signal is linearly
interpolated onto t_0 + k / rate within each stretch of the table without a step longer than
`max_gap_s`; the stretches are joined on one uniform clock, the first sample of each later one
flagged `FLAG_RESET` (it does not follow from the one before, so no identification window spans
a gap). The drive input is "torque" (the wheel torque [N m]: drive at the rear wheels, a brake
torque summed over both axles, which the model splits by `VehicleParams.brake_split_front`
given in the schema's "vehicle") or a command,
"throttle" or "engine_torque", whose map to the wheel torque is unknown: the model then learns
the affine map E(τ) = k_τ τ + τ_0 of Djeumou et al., CoRL 2024, A.1 (`TableSchema.vehicle_params`).
CSV only (pandas and pyarrow are not dependencies): a parquet log converts with
`pandas.read_parquet(src).to_csv(dst, index=False)`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._model.params import VehicleParams
from .log import FLAG_RESET, MIN_SAMPLES, DriveLog, LogFormatError, validate_log

#: SI factor of each unit, by kind of quantity.
UNITS: dict[str, dict[str, float]] = {
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "angle": {"rad": 1.0, "deg": math.pi / 180.0},
    "angular_rate": {"rad/s": 1.0, "deg/s": math.pi / 180.0, "rpm": 2.0 * math.pi / 60.0},
    "speed": {"m/s": 1.0, "km/h": 1.0 / 3.6, "mph": 0.44704},
    "torque": {"N*m": 1.0, "Nm": 1.0, "kN*m": 1e3},
    "fraction": {"1": 1.0, "%": 0.01},
}
#: The signals a schema can map, and the kinds of unit each accepts.
SIGNALS: dict[str, tuple[str, ...]] = {
    "time": ("time",),
    "steering": ("angle",),
    "yaw_rate": ("angular_rate",),
    "speed": ("speed",),
    "sideslip": ("angle",),
    "vx": ("speed",),
    "vy": ("speed",),
    "wheel_speed": ("angular_rate", "speed"),
    "wheel_speed_rl": ("angular_rate", "speed"),
    "wheel_speed_rr": ("angular_rate", "speed"),
    "torque": ("torque",),
    "throttle": ("fraction",),
    "engine_torque": ("torque",),
}
#: Exactly one group of each line must be mapped.
_ALTERNATIVES = (
    (("time",),),
    (("steering",),),
    (("yaw_rate",),),
    (("speed", "sideslip"), ("vx", "vy")),
    (("wheel_speed",), ("wheel_speed_rl", "wheel_speed_rr")),
    (("torque",), ("throttle",), ("engine_torque",)),
)
#: Drive inputs that are commands: their map to the wheel torque is learned (affine).
COMMANDS = ("throttle", "engine_torque")
_OPTIONS = {"vehicle", "max_gap_s", "min_segment_s", "delimiter"}


@dataclasses.dataclass(frozen=True)
class Column:
    """One mapped signal: its column, its unit, and the factor to SI (unit · sign / ratio for
    the steering, unit · sign · ratio for a torque)."""

    name: str
    unit: str
    factor: float
    linear_wheel_speed: bool = False


def _fail(where: str, why: str) -> LogFormatError:
    return LogFormatError(f"{where}: {why}")


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0):
        want = "a finite number > 0" if positive else "a finite number"
        raise _fail(where, f"must be {want}, got {value!r}.")
    return float(value)


def _column(signal: str, spec: Any, wheel_radius_m: float) -> Column:
    where = f"the schema's {signal!r}"
    if not isinstance(spec, Mapping) or not isinstance(spec.get("column"), str):
        raise _fail(
            where, f'must be an object {{"column": NAME, "unit": UNIT, ...}}, got {spec!r}.'
        )
    extra = set(spec) - {"column", "unit", "ratio", "sign"}
    if extra:
        raise _fail(where, f"has unknown keys {sorted(extra)}; expected column, unit, ratio, sign.")
    unit = spec.get("unit")
    kinds = SIGNALS[signal]
    known = {u: (kind, f) for kind in kinds for u, f in UNITS[kind].items()}
    if unit not in known:
        raise _fail(where, f"unit {unit!r} does not parse; expected one of {sorted(known)}.")
    kind, factor = known[unit]
    sign = spec.get("sign", 1)
    if sign not in (1, -1):
        raise _fail(where, f"sign must be 1 or -1 (to flip a sign convention), got {sign!r}.")
    ratio = _number(spec.get("ratio", 1.0), f"{where} ratio")
    if "ratio" in spec and signal not in ("steering", "torque", "engine_torque"):
        raise _fail(where, "takes no ratio (only steering, torque and engine_torque do).")
    factor *= sign / ratio if signal == "steering" else sign * ratio
    linear = kind == "speed" and signal.startswith("wheel_speed")
    if linear:
        factor /= wheel_radius_m
    return Column(spec["column"], unit, factor, linear)


@dataclasses.dataclass(frozen=True)
class TableSchema:
    """Which column of a user's table holds which signal, and in which unit (`from_mapping`).

    Attributes:
        columns: {signal: `Column`}, the signals of `SIGNALS` that the table has.
        vehicle: the car's `VehicleParams` (mass, inertias, geometry, wheel radius).
        max_gap_s: a step between rows longer than this [s] splits the table.
        min_segment_s: stretches shorter than this [s] are dropped.
        delimiter: the CSV field separator.
        mapping: the JSON object it was built from.
    """

    columns: dict[str, Column]
    vehicle: VehicleParams
    max_gap_s: float
    min_segment_s: float
    delimiter: str
    mapping: dict

    @classmethod
    def from_mapping(cls, mapping: Mapping) -> TableSchema:
        """A schema from a JSON-like object, for example

            {"time": {"column": "t_ms", "unit": "ms"},
             "steering": {"column": "hw_angle", "unit": "deg", "ratio": 15.0},
             "yaw_rate": {"column": "gyro_z", "unit": "deg/s"},
             "vx": {"column": "vel_x", "unit": "km/h"}, "vy": {"column": "vel_y", "unit": "km/h"},
             "wheel_speed_rl": {"column": "ws_rl", "unit": "rpm"},
             "wheel_speed_rr": {"column": "ws_rr", "unit": "rpm"},
             "throttle": {"column": "pedal", "unit": "%"},
             "vehicle": {"mass_kg": 1600, "wheel_radius_m": 0.33},
             "max_gap_s": 0.2}

        One of each: "time"; "steering" (the road-wheel angle, or the handwheel angle with
        `ratio` = the steering ratio); "yaw_rate"; "speed" and "sideslip", or "vx" and "vy" (body
        frame at the centre of mass, y to the left); "wheel_speed" (the rear axle's), or
        "wheel_speed_rl" and "wheel_speed_rr"; "torque" (the wheel torque: drive at the rear
        wheels, brakes summed over both axles; `ratio` from the logged shaft to the wheels),
        or a command "throttle" or "engine_torque" (its map to the wheel torque is learned).
        Units: see `UNITS`; a wheel speed in a linear unit is divided by
        `vehicle.wheel_radius_m`. "sign": -1 flips a signal to ISO 8855 (left, up positive).
        Optional: "vehicle" (fields of `VehicleParams`, default its Supra prior), "max_gap_s"
        (default 0.1), "min_segment_s" (default 1.0), "delimiter" (default ",").

        Raises:
            LogFormatError: a signal missing or given twice, an unknown key, a unit that does
                not parse, a bad ratio, sign or option.
        """
        if not isinstance(mapping, Mapping):
            raise _fail("the schema", f"must be a JSON object, got {type(mapping).__name__}.")
        unknown = set(mapping) - set(SIGNALS) - _OPTIONS
        if unknown:
            raise _fail(
                "the schema",
                f"has unknown keys {sorted(unknown)}; signals are {list(SIGNALS)}, options "
                f"{sorted(_OPTIONS)}.",
            )
        for options in _ALTERNATIVES:
            given = [group for group in options if any(s in mapping for s in group)]
            if len(given) != 1 or not all(s in mapping for s in given[0]):
                want = " or ".join("+".join(group) for group in options)
                raise _fail(
                    "the schema",
                    f"must map {want}; got {[s for g in options for s in g if s in mapping]}.",
                )
        vehicle = mapping.get("vehicle", {})
        fields = {f.name for f in dataclasses.fields(VehicleParams)} - {"torque_offset_nm"}
        if not isinstance(vehicle, Mapping) or set(vehicle) - fields:
            raise _fail(
                "the schema's 'vehicle'",
                f"must be an object with fields of VehicleParams {sorted(fields)}, got "
                f"{vehicle!r}.",
            )
        # VehicleParams checks each value's range (h ≥ 0, b_f ∈ [0, 1), the rest > 0).
        values = {
            k: _number(v, f"the schema's vehicle.{k}", positive=False) for k, v in vehicle.items()
        }
        try:
            params = VehicleParams(**values)
        except ValueError as err:
            raise _fail("the schema's 'vehicle'", str(err)) from err
        radius = float(params.wheel_radius_m)
        columns = {s: _column(s, mapping[s], radius) for s in SIGNALS if s in mapping}
        delimiter = mapping.get("delimiter", ",")
        if not (isinstance(delimiter, str) and len(delimiter) == 1):
            raise _fail("the schema's 'delimiter'", f"must be one character, got {delimiter!r}.")
        return cls(
            columns,
            params,
            _number(mapping.get("max_gap_s", 0.1), "the schema's 'max_gap_s'"),
            _number(mapping.get("min_segment_s", 1.0), "the schema's 'min_segment_s'"),
            delimiter,
            json.loads(json.dumps(mapping)),
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> TableSchema:
        """`from_mapping` of the JSON file at `path` (its errors prefixed with the file's name;
        LogFormatError also if it is not JSON)."""
        where = repr(os.fspath(path))
        with open(path, encoding="utf-8") as f:
            try:
                mapping = json.load(f)
            except json.JSONDecodeError as err:
                raise _fail(where, f"is not valid JSON: {err}") from err
        try:
            return cls.from_mapping(mapping)
        except LogFormatError as err:
            raise _fail(where, str(err)) from None

    @property
    def drive_input(self) -> str:
        """ "torque", "throttle" or "engine_torque": what the log's τ column holds."""
        return next(s for s in ("torque", *COMMANDS) if s in self.columns)

    def vehicle_params(self) -> VehicleParams:
        """The car's parameters for identification: `vehicle`, with an affine drive map
        (`torque_offset_nm` = 0, learned with `torque_gain`) where the drive input is a command."""
        if self.drive_input not in COMMANDS:
            return self.vehicle
        return dataclasses.replace(self.vehicle, torque_offset_nm=0.0)


def _read_columns(path: str | os.PathLike, schema: TableSchema) -> dict[str, np.ndarray]:
    """The mapped columns of the CSV at `path` as float arrays (empty cells as NaN)."""
    where = repr(os.fspath(path))
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter=schema.delimiter)
        header = next(rows, None)
        if header is None:
            raise _fail(where, "is empty; expected a CSV table with a header row.")
        header = [h.strip() for h in header]
        index = {}
        for signal, col in schema.columns.items():
            if col.name not in header:
                raise _fail(
                    where,
                    f"has no column {col.name!r} (the schema's {signal!r}); its columns are "
                    f"{header}.",
                )
            index[signal] = header.index(col.name)
        values = {s: [] for s in index}
        for line, row in enumerate(rows, start=2):
            if not row:
                continue
            for signal, i in index.items():
                cell = row[i].strip() if i < len(row) else ""
                try:
                    values[signal].append(float(cell) if cell else math.nan)
                except ValueError:
                    raise _fail(
                        where,
                        f"line {line}, column {schema.columns[signal].name!r}: {cell!r} is not "
                        "a number.",
                    ) from None
    return {s: np.asarray(v, float) for s, v in values.items()}


def _signals(raw: dict[str, np.ndarray], schema: TableSchema) -> tuple[np.ndarray, ...]:
    """(t [s], states (n, 4), controls (n, 2)) in SI from the table's columns."""
    si = {s: raw[s] * col.factor for s, col in schema.columns.items()}
    if "vx" in si:
        speed, beta = np.hypot(si["vx"], si["vy"]), np.arctan2(si["vy"], si["vx"])
    else:
        speed, beta = si["speed"], si["sideslip"]
    if "wheel_speed" in si:
        omega = si["wheel_speed"]
    else:
        omega = 0.5 * (si["wheel_speed_rl"] + si["wheel_speed_rr"])
    state = np.stack([si["yaw_rate"], speed, beta, omega], axis=-1)
    control = np.stack([si["steering"], si[schema.drive_input]], axis=-1)
    return si["time"], state, control


def read_table(
    path: str | os.PathLike,
    schema: TableSchema | Mapping,
    *,
    rate_hz: float = 100.0,
    min_samples: int = MIN_SAMPLES,
) -> DriveLog:
    """A `DriveLog` at `rate_hz` from the CSV table at `path` (see the module docstring).

    Args:
        path: a CSV file with a header row.
        schema: a `TableSchema`, or the JSON-like object of `TableSchema.from_mapping`.
        rate_hz: the log's uniform rate [Hz] (100: the rate `identify`'s windows assume).
        min_samples: the fewest samples the log may keep after splitting at gaps.

    Returns:
        The log, its clock starting at 0 s (a table's clock may be a Unix time, too coarse in
        float64 for a 10-ms grid); `metadata` holds the source, the schema, `rate_hz`,
        `drive_input`, `segments` ([start, stop] of each kept stretch in the table's clock
        [s]), `dropped_rows` and `dropped_segments`.

    Raises:
        FileNotFoundError: no file at `path`.
        LogFormatError: a bad schema, a mapped column missing, a cell that is not a number, a
            time that does not strictly increase, or fewer than `min_samples` samples left
            after dropping incomplete rows and splitting at gaps.
    """
    schema = schema if isinstance(schema, TableSchema) else TableSchema.from_mapping(schema)
    rate_hz = _number(rate_hz, "`rate_hz`")
    where = repr(os.fspath(path))
    raw = _read_columns(path, schema)
    t, state, control = _signals(raw, schema)
    complete = np.isfinite(t) & np.all(np.isfinite(state), 1) & np.all(np.isfinite(control), 1)
    t, state, control = t[complete], state[complete], control[complete]
    steps = np.diff(t)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise _fail(
            where,
            f"time (column {schema.columns['time'].name!r}) must be strictly increasing; "
            f"{float(t[k])!r} s is followed by {float(t[k + 1])!r} s (rows with empty cells "
            "dropped).",
        )
    cuts = np.flatnonzero(steps > schema.max_gap_s) + 1
    bounds = list(zip(np.r_[0, cuts], np.r_[cuts, t.size], strict=True))
    period = 1.0 / rate_hz
    parts, segments, dropped = [], [], 0
    for lo, hi in bounds:
        if t[hi - 1] - t[lo] < schema.min_segment_s:
            dropped += 1
            continue
        grid = t[lo] + period * np.arange(int(np.floor((t[hi - 1] - t[lo]) / period + 1e-9)) + 1)
        interp = lambda y, lo=lo, hi=hi, grid=grid: np.stack(
            [np.interp(grid, t[lo:hi], y[lo:hi, j]) for j in range(y.shape[1])], axis=-1
        )
        parts.append((interp(state), interp(control)))
        segments.append([float(t[lo]), float(t[hi - 1])])
    n = sum(p[0].shape[0] for p in parts)
    if n < min_samples:
        raise _fail(
            where,
            f"{n} samples at {rate_hz:g} Hz remain after dropping {int(np.sum(~complete))} "
            f"incomplete rows and splitting at {cuts.size} gaps longer than "
            f"max_gap_s = {schema.max_gap_s:g} s (stretches under min_segment_s = "
            f"{schema.min_segment_s:g} s dropped); at least {min_samples} are required.",
        )
    flags = np.zeros(n, np.int64)
    flags[np.cumsum([p[0].shape[0] for p in parts])[:-1]] = FLAG_RESET
    log = DriveLog(
        time_s=period * np.arange(n),
        state=np.concatenate([p[0] for p in parts]),
        control=np.concatenate([p[1] for p in parts]),
        flags=flags,
        metadata={
            "source": os.fspath(path),
            "schema": schema.mapping,
            "rate_hz": rate_hz,
            "drive_input": schema.drive_input,
            "segments": segments,
            "dropped_rows": int(np.sum(~complete)),
            "dropped_segments": dropped,
        },
    )
    validate_log(log, min_samples=min_samples)
    return log
