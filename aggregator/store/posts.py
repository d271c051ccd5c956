"""Posts: upserts (new, changed in place, the same article from two sources), queries and search."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..models import Enclosure, Post
from ..sanitise import canonical_link
from ..search_text import fts_query, fts_text, search_body
from ..slugs import slugify
from .base import Database, StoreResult, from_db_time, to_db_time
from .batch import INSERT_CATEGORY, INSERT_TAG, Known, adopt_scheme_twins, chunks, retained

RETIRED_FOR = timedelta(days=365)  # how long the id of an undated post retention deleted is remembered


class PostStore(Database):
    def store_posts(
        self, posts: list[Post], category_names: dict[str, str], now: datetime | None = None, full_text: bool = False,
        not_before: datetime | None = None, sources: Collection[str] | None = None,
    ) -> StoreResult:
        """Insert new posts, update changed ones in place, merge the same article from two sources.

        `sources`: the configured source names; a merged post touched here forgets the share of a
        source no longer among them (renamed or removed in feeds.yaml).

        The whole batch is one transaction: a crash leaves all of it or none of it. With `full_text`
        new posts (and posts whose link changed) are marked as owing their article. Posts that
        retention deletes (dated before `not_before`, or undated ones it deleted already) are not
        stored: their entries stay in the feed, and they would come back at every poll.
        """
        now = now or datetime.now(UTC)
        result = StoreResult()
        with self.transaction() as conn:
            posts = retained(conn, adopt_scheme_twins(conn, posts), not_before)
            known = Known(conn, posts)
            known.sources = sources
            for post in posts:
                self._store_one(conn, post, now, result, full_text, known)
            known.new.flush(conn)
            for slug in result.categories:
                name = category_names.get(slug, slug)
                conn.execute("INSERT OR IGNORE INTO categories(slug, name) VALUES (?, ?)", (slug, name))
        return result

    def _store_one(
        self, conn: sqlite3.Connection, post: Post, now: datetime, result: StoreResult, full_text: bool,
        known: Known,
    ) -> None:
        row = known.rows.get(post.id)
        link_key = known.link_keys.get(post.link) or (canonical_link(post.link) if post.link else "")
        twin = known.twin(post, link_key) if row is None and link_key else None
        if twin is not None:
            self._merge_twin(conn, twin, post, result, known)
            if full_text and post.link:  # its first source had no full_text: this one fetches it
                self._ask_for_article(conn, twin[0], post.source)
            return
        if row is None:
            values = self._values(post, link_key)
            values["guid_taken"] = int(bool(post.guid) and post.guid in known.guids_taken)
            known.guids_taken.add(post.guid)
            status = "pending" if full_text and post.link else ""
            num = known.new.add(values, status, to_db_time(now))
            result.new += 1
            known.rows[post.id] = (num, post.content_hash, values["date"], values["updated"], values["categories"],
                                   values["tags"], post.link, status, values["content"], "{}", "{}")
            categories, tags = post.categories, post.tags
            if link_key:
                twin_row = (num, post.content_hash, values["date"], values["updated"], values["categories"],
                            values["tags"], post.id, "{}", "{}", post.source)
                known.inserted.setdefault(link_key, (twin_row, post.source))
        else:
            num, old_hash, old_date, old_updated = row[0], row[1], row[2], row[3]
            if old_hash == post.content_hash:
                if full_text and post.link and not row[7]:  # full_text turned on since it was stored
                    conn.execute("UPDATE posts SET article_status = 'pending', article_tries = 0 "
                                 "WHERE num = ? AND article_status = ''", (num,))
                return
            known.new.flush(conn)  # the row may be one of this batch's, not written yet
            values = self._values(post, link_key)
            if not post.dated:
                values["date"] = old_date
            # the same article when the link changed only in scheme or tracking parameters
            same_article = post.link == row[6] or bool(link_key) and link_key == canonical_link(row[6])
            if row[7] == "done" and same_article:
                values["content"] = row[8]  # an edit of the entry keeps the fetched article
            elif full_text and not same_article:
                values["article_status"], values["article_tries"] = "pending", 0
            stamp = post.updated if post.updated and to_db_time(post.updated) > (old_updated or "") else now
            values["updated"] = to_db_time(stamp)
            categories, tags = post.categories, post.tags
            shared = row[9] != "{}" or row[10] != "{}"  # other sources' shares: kept, their next fetch may be a 304
            if shared and not same_article:  # another article now: the others' shares go
                values["categories_by_source"] = values["tags_by_source"] = "{}"
            elif shared:
                live, source = known.sources, post.source
                values["categories_by_source"], categories = share_names(
                    row[9], source, post.categories, str, live=live
                )
                values["tags_by_source"], tags = share_names(row[10], source, post.tags, str.casefold, live=live)
                values["categories"] = json.dumps(categories, ensure_ascii=False)
                values["tags"] = json.dumps(tags, ensure_ascii=False)
            conn.execute(
                f"UPDATE posts SET {', '.join(k + ' = ?' for k in values)} WHERE num = ?", (*values.values(), num)
            )
            result.updated += 1
            result.categories.update(json.loads(row[4]))
            result.tags.update(slugify(t) for t in json.loads(row[5]))
        self._index(conn, num, values["date"], categories, tags, known, fresh=row is None)
        # post.text is ready for the index (normalise made it); not when the stored content differs
        body = post.text if values["content"] == post.content and post.text else (
            search_body(post.summary, values["content"])
        )
        if row is None:
            self.fts.add(num, fts_text(post.title), body)
        else:  # also when the row is this batch's: the queue then just holds the newer text
            self.fts.replace(num, fts_text(post.title), body)
        result.post_ids.append(post.id)
        result.categories.update(categories)
        result.tags.update(slugify(t) for t in tags)

    def _merge_twin(self, conn: sqlite3.Connection, twin: Any, post: Post, result: StoreResult, known: Known) -> None:
        """The same article from another source: its categories and tags become this source's share
        of the post's (replacing what it gave before: a category renamed in feeds.yaml moves)."""
        num, date, post_id, owner = twin[0], twin[2], twin[6], twin[9]
        live = known.sources
        categories_by, categories = share_names(twin[7], post.source, post.categories, str, owner, twin[4], live)
        tags_by, tags = share_names(twin[8], post.source, post.tags, str.casefold, owner, twin[5], live)
        as_json = (json.dumps(categories, ensure_ascii=False), json.dumps(tags, ensure_ascii=False))
        if (*as_json, categories_by, tags_by) == (twin[4], twin[5], twin[7], twin[8]):
            return
        known.new.flush(conn)  # the twin may be one of this batch's posts, not written yet
        conn.execute(
            "UPDATE posts SET categories = ?, tags = ?, categories_by_source = ?, tags_by_source = ? WHERE num = ?",
            (*as_json, categories_by, tags_by, num),
        )
        merged = (*twin[:4], *as_json, post_id, categories_by, tags_by, owner)
        key = canonical_link(post.link)
        if key in known.twins:
            known.twins[key] = merged
        else:
            known.inserted[key] = (merged, known.inserted[key][1])
        if post_id in known.rows:  # the owner's post is in this batch too: its edit must see the shares
            row = known.rows[post_id]
            known.rows[post_id] = (*row[:4], *as_json, *row[6:9], categories_by, tags_by)
        if as_json == (twin[4], twin[5]):
            return  # only the shares changed (the same names): nothing to republish
        self._index(conn, num, date, categories, tags, known)
        result.updated += 1
        result.post_ids.append(post_id)
        result.categories.update(categories)
        result.tags.update(slugify(t) for t in tags)

    @staticmethod
    def _ask_for_article(conn: sqlite3.Connection, num: int, source: str) -> bool:
        """Have `source` fetch the article of post `num`, unless its article was ever asked for."""
        cursor = conn.execute(
            "UPDATE posts SET article_status = 'pending', article_tries = 0, article_source = ? "
            "WHERE num = ? AND article_status = ''",
            (source, num),
        )
        return cursor.rowcount > 0

    @staticmethod
    def _index(
        conn: sqlite3.Connection, num: int, date: str, categories: list[str], tags: list[str], known: Known,
        fresh: bool = False,
    ) -> None:
        category_rows = [(slug, num, date) for slug in categories]
        tag_rows = []
        for tag in tags:
            slug = slugify(tag)
            if slug not in known.tags:
                conn.execute("INSERT OR IGNORE INTO tags(slug, name) VALUES (?, ?)", (slug, tag))
                known.tags.add(slug)
            tag_rows.append((slug, num, date))
        if fresh:  # a new post: its rows go with the batch's other new rows
            known.new.categories += category_rows
            known.new.tags += tag_rows
            return
        conn.execute("DELETE FROM post_categories WHERE post = ?", (num,))
        conn.execute("DELETE FROM post_tags WHERE post = ?", (num,))
        conn.executemany(INSERT_CATEGORY, category_rows)
        conn.executemany(INSERT_TAG, tag_rows)

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
            "updated": to_db_time(post.updated) if post.updated and post.updated != post.date else None,
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
        if (category is None) != (tag is None) and source is None and since is None:
            # the feeds' query: walk the (slug, date, post) index, however big the category
            table, slug = ("post_categories", category) if category is not None else ("post_tags", tag)
            sql = (
                f"SELECT posts.* FROM {table} AS i JOIN posts ON posts.num = i.post WHERE i.slug = ? "
                "ORDER BY i.date DESC, i.post DESC" + (f" LIMIT {int(limit)}" if limit is not None else "")
            )
            return [self._post(row) for row in self.db.query(sql, [slug])]
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

    def posts_by_id(self, post_ids: list[str]) -> dict[str, Post]:
        """The stored posts among `post_ids` (a few IN queries, not one query per post)."""
        found: dict[str, Post] = {}
        for chunk in chunks(list(dict.fromkeys(post_ids)), Known.CHUNK):
            sql = f"SELECT * FROM posts WHERE id IN ({', '.join('?' * len(chunk))})"
            found.update((row["id"], self._post(row)) for row in self.db.query(sql, chunk))
        return found

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

    def category_names(self, configured: Mapping[str, str] | None = None) -> dict[str, str]:
        """Category slug -> name, for every category stored; `configured` (feeds.yaml's) names win."""
        stored = {row["slug"]: row["name"] for row in self.db.query("SELECT slug, name FROM categories")}
        return {**stored, **(configured or {})}

    def remember_categories(self, names: Mapping[str, str]) -> None:
        """Record categories (slug -> name) that have no posts yet: a category is published from
        feeds.yaml even when empty, and one the database never heard of would not be recognised
        as stale, its folder left published, once feeds.yaml drops it."""
        with self.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO categories(slug, name) VALUES (?, ?)", list(names.items()))

    def delete_posts_before(self, when: datetime) -> int:
        """Delete posts dated before `when` with their category, tag and full-text rows (retention).

        One transaction, so a crash never leaves index rows pointing at deleted posts. Returns how
        many posts were deleted.
        """
        cutoff = to_db_time(when)
        old = "SELECT num FROM posts WHERE date < ?"
        with self.transaction() as conn:
            self.fts.write(conn)
            # an undated post's date is when it was first seen: its id is kept, or the entry would be
            # stored again dated now. Kept for a year, so the table cannot grow for ever.
            today = datetime.now(UTC)
            conn.execute("DELETE FROM retired_posts WHERE retired < ?", (to_db_time(today - RETIRED_FOR),))
            conn.execute(
                "INSERT OR IGNORE INTO retired_posts (id, retired) "
                "SELECT id, ? FROM posts WHERE date < ? AND dated = 0",
                (to_db_time(today), cutoff),
            )
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

    def tag_info(self, slugs: Iterable[str], at_least: int) -> dict[str, tuple[str, int]]:
        """Like `tag_counts`, for these tags only, each count stopping at `at_least`: enough to
        tell whether a tag has a feed, in time that does not grow with the database."""
        found = {}
        for slug in slugs:
            (count,) = self.conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM post_tags WHERE slug = ? LIMIT ?)", (slug, max(1, at_least))
            ).fetchone()
            if count:
                row = self.conn.execute("SELECT name FROM tags WHERE slug = ?", (slug,)).fetchone()
                found[slug] = (row[0] if row else slug, int(count))
        return found

    def guid_owners(self, guids: Iterable[str]) -> dict[str, str]:
        """guid -> id of the post that has it (stored when no other post had it), or "" when that
        post is gone and the guid is nobody's: the later posts keep the ids they were given."""
        owners = {}
        for guid in {g for g in guids if g}:
            row = self.conn.execute(
                "SELECT id, guid_taken FROM posts WHERE guid = ? AND guid != '' ORDER BY guid_taken, num LIMIT 1",
                (guid,),
            ).fetchone()
            if row:
                owners[guid] = "" if row[1] else row[0]
        return owners

    def post_ids(self) -> set[str]:
        """The id of every stored post."""
        return {row[0] for row in self.conn.execute("SELECT id FROM posts")}


def share_names(
    stored: str, source: str, names: list[str], key: Callable[[str], str], owner: str = "", shown: str = "[]",
    live: Collection[str] | None = None,
) -> tuple[str, list[str]]:
    """Set `source`'s share of a post's names; return (the shares as JSON, the names to show: every
    share's, the owner's first, without repeats by `key`). `stored` '{}' means one source so far:
    the owner, whose share is what the post shows (`shown`). The share of a source not in `live`
    (renamed or removed in feeds.yaml) is dropped, except the first one's: the post is its."""
    shares: dict[str, list[str]] = json.loads(stored) or ({owner: json.loads(shown)} if owner else {})
    if live is not None:
        first = next(iter(shares), source)
        shares = {name: share for name, share in shares.items() if name in live or name == first}
    shares[source] = names
    seen: set[str] = set()
    union = []
    for name in (name for share in shares.values() for name in share):
        if key(name) not in seen:
            seen.add(key(name))
            union.append(name)
    return json.dumps(shares, ensure_ascii=False), union
