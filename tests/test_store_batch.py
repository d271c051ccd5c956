"""store_posts writes a batch's new rows together: what a later row of the same batch does to an
earlier one (an edit, the same article from another source) must still land on it."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from aggregator.normalise import content_hash
from aggregator.slugs import slugify
from aggregator.store import SourceState, Store
from aggregator.store.base import PAGE_SIZE, WAL_SIZE_LIMIT, StoreResult

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


def _fts_consistent(store: Store) -> bool:
    """FTS5's own check that its index matches its rows, and one row per post."""
    store.conn.execute("INSERT INTO posts_fts(posts_fts) VALUES ('integrity-check')")
    (rows,) = store.conn.execute("SELECT count(*) FROM posts_fts").fetchone()
    return bool(rows == store.count_posts())


def test_full_text_rows_wait_for_the_commit_and_survive_a_failed_source_beside_them(tmp_path: Path) -> None:
    """Sources sharing a commit queue their full-text rows until it; a source that fails in its
    savepoint takes only its own rows with it, even after the queue was written inside it."""
    store = Store(tmp_path / "db.sqlite")
    names = {"jia": "甲"}
    kept = [make_post("甲", n, categories=["jia"], content=f"<p>保留 词{n}</p>") for n in range(3)]
    lost = make_post("乙", 9, categories=["jia"], content="<p>丢弃 火箭</p>")
    edit = dataclasses.replace(kept[0], content="<p>改过 老虎</p>")
    edit.content_hash = content_hash(edit)

    class SourceFailed(Exception):
        pass

    with store.transaction():
        store.store_posts(kept, names, NOW)
        assert store.conn.execute("SELECT count(*) FROM posts_fts").fetchone()[0] == 0  # queued, not written
        try:
            with store.transaction():  # another source's savepoint: stores, edits (writing the queue), fails
                store.store_posts([lost], names, NOW)
                store.store_posts([edit], names, NOW)
                raise SourceFailed
        except SourceFailed:
            pass
    assert store.count_posts() == 3 and _fts_consistent(store)
    assert [p.id for p in store.search("保留 词0")] == [kept[0].id]  # the edit went with the failed savepoint
    assert store.search("火箭") == [] and store.search("老虎") == []


def test_a_post_stored_edited_and_given_its_article_in_one_commit_is_indexed_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    post = make_post("甲", 1, categories=["jia"], content="<p>第一版 苹果</p>")
    edit = dataclasses.replace(post, content="<p>第二版 香蕉</p>")
    edit.content_hash = content_hash(edit)
    with store.transaction():
        store.store_posts([post], {"jia": "甲"}, NOW)
        store.store_posts([edit], {"jia": "甲"}, NOW)
        store.save_article(post.id, "<p>全文 西瓜</p>", NOW, StoreResult())
    assert _fts_consistent(store)
    assert [p.id for p in store.search("西瓜")] == [post.id]
    assert store.search("苹果") == [] and store.search("香蕉") == []


