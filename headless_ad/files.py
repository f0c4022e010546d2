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
import re
import shutil
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


class DestinationError(OSError):
    """An output folder cannot be created or written."""


def check_writable_folder(folder: Path | str, what: str) -> None:
    """Create `folder` if needed and write (then remove) a probe file in it, so that an
    unwritable destination fails in one line before the work, not after it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_path(folder / "write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise DestinationError(f"{folder}: cannot write {what} here ({error.strerror or error})") from None


def writer_alive(pid: int) -> bool:
    """Whether process `pid` (the writer named in a temporary's name) still runs."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)$")


def stale_temporaries(folder: Path | str, name: str | None = None, kinds: tuple[str, ...] = ("tmp",)) -> list[Path]:
    """Hidden temporaries `.<name>.tmp-<pid>` in `folder` (of `name` only, if given) whose writer
    has died: what a killed write left behind."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = []
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or match["kind"] not in kinds or (name is not None and match["name"] != name):
            continue
        if not writer_alive(int(match["pid"])):
            stale.append(entry)
    return sorted(stale)


def remove_stale_temporaries(folder: Path | str, name: str | None = None) -> list[Path]:
    """Remove what `stale_temporaries` finds (files or whole folders); returns what went."""
    removed = []
    for entry in stale_temporaries(folder, name):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
