"""A status line at least every N seconds while a long job runs with its progress bar off (CI, logs),
so a quiet job is never mistaken for a hung one."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def heartbeat(status: Callable[[], str], *, enabled: bool = True, every: float | None = None) -> Iterator[None]:
    """While the block runs, a daemon thread prints `[recsage] <status()> (elapsed)` to stderr every
    `every` seconds (default $RECSAGE_HEARTBEAT_SECONDS or 30). `enabled=False` (a progress bar is
    showing): nothing."""
    if not enabled:
        yield
        return
    interval = float(every if every is not None else os.environ.get("RECSAGE_HEARTBEAT_SECONDS", 30))
    stop = threading.Event()
    start = time.perf_counter()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                line = status()
            except Exception as e:  # a status read mid-update must never kill the job
                line = f"running ({type(e).__name__} reading the status)"
            print(f"[recsage] {line} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    thread = threading.Thread(target=beat, name="recsage-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
