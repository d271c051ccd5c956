"""Writing output files safely: atomically, only when changed, and only inside their root folder.

A reader (a web server, a Jekyll build, a feed reader polling us) must never see a half-written
file, so every write goes to a temporary file in the same folder and is renamed over the target
(`os.replace` is atomic on one file system). Unchanged bytes are not rewritten, so the mtime stays,
conditional GETs keep working and an incremental build can tell what it really changed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

from ..errors import AggregatorError

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


def write_if_changed(path: Path, data: bytes, *, fsync: bool = True) -> bool:
    """Write `data` to `path` atomically unless it already holds exactly these bytes.

    Returns True when the file was (re)written. The temporary file lives in the target's folder
    so the final rename never crosses file systems; it is removed if anything fails.
    """
    path = Path(path)
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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
    with contextlib.suppress(OSError):
        path.parent.rmdir()
    return True
