"""Writing outputs so that nothing is lost: every file is written to a temporary file in the
target's folder, flushed to disk and renamed over the target (`os.replace`, atomic on POSIX), so
a crash, a kill or a full disk mid-write leaves the earlier file intact; output locations are
checked writable before any work starts; a failed write is reported as `OutputWriteError`,
naming the file and the operating system's reason (ENOSPC as "no space left on device").
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class OutputWriteError(OSError):
    """An output file could not be written. `path` is the file, `reason` the operating system's
    message; `result` (where set) is the finished work that the write was meant to keep."""

    def __init__(self, path: str | os.PathLike, reason: str, *, errno_: int | None = None):
        self.path = str(path)
        self.reason = reason
        self.result: Any = None
        super().__init__(errno_, f"Could not write {self.path!r}: {reason}.")

    def __str__(self) -> str:
        return f"Could not write {self.path!r}: {self.reason}."


def _reason(err: BaseException) -> tuple[str, int | None]:
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC:
        return "no space left on device (ENOSPC)", code
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied ({os.strerror(code)})", code
    if isinstance(err, OSError) and err.strerror:
        return err.strerror, code
    return f"{type(err).__name__}: {err}", code


def write_atomic(
    path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, mkdir: bool = True
) -> Path:
    """Write a file atomically: `write(f)` fills a temporary file in the target's folder (binary
    mode), which is flushed, fsynced and renamed over `path`. On any failure the temporary file
    is removed, the earlier `path` (if any) is left as it was, and `OutputWriteError` is raised
    for operating-system errors (other exceptions from `write` propagate unchanged)."""
    path = Path(path)
    try:
        if mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as e:
        reason, code = _reason(e)
        raise OutputWriteError(path, reason, errno_=code) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        reason, code = _reason(e)
        raise OutputWriteError(path, reason, errno_=code) from e
    except BaseException:
        _remove(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """`write_atomic` for UTF-8 text."""
    return write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def _remove(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def check_writable(path: str | os.PathLike, *, kind: str = "file", name: str = "output") -> Path:
    """Raise `OutputWriteError` now, before any work, unless `path` can be written later.

    kind="file": `path` is a file to be created or replaced: its nearest existing parent folder
    must be a writable folder (a missing folder will be created) and `path` itself, if it exists,
    must not be a folder. kind="dir": `path` is a folder to write files into (created if missing).
    The check creates and removes a probe file, so read-only mounts and permission bits are
    seen as they are (root ignores permission bits; a read-only mount still refuses)."""
    if kind not in ("file", "dir"):
        raise ValueError(f"`kind` must be 'file' or 'dir', got {kind!r}.")
    path = Path(path)
    folder = path if kind == "dir" else path.parent
    if kind == "file" and path.is_dir():
        raise OutputWriteError(path, f"the {name} path is a folder, expected a file name")
    if folder.exists() and not folder.is_dir():
        raise OutputWriteError(folder, f"the {name} folder is a file, expected a folder")
    probe_dir = folder
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".physml-probe.", dir=probe_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        reason, code = _reason(e)
        raise OutputWriteError(
            path, f"{name} location is not writable: {reason}", errno_=code
        ) from e
    return path


__all__ = ["OutputWriteError", "check_writable", "write_atomic", "write_text_atomic"]
