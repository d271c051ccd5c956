"""A source's stored posts moving to the categories feeds.yaml now gives it.

A post takes its source's categories when it is stored, so renaming a category (or giving a
source another one) reached only the posts still in the source's feed: the rest, for a source
polled for years nearly all of them, stayed in the old category for good, which the home page
and the OPML list then showed beside the new one.
"""

from __future__ import annotations

import json
from datetime import datetime

from .base import Database, StoreResult, to_db_time
from .batch import INSERT_CATEGORY
from .posts import share_names


def moved(categories: list[str], old: list[str], new: list[str]) -> list[str]:
    """A post's categories with its source's `old` ones replaced by `new` (rules' ones kept after)."""
    return new + [slug for slug in categories if slug not in old and slug not in new]


class MoveStore(Database):
    def source_slugs(self, source: str) -> tuple[set[str], set[str]]:
        """The category and tag slugs of `source`'s own stored posts: the feeds its items are in,
        which name its feed URL, so a new URL must republish them (entry tags and rules included)."""
        categories = {slug for (slug,) in self.conn.execute(
            "SELECT DISTINCT c.slug FROM posts p JOIN post_categories c ON c.post = p.num WHERE p.source = ?", (source,)
        )}
        tags = {slug for (slug,) in self.conn.execute(
            "SELECT DISTINCT t.slug FROM posts p JOIN post_tags t ON t.post = p.num WHERE p.source = ?", (source,)
        )}
        return categories, tags

    def move_source_categories(self, source: str, old: list[str], new: list[str], now: datetime) -> StoreResult:
        """Give `source`'s stored posts (and its share of posts merged from several sources) the
        categories `new` in place of `old`; `updated` is set, as for any change of categories.
        Posts holding none of `old` (stored before an earlier change was recorded) are left alone.
        Call inside a transaction: the caller records the new categories in the same one."""
        result = StoreResult()
        columns = "SELECT num, id, date, categories, categories_by_source, source FROM posts"
        own = self.conn.execute(f"{columns} WHERE source = ?", (source,)).fetchall()
        # the shares it has in other sources' posts: only merged posts are read (index posts_shared)
        marker = f"%{json.dumps(source, ensure_ascii=False)}%"
        shared = self.conn.execute(
            f"{columns} WHERE categories_by_source != '{{}}' AND categories_by_source LIKE ? AND source != ?",
            (marker, source),
        ).fetchall()
        rows = own + shared
        stamp = to_db_time(now)
        changes, category_rows = [], []
        for num, post_id, date, shown, shares, owner in rows:
            shares_by = json.loads(shares)
            mine = shares_by.get(source) if shares_by else (json.loads(shown) if owner == source else None)
            if mine is None or not set(mine) & set(old):
                continue
            if shares_by:
                shares, categories = share_names(shares, source, moved(mine, old, new), str)
            else:
                categories = moved(mine, old, new)
            changes.append((json.dumps(categories, ensure_ascii=False), shares, stamp, num))
            category_rows += [(slug, num, date) for slug in categories]
            result.updated += 1
            result.post_ids.append(post_id)
            result.categories.update(json.loads(shown), categories)
        self.conn.executemany(
            "UPDATE posts SET categories = ?, categories_by_source = ?, updated = ? WHERE num = ?", changes
        )
        self.conn.executemany("DELETE FROM post_categories WHERE post = ?", [(change[-1],) for change in changes])
        self.conn.executemany(INSERT_CATEGORY, category_rows)
        return result
