"""Driving logs: the `DriveLog` record and its versioned `.npz` format.

One `.npz` archive per log, schema version 1 (the keys, dtypes, shapes and units are listed in
`save_log`): measured states (r, V, β, ω_r), the controls (δ, τ) that acted on the car, flags,
the manoeuvre of every sample and JSON metadata. `save_log` writes it atomically (a failed
write leaves an earlier file as it was); `load_log` reads and validates it, and raises
`LogFormatError` for a file that is damaged, is not a physml log, or breaks the schema.

Sign conventions (ISO 8855, x forward, y left, z up): r > 0 turning left; β > 0 when the
velocity points left of the heading; δ > 0 steers left; τ > 0 drives the rear wheels, τ < 0
brakes (split front/rear by the plant); ω_r ≥ 0 rolling forward.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
import zlib
from typing import Any

import numpy as np

from ...kernels import write_atomic

SCHEMA_VERSION = 1
STATE_COLUMNS = ("r", "V", "beta", "omega_r")
STATE_UNITS = ("rad/s", "m/s", "rad", "rad/s")
CONTROL_COLUMNS = ("delta", "tau")
CONTROL_UNITS = ("rad", "N*m")
FLAG_INVALID = 1
FLAG_RESET = 2
#: Default minimum length of a log [samples]: 1 s at 100 Hz.
MIN_SAMPLES = 100


class LogFormatError(ValueError):
    """A driving log that is damaged, is not a physml log, or does not follow the schema."""


@dataclasses.dataclass(frozen=True, eq=False)
class DriveLog:
    """A driving log: measured states, controls, flags and metadata (see module docstring).

    Attributes:
        time_s: (T,) sample times [s], strictly increasing.
        state: (T, 4) measured [r (rad/s), V (m/s), beta (rad), omega_r (rad/s)].
        control: (T, 2) [delta (rad), tau (N·m)], zero-order hold over [time_s[k], time_s[k+1]).
        state_true: (T, 4) noise-free states, or None for a real log.
        flags: (T,) int bit mask, 0 = good sample (`FLAG_INVALID`, `FLAG_RESET`).
        manoeuvre: (T,) int index into `manoeuvre_names`.
        manoeuvre_names: names of the manoeuvres.
        metadata: JSON-serialisable dict (rates, seed, settings).
    """

    time_s: np.ndarray
    state: np.ndarray
    control: np.ndarray
    state_true: np.ndarray | None = None
    flags: np.ndarray | None = None
    manoeuvre: np.ndarray | None = None
    manoeuvre_names: tuple[str, ...] = ("unknown",)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        for name in ("time_s", "state", "control", "state_true", "flags", "manoeuvre"):
            if getattr(self, name) is not None:
                set_(name, np.asarray(getattr(self, name)))
        n = self.time_s.shape[0] if self.time_s.ndim == 1 else None
        if self.flags is None and n is not None:
            set_("flags", np.zeros(n, np.int64))
        if self.manoeuvre is None and n is not None:
            set_("manoeuvre", np.zeros(n, np.int64))
        set_("manoeuvre_names", tuple(str(s) for s in self.manoeuvre_names))
        validate_log(self, min_samples=1)

    @property
    def n_samples(self) -> int:
        return int(self.time_s.shape[0])

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0])

    @property
    def good(self) -> np.ndarray:
        """(T,) bool: samples with no flag set."""
        return self.flags == 0

    def window(self, start_s: float, stop_s: float) -> DriveLog:
        """The samples with start_s <= time_s < stop_s, as a new log (e.g. a time split)."""
        keep = (self.time_s >= start_s) & (self.time_s < stop_s)
        if not keep.any():
            raise ValueError(
                f"DriveLog.window({start_s!r}, {stop_s!r}) selects no sample; the log covers "
                f"[{self.time_s[0]!r}, {self.time_s[-1]!r}] s."
            )
        opt = lambda a: None if a is None else a[keep]
        return dataclasses.replace(
            self,
            time_s=self.time_s[keep],
            state=self.state[keep],
            control=self.control[keep],
            state_true=opt(self.state_true),
            flags=self.flags[keep],
            manoeuvre=self.manoeuvre[keep],
        )


def _check_array(name: str, value: Any, shape: tuple[int | None, ...], kind: str) -> np.ndarray:
    arr = np.asarray(value)
    ok_kind = (
        np.issubdtype(arr.dtype, np.floating)
        if kind == "float"
        else np.issubdtype(arr.dtype, np.integer)
    )
    if not ok_kind:
        raise LogFormatError(f"`{name}` must be a {kind} array, got dtype {arr.dtype}.")
    if arr.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)
    ):
        want = "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"
        raise LogFormatError(f"`{name}` must have shape {want}, got {arr.shape}.")
    return arr


def validate_log(log: DriveLog, *, min_samples: int = MIN_SAMPLES) -> None:
    """Check shapes, dtypes, finiteness, monotonic time and length; raise `LogFormatError`."""
    time_s = _check_array("time_s", log.time_s, (None,), "float")
    n = time_s.shape[0]
    if n < min_samples:
        raise LogFormatError(
            f"The log has {n} samples; at least {min_samples} are required "
            "(pass min_samples=... to load_log to accept shorter logs)."
        )
    _check_array("state", log.state, (n, 4), "float")
    _check_array("control", log.control, (n, 2), "float")
    if log.state_true is not None:
        _check_array("state_true", log.state_true, (n, 4), "float")
    _check_array("flags", log.flags, (n,), "int")
    man = _check_array("manoeuvre", log.manoeuvre, (n,), "int")
    if n and (man.min() < 0 or man.max() >= len(log.manoeuvre_names)):
        raise LogFormatError(
            f"`manoeuvre` indices must lie in [0, {len(log.manoeuvre_names)}) "
            f"(len(manoeuvre_names)), got the range [{man.min()}, {man.max()}]."
        )
    for name in ("time_s", "state", "control", "state_true"):
        arr = getattr(log, name)
        if arr is not None and not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(np.asarray(arr)))[0]
            raise LogFormatError(
                f"`{name}` must be finite; found {np.asarray(arr)[tuple(bad)]!r} at index "
                f"{tuple(int(i) for i in bad)}. Drop or repair those samples before logging."
            )
    if n > 1 and not np.all(np.diff(time_s) > 0):
        k = int(np.argmin(np.diff(time_s)))
        raise LogFormatError(
            f"`time_s` must be strictly increasing; time_s[{k}] = {time_s[k]!r} is followed by "
            f"time_s[{k + 1}] = {time_s[k + 1]!r}."
        )


def save_log(path: str | os.PathLike, log: DriveLog) -> None:
    """Write `log` to `path` as a `.npz` archive of schema version 1, atomically.

    =================  ==============  ===========================================================
    key                dtype, shape    meaning
    =================  ==============  ===========================================================
    schema_version     int64, ()       1
    time_s             float64, (T,)   sample times [s], strictly increasing (100 Hz from `collect`)
    state              float64, (T, 4) measured [r, V, beta, omega_r]
    state_columns      str, (4,)       "r", "V", "beta", "omega_r"
    state_units        str, (4,)       "rad/s", "m/s", "rad", "rad/s"
    control            float64, (T, 2) [delta, tau] acting on the car: delta is the front-wheel
                                       angle at time_s[k] (the steering servo moves it by at most
                                       |δ̇|·dt = 0.02 rad until time_s[k+1]); tau is the wheel torque
                                       held from time_s[k] to time_s[k+1] (zero-order hold)
    control_columns    str, (2,)       "delta", "tau"
    control_units      str, (2,)       "rad", "N*m"
    state_true         float64, (T, 4) optional: noise-free [r, V, beta, omega_r] (simulation only)
    flags              int64, (T,)     bit 1: outside the plant's valid range (spin-out, too slow,
                                       non-finite); bit 2: the state was reset at this sample, so
                                       it does not follow from the previous one. 0 = good data.
    manoeuvre          int64, (T,)     index into `manoeuvre_names` of the manoeuvre being driven
    manoeuvre_names    str, (M,)       names of the manoeuvres
    metadata_json      str, ()         JSON object: rates, seed, plant and sensor settings, ...
    =================  ==============  ===========================================================

    Raises:
        physml.kernels.OutputWriteError: the file could not be written (e.g. a full disk,
            ENOSPC); an earlier file at `path` is then left as it was.
    """
    if not isinstance(log, DriveLog):
        raise TypeError(f"`log` must be a DriveLog, got {type(log).__name__}.")
    arrays = {
        "schema_version": np.asarray(SCHEMA_VERSION, np.int64),
        "time_s": np.asarray(log.time_s, np.float64),
        "state": np.asarray(log.state, np.float64),
        "state_columns": np.asarray(STATE_COLUMNS),
        "state_units": np.asarray(STATE_UNITS),
        "control": np.asarray(log.control, np.float64),
        "control_columns": np.asarray(CONTROL_COLUMNS),
        "control_units": np.asarray(CONTROL_UNITS),
        "flags": np.asarray(log.flags, np.int64),
        "manoeuvre": np.asarray(log.manoeuvre, np.int64),
        "manoeuvre_names": np.asarray(log.manoeuvre_names),
        "metadata_json": np.asarray(json.dumps(log.metadata)),
    }
    if log.state_true is not None:
        arrays["state_true"] = np.asarray(log.state_true, np.float64)
    write_atomic(path, lambda f: np.savez(f, **arrays))


_REQUIRED = (
    "schema_version",
    "time_s",
    "state",
    "state_columns",
    "state_units",
    "control",
    "control_columns",
    "control_units",
    "flags",
    "manoeuvre",
    "manoeuvre_names",
    "metadata_json",
)


#: What reading a damaged or foreign file raises inside numpy and zipfile.
_READ_ERRORS = (zipfile.BadZipFile, EOFError, ValueError, zlib.error)


def _not_a_log(path: str | os.PathLike, why: str) -> LogFormatError:
    return LogFormatError(
        f"{os.fspath(path)!r} is damaged or is not a physml driving log ({why}); expected the "
        ".npz archive that `save_log` writes. Collect the log again or restore a good copy."
    )


def _read_archive(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of the `.npz` archive at `path`, without pickles."""
    try:
        data = np.load(path, allow_pickle=False)
    except _READ_ERRORS as err:
        why = (
            "the file is empty"
            if os.path.getsize(path) == 0
            else "not a complete .npz archive: truncated or damaged"
            if isinstance(err, zipfile.BadZipFile | EOFError)
            else "not an .npz archive"
        )
        raise _not_a_log(path, why) from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise _not_a_log(path, "a single .npy array, not an .npz archive")
    try:
        with data:
            return {k: data[k] for k in data.files}
    except _READ_ERRORS as err:
        raise _not_a_log(path, f"an array cannot be read: {type(err).__name__}") from err


