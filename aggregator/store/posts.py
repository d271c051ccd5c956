"""Posts: upserts (new, changed in place, the same article from two sources), queries and search."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

from ..models import Enclosure, Post
from ..sanitise import canonical_link, plain_text
from ..search_text import fts_query, fts_text
from ..slugs import slugify
from .base import Database, StoreResult, from_db_time, to_db_time


class PostStore(Database):
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

    def category_counts(self) -> dict[str, int]:
        """Category slug -> number of posts in it (one GROUP BY over the index table)."""
        rows = self.conn.execute("SELECT slug, count(*) FROM post_categories GROUP BY slug")
        return {slug: int(count) for slug, count in rows}

    def tag_counts(self) -> dict[str, tuple[str, int]]:
        """Tag slug -> (its name, number of posts with it), for every tag on at least one post."""
        rows = self.conn.execute(
            "SELECT post_tags.slug, coalesce(tags.name, post_tags.slug), count(*) FROM post_tags "
            "LEFT JOIN tags ON tags.slug = post_tags.slug GROUP BY post_tags.slug"
        )
        return {slug: (name, int(count)) for slug, name, count in rows}

    def post_ids(self) -> set[str]:
        """The id of every stored post."""
        return {row[0] for row in self.conn.execute("SELECT id FROM posts")}
