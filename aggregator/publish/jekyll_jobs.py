"""Running a Jekyll export beside the rest of a build, split over the worker processes.

Exporting is most of a large build (50,000 posts: read back from SQLite, rendered, written one file
each) and it shares nothing with the feeds and pages. So a big export is cut into one part per
worker process; each part opens its own read connection, streams its posts and writes its files
while this process renders the feeds and pages. A small export (the usual incremental build) runs
here, where starting on the workers would cost more than it saves. Post ids are split, never
shared, so no two processes write the same file.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..models import Post
from ..store import Store
from ..workers import CpuPool
from .jekyll import JekyllReport, JekyllSettings, export_posts

STREAM_CHUNK = 500  # posts loaded at once: a full export never holds them all
PARALLEL_MIN = 2000  # posts: below this the export runs in the calling process


def stream_posts(store: Store, ids: list[str], missing: list[str] | None = None) -> Iterator[Post]:
    """The posts of `ids` in order, a chunk at a time; ids not stored go to `missing`."""
    for start in range(0, len(ids), STREAM_CHUNK):
        chunk = ids[start : start + STREAM_CHUNK]
        stored = store.posts_by_id(chunk)
        for post_id in chunk:
            if post_id in stored:
                yield stored[post_id]
            elif missing is not None:
                missing.append(post_id)


def export_part(database: Path, settings: JekyllSettings, ids: list[str]) -> tuple[JekyllReport, list[str]]:
    """One worker's share: export these posts from its own connection; (report, ids not stored)."""
    store = Store(database)
    try:
        report, missing = JekyllReport(), list[str]()
        export_posts(stream_posts(store, ids, missing), settings, report, ids)
        return report, missing
    finally:
        store.close()


class Export:
    """An export started now and finished by `finish()`, in parts on the workers when it is big."""

    def __init__(self, store: Store, settings: JekyllSettings, ids: list[str], pool: CpuPool):
        self.store, self.settings, self.ids = store, settings, ids
        self.parts: list[tuple[list[str], Future[tuple[JekyllReport, list[str]]]]] = []
        if len(ids) >= PARALLEL_MIN and pool.processes > 0:
            size = -(-len(ids) // pool.processes)
            chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
            self.parts = [(chunk, pool.submit(export_part, store.path, settings, chunk)) for chunk in chunks]

    def finish(self, report: JekyllReport, missing: list[str] | None = None) -> None:
        """Wait for the parts (or export here) and add what they did to `report`."""
        if not self.parts:
            export_posts(stream_posts(self.store, self.ids, missing), self.settings, report, self.ids)
            return
        for chunk, future in self.parts:
            try:
                part, lost = future.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): do its part here
                export_posts(stream_posts(self.store, chunk, missing), self.settings, report, chunk)
                continue
            report.add(part)
            if missing is not None:
                missing += lost
