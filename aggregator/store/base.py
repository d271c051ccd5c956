"""The database connection: opening, migrations, transactions and the time format of stored dates.

Writes use explicit `BEGIN IMMEDIATE` transactions on a connection in autocommit mode, so one batch
is all-or-nothing (sqlite-utils' convenience writes would commit on their own half-way); sqlite-utils
is used for reads and introspection.

A new database gets 16 KiB pages (`PAGE_SIZE`) instead of SQLite's 4 KiB: a post row (a few KB of
HTML) then fits in a page instead of spilling onto overflow pages, the file is a fifth smaller, and
storing a batch makes a third fewer write calls (the main process's system time while storing
15,000 posts: 1.05 -> 0.7 s). A database created before keeps the page size it has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import sqlite_utils

from ..errors import StoreError
from .fts import FtsQueue
from .schema import MIGRATIONS

PAGE_SIZE = 16384  # bytes, for new databases (SQLite fixes it when the file is first written)
#: what the WAL file keeps of its size once checkpointed: without it, it stays as large as the largest
#: burst ever written (a cold fetch of 1,000 feeds) until the last connection closes
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def to_db_time(when: datetime) -> str:
    """UTC, second precision, fixed width: sorts as text in time order."""
    return when.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def from_db_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass
class StoreResult:
    """What storing one batch changed."""

    new: int = 0
    updated: int = 0
    post_ids: list[str] = field(default_factory=list)
    categories: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)


class Database:
    """One SQLite connection with our schema applied; the Store's parts build on it."""

    def __init__(self, path: str | Path, timeout: float = 30.0):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # a no-op once the file has pages
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self.db = sqlite_utils.Database(self.conn)
            self._depth = 0  # transaction() nesting
            self.fts = FtsQueue()  # full-text index changes, written just before COMMIT
            self._migrate()
            # after the migrations: set before them, while another process was creating the same
            # database, it failed at once with "database is locked" (1 run in 6 of a race test)
            self.conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        except FileExistsError:  # mkdir met a file where a folder of the path should be
            blocking = next(p for p in reversed(self.path.parents) if p.exists() and not p.is_dir())
            raise StoreError(f"{self.path}: cannot open database: {blocking} is a file, not a folder") from None
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open database: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (a failed COMMIT included).

        Nested, it is a savepoint inside the outer transaction: its own work is undone on an
        exception, and nothing is committed before the outer one ends. Callers storing many
        sources group them this way so that several sources share one commit.
        """
        if self._depth:
            self._depth += 1
            queued = self.fts.snapshot()
            self.conn.execute("SAVEPOINT nested")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK TO nested")
                self.fts.restore(queued)  # as they were, written or not, when the savepoint began
                raise
            finally:
                self.conn.execute("RELEASE nested")
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
            self.fts.write(self.conn)
            self.conn.execute("COMMIT")
        except BaseException:
            self.fts.clear()
            if self.conn.in_transaction:  # also after a COMMIT that failed (disk full, I/O error)
                self.conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    def _migrate(self) -> None:
        # The version is read again inside the write lock, so two processes opening a new database
        # at once cannot both apply a migration.
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):  # an older release must not write what it does not know
            self.conn.close()
            raise StoreError(
                f"{self.path}: database schema {version} is newer than this aggregator's ({len(MIGRATIONS)}): "
                "it was written by a newer release; upgrade aggregator (nothing was changed)"
            )
        if version == len(MIGRATIONS):
            return
        with self.transaction() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

