"""Progress of a long loop: a tqdm bar on a terminal (or in a notebook), plain lines every
`interval_s` seconds in a non-interactive log (stderr redirected to a file or a pipe), where a
bar's carriage-return updates, one per step, would fill the log."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from tqdm.auto import tqdm


def _interactive(stream: Any) -> bool:
    if "ipykernel" in sys.modules:  # a notebook: tqdm.auto draws a widget
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Progress:
    """Progress of `total` steps, starting at `initial`.

    Args:
        total, initial: the steps of the run and those already done (a resume).
        desc: a label.
        enabled: False shows nothing.
        file: the stream (default: `sys.stderr` at construction).
        interval_s: the least time between two lines in a non-interactive stream [s]; a line
            is also written at `close`.
    """

    def __init__(
        self,
        total: int,
        *,
        initial: int = 0,
        desc: str | None = None,
        enabled: bool = True,
        file: IO[str] | None = None,
        interval_s: float = 10.0,
    ):
        self.file = sys.stderr if file is None else file
        self.total, self.n, self.desc = total, initial, desc or "progress"
        self.enabled, self.interval_s = enabled, interval_s
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._printed_n = initial
        self.bar = None
        if enabled and _interactive(self.file):
            self.bar = tqdm(total=total, initial=initial, desc=desc, leave=False, file=self.file)

    def update(self, n: int = 1, postfix: str = "") -> None:
        self.n += n
        self.postfix = postfix
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix_str(postfix)
        elif self.enabled and time.monotonic() - self._last >= self.interval_s:
            self._line()

    def _line(self, end: str = "") -> None:
        self._last = time.monotonic()
        self._printed_n = self.n
        pct = 100.0 * self.n / self.total if self.total else 100.0
        postfix = f", {self.postfix}" if self.postfix else ""
        elapsed = self._last - self._start
        print(
            f"{self.desc}: step {self.n}/{self.total} ({pct:.0f}%){postfix}, {elapsed:.1f} s{end}",
            file=self.file,
            flush=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.n != self._printed_n:
            self._line(end=" (end)")
