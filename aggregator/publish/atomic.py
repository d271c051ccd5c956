"""Writing output files safely: atomically, only when changed, and only inside their root folder.

A reader (a web server, a Jekyll build, a feed reader polling us) must never see a half-written
file, so every write goes to a temporary file in the same folder and is renamed over the target
(`os.replace` is atomic on one file system). Unchanged bytes are not rewritten, so the mtime stays,
conditional GETs keep working and an incremental build can tell what it really changed.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import time
from functools import lru_cache
from pathlib import Path

from ..errors import AggregatorError, PublishError
from ..processes import is_alive

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


def write_if_changed(path: Path, data: bytes, *, fsync: bool = False, absent: bool = False) -> bool:
    """Write `data` to `path` atomically unless it already holds exactly these bytes.

    Returns True when the file was (re)written. The temporary file lives in the target's folder
    so the final rename never crosses file systems; it is removed if anything fails. The rename
    alone keeps readers from ever seeing half a file, even if we are killed; `fsync` (off by
    default) would also survive a power cut, at the price of a disk flush per file. Every output
    can be rebuilt from the database, which is the durable copy. `absent`: the caller has just seen
    that `path` does not exist (a folder scan), so it is created without asking first; if it has
    appeared meanwhile, it is compared and replaced as usual.
    """
    path = Path(path)
    try:
        if absent and _link_new(path, data, fsync):
            return True
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
        if _link_new(path, data, fsync):
            return True
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask: a web server must read it
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


def _link_new(path: Path, data: bytes, fsync: bool) -> bool:
    """Create `path`, which does not exist yet, complete at once; False when that cannot be done
    here (no O_TMPFILE, no /proc, or the file appeared meanwhile) and the caller must fall back.

    On Linux the bytes go to an unnamed file in the target's folder (O_TMPFILE), which is then
    linked in under its name (linkat through /proc/self/fd). Against a named temporary file and a
    rename it spares the folder two entries to add and remove per file, a fifth of the system
    time of a first Jekyll export, and a killed writer leaves nothing behind.
    """
    global _unnamed_files
    if not _unnamed_files:
        return False
    try:
        try:
            fd = os.open(path.parent, _UNNAMED, FILE_MODE)
        except FileNotFoundError:  # the folder is made only when needed, as for named files
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path.parent, _UNNAMED, FILE_MODE)
    except OSError as exc:
        if exc.errno not in _NO_UNNAMED_FILES:
            raise
        _unnamed_files = False  # this file system or kernel has no O_TMPFILE
        return False
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask: a web server must read it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
        # a dir fd makes os.link call linkat(AT_SYMLINK_FOLLOW), which links the file the magic
        # /proc link points at (plain link() would not follow it); the path is absolute, so the
        # fd itself is not used
        os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=fd)
    except FileExistsError:  # written meanwhile by someone else: replace it the usual way
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
            raise
        _unnamed_files = False  # no /proc, or a kernel that refuses: named temporary files then
        return False
    finally:
        os.close(fd)
    return True


_UNNAMED = getattr(os, "O_TMPFILE", 0) | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)
# what open() says when O_TMPFILE is unknown (older kernels see O_DIRECTORY: EISDIR) or unsupported
_NO_UNNAMED_FILES = {errno.EISDIR, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}
_unnamed_files = hasattr(os, "O_TMPFILE")


def _create_temp(path: Path) -> tuple[int, str]:
    """A new temporary file beside `path`: `.NAME.PID.N.tmp`, created exclusively, mode 0644.

    The writer's pid lets a later sweep tell a dead writer's leftovers from live writes; N counts
    this process's writes. Cheaper than tempfile.mkstemp (no random names to draw and try), and
    the folder is made only when the file cannot be created rather than checked before every
    file: it adds up over the 50,000 files of a first Jekyll export.
    """
    while True:
        tmp = os.path.join(path.parent, f".{path.name}.{os.getpid()}.{next(_WRITES)}{TEMP_SUFFIX}")
        try:
            return os.open(tmp, _CREATE, FILE_MODE), tmp
        except FileExistsError:  # left by a dead process that had our pid: take the next number
            continue
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(tmp, _CREATE, FILE_MODE), tmp


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_WRITES = itertools.count()


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
            if not is_alive(int(match.group(1))) or path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed
