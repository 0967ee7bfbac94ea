"""Crash-safe file writes and the one inter-process file lock (the lowest layer: imports nothing of ours).

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_path`: write beside the
  target and rename, so a killed process never leaves a half-written file.
* :func:`exclusive_lock`: an advisory ``flock`` that parallel workers (table runs, expert training,
  model caches) wait on; the OS releases it when the holder dies, so no stale locks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def exclusive_lock(path: str | Path, wait: bool = True, busy: str | None = None) -> Iterator[None]:
    """Hold an exclusive advisory lock on the file ``path`` (created if missing) for the block.

    ``wait=True`` blocks until the lock is free: parallel workers that need the same shared artefact
    (an expert, a demonstration file, a cached oracle) wait for the first one to make it instead of
    making it twice. ``wait=False`` raises ``UserError(busy)`` at once when another process holds it.
    The OS releases the lock when its holder dies, so a killed worker leaves no stale lock.
    """
    import fcntl

    from agentlab.errors import UserError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(busy or f"{path} is locked by another process") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
