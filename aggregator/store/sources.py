"""Per-source state: validators, the last fetch's result, failures, backoff, redirects, gone."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter

from .base import Database

SOURCE_FIELDS = (
    "url",
    "etag",
    "last_modified",
    "last_fetch",
    "last_success",
    "http_status",
    "result",
    "error",
    "warning",
    "new",
    "updated",
    "final_url",
    "elapsed_ms",
    "failures",
    "next_due",
    "gone",
    "moved_to",
    "article_error",
    "categories",
)

# built once: a warm pass saves a state per source, and building the statement each time was half
# of what saving cost the main thread
_SAVE_STATE = (
    f"INSERT INTO sources (name, {', '.join(SOURCE_FIELDS)}) VALUES (?, {', '.join('?' * len(SOURCE_FIELDS))}) "
    f"ON CONFLICT(name) DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in SOURCE_FIELDS)}"
)
# what another process may have changed since a state was read: another fetch's record (which
# sets last_fetch) or a `sources reset` (which clears the rest and leaves last_fetch alone)
GUARDED_FIELDS = ("last_fetch", "failures", "next_due", "gone", "moved_to", "error", "etag", "last_modified")
_SAVE_STATE_IF_UNCHANGED = _SAVE_STATE + " WHERE " + " AND ".join(f"sources.{k} IS ?" for k in GUARDED_FIELDS)
_state_values = attrgetter(*SOURCE_FIELDS)
guarded_values = attrgetter(*GUARDED_FIELDS)


@dataclass
class SourceState:
    """What we remember about a source between fetches (validators, last result, backoff)."""

    name: str
    url: str = ""
    etag: str = ""
    last_modified: str = ""
    last_fetch: str | None = None
    last_success: str | None = None
    http_status: int | None = None
    result: str = ""
    error: str = ""
    warning: str = ""
    new: int = 0
    updated: int = 0
    final_url: str = ""
    elapsed_ms: int = 0
    failures: int = 0
    next_due: str | None = None
    gone: int = 0
    moved_to: str = ""
    article_error: str = ""
    #: the category slugs (JSON list) its posts were last stored with ('' unknown: before schema 9)
    categories: str = ""
    posts: int = 0


class SourceStore(Database):
    def source_state(self, name: str, *, counts: bool = True) -> SourceState:
        """One source's state; `counts=False` leaves `posts` at 0 rather than counting them."""
        rows = list(self.db.query("SELECT * FROM sources WHERE name = ?", [name]))
        if not rows:
            return SourceState(name=name)
        posts = self.conn.execute("SELECT count(*) FROM posts WHERE source = ?", (name,)).fetchone()[0] if counts else 0
        return SourceState(**rows[0], posts=int(posts))

    def source_states(self, *, counts: bool = True) -> dict[str, SourceState]:
        """Every source's state in one query; `counts=False` skips counting posts (a full scan)."""
        counted: dict[str, int] = {}
        if counts:
            counted = {
                r["source"]: r["n"] for r in self.db.query("SELECT source, count(*) AS n FROM posts GROUP BY source")
            }
        return {
            row["name"]: SourceState(**row, posts=counted.get(row["name"], 0))
            for row in self.db.query("SELECT * FROM sources")
        }

    def save_source_state(self, state: SourceState, *, read_as: tuple[object, ...] | None = None) -> bool:
        """Save `state`; one statement, atomic by itself (no savepoint: two statements fewer per poll).

        With `read_as` (`guarded_values` of the state it was computed from, taken before changing
        it) it is saved only if the stored state still has those values: False when another process
        saved a newer state or reset the source meanwhile, which the caller then reads again rather
        than overwrite.
        """
        if read_as is None:
            self.conn.execute(_SAVE_STATE, (state.name, *_state_values(state)))
            return True
        cursor = self.conn.execute(_SAVE_STATE_IF_UNCHANGED, (state.name, *_state_values(state), *read_as))
        return cursor.rowcount > 0

    def reset_source(self, name: str) -> bool:
        """Clear failures, backoff, validators, redirect and gone state; True if the source was known."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE sources SET failures = 0, next_due = NULL, gone = 0, moved_to = '', error = '', "
                "etag = '', last_modified = '' WHERE name = ?",
                (name,),
            )
            if cursor.rowcount:  # a running daemon polls it at its next check (take_source_resets)
                conn.execute("INSERT OR IGNORE INTO source_resets(name) VALUES (?)", (name,))
        return cursor.rowcount > 0

    def take_source_resets(self) -> list[str]:
        """The sources reset since the last call (by `sources reset`, from another process), forgotten
        as they are returned: the daemon polls each at once instead of at its backed-off time."""
        if self.conn.execute("SELECT 1 FROM source_resets LIMIT 1").fetchone() is None:
            return []  # the usual case, checked every few seconds: no write lock taken
        with self.transaction() as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM source_resets ORDER BY name")]
            conn.execute("DELETE FROM source_resets")
        return names
