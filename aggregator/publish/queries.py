"""Read-only aggregate queries publishing needs and `Store` does not offer yet.

Counting per category and tag through `Store.posts()` would load every post with its content; these
are single GROUP BY queries over the index tables. They only read, through the store's connection.
(Candidates to move into `Store` itself.)
"""

from __future__ import annotations

from ..store import Store


def category_counts(store: Store) -> dict[str, int]:
    """Category slug -> number of posts in it."""
    rows = store.conn.execute("SELECT slug, count(*) FROM post_categories GROUP BY slug")
    return {slug: int(count) for slug, count in rows}


def tag_counts(store: Store) -> dict[str, tuple[str, int]]:
    """Tag slug -> (its name, number of posts with it), for every tag on at least one post."""
    rows = store.conn.execute(
        "SELECT post_tags.slug, coalesce(tags.name, post_tags.slug), count(*) FROM post_tags "
        "LEFT JOIN tags ON tags.slug = post_tags.slug GROUP BY post_tags.slug"
    )
    return {slug: (name, int(count)) for slug, name, count in rows}


def post_ids(store: Store) -> set[str]:
    """The id of every stored post."""
    return {row[0] for row in store.conn.execute("SELECT id FROM posts")}