def test_a_rolled_back_commit_leaves_no_full_text_rows_queued(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    try:
        with store.transaction():
            store.store_posts([make_post("甲", 1, categories=["jia"], content="<p>回滚 葡萄</p>")], {}, NOW)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    store.store_posts([make_post("甲", 2, categories=["jia"], content="<p>提交 橙子</p>")], {}, NOW)
    assert store.count_posts() == 1 and _fts_consistent(store)  # no row for the rolled-back post
    assert store.search("葡萄") == [] and len(store.search("橙子")) == 1


def test_a_new_database_gets_big_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    store = Store(tmp_path / "new.sqlite")
    store.store_posts([make_post("甲", 1, categories=["jia"])], {"jia": "甲"}, NOW)
    assert store.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    store.close()
    old = tmp_path / "old.sqlite"  # as made before: SQLite's default page size, WAL
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE mine (a)")
    conn.close()
    store = Store(old)
    posts = [make_post("甲", n, categories=["jia"], hours_ago=n) for n in range(3)]
    store.store_posts(posts, {"jia": "甲"}, NOW)
    assert store.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    store.close()
    store = Store(old)
    assert [p.id for p in store.posts(category="jia", limit=None)] == [p.id for p in posts]
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_wal_file_shrinks_back_to_its_limit_after_a_burst(tmp_path: Path) -> None:
    """A daemon keeps its connection open for months: the WAL must not stay at its largest burst."""
    path = tmp_path / "agg.db"
    with Store(path) as store:
        with store.transaction() as conn:  # a burst larger than the limit (a cold fetch of many feeds)
            conn.execute("CREATE TABLE burst(b BLOB)")
            for _ in range(WAL_SIZE_LIMIT // 1048576 + 8):
                conn.execute("INSERT INTO burst VALUES (zeroblob(1048576))")
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > WAL_SIZE_LIMIT
        with store.transaction() as conn:
            conn.execute("DROP TABLE burst")
        store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # what the auto-checkpoint does
        with store.transaction() as conn:  # the next write starts the WAL over
            conn.execute("CREATE TABLE after_burst(x)")
        assert wal.stat().st_size <= WAL_SIZE_LIMIT
        assert store.count_posts() == 0


def test_migration_7_forgets_validators_once_so_every_source_records_its_share(tmp_path: Path) -> None:
    """A database of the previous version held merged posts without each source's share: one full
    fetch of every source (no 304) records them. Later opens change nothing."""
    path = tmp_path / "db.sqlite"
    store = Store(path)
    store.save_source_state(SourceState(name="乙", url="https://b.example.com/rss", etag='"b1"',
                                        last_modified="Mon, 28 Mar 2022 10:00:00 GMT"))
    store.store_posts([make_post("甲", 1, categories=["jia", "yi"])], {"jia": "甲"}, NOW)
    store.close()
    with sqlite3.connect(path) as conn:  # back to version 6, as the previous release left it
        conn.execute("DROP INDEX posts_shared")  # migration 10
        conn.execute("ALTER TABLE posts DROP COLUMN guid_taken")  # migration 11
        for column in ("categories_by_source", "tags_by_source"):
            conn.execute(f"ALTER TABLE posts DROP COLUMN {column}")
        conn.execute("DROP TABLE source_resets")
        conn.execute("DROP TABLE unpublished_runs")  # migration 8
        conn.execute("ALTER TABLE sources DROP COLUMN categories")  # migration 9
        conn.execute("PRAGMA user_version = 6")
    store = Store(path)
    state = store.source_state("乙")
    assert (state.etag, state.last_modified, state.url) == ("", "", "https://b.example.com/rss")
    (post,) = store.posts(limit=None)
    assert post.categories == ["jia", "yi"]  # what it showed stays until the sources' next fetches
    store.save_source_state(SourceState(name="乙", url="https://b.example.com/rss", etag='"b2"'))
    store.close()
    store = Store(path)
    assert store.source_state("乙").etag == '"b2"'
    store.close()


def test_migration_11_gives_a_shared_guid_to_the_post_stored_first_for_good(tmp_path: Path) -> None:
    """Before schema 11 the owner of a guid two sources share was worked out from the posts stored:
    the upgrade records it, so deleting the first post no longer hands its guid to the second."""
    path = tmp_path / "db.sqlite"
    store = Store(path)
    first, second = make_post("甲", 1, categories=[], guid="1"), make_post("乙", 2, categories=[], guid="1")
    store.store_posts([first], {}, NOW)
    store.store_posts([second], {}, NOW)
    assert store.guid_owners(["1"]) == {"1": first.id}
    store.close()
    with sqlite3.connect(path) as conn:  # back to version 10, as the previous release left it
        conn.execute("ALTER TABLE posts DROP COLUMN guid_taken")
        conn.execute("PRAGMA user_version = 10")
    store = Store(path)
    assert store.guid_owners(["1"]) == {"1": first.id}
    with store.transaction() as conn:
        conn.execute("DELETE FROM posts WHERE id = ?", (first.id,))
    assert store.guid_owners(["1"]) == {"1": ""}  # nobody's: the second post keeps ids of its own
    third = make_post("丙", 3, categories=[], guid="1")
    store.store_posts([third], {}, NOW)
    assert store.guid_owners(["1"]) == {"1": ""}
    store.close()


def test_a_database_whose_folder_is_a_file_says_so(tmp_path: Path) -> None:
    import pytest

    from aggregator.errors import StoreError

    (tmp_path / "var").write_text("not a folder")
    with pytest.raises(StoreError) as caught:
        Store(tmp_path / "var" / "aggregator.db")
    assert str(caught.value) == f"{tmp_path / 'var' / 'aggregator.db'}: cannot open database: {tmp_path / 'var'} is a file, not a folder"


def test_an_entry_renamed_to_https_after_retention_deleted_it_stays_deleted(tmp_path: Path) -> None:
    """Retention remembers the ids of the undated posts it deleted, so their entries do not come back;
    an entry whose guid then moves to https is the same entry, and stays deleted too."""
    store = Store(tmp_path / "db.sqlite")
    retired = make_post("甲", 1, categories=["jia"])
    store.conn.execute("INSERT INTO retired_posts (id, retired) VALUES (?, '2026-12-01T00:00:00Z')", (retired.id,))
    renamed = dataclasses.replace(make_post("甲", 2, categories=["jia"]), scheme_twin_id=retired.id)
    other = dataclasses.replace(make_post("甲", 3, categories=["jia"]), scheme_twin_id="no-such-id")
    result = store.store_posts([renamed, other], {}, NOW)
    assert (result.new, result.updated) == (1, 0)
    assert [p.id for p in store.posts(limit=None)] == [other.id]


def test_runs_that_never_published_are_abandoned_once_their_process_is_gone(tmp_path: Path) -> None:
    """A run notes itself before storing and forgets the note once published. A note is owed a
    build when its process is gone, is this one (about to build everything), or is hours old
    (its pid reused); a note of another live process is that run's own business."""
    import subprocess
    import sys

    store = Store(tmp_path / "db.sqlite")
    ours = store.note_run()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rows = [("gone", int(gone.stdout), "2026-12-02T08:00:00Z"),  # exited: its pid is free
            ("running", 1, "2099-01-01T00:00:00Z"),  # pid 1 is alive; noted "now" as far as age goes
            ("stale", 1, "2020-01-01T00:00:00Z")]  # alive pid, but noted years ago: reused
    with store.transaction() as conn:
        conn.executemany("INSERT INTO unpublished_runs (run, pid, noted) VALUES (?, ?, ?)", rows)
    assert sorted(store.abandoned_runs()) == sorted([ours, "gone", "stale"])
    store.forget_runs([ours, "gone"])
    assert [r[0] for r in store.conn.execute("SELECT run FROM unpublished_runs ORDER BY run")] == ["running", "stale"]


def test_storing_fetching_and_moving_never_reads_every_post(tmp_path: Path) -> None:
    """Every statement the ingest path runs uses an index on posts: a plan that scans the table
    costs each fetch the size of the database (a missing `guid != ''` on a partial index did)."""
    store = Store(tmp_path / "db.sqlite")
    store.store_posts([make_post(f"s{i % 3}", i, categories=["jia"], tags=["新闻"]) for i in range(30)], {}, NOW)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    batch = [make_post("s0", i, categories=["jia"], title="changed") for i in range(0, 40, 3)]
    batch.append(make_post("s1", 100, categories=["jia"], guid="https://articles.example.com/s0/3"))
    store.store_posts(batch, {}, NOW, full_text=True, sources=["s0", "s1", "s2"])
    with store.transaction():
        store.move_source_categories("s0", ["jia"], ["yi"], NOW)
        store.source_slugs("s1")
    store.save_source_state(SourceState(name="s0"), read_as=("", 0, None, 0, "", "", "", ""))
    store.guid_owners(["https://articles.example.com/s0/3"])
    store.conn.set_trace_callback(None)
    reads = [s for s in statements if s.lstrip().split(None, 1)[0].upper() in ("SELECT", "UPDATE", "DELETE", "INSERT")]
    assert len(reads) > 10
    scans = []
    for statement in reads:
        for row in store.conn.execute("EXPLAIN QUERY PLAN " + statement):
            # the only scan allowed: the partial index of merged posts (those of several sources)
            if re.match(r"SCAN posts\b(?!_)", row[3]) and "USING INDEX posts_shared" not in row[3]:
                scans.append((statement[:160], row[3]))
    assert not scans, scans
