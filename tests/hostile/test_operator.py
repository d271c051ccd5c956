"""Config and operator mistakes: broken feeds.yaml, bad source URLs, unwritable folders, an output folder
that fails while the daemon runs."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import write_config
from ..feedserver import FeedServer
from ..test_daemon import Daemon
from .helpers import (
    assert_outputs_well_formed,
    cli,
    db_rows,
    files_under,
    item,
    rss,
    temp_leftovers,
)

BROKEN_YAML = """site:
  title: t
sources:
  - name: a: b
    url: http://127.0.0.1:9/feed.xml
"""


@pytest.mark.parametrize("command", [["check"], ["fetch"], ["build"], ["status"], ["run", "--port", "0"]])
def test_broken_feeds_yaml_exits_2_with_file_and_line(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "feeds.yaml").write_text(BROKEN_YAML, encoding="utf-8")
    run = cli(*command, cwd=tmp_path, timeout=20)
    assert run.returncode == 2, str(run)
    assert run.stderr.strip() == "feeds.yaml:4: invalid YAML: mapping values are not allowed in this context", str(run)
    assert not (tmp_path / "agg.db").exists() and not (tmp_path / "var").exists()


BAD_URLS = {
    "file": "file:///etc/passwd",
    "ftp": "ftp://ftp.example.com/feed.xml",
    "no-scheme": "example.com/feed.xml",
    "scheme-relative": "//cdn.example.com/feed.xml",
    "javascript": "javascript:alert(1)",
    "no-host": "http:///feed.xml",
    "gopher": "gopher://127.0.0.1:70/1",
}


def test_check_refuses_source_urls_that_are_not_http(tmp_path: Path) -> None:
    lines = ["site:", "  database: agg.db", "sources:"]
    expected = []
    for name, url in BAD_URLS.items():
        lines += [f"  - name: {name}", f"    url: '{url}'"]
        expected.append(f"feeds.yaml:{len(lines)}: source '{name}': url must be http(s)://..., not '{url}'")
    lines += ["  - name: fine", "    url: https://ok.example.com/feed.xml"]
    (tmp_path / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    checked = cli("check", cwd=tmp_path)
    assert checked.returncode == 2, str(checked)
    assert checked.stderr.strip().splitlines() == expected
    fetched = cli("fetch", cwd=tmp_path)
    assert fetched.returncode == 2 and fetched.stderr == checked.stderr, str(fetched)
    assert not (tmp_path / "agg.db").exists()


@pytest.mark.parametrize("setting", ["database", "output_dir", "jekyll"])
def test_unwritable_folder_is_a_clear_error_naming_the_path(server: FeedServer, tmp_path: Path, setting: str) -> None:
    """A folder that cannot be created because its parent is a regular file (unwritable even for root).

    fetch, build and run must each stop with one clear line that names the path: no traceback.
    """
    (tmp_path / "somefile").write_text("a regular file\n", encoding="utf-8")
    site: dict[str, Any] = {"database": "agg.db", "output_dir": "public"}
    jekyll = {"dir": "jekyll"}
    if setting == "jekyll":
        jekyll = {"dir": "somefile/jekyll"}
    else:
        site[setting] = "somefile/" + {"database": "agg.db", "output_dir": "public"}[setting]
    url = server.add("/ok.xml", rss([item("1", "one", link="http://ok.example.com/1")]))
    write_config(tmp_path, [{"name": "ok", "url": url}], site=site, jekyll=jekyll)
    commands = [["fetch"], ["build"]] + ([["run", "--port", "0"]] if setting != "jekyll" else [])
    problems = []
    for command in commands:
        run = cli(*command, cwd=tmp_path, timeout=20)
        last = run.stderr.strip().splitlines()[-1:] or [""]
        if "Traceback" in run.stderr:
            problems.append(f"{command}: exit {run.returncode} with a traceback ending {last[0]!r}")
        elif run.returncode == 0:
            problems.append(f"{command}: exit 0\n{run}")
        elif "somefile" not in run.stderr or len(run.stderr.strip().splitlines()) > 2:
            problems.append(f"{command}: unclear error\n{run}")
    assert not problems, "\n".join(problems)


# -- the daemon and an output folder that fails --------------------------------------------------------


def growing_feed(prefix: str) -> Callable[[BaseHTTPRequestHandler], None]:
    """A feed that gains an entry on every request (the newest five are in it)."""
    counter = itertools.count()

    def handler(request: BaseHTTPRequestHandler) -> None:
        n = next(counter)
        body = rss([
            item(f"{prefix}{i}", f"{prefix} entry {i}", link=f"http://{prefix}.example.com/{i}",
                 date=f"Mon, 28 Mar 2022 {10 + i // 60 % 12:02d}:{i % 60:02d}:00 +0800")
            for i in range(n, max(-1, n - 5), -1)
        ])
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return handler


def count(db: Path, source: str) -> int:
    try:
        return int(db_rows(db, "SELECT count(*) FROM posts WHERE source = ?", (source,))[0][0])
    except sqlite3.Error:
        return 0


def test_daemon_keeps_old_files_and_fetching_while_output_fails_then_publishes_again(
    server: FeedServer, tmp_path: Path, start_daemon: Callable[..., Daemon]
) -> None:
    """A regular FILE sits where a new category's folder must go (root-proof). The daemon logs the failure,
    leaves the files already published intact, keeps fetching and storing, and publishes everything once the
    obstacle is gone (source A keeps changing, so publishing is retried on every change)."""
    server.add("/a.xml", handler=growing_feed("aa"))
    server.add("/b.xml", rss([item("b1", "B entry one", link="http://bb.example.com/1")]), etag='"b"')
    path = write_config(tmp_path, [{"name": "A", "url": server.url("/a.xml"), "interval": "1s", "category": "aa"}],
                        jekyll={"dir": "jekyll"})
    public = tmp_path / "public"
    db = tmp_path / "agg.db"
    daemon = start_daemon(tmp_path)
    daemon.wait_for(lambda: (public / "aa" / "feed.xml").exists() and count(db, "A") >= 2, what="first publish")

    blocker = public / "bb"
    blocker.write_text("an operator's file, not a folder\n", encoding="utf-8")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sources"].append({"name": "B", "url": server.url("/b.xml"), "interval": "1s", "category": "bb"})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    daemon.wait_for(lambda: "failed" in daemon.log and "public/bb" in daemon.log, timeout=15,
                    what="the publish failure to be logged")
    daemon.wait_for(lambda: count(db, "B") == 1, what="B to be fetched and stored despite the failure")
    stored = count(db, "A")
    daemon.wait_for(lambda: count(db, "A") >= stored + 2, what="A to keep being fetched and stored")
    assert blocker.read_text(encoding="utf-8") == "an operator's file, not a folder\n"
    assert_outputs_well_formed(public, tmp_path / "jekyll")
    assert (public / "index.html").exists() and (public / "aa" / "feed.xml").exists()
    assert daemon.proc.poll() is None

    blocker.unlink()
    daemon.wait_for(lambda: (public / "bb" / "feed.xml").exists(), timeout=10, what="bb to be published")
    assert "B entry one" in (public / "bb" / "feed.xml").read_text(encoding="utf-8")
    newest = db_rows(db, "SELECT title FROM posts WHERE source = 'A' ORDER BY date DESC LIMIT 1")[0][0]
    daemon.wait_for(lambda: newest in (public / "feed.xml").read_text(encoding="utf-8"), timeout=10,
                    what="the all-categories feed to catch up")
    daemon.wait_for(lambda: 'href="bb/"' in (public / "index.html").read_text(encoding="utf-8"), timeout=10,
                    what="the home page to list bb")
    assert daemon.stop() == 0
    assert_outputs_well_formed(public, tmp_path / "jekyll")
    assert not temp_leftovers(public, tmp_path / "jekyll")
    jekyll_ids = {p.stem[11:] for p in files_under(tmp_path / "jekyll")}
    assert jekyll_ids == {r[0] for r in db_rows(db, "SELECT id FROM posts")}
