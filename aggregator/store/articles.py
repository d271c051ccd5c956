"""Full article text: which posts still owe their article, and storing or giving up on it."""

from __future__ import annotations

import json
from datetime import datetime

from ..search_text import fts_text, search_body
from ..slugs import slugify
from .base import Database, StoreResult, to_db_time

_PENDING = (
    "SELECT date, id, link FROM posts WHERE {} AND article_status = 'pending' AND article_tries < ? "
    "ORDER BY date DESC LIMIT ?"
)
#: a source's own posts owing their article, then others' it asked for; the second spells out its
#: partial index's condition, or SQLite (which cannot see that a bound value meets it) scans every post
PENDING_QUERIES = (_PENDING.format("source = ?"), _PENDING.format("article_source = ? AND article_source != ''"))


class ArticleStore(Database):
    def pending_articles(self, source: str, limit: int, max_tries: int) -> list[tuple[str, str]]:
        """(post id, link) of the posts still owing their article that `source` fetches, newest first:
        its own, and others' it asked for (the same article, first stored from a source without
        full_text). One indexed query each."""
        rows = [row for query in PENDING_QUERIES for row in self.conn.execute(query, (source, max_tries, limit))]
        rows.sort(reverse=True)
        return list(dict.fromkeys((row[1], row[2]) for row in rows))[:limit]

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
            self.fts.replace(num, fts_text(title), search_body(summary, content))
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

