"""Republishing: a static site (feeds, pages, OPML) and a Jekyll export, written from the database.

Everything here reads the store and the config and writes files; output is a pure function of the
two (no build times), so two builds give the same bytes and unchanged files are never rewritten.
"""

from __future__ import annotations

from .site import PublishReport, build_site, publish_changed

__all__ = ["PublishReport", "build_site", "publish_changed"]
