"""Writing output files safely: atomically, only when changed, and only inside their root folder.

A reader (a web server, a Jekyll build, a feed reader polling us) must never see a half-written
file, so every write goes to a temporary file in the same folder and is renamed over the target
(`os.replace` is atomic on one file system). Unchanged bytes are not rewritten, so the mtime stays,
conditional GETs keep working and an incremental build can tell what it really changed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from ..errors import AggregatorError, PublishError

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")
FILE_MODE = 0o644


class UnsafePathError(AggregatorError):
    """A computed output path would land outside the folder it belongs to."""


def inside(root: Path, *parts: str) -> Path:
    """`root/parts...`, refusing any result that resolves outside `root`.

    Slugs are safe by construction, but the database can hold anything, so every output path is
    checked after resolving `..` and symlinks.
    """
    base = _resolved(Path(root))
    target = base.joinpath(*parts).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafePathError(f"refusing to write {target}: not inside {base}")
    return target


@lru_cache(maxsize=64)
def _resolved(root: Path) -> Path:
    return root.resolve()


def write_if_changed(path: Path, data: bytes, *, fsync: bool = False) -> bool:
    """Write `data` to `path` atomically unless it already holds exactly these bytes.

    Returns True when the file was (re)written. The temporary file lives in the target's folder
    so the final rename never crosses file systems; it is removed if anything fails. The rename
    alone keeps readers from ever seeing half a file, even if we are killed; `fsync` (off by
    default) would also survive a power cut, at the price of a disk flush per file. Every output
    can be rebuilt from the database, which is the durable copy.
    """
    path = Path(path)
    try:
        return _write_if_changed(path, data, fsync)
    except PublishError:
        raise
    except OSError as exc:
        raise PublishError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_if_changed(path: Path, data: bytes, fsync: bool) -> bool:
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name lets a later sweep tell a dead writer's leftovers from live writes
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600 files a web server could not read
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def remove_file(path: Path) -> bool:
    """Delete `path` if it exists (and its folder if that leaves it empty); True when deleted."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise PublishError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return True


def sweep_temp_files(root: Path, older_than: float = 600.0) -> list[Path]:
    """Remove temporary files a killed write left behind (`.NAME.PID.XXXXXXXX.tmp`) under `root`.

    A file goes when the process that wrote it is gone, or when it is older than `older_than`
    seconds; a write in progress in a live process is never touched.
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    cutoff = time.time() - older_than
    for path in root.rglob(f".*{TEMP_SUFFIX}"):
        match = _TEMP_NAME.match(path.name)
        if match is None:
            continue
        with contextlib.suppress(OSError):
            if not _alive(int(match.group(1))) or path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
