"""The real CLI in a subprocess: fetch, posts, search, sources, exit codes, crash safety."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from .conftest import ROOT, fixture, run_cli, write_config
from .feedserver import FeedServer


def test_fetch_posts_and_search_end_to_end(server: FeedServer, tmp_path: Path) -> None:
    write_config(
        tmp_path,
        [
            {
                "name": "每日经济新闻",
                "url": server.add("/mrjj.xml", fixture("rss20.xml")),
                "tags": ["每日经济新闻新闻"],
                "exclude": ["广告"],
            },
            {"name": "Atom", "url": server.add("/atom.xml", fixture("atom10.xml"))},
        ],
    )
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "2 sources: 2 ok, 0 not modified, 0 failed; posts: 3 new, 0 updated"
    )
    again = run_cli("fetch", cwd=tmp_path)
    assert again.returncode == 0
    assert "posts: 0 new, 0 updated" in again.stdout

    listed = run_cli("posts", "--category", "meirijingjixinwen", "--format", "json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 2
    first = rows[0]
    assert list(first) == [
        "id",
        "source",
        "title",
        "link",
        "guid",
        "date",
        "updated",
        "author",
        "summary",
        "content",
        "categories",
        "tags",
        "enclosures",
    ]
    assert first["date"] == "2022-03-28T22:51:22+08:00"
    assert first["title"].startswith("上海券商抗疫进行时")
    assert first["categories"] == ["meirijingjixinwen"] and first["tags"] == ["每日经济新闻新闻", "证券"]
    assert first["enclosures"] == [
        {"url": "http://finews.example.com/audio/1.mp3", "type": "audio/mpeg", "length": 12345}
    ]

    table = run_cli("posts", "--limit", "1", cwd=tmp_path)
    assert "2024-05-02 17:00" in table.stdout and "Bold title" in table.stdout

    found = run_cli("search", "金融科技", "--format", "json", cwd=tmp_path)
    assert [json.loads(x)["guid"] for x in found.stdout.splitlines()] == ["NW202203282325465316"]

    limited = run_cli("fetch", "--source", "Atom", cwd=tmp_path)
    assert limited.returncode == 0 and "1 source:" in limited.stdout

    by_name = run_cli("posts", "--category", "每日经济新闻", "--format", "json", cwd=tmp_path)
    assert by_name.returncode == 0 and by_name.stdout == listed.stdout  # a category's name as well as its slug
    for args, message in (
        (["posts", "--category", "nope"], "error: no category 'nope' (known slugs: atom, meirijingjixinwen)"),
        (["posts", "--source", "nobody"], "error: no source named 'nobody' in feeds.yaml or the database"),
        (["sources", "reset", "nobody"], "error: no fetch state stored for a source named 'nobody'"),
    ):
        unknown = run_cli(*args, cwd=tmp_path)
        assert (unknown.returncode, unknown.stderr.strip(), unknown.stdout) == (2, message, ""), args


def test_fetch_exit_1_names_each_failure(server: FeedServer, tmp_path: Path) -> None:
    write_config(
        tmp_path,
        [
            {"name": "good", "url": server.add("/ok.xml", fixture("rss091.xml"))},
            {"name": "bad", "url": server.add("/bad.xml", b"x", status=500)},
            {"name": "off", "url": server.add("/off.xml", b"x", status=500), "enabled": False},
        ],
    )
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "failed: bad: HTTP 500 Internal Server Error"
    assert "2 sources: 1 ok, 0 not modified, 1 failed; posts: 2 new, 0 updated" in result.stdout


def test_fetch_unknown_source_is_usage_error(tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/x.xml"}])
    result = run_cli("fetch", "--source", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "no source named 'nope'" in result.stderr


def test_config_option_before_or_after_the_command(tmp_path: Path) -> None:
    """The README's `--config PATH` works on either side of the command (and after wins)."""
    site = tmp_path / "site"
    site.mkdir()
    write_config(site, [{"name": "a", "url": "http://127.0.0.1:9/x.xml"}])
    for args in (["check", "--config", "site/feeds.yaml"], ["--config", "site/feeds.yaml", "check"],
                 ["--config", "missing.yaml", "check", "--config", "site/feeds.yaml"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, args
        # counts read as sentences: "1 source", "1 category", "0 rules"
        assert result.stdout == "site/feeds.yaml: ok: 1 source (1 enabled), 1 category, 0 rules\n", args
    for args in (["sources", "list", "--config", "site/feeds.yaml"], ["sources", "--config", "site/feeds.yaml", "list"]):
        listed = run_cli(*args, "--format", "json", cwd=tmp_path)
        assert [row["name"] for row in json.loads(listed.stdout)] == ["a"], args
    missing = run_cli("fetch", "--config", "missing.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("missing.yaml: no such file")


def test_build_names_files_as_the_user_would_type_them(tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/x.xml"}])
    built = run_cli("build", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "wrote public/index.html" in built.stdout.splitlines()  # under the current folder: relative
    elsewhere = run_cli("--config", str(tmp_path / "feeds.yaml"), "build", cwd=tmp_path.parent)
    assert elsewhere.stdout.splitlines()[-1].startswith("0 written")
    (tmp_path / "public" / "index.html").unlink()
    away = run_cli("--config", str(tmp_path / "feeds.yaml"), "build", cwd=ROOT)
    assert f"wrote {tmp_path / 'public' / 'index.html'}" in away.stdout.splitlines()  # elsewhere: absolute


def test_fetch_prints_a_parser_warning(server: FeedServer, tmp_path: Path) -> None:
    body = fixture("rss20.xml").replace(b"</channel>", b"").replace(b"</rss>", b"")
    write_config(tmp_path, [{"name": "broken", "url": server.add("/broken.xml", body)}])
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 0
    assert [line for line in result.stderr.splitlines() if line.startswith("warning: broken: ")], result.stderr


def test_status_after_a_fetch_says_when_a_daemon_would_poll(server: FeedServer, tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "ok", "url": server.add("/ok.xml", fixture("rss20.xml")), "interval": "10m"},
                            {"name": "down", "url": "http://127.0.0.1:9/feed.xml", "interval": "10m"}])
    run_cli("fetch", cwd=tmp_path)
    rows = {row["name"]: row for row in json.loads(run_cli("status", "--format", "json", cwd=tmp_path).stdout)}
    for name, wait in (("ok", 600), ("down", 1200)):  # a failure backs off: twice the interval
        fetched = datetime.fromisoformat(rows[name]["last_fetch"])
        assert wait <= (datetime.fromisoformat(rows[name]["next_due"]) - fetched).total_seconds() <= wait * 1.1
    # beside a running daemon (this process plays it) the daemon's schedule stays the one stored
    (database,) = tmp_path.rglob("*.db")
    database.with_name(database.name + "-daemon.lock").write_text(str(os.getpid()))
    run_cli("fetch", cwd=tmp_path)
    again = {row["name"]: row for row in json.loads(run_cli("status", "--format", "json", cwd=tmp_path).stdout)}
    assert again["ok"]["last_fetch"] > rows["ok"]["last_fetch"] and again["ok"]["next_due"] == rows["ok"]["next_due"]


def test_fetch_leaves_a_gone_source_alone_until_named(server: FeedServer, tmp_path: Path) -> None:
    """A 410 source is not polled again (as the daemon does): a cron `fetch` must not fail on it for ever."""
    write_config(tmp_path, [{"name": "ok", "url": server.add("/ok.xml", fixture("rss20.xml"))},
                            {"name": "goner", "url": server.add("/gone.xml", b"gone", status=410)}])
    assert run_cli("fetch", cwd=tmp_path).returncode == 1
    again = run_cli("fetch", cwd=tmp_path)
    assert again.returncode == 0 and "1 source: " in again.stdout and len(server.hits("/gone.xml")) == 1
    named = run_cli("fetch", "--source", "goner", cwd=tmp_path)
    assert named.returncode == 1 and len(server.hits("/gone.xml")) == 2


def test_a_moved_source_that_fails_shows_its_error_and_the_move(server: FeedServer, tmp_path: Path) -> None:
    cdn = server.add("/cdn.xml", fixture("rss20.xml"))
    target = server.redirect("/new.xml", cdn, 302)  # moved for good, then a CDN's temporary redirect
    write_config(tmp_path, [{"name": "m", "url": server.redirect("/old.xml", target, 301)}])
    run_cli("fetch", cwd=tmp_path)
    (row,) = json.loads(run_cli("status", "--format", "json", cwd=tmp_path).stdout)
    assert row["state"] == "moved" and row["moved_to"] == target
    server.add("/new.xml", fixture("rss20.xml"))
    server.add("/new.xml", b"oops", status=500)
    run_cli("fetch", cwd=tmp_path)
    (row,) = json.loads(run_cli("status", "--format", "json", cwd=tmp_path).stdout)
    assert row["state"] == "failing" and row["last_error"] == "HTTP 500 Internal Server Error"
    line = run_cli("status", cwd=tmp_path).stdout.splitlines()[1]
    assert line.rstrip().endswith(f"HTTP 500 Internal Server Error (moved permanently to {target}: update its url "
                                  "in feeds.yaml)"), line


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """Make a file read-only even for root (chattr +i), undone afterwards."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "+i", str(path)], check=True)
        else:
            path.chmod(0o444)
        made.append(path)

    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(0o644)


def test_a_read_only_database_is_one_line_naming_it(
    server: FeedServer, tmp_path: Path, read_only: Callable[[Path], None]
) -> None:
    write_config(tmp_path, [{"name": "ok", "url": server.add("/ok.xml", fixture("rss20.xml"))}])
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    (database,) = tmp_path.rglob("*.db")
    read_only(database)
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == f"error: database {database}: attempt to write a readonly database"


def test_a_database_in_a_read_only_folder_is_one_line_and_exit_1(server: FeedServer, tmp_path: Path) -> None:
    """SQLite in WAL mode writes files beside the database even to read it: a folder that cannot
    be written is a database error (exit 1) like any other, not a usage error (2)."""
    write_config(tmp_path, [{"name": "ok", "url": server.add("/ok.xml", fixture("rss20.xml"))}],
                 site={"database": "db/agg.db"})
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    folder = tmp_path / "db"
    database = folder / "agg.db"
    as_root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(folder)], check=True) if as_root else folder.chmod(0o555)
    try:
        for command in ("fetch", "posts"):
            result = run_cli(command, cwd=tmp_path)
            assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
            assert result.stderr.startswith(f"error: database {database}: cannot open database: "), result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False) if as_root else folder.chmod(0o755)


def test_a_database_from_a_newer_release_is_refused_and_left_unchanged(server: FeedServer, tmp_path: Path) -> None:
    """An older release writing a newer schema damages it for good (a column it does not know
    left stale): every command refuses, in one line, and writes nothing."""
    write_config(tmp_path, [{"name": "ok", "url": server.add("/ok.xml", fixture("rss20.xml"))}])
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    (database,) = tmp_path.rglob("*.db")
    with sqlite3.connect(database) as conn:
        newer = conn.execute("PRAGMA user_version").fetchone()[0] + 1
        conn.execute(f"PRAGMA user_version={newer}")
        conn.execute("UPDATE sources SET etag = '', last_modified = ''")  # the next fetch would store again
        conn.execute("DELETE FROM posts WHERE rowid IN (SELECT rowid FROM posts LIMIT 1)")
        before = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    published = {p: p.stat().st_mtime_ns for p in (tmp_path / "public").rglob("*")}
    for command in (["fetch"], ["build"], ["posts"], ["status"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 1, (command, result.stderr)
        assert result.stderr.strip() == (
            f"error: database {database}: database schema {newer} is newer than this aggregator's ({newer - 1}): "
            "it was written by a newer release; upgrade aggregator (nothing was changed)"
        ), command
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == newer
        assert conn.execute("SELECT count(*) FROM posts").fetchone()[0] == before
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "public").rglob("*")} == published


def test_commands_that_read_never_make_a_database(tmp_path: Path) -> None:
    """A mistyped site.database must not go unnoticed behind a fresh, empty database."""
    write_config(tmp_path, [{"name": "a", "url": "http://127.0.0.1:9/feed.xml"}])
    for command in (["status"], ["sources", "list"]):
        result = run_cli(*command, "--format", "json", cwd=tmp_path)
        assert result.returncode == 0 and json.loads(result.stdout)[0]["state"] == "waiting", command
        assert result.stderr.startswith("note: no database at "), command
    for command in (["posts"], ["search", "x"], ["sources", "reset", "a"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.startswith("error: no database at "), (command, result.stderr)
    assert not list(tmp_path.rglob("*.db")) and not (tmp_path / "var").exists()


def test_unreachable_sources_reported_cleanly(tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "down", "url": "http://127.0.0.1:9/feed.xml"}])
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "failed: down: connection refused"
    status = run_cli("sources", "list", "--format", "json", cwd=tmp_path)
    (row,) = json.loads(status.stdout)
    assert row["result"] == "error" and row["last_error"] == "connection refused" and row["failures"] == 1
    for command in (["sources", "list"], ["status"]):  # piped: a line per source, nothing cut to 80 columns
        table = run_cli(*command, cwd=tmp_path).stdout.splitlines()
        assert table[0].split()[0] == "name" and table[0].split()[-1] == "last_error", command
        assert table[1].startswith("down ") and table[1].rstrip().endswith("connection refused"), command
        assert len(table[1]) > 80 and re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d ", table[1]), command
    # the table shows times in the site's zone (Asia/Shanghai here), the JSON in UTC; never a success yet
    local = datetime.fromisoformat(row["last_fetch"]).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    (status_row,) = json.loads(run_cli("status", "--format", "json", cwd=tmp_path).stdout)
    assert status_row["last_success"] is None and status_row["last_fetch"] == row["last_fetch"]
    columns = run_cli("status", cwd=tmp_path).stdout.splitlines()[0].split()
    cells = re.split(r"\s{2,}|(?<=\d\d:\d\d) ", run_cli("status", cwd=tmp_path).stdout.splitlines()[1])
    assert columns[4:6] == ["last_fetch", "last_success"] and local in cells and cells[cells.index(local) + 1] == "-"


def test_invalid_config_exit_2_and_nothing_stored_is_lost(server: FeedServer, tmp_path: Path) -> None:
    path = write_config(tmp_path, [{"name": "good", "url": server.add("/ok.xml", fixture("rss091.xml"))}])
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("interval: 30m", "interval: [oops"), encoding="utf-8")
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("feeds.yaml:") and "invalid YAML" in result.stderr
    path.write_text(good, encoding="utf-8")
    assert len(run_cli("posts", "--format", "json", cwd=tmp_path).stdout.splitlines()) == 2


def test_sources_edits_keep_the_files_mode_and_a_symlink(tmp_path: Path) -> None:
    """feeds.yaml edited by `sources add/remove` keeps its permissions (a daemon running as another
    user must still read it: a temporary file is 0600) and, when it is a symlink, stays one."""
    real = tmp_path / "etc" / "feeds.yaml"
    real.parent.mkdir()
    write_config(real.parent, [{"name": "a", "url": "http://127.0.0.1:9/a.xml"}])
    real.chmod(0o644)
    (tmp_path / "feeds.yaml").symlink_to(real)
    added = run_cli("sources", "add", "http://127.0.0.1:9/b.xml", "--name", "b", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert (tmp_path / "feeds.yaml").is_symlink()
    assert stat.S_IMODE(real.stat().st_mode) == 0o644
    assert [s["name"] for s in yaml.safe_load(real.read_text(encoding="utf-8"))["sources"]] == ["a", "b"]
    real.chmod(0o640)
    assert run_cli("sources", "remove", "a", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(real.stat().st_mode) == 0o640 and (tmp_path / "feeds.yaml").is_symlink()
    assert not list(real.parent.glob(".*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_sources_edits_in_a_folder_that_cannot_be_written_are_one_line(tmp_path: Path) -> None:
    """A full or read-only folder: one line naming feeds.yaml (a traceback before), the file unchanged."""
    folder = tmp_path / "etc"
    folder.mkdir()
    write_config(folder, [{"name": "a", "url": "http://127.0.0.1:9/a.xml"}])
    before = (folder / "feeds.yaml").read_bytes()
    as_root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(folder)], check=True) if as_root else folder.chmod(0o555)
    try:
        for command in (["add", "http://127.0.0.1:9/b.xml", "--name", "b"], ["remove", "a"]):
            result = run_cli("sources", *command, "--config", str(folder / "feeds.yaml"), cwd=tmp_path)
            assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
            last = result.stderr.strip().splitlines()[-1]  # after `add`'s warning that b.xml did not answer
            assert last.startswith(f"error: cannot write {folder / 'feeds.yaml'}: "), result.stderr
            assert last.endswith("(it is unchanged)"), result.stderr
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=False) if as_root else folder.chmod(0o755)
    assert (folder / "feeds.yaml").read_bytes() == before and not list(folder.glob(".*.tmp"))


def test_a_jekyll_archive_that_cannot_be_written_is_named(server: FeedServer, tmp_path: Path) -> None:
    """Moving an aged post into old_posts names old_posts when that cannot be written (the error
    named the post's file in _posts, which was fine)."""
    def configure(days: int) -> None:
        write_config(tmp_path, [{"name": "a", "url": server.url("/a.xml")}],
                     jekyll={"dir": "jekyll", "archive_after_days": days})

    server.add("/a.xml", fixture("rss20.xml"))
    configure(100_000)
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    archive = tmp_path / "jekyll" / "old_posts"
    archive.mkdir(exist_ok=True)
    assert list((tmp_path / "jekyll" / "_posts").glob("*.md")) and not list(archive.glob("*.md"))
    configure(1)
    as_root = os.geteuid() == 0
    subprocess.run(["chattr", "+i", str(archive)], check=True) if as_root else archive.chmod(0o555)
    try:
        result = run_cli("build", cwd=tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(archive)], check=False) if as_root else archive.chmod(0o755)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: cannot write {archive}{os.sep}"), result.stderr
    assert run_cli("build", cwd=tmp_path).returncode == 0 and list(archive.glob("*.md"))


def test_a_source_given_a_new_url_republishes_the_feeds_that_name_it(server: FeedServer, tmp_path: Path) -> None:
    """Every item names its source's feed URL (RSS <source url>): a new URL with the same entries
    (nothing new, nothing updated) left the old one in the feeds until something else changed,
    and in the feeds of rules' categories and entries' own tags even then."""
    body = fixture("rss20.xml")
    for path in ("/old.xml", "/new.xml"):
        server.add(path, body)
    rules = [{"match": "券商", "categories": ["券商"]}]
    write_config(tmp_path, [{"name": "a", "url": server.url("/old.xml"), "category": "财经", "tags": ["新闻"]}],
                 rules=rules)
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    write_config(tmp_path, [{"name": "a", "url": server.url("/new.xml"), "category": "财经", "tags": ["新闻"]}],
                 rules=rules)
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 0 and "0 new, 0 updated" in result.stdout, result.stdout
    # the source's category and tag, a rule's category and an entry's own tag (<category>证券</category>)
    for feed in ("caijing/feed.xml", "caijing/atom.xml", "caijing/feed.json", "tag/xinwen/feed.xml", "feed.xml",
                 "quanshang/feed.xml", "tag/zhengquan/atom.xml"):
        text = (tmp_path / "public" / feed).read_text(encoding="utf-8")
        assert "/new.xml" in text and "/old.xml" not in text, feed


def test_sources_add_remove_keep_comments(server: FeedServer, tmp_path: Path) -> None:
    feed_url = server.add("/feed.xml", fixture("rss091.xml"))
    (tmp_path / "feeds.yaml").write_text(
        "# my feeds\nsite:\n  title: \"Test: quoted\"\n  url: https://n.example.com/  # public URL\n"
        "  database: agg.db\nsources:\n  # finance first\n  - name: 甲\n    url: \"https://a.example.com/rss\"\n"
        "    tags: ['yes', \"新闻\"]\n",
        encoding="utf-8",
    )
    added = run_cli(
        "sources",
        "add",
        feed_url,
        "--name",
        "乙",
        "--category",
        "财经",
        "--tag",
        "新闻",
        "--tag",
        "乙",
        cwd=tmp_path,
    )
    assert added.returncode == 0, added.stderr
    assert "added '乙'" in added.stdout
    text = (tmp_path / "feeds.yaml").read_text(encoding="utf-8")
    assert "# my feeds" in text and "# public URL" in text and "# finance first" in text
    # the operator's quoting is kept as written, not rewritten across the file
    assert 'title: "Test: quoted"' in text and 'url: "https://a.example.com/rss"' in text
    assert "tags: ['yes', \"新闻\"]" in text
    data = yaml.safe_load(text)
    assert data["sources"][1] == {
        "name": "乙",
        "url": feed_url,
        "category": "财经",
        "tags": ["新闻", "乙"],
    }
    dup = run_cli("sources", "add", feed_url, cwd=tmp_path)
    assert dup.returncode == 0 and f"{feed_url} is already in feeds.yaml, as '乙'" in dup.stderr
    taken = run_cli("sources", "add", "http://127.0.0.1:9/other.xml", "--name", "甲", cwd=tmp_path)
    assert taken.returncode == 2
    assert taken.stderr.splitlines()[-1] == ("feeds.yaml: a source named '甲' already exists "
                                             "(https://a.example.com/rss); choose another name")
    bad = run_cli("sources", "add", "ftp://c.example.com/feed", cwd=tmp_path)
    assert bad.returncode == 2
    assert yaml.safe_load((tmp_path / "feeds.yaml").read_text(encoding="utf-8")) == data
    removed = run_cli("sources", "remove", "甲", cwd=tmp_path)
    assert removed.returncode == 0
    text = (tmp_path / "feeds.yaml").read_text(encoding="utf-8")
    assert "# my feeds" in text and "甲" not in text.split("sources:")[1].split("乙")[0].replace("# finance first", "")
    assert [s["name"] for s in yaml.safe_load(text)["sources"]] == ["乙"]
    missing = run_cli("sources", "remove", "丙", cwd=tmp_path)
    assert missing.returncode == 2 and "no source named '丙'" in missing.stderr


def test_sources_remove_keeps_the_comments_of_what_follows_and_can_empty_the_list(tmp_path: Path) -> None:
    """The entry's lines go with its heading (the comment lines right above it); the comment lines
    after it (they introduce the next entry, or `rules:`) and every other line stay as they were.
    With a comment above it, the last source's removal once wrote `sources:` + comment + `[]` at
    column 0, which is not YAML, and the command failed."""
    head = "site:\n  title: t\n  url: https://n.example.com/\n  database: agg.db\n"
    entry = "  - name: {0}\n    url: https://{0}.example.com/rss  # {0}-eol\n"
    original = (head + "sources:  # the list\n  # heading of a\n" + entry.format("a") + "\n  # heading of b\n"
                + entry.format("b") + "    tags:\n      - x\n      # b's own last line\n  # heading of c\n"
                + entry.format("c") + "# the rules\nrules: []\n")
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(original, encoding="utf-8")
    removed = run_cli("sources", "remove", "b", cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    b_lines = original[original.index("  # heading of b"):original.index("  # heading of c")]
    assert feeds.read_text(encoding="utf-8") == original.replace(b_lines, "")  # nothing else moved
    for name in ("a", "c"):
        removed = run_cli("sources", "remove", name, cwd=tmp_path)
        assert removed.returncode == 0, removed.stderr
    text = feeds.read_text(encoding="utf-8")
    assert text == head + "sources: []  # the list\n\n# the rules\nrules: []\n"
    check = run_cli("check", cwd=tmp_path)
    assert check.returncode == 0, check.stderr


def test_sources_remove_past_odd_characters_keeps_crlf_and_group_headings(tmp_path: Path) -> None:
    """U+2028 in a quoted value is no line end to YAML (a `splitlines` would have cut the entry
    above the one named); CRLF files stay CRLF; a heading followed at once by the next entry heads
    a group and stays."""
    head = "site:\r\n  title: t\r\n  url: https://n.example.com/\r\n  database: agg.db\r\nsources:\r\n"
    entry = "  - name: {0}\r\n    url: https://{0}.example.com/rss\r\n"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_bytes((head + entry.format("a") + '    user_agent: "x\u2028y\u0085z"\r\n' + "  # --- English ---\r\n"
                       + entry.format("b") + entry.format("c") + entry.format("d")).encode("utf-8"))
    removed = run_cli("sources", "remove", "b", cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    text = feeds.read_bytes().decode("utf-8")
    assert "\n" not in text.replace("\r\n", "")  # every line end still CRLF
    assert [s["name"] for s in yaml.safe_load(text)["sources"]] == ["a", "c", "d"]
    assert "  # --- English ---\r\n  - name: c" in text
    removed = run_cli("sources", "remove", "c", cwd=tmp_path)
    assert [s["name"] for s in yaml.safe_load(feeds.read_text(encoding="utf-8"))["sources"]] == ["a", "d"]


def test_an_edit_that_would_make_feeds_yaml_invalid_names_feeds_yaml(tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "甲", "url": "https://a.example.com/rss", "category": "Tech News"}])
    before = (tmp_path / "feeds.yaml").read_bytes()
    added = run_cli("sources", "add", "https://b.example.com/rss", "--category", "tech-news", cwd=tmp_path)
    assert added.returncode == 2
    (line,) = [x for x in added.stderr.splitlines() if "tech-news" in x]
    assert line.startswith(str(tmp_path / "feeds.yaml") + ":") or line.startswith("feeds.yaml:"), line
    assert ".tmp" not in added.stderr and line.endswith("(nothing was written)")
    assert (tmp_path / "feeds.yaml").read_bytes() == before


def test_fetch_and_build_announce_changed_feeds_to_the_websub_hub(server: FeedServer, tmp_path: Path) -> None:
    """Not only the daemon: a cron job running `fetch`, or a `build`, changes the feeds too."""
    from urllib.parse import parse_qs

    server.add("/hub", b"", status=202)
    server.add("/a.xml", fixture("rss091.xml"))
    write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "category": "财经"}],
                 site={"websub_hub": server.url("/hub")})
    fetched = run_cli("fetch", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    announced = [parse_qs(body)["hub.url"][0] for path, body in server.posts if path == "/hub"]
    assert "https://news.example.com/caijing/feed.xml" in announced
    assert "https://news.example.com/feed.xml" in announced
    (tmp_path / "public" / "caijing" / "atom.xml").unlink()
    server.posts.clear()
    built = run_cli("build", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert [parse_qs(body)["hub.url"][0] for _, body in server.posts] == ["https://news.example.com/caijing/atom.xml"]
    server.add("/hub", b"", status=500)
    (tmp_path / "public" / "caijing" / "atom.xml").unlink()
    failing = run_cli("build", cwd=tmp_path)
    assert failing.returncode == 0  # the site is built: the hub's failure is a warning
    assert "warning: WebSub publish failed: https://news.example.com/caijing/atom.xml: hub answered HTTP 500" in (
        failing.stderr)
    write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "category": "财经"}],
                 site={"websub_hub": "http://127.0.0.1:9/hub"})  # nobody listens: refused
    for name in ("atom.xml", "feed.xml", "feed.json"):
        (tmp_path / "public" / "caijing" / name).unlink()
    dead = run_cli("build", cwd=tmp_path)
    assert dead.returncode == 0
    warnings = [line for line in dead.stderr.splitlines() if "WebSub" in line]
    assert len(warnings) == 2 and warnings[0].startswith("warning: WebSub publish failed: https://"), warnings
    assert re.fullmatch(r"warning: WebSub publish failed: \d+ more changed feeds not announced: the hub did not "
                        r"answer", warnings[1])


