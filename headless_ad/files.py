"""Atomic output files: a reader sees the old file or the complete new one, never a cut one.

Every writer goes through `atomic_output`: the content goes to a hidden temporary file in the
destination's own folder (same file system, so the final rename is atomic), is flushed to disk,
and only then replaces the destination. A failure on the way (a full disk, a kill) leaves the
old file as it was; the temporary is removed when the failure is an exception, and its name
(`.<name>.tmp-<pid>`) lets the next writer of the same folder recognise a stale one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMPORARY_MARK = ".tmp-"


def temporary_path(path: Path) -> Path:
    """The hidden sibling a new version of `path` is written to before it replaces `path`."""
    return path.with_name(f".{path.name}{TEMPORARY_MARK}{os.getpid()}")


@contextmanager
def atomic_output(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path` atomically."""
    path = Path(path)
    tmp = temporary_path(path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")
