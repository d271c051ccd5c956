"""Republishing: a static site (feeds, pages, OPML) and a Jekyll export, written from the database.

Everything here reads the store and the config and writes files; output is a pure function of the
two (no build times), so two builds give the same bytes and unchanged files are never rewritten.

The names below are imported on first use (PEP 562), not with the package: a worker process that
runs a part of a Jekyll export imports `publish.jekyll_jobs`, and so this package, and should not
load feedgen and Jinja (~4 MB a process) for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .site import PublishReport, build_site, publish_changed

__all__ = ["PublishReport", "build_site", "publish_changed"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import site

        return getattr(site, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