def test_a_negative_grace_is_refused(tmp_path: Path) -> None:
    write_config(tmp_path, [])
    for value in ("-1", "nan", "inf"):
        result = run_cli("run", "--grace", value, cwd=tmp_path)
        assert result.returncode == 2 and "Invalid value for '--grace'" in result.stderr, (value, result.stderr)


def test_opml_import_and_export(tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "已有", "url": "https://a.example.com/rss"}])
    (tmp_path / "subs.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>s</title></head><body>'
        '<outline text="财经"><outline type="rss" text="乙报" xmlUrl="https://b.example.com/rss"/>'
        '<outline type="rss" text="dup" xmlUrl="https://a.example.com/rss"/></outline>'
        '<outline type="rss" text="ftp" xmlUrl="ftp://x.example.com/y"/>'
        '<outline type="rss" text="已有" xmlUrl="https://d.example.com/rss"/>'
        '<outline type="rss" title="Top" xmlUrl="https://c.example.com/atom"/></body></opml>',
        encoding="utf-8",
    )
    result = run_cli("sources", "import-opml", "subs.opml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 3 sources" in result.stdout and "2 skipped" in result.stdout
    assert result.stderr.splitlines() == [
        "skipped: subs.opml: dup: https://a.example.com/rss is already in feeds.yaml, as '已有'",
        "skipped: subs.opml: ftp: ftp://x.example.com/y: not an http(s) URL",
    ]
    assert "added '已有 (2)'" in result.stdout  # a title taken by another URL gets a number
    exported = run_cli("sources", "export-opml", cwd=tmp_path)
    assert exported.returncode == 0
    (tmp_path / "round.opml").write_text(exported.stdout, encoding="utf-8")
    again = run_cli("--config", "feeds.yaml", "sources", "import-opml", "round.opml", cwd=tmp_path)
    assert "imported 0 sources" in again.stdout and "4 skipped" in again.stdout
    listed = json.loads(run_cli("sources", "list", "--format", "json", cwd=tmp_path).stdout)
    assert [(r["name"], r["categories"]) for r in listed] == [
        ("已有", ["yiyou"]),
        ("乙报", ["caijing"]),
        ("已有 (2)", ["yiyou-2"]),
        ("Top", ["top"]),
    ]


def test_every_command_has_help_with_example(tmp_path: Path) -> None:
    for command in (
        ["check"],
        ["fetch"],
        ["posts"],
        ["search"],
        ["sources", "list"],
        ["sources", "add"],
        ["sources", "remove"],
        ["sources", "import-opml"],
        ["sources", "export-opml"],
    ):
        result = run_cli(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and "Example:" in result.stdout, command


def test_kill_during_fetch_leaves_database_intact_and_next_run_completes(server: FeedServer, tmp_path: Path) -> None:
    entries = 300
    sources = []
    for n in range(12):
        items = "".join(
            f"<item><title>s{n} entry {i}</title><link>http://c{n}.example.com/{i}</link>"
            f"<description>{'正文' * 200}</description></item>"
            for i in range(entries)
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>c{n}</title>{items}</channel></rss>'
        sources.append({"name": f"s{n}", "url": server.add(f"/c{n}.xml", body, delay=0.1 * n)})
    write_config(tmp_path, sources)
    db = tmp_path / "agg.db"
    stored_after_kill = []
    for delay in (0.1, 0.4, 0.8):
        started = len(server.requests)
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "fetch", "--workers", "4"],
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while len(server.requests) == started and time.monotonic() < deadline:  # the fetch is under way
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            counts = dict(conn.execute("SELECT source, count(*) FROM posts GROUP BY source").fetchall())
            # each source's batch is one transaction: all of it or none of it
            assert all(count == entries for count in counts.values()), counts
            assert conn.execute("SELECT count(*) FROM posts_fts").fetchone()[0] == sum(counts.values())
            stored_after_kill.append(len(counts))
    print("sources stored when killed:", stored_after_kill)
    assert min(stored_after_kill) < 12, "the fetch finished before it was killed: nothing was tested"
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM posts").fetchone() == (12 * entries,) * 2


def test_a_fetch_killed_before_publishing_is_published_by_the_next_run(server: FeedServer, tmp_path: Path) -> None:
    """Posts and their source's validators are committed together: a fetch killed after storing a
    source, while another still answered, left those posts out of every output, and every later
    fetch (a 304) published nothing. The next run now builds everything."""
    server.add("/fast.xml", fixture("rss20.xml"), etag='"v1"')
    server.add("/slow.xml", fixture("rss20.xml").replace(b"example.com", b"slow.example.com"), delay=60)
    write_config(tmp_path, [{"name": "fast", "url": server.url("/fast.xml"), "category": "快讯"},
                            {"name": "slow", "url": server.url("/slow.xml"), "category": "慢"}],
                 jekyll={"dir": "jekyll"})
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "fetch"], cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = 0
    deadline = time.monotonic() + 30
    while not stored and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if (tmp_path / "agg.db").exists():
            with contextlib.suppress(sqlite3.OperationalError), sqlite3.connect(tmp_path / "agg.db") as conn:
                stored = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    proc.kill()
    proc.wait()
    assert stored, "the fast source was not stored before the kill: nothing was tested"
    assert not (tmp_path / "public" / "kuaixun" / "feed.xml").exists()
    server.add("/slow.xml", fixture("rss20.xml").replace(b"example.com", b"slow.example.com"))
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 ok, 1 not modified" in result.stdout  # the fast source: a 304, as before the fix
    feed = (tmp_path / "public" / "kuaixun" / "feed.xml").read_text(encoding="utf-8")
    assert feed.count("<item>") == stored
    assert len(list((tmp_path / "jekyll").rglob("*.md"))) == 2 * stored  # the fast source's posts too
    assert "note: an earlier run stopped before publishing what it stored: everything was built" in result.stdout
    with sqlite3.connect(tmp_path / "agg.db") as conn:
        assert conn.execute("SELECT count(*) FROM unpublished_runs").fetchone() == (0,)
    again = run_cli("fetch", cwd=tmp_path)
    assert again.returncode == 0 and "note:" not in again.stdout and "published" not in again.stdout


def test_a_fetch_that_cannot_publish_leaves_it_to_the_next_run(server: FeedServer, tmp_path: Path) -> None:
    server.add("/a.xml", fixture("rss20.xml"), etag='"v1"')
    write_config(tmp_path, [{"name": "a", "url": server.url("/a.xml"), "category": "财经"}])
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "caijing").write_text("a file where the category's folder goes")
    failed = run_cli("fetch", cwd=tmp_path)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "the posts are stored: the next `aggregator fetch` or `aggregator build` publishes them" in failed.stderr
    (tmp_path / "public" / "caijing").unlink()
    result = run_cli("fetch", cwd=tmp_path)
    assert result.returncode == 0 and "0 ok, 1 not modified" in result.stdout, result.stdout + result.stderr
    assert "everything was built" in result.stdout
    assert (tmp_path / "public" / "caijing" / "feed.xml").read_text(encoding="utf-8").count("<item>") > 0
