"""What one batch of posts meets in the database: the rows it already has, read with a few IN
queries (`Known`), the new rows written with one executemany per table (`NewRows`), the posts
retention would delete (`retained`) and the entries a move to HTTPS renamed (`adopt_scheme_twins`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..models import Post
from ..sanitise import canonical_link

INSERT_CATEGORY = "INSERT OR IGNORE INTO post_categories(slug, post, date) VALUES (?, ?, ?)"
INSERT_TAG = "INSERT OR IGNORE INTO post_tags(slug, post, date) VALUES (?, ?, ?)"


class NewRows:
    """The rows of a batch's new posts, written with one executemany per table.

    A statement per post and table (five per post) cost Python time and, with other threads
    running, a GIL hand-over each (every statement releases it). New posts get their numbers here, from the
    largest one stored (the batch runs inside BEGIN IMMEDIATE, so nobody else inserts meanwhile).
    Anything that reads or changes an existing row flushes first, so statements still see the
    rows in the order they were made.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.next_num = int(conn.execute("SELECT coalesce(max(num), 0) FROM posts").fetchone()[0]) + 1
        self.posts: list[tuple[Any, ...]] = []
        self.categories: list[tuple[str, int, str]] = []
        self.tags: list[tuple[str, int, str]] = []
        self.columns = ""

    def add(self, values: dict[str, Any], article_status: str, first_seen: str) -> int:
        """Queue a new post's row; return the number it will have."""
        num, self.next_num = self.next_num, self.next_num + 1
        self.columns = self.columns or ", ".join(["num", *values, "article_status", "first_seen"])
        self.posts.append((num, *values.values(), article_status, first_seen))
        return num

    def flush(self, conn: sqlite3.Connection) -> None:
        if self.posts:
            marks = ", ".join("?" * len(self.posts[0]))
            conn.executemany(f"INSERT INTO posts ({self.columns}) VALUES ({marks})", self.posts)
        conn.executemany(INSERT_CATEGORY, self.categories)
        conn.executemany(INSERT_TAG, self.tags)
        self.posts, self.categories, self.tags = [], [], []


class Known:
    """What the database already holds for one batch, read with a few IN queries instead of two
    look-ups per post: rows by id, twins (same link, another source) by link key, and tag slugs."""

    CHUNK = 500

    def __init__(self, conn: sqlite3.Connection, posts: list[Post]):
        self.rows: dict[str, tuple[Any, ...]] = {}
        self.twins: dict[str, tuple[Any, ...]] = {}
        self.tags: set[str] = set()
        self.inserted: dict[str, tuple[tuple[Any, ...], str]] = {}  # link key -> (twin row, source)
        self.new = NewRows(conn)
        self.sources: Collection[str] | None = None  # the configured source names (store_posts)
        ids = [p.id for p in posts]
        for chunk in chunks(ids, self.CHUNK):
            for row in conn.execute(
                "SELECT id, num, content_hash, date, updated, categories, tags, link, article_status, content, "
                f"categories_by_source, tags_by_source FROM posts WHERE id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ):
                self.rows[row[0]] = tuple(row[1:])
        # link -> link key of the new posts, kept: _store_one needs each again
        self.link_keys = {p.link: canonical_link(p.link) for p in posts if p.link and p.id not in self.rows}
        wanted = {self.link_keys[p.link]: p.source for p in posts if p.link and p.id not in self.rows}
        for chunk in chunks(list(wanted), self.CHUNK):
            for row in conn.execute(
                "SELECT link_key, source, num, content_hash, date, updated, categories, tags, id, "
                "categories_by_source, tags_by_source, source FROM posts "
                f"WHERE link_key IN ({', '.join('?' * len(chunk))}) ORDER BY num",
                chunk,
            ):
                if row[1] != wanted[row[0]] and row[0] not in self.twins:
                    self.twins[row[0]] = tuple(row[2:])
        # the guids of new posts that stored posts have already (schema 11: guid_taken)
        self.guids_taken: set[str] = set()
        guids = list({p.guid for p in posts if p.guid and p.id not in self.rows})
        for chunk in chunks(guids, self.CHUNK):
            # guid != '': the index on guid (posts_guid) is partial, and without it this read every post
            query = f"SELECT guid FROM posts WHERE guid IN ({', '.join('?' * len(chunk))}) AND guid != ''"
            self.guids_taken.update(row[0] for row in conn.execute(query, chunk))

    def twin(self, post: Post, link_key: str) -> tuple[Any, ...] | None:
        """The stored post (from another source) with the same link, if any."""
        twin = self.twins.get(link_key)
        if twin is None and link_key in self.inserted and self.inserted[link_key][1] != post.source:
            twin = self.inserted[link_key][0]
        return twin


def retained(conn: sqlite3.Connection, posts: list[Post], not_before: datetime | None) -> list[Post]:
    """`posts` without those retention deleted or would delete: dated before `not_before`, or retired."""
    if not_before is not None:
        posts = [p for p in posts if not (p.dated and p.date < not_before)]
    if not posts or conn.execute("SELECT 1 FROM retired_posts LIMIT 1").fetchone() is None:
        return posts
    retired: set[str] = set()
    for chunk in chunks([p.id for p in posts], Known.CHUNK):
        query = f"SELECT id FROM retired_posts WHERE id IN ({', '.join('?' * len(chunk))})"
        retired.update(row[0] for row in conn.execute(query, chunk))
    return [p for p in posts if p.id not in retired]


def adopt_scheme_twins(conn: sqlite3.Connection, posts: list[Post]) -> list[Post]:
    """`posts`, each entry whose guid (or link) only swapped http and https taking the id and guid
    of the post stored, or retired by retention, under the other form.

    A site moving to HTTPS republishes every entry it still lists under a new guid: without this,
    each would be stored and published a second time. Not when the batch holds both forms (a feed
    listing both has two entries) or the new form is stored as well. The stored guid is kept, so
    readers of our feeds see no new item either.
    """
    wanted = {p.scheme_twin_id: p.id for p in posts if p.scheme_twin_id}
    ids = {p.id for p in posts}
    candidates = [twin for twin in wanted if twin not in ids]
    twins: dict[str, str] = {}  # twin id -> the guid it is stored with ("" when retired)
    retired = conn.execute("SELECT 1 FROM retired_posts LIMIT 1").fetchone() is not None
    for chunk in chunks(candidates, Known.CHUNK):
        marks = ", ".join("?" * len(chunk))
        query = f"SELECT id, guid FROM posts WHERE id IN ({marks})"
        twins.update((row[0], row[1]) for row in conn.execute(query, chunk))
        if retired:
            query = f"SELECT id FROM retired_posts WHERE id IN ({marks})"
            twins.update((row[0], "") for row in conn.execute(query, chunk))
    if not twins:
        return posts
    renamed = [wanted[twin] for twin in twins]
    stored = {row[0] for chunk in chunks(renamed, Known.CHUNK)
              for row in conn.execute(f"SELECT id FROM posts WHERE id IN ({', '.join('?' * len(chunk))})", chunk)}
    return [
        replace(p, id=p.scheme_twin_id, guid=twins[p.scheme_twin_id] or p.guid)
        if p.scheme_twin_id in twins and p.id not in stored else p
        for p in posts
    ]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
