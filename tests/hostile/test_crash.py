"""Crash safety and load: kill -9 of `aggregator run` at random moments, and the CLI beside the daemon.

HOSTILE_KILL_RUNS sets how many kill -9 rounds run (default 10 to keep the suite short; the issue asks
for 50: `HOSTILE_KILL_RUNS=50 pytest tests/hostile/test_crash.py`).
"""

from __future__ import annotations

import itertools
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from lxml import etree

from ..conftest import ROOT, write_config
from ..feedserver import FeedServer
from ..test_daemon import Daemon
from .helpers import assert_outputs_well_formed, cli, files_under, item, rss, temp_leftovers

KILL_RUNS = int(os.environ.get("HOSTILE_KILL_RUNS", "10"))
BASE = datetime(2022, 3, 28, 2, 0, tzinfo=UTC)


def busy_feed(prefix: str, entries: int = 40) -> Callable[[BaseHTTPRequestHandler], None]:
    """Two new entries on every request, and the text of every entry in it changes: each poll stores new and
    updated posts and republishes feeds, pages and Jekyll files."""
    counter = itertools.count()

    def handler(request: BaseHTTPRequestHandler) -> None:
        n = next(counter)
        top = 2 * n + entries
        body = rss([
            item(
                f"{prefix}-{i}", f"{prefix} entry {i}", link=f"http://{prefix}.example.com/{i}",
                date=(BASE + timedelta(minutes=i)).strftime("%a, %d %b %Y %H:%M:%S +0000"),
                description=f"&lt;p&gt;version {n} {'正文' * 100}&lt;/p&gt;",
                extra=f"<category>{prefix}-tag</category><category>shared</category>",
            )
            for i in range(top - 1, top - 1 - entries, -1)
        ])
        try:
            request.send_response(200)
            request.send_header("Content-Type", "application/rss+xml")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            return

    return handler


def busy_site(server: FeedServer, directory: Path, sources: int = 3) -> None:
    write_config(
        directory,
        [
            {"name": f"s{n}", "url": server.add(f"/s{n}.xml", handler=busy_feed(f"s{n}")), "interval": "1s",
             "category": f"cat{n}"}
            for n in range(sources)
        ],
        jekyll={"dir": "jekyll", "archive_after_days": 100_000},
    )


def check_database(db: Path) -> set[str]:
    """Integrity, no duplicate posts, index tables consistent with posts; return the stored post ids.

    Read in one transaction: a daemon still running commits between two statements otherwise, and
    posts counted before its commit would be compared with full-text rows counted after it."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot (WAL) for every read below
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM posts").fetchone()
        assert total == distinct
        dups = conn.execute("SELECT source, guid FROM posts GROUP BY source, guid HAVING count(*) > 1").fetchall()
        assert not dups, dups
        assert conn.execute("SELECT count(*) FROM posts_fts").fetchone()[0] == total
        for table in ("post_categories", "post_tags"):
            orphans = conn.execute(f"SELECT count(*) FROM {table} WHERE post NOT IN (SELECT num FROM posts)")
            assert orphans.fetchone()[0] == 0, table
        return {row[0] for row in conn.execute("SELECT id FROM posts")}
    finally:
        conn.close()


def test_kill_9_during_fetch_and_publish_loses_nothing_committed(
    server: FeedServer, tmp_path: Path, start_daemon: Callable[..., Daemon]
) -> None:
    busy_site(server, tmp_path)
    db, public, jekyll = tmp_path / "agg.db", tmp_path / "public", tmp_path / "jekyll"
    rng = random.Random(int(os.environ.get("HOSTILE_KILL_SEED", "6")))
    committed: set[str] = set()
    leftovers: list[int] = []
    started = time.monotonic()
    for run in range(KILL_RUNS):
        daemon = start_daemon(tmp_path)
        time.sleep(rng.uniform(0.2, 1.5))
        daemon.proc.kill()
        daemon.proc.wait()
        if not db.exists():
            continue
        ids = check_database(db)
        lost = committed - ids
        assert not lost, f"run {run}: {len(lost)} committed posts are gone"
        committed = ids
        assert_outputs_well_formed(public, jekyll)
        leftovers.append(len(temp_leftovers(public, jekyll)))
    print(f"{KILL_RUNS} kill -9 runs in {time.monotonic() - started:.0f}s; posts: {len(committed)}; "
          f"temp files left after each run: {leftovers}")
    assert len(committed) > 3 * 40, "the daemon never got to store anything before it was killed"

    # the next start carries on: new posts are stored, everything published matches the database
    daemon = start_daemon(tmp_path)
    before = len(committed)
    daemon.wait_for(lambda: len(check_database(db)) >= before + 6, what="new posts after the kills")
    time.sleep(1.5)
    assert daemon.stop() == 0, daemon.log
    ids = check_database(db)
    assert committed <= ids
    assert_outputs_well_formed(public, jekyll)
    conn = sqlite3.connect(db)
    newest = [r[0] for r in conn.execute("SELECT guid FROM posts ORDER BY date DESC, num DESC LIMIT 50")]
    conn.close()
    published = [el.text for el in etree.fromstring((public / "feed.xml").read_bytes()).iter("guid")]
    assert published == newest, "the all-categories feed does not match the database after a clean stop"
    assert {p.stem[11:] for p in files_under(jekyll) if p.suffix == ".md"} == ids
    left = temp_leftovers(public, jekyll)
    assert not left, f"{len(left)} temporary files from killed writes are never cleaned up, e.g. {left[:3]}"


def test_cli_beside_the_daemon_never_reports_a_locked_database(
    server: FeedServer, tmp_path: Path, start_daemon: Callable[..., Daemon]
) -> None:
    """Two `aggregator fetch` and a `build` race the daemon's start on a database that does not exist yet,
    then more run while it polls three busy sources every second: nobody sees "database is locked"."""
    busy_site(server, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    early = [
        subprocess.Popen([sys.executable, "-m", "aggregator", command], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command in ("fetch", "fetch", "build")
    ]
    daemon = start_daemon(tmp_path)
    outcomes = []
    for proc in early:
        out, err = proc.communicate(timeout=60)
        outcomes.append((proc.args[-1], proc.returncode, out, err))
    daemon.wait_for(lambda: (tmp_path / "public" / "feed.xml").exists(), what="the daemon to publish")
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = list(pool.map(lambda c: (c[0], cli(*c, cwd=tmp_path)),
                             [("fetch",), ("fetch",), ("build",), ("status",), ("fetch",), ("posts",)]))
    outcomes += [(command, run.returncode, run.stdout, run.stderr) for command, run in runs]
    problems = [
        f"{command}: exit {code}: {err.strip()[-300:]}"
        for command, code, _, err in outcomes
        if code != 0 or "locked" in err.lower() or "Traceback" in err
    ]
    assert daemon.proc.poll() is None, daemon.log
    assert daemon.stop() == 0
    log = daemon.log
    assert "locked" not in log.lower() and "Traceback" not in log, log[-2000:]
    assert not problems, "\n".join(problems)
    check_database(tmp_path / "agg.db")
    assert_outputs_well_formed(tmp_path / "public", tmp_path / "jekyll")
