"""One daemon per database: an flock beside it, held for the daemon's life and dropped by the kernel
with the process, and the pid in it, so a second daemon is refused naming the first and `status`
can tell whether one is running. Nothing heavy is imported here: `status` reads it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import IO


def lock_path(database: Path) -> Path:
    """The lock beside the database file itself: a symlink to it (or a path through one) names the
    same lock, so a second daemon reaching the database another way is refused too."""
    real = database.resolve()
    return real.with_name(real.name + "-daemon.lock")


def claim_database(database: Path) -> IO[str]:
    """Hold a lock beside `database` for as long as this process runs (the file is returned: keep it).

    A second daemon on the same database by mistake would poll every source twice as often and
    publish the same files twice; it is refused at start with the first one's pid. One-shot commands
    (`fetch`, `build`) do not take it: SQLite keeps them and the daemon apart.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(database)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the daemon's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise OSError(f"another daemon (pid {holder}) is already running on {database}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def release_database(handle: IO[str]) -> None:
    """Let the database go at a clean stop: the pid is cleared, so `status` says no daemon runs."""
    with contextlib.suppress(OSError):
        handle.seek(0)
        handle.truncate()
    handle.close()


def running_daemon(database: Path) -> int | None:
    """The pid of the daemon running on `database`, or None. Read, never locked (taking the lock
    even for a moment could make a daemon starting then refuse to start): a pid left by a daemon
    that was killed counts only while a process with that pid is alive."""
    try:
        pid = int(lock_path(database).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):  # no file, unreadable, empty (a clean stop), garbage
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:  # the process exists, another user's: a daemon run as its own user
        return pid
    except OSError:  # no such process
        return None
    return pid