def load_log(path: str | os.PathLike, *, min_samples: int = MIN_SAMPLES) -> DriveLog:
    """Read and validate a log written by `save_log`.

    Raises:
        FileNotFoundError: there is no file at `path`.
        LogFormatError: the file is damaged (truncated, empty) or not a physml log (another
            format, metadata that is not a JSON object), or it fails a check of the schema:
            version, missing keys, column names, units, shapes, non-finite values, time not
            strictly increasing, or fewer than `min_samples` samples. The message names the
            file or the failed check.
    """
    data = _read_archive(path)
    found = set(data)
    missing = [k for k in _REQUIRED if k not in found]
    if "schema_version" in found and (
        data["schema_version"].shape != () or int(data["schema_version"]) != SCHEMA_VERSION
    ):
        raise LogFormatError(
            f"{os.fspath(path)!r} has schema version {data['schema_version']}; this physml "
            f"reads version {SCHEMA_VERSION}."
        )
    if missing:
        raise LogFormatError(
            f"{os.fspath(path)!r} lacks the keys {missing} of schema version {SCHEMA_VERSION}."
        )
    for key, want in (
        ("state_columns", STATE_COLUMNS),
        ("state_units", STATE_UNITS),
        ("control_columns", CONTROL_COLUMNS),
        ("control_units", CONTROL_UNITS),
    ):
        got = tuple(str(s) for s in np.atleast_1d(data[key]))
        if got != want:
            raise LogFormatError(f"`{key}` must be {want}, got {got}.")
    try:
        metadata = json.loads(str(data["metadata_json"]))
    except json.JSONDecodeError as err:
        raise _not_a_log(path, f"`metadata_json` is not valid JSON: {err}") from err
    if not isinstance(metadata, dict):
        raise _not_a_log(path, f"`metadata_json` must hold a JSON object, got {metadata!r:.60}")
    fields = {k: data[k] for k in ("time_s", "state", "control", "flags", "manoeuvre")}
    names = tuple(str(s) for s in np.atleast_1d(data["manoeuvre_names"]))
    log = DriveLog(
        **fields, state_true=data.get("state_true"), manoeuvre_names=names, metadata=metadata
    )
    validate_log(log, min_samples=min_samples)
    return log
