"""One writer per output folder: two runs with the same `--out` would interleave their files."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recsage.core.errors import InvalidInputError

LOCK_NAME = ".recsage.lock"


@contextmanager
def exclusive_folder(directory: str | Path, what: str = "run") -> Iterator[Path]:
    """Holds an advisory lock on `directory/.recsage.lock` for the block. A second process (or a
    second open in this one) that asks for the same folder is refused at once, naming the folder,
    the holder's pid and what it is (`what`); the lock dies with its holder, so a killed run never leaves it stale."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    handle = open(d / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid, _, kind = handle.read().strip().partition(" ")
        handle.close()
        raise InvalidInputError(f"another recsage {kind or 'run'} (pid {pid or '?'}) is writing to this folder; wait for it or choose another --out",
                                file=str(d)) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {what}")
        handle.flush()
        yield d
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
