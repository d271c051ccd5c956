"""store_posts writes a batch's new rows together: what a later row of the same batch does to an
earlier one (an edit, the same article from another source) must still land on it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from aggregator.normalise import content_hash
from aggregator.slugs import slugify
from aggregator.store import Store

from .publish_helpers import make_post

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def test_a_batch_of_new_posts_is_stored_numbered_indexed_and_searchable(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    first = [make_post("甲", n, categories=["jia"], tags=["券商"], hours_ago=n) for n in range(3)]
    store.store_posts(first, {"jia": "甲"}, NOW)
    batch = [make_post("甲", n, categories=["jia"], tags=["券商", f"t{n}"], hours_ago=n) for n in range(3, 8)]
    result = store.store_posts(batch, {"jia": "甲"}, NOW)
    assert (result.new, result.updated) == (5, 0)
    rows = store.conn.execute("SELECT num, id FROM posts ORDER BY num").fetchall()
    assert [num for num, _ in rows] == list(range(1, 9))  # numbered after what was stored
    assert [post_id for _, post_id in rows[3:]] == [p.id for p in batch]
    assert [p.id for p in store.posts(category="jia", limit=None)] == [p.id for p in first + batch]
    assert [p.id for p in store.posts(tag="t5")] == [batch[2].id]
    assert len(store.posts(tag="quanshang", limit=None)) == 8
    assert {p.id for p in store.search("正文 5")} == {batch[2].id}


def test_an_edit_later_in_the_batch_updates_the_row_made_earlier_in_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    original = make_post("甲", 1, categories=["jia"], tags=["旧"], content="<p>旧文 老虎</p>")
    edited = dataclasses.replace(original, title="改过的标题", content="<p>新的正文 火箭</p>", tags=["新"])
    edited.content_hash = content_hash(edited)
    result = store.store_posts([original, edited], {"jia": "甲"}, NOW)
    assert (result.new, result.updated) == (1, 1)
    (stored,) = store.posts(limit=None)
    assert (stored.title, stored.tags) == ("改过的标题", ["新"])
    assert [p.id for p in store.search("火箭")] == [stored.id]
    assert store.search("老虎") == []  # the first version's text left the index
    assert store.posts(tag=slugify("旧")) == [] and len(store.posts(tag=slugify("新"))) == 1


def test_the_same_article_from_two_sources_in_one_batch_is_merged(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    a = make_post("甲", 1, categories=["jia"], tags=["甲新闻"], link="https://same.example.com/s?id=7")
    b = make_post("乙", 2, categories=["yi"], tags=["乙新闻"], link="http://same.example.com/s?id=7&utm_source=x")
    result = store.store_posts([a, b], {"jia": "甲", "yi": "乙"}, NOW)
    assert (result.new, result.updated) == (1, 1)
    (stored,) = store.posts(limit=None)
    assert (stored.id, sorted(stored.categories), sorted(stored.tags)) == (a.id, ["jia", "yi"], ["乙新闻", "甲新闻"])
    assert [p.id for p in store.posts(category="yi")] == [a.id]
    assert [p.id for p in store.posts(tag=slugify("乙新闻"))] == [a.id]
