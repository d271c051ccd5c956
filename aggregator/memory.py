"""Handing freed heap memory back to the system after a big pass.

Storing 50,000 posts unpickles as many post objects in the main process; once stored they are
freed, but glibc's malloc keeps the freed pages (most of them lie between blocks still in use), so
the process keeps its high-water mark for the rest of the run, and a daemon for good. `malloc_trim`
returns every whole free page; where there is no glibc (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # glibc, already loaded here
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Return the heap's free pages to the system; False where that cannot be done here."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
