"""Writing outputs so that nothing is lost: every file is written to a temporary file in the
target's folder, flushed to disk and renamed over the target (`os.replace`, atomic on POSIX), so
a crash, a kill or a full disk mid-write leaves the earlier file intact; output locations are
checked writable before any work starts; a failed write is reported as `OutputWriteError`,
naming the file and the operating system's reason (ENOSPC as "no space left on device"), also
when the operating system's error reaches us wrapped by a serialiser (equinox's
`TreePathError`). A JSON-lines log is appended one whole record per system call
(`JsonLinesLog`), so a kill never leaves half a line.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

Writer = Callable[[IO[bytes]], None]


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


def _os_error(err: BaseException) -> OSError | None:
    """The operating system's error behind `err`: itself, or one in its chain of causes."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def _reason(err: BaseException) -> tuple[str, int | None]:
    code = getattr(err, "errno", None)
    if code == errno.ENOSPC:
        return "no space left on device (ENOSPC)", code
    if code == errno.EDQUOT:
        return "disk quota exceeded (EDQUOT)", code
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied ({os.strerror(code)})", code
    if isinstance(err, OSError) and err.strerror:
        return err.strerror, code
    return f"{type(err).__name__}: {err}", code


def _write_error(path: Path, err: BaseException) -> OutputWriteError:
    reason, code = _reason(err)
    return OutputWriteError(path, reason, errno_=code)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _stage(path: Path, write: Writer, mkdir: bool) -> str:
    """Write a complete, fsynced temporary file next to `path`; return its name."""
    try:
        if mkdir:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise _write_error(path, e) from e
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 & ~umask).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except Exception as e:
        _remove(tmp)
        os_err = _os_error(e)
        if os_err is None or isinstance(e, OutputWriteError):
            raise
        raise _write_error(path, os_err) from e
    except BaseException:
        _remove(tmp)
        raise
    return tmp


def write_atomic(path: str | os.PathLike, write: Writer, *, mkdir: bool = True) -> Path:
    """Write a file atomically: `write(f)` fills a temporary file in the target's folder (binary
    mode), which is flushed, fsynced and renamed over `path`. On any failure the temporary file
    is removed, the earlier `path` (if any) is left as it was, and `OutputWriteError` is raised
    for operating-system errors, also those wrapped by `write` (a serialiser); other exceptions
    from `write` propagate unchanged."""
    return write_atomic_group([(path, write)], mkdir=mkdir)[0]


def write_atomic_group(
    items: Sequence[tuple[str | os.PathLike, Writer]], *, mkdir: bool = True
) -> list[Path]:
    """Write several files that belong together (a model and its summary): every file is first
    written in full to its temporary file, and only then are they renamed over their targets,
    in the order given. A failed write (a full disk) therefore replaces none of them; only a
    kill between two renames (no data written there) can leave a mix of new and earlier files,
    the earlier ones being those later in `items`."""
    paths = [Path(p) for p, _ in items]
    staged: list[str] = []
    try:
        for path, (_, write) in zip(paths, items, strict=True):
            staged.append(_stage(path, write, mkdir))
        for i, (path, tmp) in enumerate(zip(paths, staged, strict=True)):
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise _write_error(path, e) from e
            staged[i] = ""
    finally:
        for tmp in staged:
            if tmp:
                _remove(tmp)
    return paths


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
    if not probe_dir.is_dir():
        raise OutputWriteError(path, f"{probe_dir} is a file, so the {name} folder cannot exist")
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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class JsonLinesLog:
    """A JSON-lines log, one record per line, that survives kills, full disks and resumes.

    Each record is appended by one `os.write` of the whole line (a kill lands before or after
    it, never inside); a failed or short write (a full disk) is cut back to the last whole line
    and the record is kept in memory and written with the next one (`flush`), so the file never
    holds half a line and, once the disk has room again, no record is missing.

    Args:
        path: the log file (its folder is created).
        keep_before: None starts a new, empty log (replacing any file there). An int `n`
            continues an existing log after a resume from step `n`: only its whole records with
            `"step" < n` are kept (those written after the checkpoint are dropped, so that every
            step has one record however often the run is resumed); the file is rewritten
            atomically.
    """

    def __init__(self, path: str | os.PathLike, *, keep_before: int | None = None):
        self.path = Path(path)
        kept = b""
        if keep_before is not None and self.path.is_file():
            kept = b"".join(_records_before(self.path, keep_before))
        write_atomic(self.path, lambda f: f.write(kept))
        try:
            self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as e:
            raise _write_error(self.path, e) from e
        self._size = len(kept)
        self._last_start: int | None = None
        self._pending: list[bytes] = []

    @property
    def n_pending(self) -> int:
        """Records not yet on disk (after a failed write)."""
        return len(self._pending)

    def write(self, record: dict) -> None:
        """Append `record`; raise `OutputWriteError` if it (or an earlier pending record) could
        not be written. The record is kept and retried by the next `write` or `flush`."""
        self._pending.append((json.dumps(record) + "\n").encode("utf-8"))
        self.flush()

    def flush(self) -> None:
        """Write the pending records; raise `OutputWriteError` if that fails."""
        assert self._fd is not None, "the log is closed"
        while self._pending:
            data = self._pending[0]
            try:
                _write_all(self._fd, data)
            except OSError as e:
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    pass
                raise _write_error(self.path, e) from e
            self._last_start, self._size = self._size, self._size + len(data)
            self._pending.pop(0)

    def drop_last(self) -> None:
        """Remove the most recent record (a step that is being undone)."""
        if self._pending:
            self._pending.pop()
        elif self._last_start is not None and self._fd is not None:
            os.ftruncate(self._fd, self._last_start)
            self._size, self._last_start = self._last_start, None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _records_before(path: Path, step: int) -> list[bytes]:
    """The whole, well-formed lines of a JSON-lines log whose record has `"step" < step`."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # the tail of a write that never finished
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] < step:
                out.append(line)
    return out


__all__ = [
    "JsonLinesLog",
    "OutputWriteError",
    "check_writable",
    "write_atomic",
    "write_atomic_group",
    "write_text_atomic",
]
