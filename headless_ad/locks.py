"""One writer at a time: an exclusive lock per history store and per run directory.

The lock is `flock` on a file in a hidden folder beside the locked path (`.locks/<name>.lock`),
which holds the pid of its holder. It is taken without waiting, so a second writer fails at once and names the
holder; the operating system releases it when the holder exits, however it dies (kill -9
included), so a crashed writer never leaves a lock behind. The lock files themselves stay:
deleting one while another process may be opening it would let two writers in.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class LockedError(RuntimeError):
    """Another process is writing the same store or run."""


def lock_path(path: Path) -> Path:
    """The lock file of `path`: beside it, so it exists before and after `path` does."""
    return path.parent / ".locks" / f"{path.name}.lock"


@contextmanager
def exclusive_lock(path: Path | str, what: str) -> Iterator[None]:
    """Hold the lock of `path` (a `what`, e.g. "history store") for the block, or raise
    LockedError at once, naming the pid that holds it."""
    path = Path(path)
    file = lock_path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(
                f"{path}: this {what} is being written by process {holder} (lock {file}); "
                "wait for it to finish or choose another path"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
