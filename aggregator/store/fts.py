"""Changes to the full-text index, held until the transaction commits and written in rowid order.

FTS5 gathers the terms of the rows written to it in memory and writes them out as a new index
segment at every savepoint, and whenever a row comes with a rowid lower than one it already holds.
Each source is stored in a savepoint of its own and an edited post has an old (low) number, so
writing rows as they came made a segment per source and more per edit, which automerge then
merged again and again: a tenth to a fifth of the CPU of storing, more in a big database. Held
here, a whole commit's changes reach FTS5 as one sorted run of deletes and one of inserts.
"""

from __future__ import annotations

import sqlite3

Snapshot = tuple[frozenset[int], dict[int, tuple[str, str]]]


class FtsQueue:
    """One connection's full-text changes since its transaction began: rows to take out of the
    index and rows to write, applied by `write` just before the outermost COMMIT."""

    def __init__(self) -> None:
        self.deletes: set[int] = set()  # rows in the index to take out first
        self.rows: dict[int, tuple[str, str]] = {}  # rowid -> (title, body) to write

    def add(self, num: int, title: str, body: str) -> None:
        """A new post's row (nothing in the index under this number yet)."""
        self.rows[num] = (title, body)

    def replace(self, num: int, title: str, body: str) -> None:
        """A changed post's row: what the index holds for it goes, unless it was never written."""
        if num not in self.rows:
            self.deletes.add(num)
        self.rows[num] = (title, body)

    def snapshot(self) -> Snapshot:
        return frozenset(self.deletes), dict(self.rows)

    def restore(self, snapshot: Snapshot) -> None:
        self.deletes, self.rows = set(snapshot[0]), dict(snapshot[1])

    def clear(self) -> None:
        self.deletes, self.rows = set(), {}

    def write(self, conn: sqlite3.Connection) -> None:
        """Apply the queued changes now (before COMMIT, or before anything else touches the index)."""
        if self.deletes:
            conn.executemany("DELETE FROM posts_fts WHERE rowid = ?", [(n,) for n in sorted(self.deletes)])
        if self.rows:
            rows = [(n, *self.rows[n]) for n in sorted(self.rows)]
            conn.executemany("INSERT INTO posts_fts(rowid, title, body) VALUES (?, ?, ?)", rows)
        self.clear()
