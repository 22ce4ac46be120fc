"""Progress of long work: tqdm's bar on a terminal, a log line every ``LOG_EVERY_SECONDS`` elsewhere.

A bar redraws itself with ``\\r``, which floods a log file or a CI log with frames; when the stream is
not a terminal the same counter (the same tqdm object, so ``update`` and ``set_postfix`` work alike) logs
``desc: n/total (percent) [elapsed<remaining, rate, postfix]`` at most every ``LOG_EVERY_SECONDS`` and once
at the end.
"""

import io
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm

log = logging.getLogger(__name__)

LOG_EVERY_SECONDS = 30.0
LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class LoggedProgress(tqdm):
    """A tqdm counter that logs its state (INFO) instead of drawing a bar: at most every ``every`` seconds,
    and when it closes (unless that state was just logged)."""

    def __init__(self, *args: Any, every: float = LOG_EVERY_SECONDS, **kwargs: Any) -> None:
        self.every, self.logged_at, self.logged_n = every, time.monotonic(), 0
        # The sink keeps tqdm's own writes (clearing, ``tqdm.write`` around the bar) off the real stream.
        super().__init__(*args, file=io.StringIO(), bar_format=LOG_FORMAT, leave=True, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        closing = self.disable  # tqdm.close() disables the counter, then draws its last state
        due = time.monotonic() - self.logged_at >= self.every
        if msg is None and self.n != self.logged_n and (closing or due):  # msg="": tqdm clearing the line
            log.info("%s", self.format_meter(**self.format_dict))
            self.logged_at, self.logged_n = time.monotonic(), self.n
        return True


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str, unit: str,
             enabled: bool = True, stream: TextIO | None = None, leave: bool = True, **units: Any) -> tqdm:
    """A progress counter over ``iterable`` (or ``total`` updates): a bar on ``stream`` (default stderr) when
    it is a terminal, log lines otherwise, nothing when not ``enabled`` (e.g. on other ranks than 0).
    ``units``: tqdm's unit formatting (``unit_scale``, ``unit_divisor``), for both forms."""
    stream = stream or sys.stderr
    if not enabled:
        return tqdm(iterable, total=total, disable=True)
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, dynamic_ncols=True, leave=leave,
                    **units)
    return LoggedProgress(iterable, total=total, desc=desc, unit=unit, every=LOG_EVERY_SECONDS, **units)
