"""SQLite storage: schema and migrations, post upserts, queries, full-text search, source state.

Everything that knows SQL lives here. Writes use explicit `BEGIN IMMEDIATE` transactions on a
connection in autocommit mode, so one source's batch is all-or-nothing (sqlite-utils' convenience
writes would commit on their own half-way); sqlite-utils is used for reads and introspection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import StoreError
from .models import Enclosure, Post
from .sanitise import canonical_link, plain_text
from .schema import MIGRATIONS
from .search_text import fts_query, fts_text
from .slugs import slugify

SOURCE_FIELDS = (
    "url", "etag", "last_modified", "last_fetch", "last_success", "http_status", "result", "error",
    "warning", "new", "updated", "final_url", "elapsed_ms", "failures", "next_due", "gone", "moved_to",
    "article_error",
)


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
    posts: int = 0


class Store:
    """One SQLite database. Open it with `Store(path)`; use it from one thread at a time."""

    def __init__(self, path: str | Path, timeout: float = 30.0):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self.db = sqlite_utils.Database(self.conn)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open database: {exc}") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def _migrate(self) -> None:
        # The version is read again inside the write lock, so two processes opening a new database
        # at once cannot both apply a migration.
        if self.conn.execute("PRAGMA user_version").fetchone()[0] >= len(MIGRATIONS):
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

    # -- posts ---------------------------------------------------------------------------------

    def store_posts(
        self, posts: list[Post], category_names: dict[str, str], now: datetime | None = None, full_text: bool = False
    ) -> StoreResult:
        """Insert new posts, update changed ones in place, merge the same article from two sources.

        The whole batch is one transaction: a crash leaves all of it or none of it. With `full_text`
        new posts (and posts whose link changed) are marked as owing their article.
        """
        now = now or datetime.now(UTC)
        result = StoreResult()
        with self.transaction() as conn:
            for post in posts:
                self._store_one(conn, post, now, result, full_text)
            for slug in result.categories:
                name = category_names.get(slug, slug)
                conn.execute("INSERT OR IGNORE INTO categories(slug, name) VALUES (?, ?)", (slug, name))
        return result

    def _store_one(
        self, conn: sqlite3.Connection, post: Post, now: datetime, result: StoreResult, full_text: bool
    ) -> None:
        row = conn.execute(
            "SELECT num, content_hash, date, updated, categories, tags, link, article_status, content "
            "FROM posts WHERE id = ?",
            (post.id,),
        ).fetchone()
        link_key = canonical_link(post.link) if post.link else ""
        if row is None and link_key:
            twin = conn.execute(
                "SELECT num, content_hash, date, updated, categories, tags FROM posts "
                "WHERE link_key = ? AND source != ? LIMIT 1",
                (link_key, post.source),
            ).fetchone()
            if twin is not None:
                self._merge_twin(conn, twin, post, result)
                return
        if row is None:
            values = self._values(post, link_key)
            if full_text and post.link:
                values["article_status"] = "pending"
            cursor = conn.execute(
                f"INSERT INTO posts ({', '.join(values)}, first_seen) VALUES "
                f"({', '.join('?' * len(values))}, ?)",
                (*values.values(), to_db_time(now)),
            )
            num = int(cursor.lastrowid or 0)
            result.new += 1
        else:
            num, old_hash, old_date, old_updated = row[0], row[1], row[2], row[3]
            if old_hash == post.content_hash:
                return
            values = self._values(post, link_key)
            if not post.dated:
                values["date"] = old_date
            if row[7] == "done" and post.link == row[6]:
                values["content"] = row[8]  # an edit of the entry keeps the fetched article
            elif full_text and post.link != row[6]:
                values["article_status"], values["article_tries"] = "pending", 0
            stamp = post.updated if post.updated and to_db_time(post.updated) > (old_updated or "") else now
            values["updated"] = to_db_time(stamp)
            conn.execute(
                f"UPDATE posts SET {', '.join(k + ' = ?' for k in values)} WHERE num = ?", (*values.values(), num)
            )
            conn.execute("DELETE FROM posts_fts WHERE rowid = ?", (num,))
            result.updated += 1
            result.categories.update(json.loads(row[4]))
            result.tags.update(slugify(t) for t in json.loads(row[5]))
        date = conn.execute("SELECT date FROM posts WHERE num = ?", (num,)).fetchone()[0]
        self._index(conn, num, date, post.categories, post.tags)
        conn.execute(
            "INSERT INTO posts_fts(rowid, title, body) VALUES (?, ?, ?)",
            (num, fts_text(post.title), fts_text(plain_text(post.summary) + " " + plain_text(values["content"]))),
        )
        result.post_ids.append(post.id)
        result.categories.update(post.categories)
        result.tags.update(slugify(t) for t in post.tags)

    def _merge_twin(self, conn: sqlite3.Connection, twin: Any, post: Post, result: StoreResult) -> None:
        """The same article from another source: add this source's categories and tags to it."""
        num, date = twin[0], twin[2]
        categories = json.loads(twin[4])
        tags = json.loads(twin[5])
        known = {t.casefold() for t in tags}
        new_categories = [c for c in post.categories if c not in categories]
        new_tags = [t for t in post.tags if t.casefold() not in known]
        if not new_categories and not new_tags:
            return
        categories += new_categories
        tags += new_tags
        conn.execute(
            "UPDATE posts SET categories = ?, tags = ? WHERE num = ?",
            (json.dumps(categories, ensure_ascii=False), json.dumps(tags, ensure_ascii=False), num),
        )
        self._index(conn, num, date, categories, tags)
        post_id = conn.execute("SELECT id FROM posts WHERE num = ?", (num,)).fetchone()[0]
        result.updated += 1
        result.post_ids.append(post_id)
        result.categories.update(categories)
        result.tags.update(slugify(t) for t in tags)

    @staticmethod
    def _index(conn: sqlite3.Connection, num: int, date: str, categories: list[str], tags: list[str]) -> None:
        conn.execute("DELETE FROM post_categories WHERE post = ?", (num,))
        conn.execute("DELETE FROM post_tags WHERE post = ?", (num,))
        conn.executemany(
            "INSERT OR IGNORE INTO post_categories(slug, post, date) VALUES (?, ?, ?)",
            [(slug, num, date) for slug in categories],
        )
        for tag in tags:
            slug = slugify(tag)
            conn.execute("INSERT OR IGNORE INTO tags(slug, name) VALUES (?, ?)", (slug, tag))
            conn.execute("INSERT OR IGNORE INTO post_tags(slug, post, date) VALUES (?, ?, ?)", (slug, num, date))

    @staticmethod
    def _values(post: Post, link_key: str) -> dict[str, Any]:
        return {
            "id": post.id,
            "source": post.source,
            "title": post.title,
            "link": post.link,
            "link_key": link_key,
            "guid": post.guid,
            "date": to_db_time(post.date),
            "updated": to_db_time(post.updated) if post.updated else None,
            "author": post.author,
            "summary": post.summary,
            "content": post.content,
            "categories": json.dumps(post.categories, ensure_ascii=False),
            "tags": json.dumps(post.tags, ensure_ascii=False),
            "enclosures": json.dumps([[e.url, e.type, e.length] for e in post.enclosures], ensure_ascii=False),
            "content_hash": post.content_hash,
            "dated": int(post.dated),
        }

    @staticmethod
    def _post(row: dict[str, Any]) -> Post:
        return Post(
            id=row["id"],
            source=row["source"],
            title=row["title"],
            link=row["link"],
            guid=row["guid"],
            date=from_db_time(row["date"]) or datetime.fromtimestamp(0, UTC),
            updated=from_db_time(row["updated"]),
            author=row["author"],
            summary=row["summary"],
            content=row["content"],
            categories=json.loads(row["categories"]),
            tags=json.loads(row["tags"]),
            enclosures=[Enclosure(u, t, n) for u, t, n in json.loads(row["enclosures"])],
            content_hash=row["content_hash"],
            dated=bool(row["dated"]),
        )

    def posts(
        self, *, category: str | None = None, tag: str | None = None, source: str | None = None,
        limit: int | None = 50, since: datetime | None = None,
    ) -> list[Post]:
        """Posts newest first, optionally of one category (slug), tag (slug) or source."""
        where, params = [], []
        if category is not None:
            where.append("num IN (SELECT post FROM post_categories WHERE slug = ?)")
            params.append(category)
        if tag is not None:
            where.append("num IN (SELECT post FROM post_tags WHERE slug = ?)")
            params.append(tag)
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if since is not None:
            where.append("date >= ?")
            params.append(to_db_time(since))
        sql = "SELECT * FROM posts" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY date DESC, num DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._post(row) for row in self.db.query(sql, params)]

    def get_post(self, post_id: str) -> Post | None:
        rows = list(self.db.query("SELECT * FROM posts WHERE id = ?", [post_id]))
        return self._post(rows[0]) if rows else None

    def count_posts(self, *, source: str | None = None) -> int:
        if source is None:
            return int(self.conn.execute("SELECT count(*) FROM posts").fetchone()[0])
        return int(self.conn.execute("SELECT count(*) FROM posts WHERE source = ?", (source,)).fetchone()[0])

    def search(self, query: str, limit: int = 50) -> list[Post]:
        """Posts matching every word of `query` (Chinese substrings included), newest first."""
        match = fts_query(query)
        if not match:
            return []
        sql = (
            "SELECT posts.* FROM posts JOIN posts_fts ON posts_fts.rowid = posts.num "
            "WHERE posts_fts MATCH ? ORDER BY posts.date DESC LIMIT ?"
        )
        return [self._post(row) for row in self.db.query(sql, [match, limit])]

    def category_names(self) -> dict[str, str]:
        return {row["slug"]: row["name"] for row in self.db.query("SELECT slug, name FROM categories")}

    # -- sources -------------------------------------------------------------------------------

    def source_state(self, name: str) -> SourceState:
        rows = list(self.db.query("SELECT * FROM sources WHERE name = ?", [name]))
        if not rows:
            return SourceState(name=name)
        return SourceState(**rows[0], posts=self.count_posts(source=name))

    def source_states(self) -> dict[str, SourceState]:
        counts = {r["source"]: r["n"] for r in self.db.query("SELECT source, count(*) AS n FROM posts GROUP BY source")}
        return {
            row["name"]: SourceState(**row, posts=counts.get(row["name"], 0))
            for row in self.db.query("SELECT * FROM sources")
        }

    def save_source_state(self, state: SourceState) -> None:
        values = {k: getattr(state, k) for k in SOURCE_FIELDS}
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO sources (name, {', '.join(values)}) VALUES (?, {', '.join('?' * len(values))}) "
                f"ON CONFLICT(name) DO UPDATE SET {', '.join(f'{k} = excluded.{k}' for k in values)}",
                (state.name, *values.values()),
            )

    def delete_posts_before(self, when: datetime) -> int:
        """Delete posts dated before `when` with their category, tag and full-text rows (retention).

        One transaction, so a crash never leaves index rows pointing at deleted posts. Returns how
        many posts were deleted.
        """
        cutoff = to_db_time(when)
        old = "SELECT num FROM posts WHERE date < ?"
        with self.transaction() as conn:
            conn.execute(f"DELETE FROM post_categories WHERE post IN ({old})", (cutoff,))
            conn.execute(f"DELETE FROM post_tags WHERE post IN ({old})", (cutoff,))
            conn.execute(f"DELETE FROM posts_fts WHERE rowid IN ({old})", (cutoff,))
            deleted = conn.execute("DELETE FROM posts WHERE date < ?", (cutoff,)).rowcount
        return int(deleted)

    def reset_source(self, name: str) -> bool:
        """Clear failures, backoff, validators, redirect and gone state; True if the source was known."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE sources SET failures = 0, next_due = NULL, gone = 0, moved_to = '', error = '', "
                "etag = '', last_modified = '' WHERE name = ?",
                (name,),
            )
        return cursor.rowcount > 0

    # -- full article text -------------------------------------------------------------------------

    def pending_articles(self, source: str, limit: int, max_tries: int) -> list[tuple[str, str]]:
        """(post id, link) of posts of `source` still owing their article, newest first."""
        rows = self.conn.execute(
            "SELECT id, link FROM posts WHERE source = ? AND article_status = 'pending' AND article_tries < ? "
            "ORDER BY date DESC LIMIT ?",
            (source, max_tries, limit),
        ).fetchall()
        return [(row[0], row[1]) for row in rows]

    def save_article(self, post_id: str, content: str, now: datetime, result: StoreResult) -> None:
        """Replace a post's teaser by its article: an update of the post (`updated` set)."""
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT num, title, summary, categories, tags FROM posts WHERE id = ?", (post_id,)
            ).fetchone()
            if row is None:
                return
            num, title, summary = row[0], row[1], row[2]
            conn.execute(
                "UPDATE posts SET content = ?, article_status = 'done', updated = ? WHERE num = ?",
                (content, to_db_time(now), num),
            )
            conn.execute("DELETE FROM posts_fts WHERE rowid = ?", (num,))
            conn.execute(
                "INSERT INTO posts_fts(rowid, title, body) VALUES (?, ?, ?)",
                (num, fts_text(title), fts_text(plain_text(summary) + " " + plain_text(content))),
            )
        result.updated += 1
        result.post_ids.append(post_id)
        result.categories.update(json.loads(row[3]))
        result.tags.update(slugify(t) for t in json.loads(row[4]))

    def article_failed(self, post_id: str, max_tries: int) -> None:
        """Count a failed article fetch; after `max_tries` the post keeps its feed content for good."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE posts SET article_tries = article_tries + 1, article_status = CASE "
                "WHEN article_tries + 1 >= ? THEN 'failed' ELSE 'pending' END WHERE id = ?",
                (max_tries, post_id),
            )

    def set_article_error(self, source: str, error: str) -> None:
        with self.transaction() as conn:
            conn.execute("UPDATE sources SET article_error = ? WHERE name = ?", (error, source))
