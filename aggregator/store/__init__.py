"""SQLite storage: everything that knows SQL lives in this package.

`Store(path)` opens (and migrates) a database; its methods come from one module per concern:
`posts` (upserts, queries, search), `sources` (per-source fetch state), `articles` (full text),
`runs` (runs that have not published what they stored), `moves` (a source's posts moving to the
categories it has now).
"""

from __future__ import annotations

from .articles import ArticleStore
from .base import StoreResult, from_db_time, to_db_time
from .moves import MoveStore
from .posts import PostStore
from .runs import RunStore
from .sources import SourceState, SourceStore, guarded_values


class Store(PostStore, SourceStore, ArticleStore, RunStore, MoveStore):
    """One SQLite database. Open it with `Store(path)`; use it from one thread at a time."""


__all__ = ["SourceState", "Store", "StoreResult", "from_db_time", "guarded_values", "to_db_time"]
