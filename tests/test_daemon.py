"""`aggregator run` as a real subprocess against a real local source server."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .conftest import ROOT, run_cli, write_config
from .feedserver import FeedServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss(*items: tuple[str, str]) -> str:
    body = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid><link>http://src.example.com/{guid}</link>"
        f"<pubDate>Mon, 28 Mar 2022 10:00:00 +0800</pubDate></item>"
        for guid, title in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'


class Daemon:
    def __init__(self, directory: Path, *args: str):
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / "daemon.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "run", "--port", str(self.port), "--grace", "5", *args],
            cwd=directory,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.DEVNULL,
            stderr=self.log_path.open("wb"),
            start_new_session=True,  # its own process group, as under a terminal or a service manager
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.wait_for(lambda: self.get("/healthz") is not None, what="the server to answer")

    def get(self, path: str, **kwargs: Any) -> requests.Response | None:
        try:
            return requests.get(self.url + path, timeout=2, **kwargs)
        except requests.ConnectionError:
            return None

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def wait_for(self, check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log}")
            result = check()
            if result:
                return result
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; log:\n{self.log}")

    def status(self) -> dict[str, dict[str, Any]]:
        result = run_cli("status", "--format", "json", cwd=self.directory)
        return {row["name"]: row for row in json.loads(result.stdout)}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise
        return self.proc.returncode


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str) -> Daemon:
        daemon = Daemon(tmp_path, *args)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def test_new_entry_is_served_within_two_intervals(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    server.add("/a.xml", rss(("1", "第一条")), etag='"v1"')
    write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "interval": "1s", "category": "财经"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: (r := daemon.get("/caijing/feed.xml")) and "第一条" in r.text, what="first post")
    server.add("/a.xml", rss(("2", "第二条"), ("1", "第一条")), etag='"v2"')
    added = time.monotonic()
    daemon.wait_for(lambda: "第二条" in daemon.get("/caijing/feed.xml").text, timeout=10, what="second post")
    assert time.monotonic() - added < 2 * 1.1 + 1.5  # two intervals, plus the publish debounce
    feed = daemon.get("/caijing/feed.xml")
    assert feed.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    assert daemon.get("/caijing/feed.xml", headers={"If-None-Match": feed.headers["ETag"]}).status_code == 304
    assert daemon.get("/caijing/").status_code == 200
    assert daemon.get("/../feeds.yaml").status_code == 404
    assert daemon.get("/%2e%2e/agg.db").status_code == 404
    # the poll after the one that saw v2 sends its ETag back (within one more interval)
    daemon.wait_for(
        lambda: any('"if-none-match": "\\"v2\\""' in json.dumps(r.headers) for r in server.requests),
        timeout=5,
        what="a conditional GET with the new ETag",
    )
    assert "fetch 甲: ok http=200 new=1 updated=0" in daemon.log
    assert daemon.stop() == 0


def test_healthz_and_metrics(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    server.add("/ok.xml", rss(("1", "one")))
    write_config(
        tmp_path,
        [
            {"name": "good", "url": server.url("/ok.xml"), "interval": "1s"},
            {"name": "bad", "url": server.add("/bad.xml", b"no", status=500), "interval": "1s"},
        ],
    )
    daemon = start_daemon()
    health = daemon.wait_for(
        lambda: (
            (r := daemon.get("/healthz")) and r.json()["sources"] == {"ok": 1, "failing": 1, "gone": 0} and r.json()
        ),
        what="health",
    )
    assert health["scheduler"] == "running" and health["failing"] == ["bad"] and health["sources"]["ok"] == 1
    assert daemon.get("/healthz").status_code == 200
    metrics = daemon.wait_for(
        lambda: (r := daemon.get("/metrics")) and "aggregator_posts_stored 1.0" in r.text and r.text, what="metrics"
    )
    assert 'aggregator_fetches_total{result="ok",source="good"}' in metrics
    assert 'aggregator_fetches_total{result="error",source="bad"}' in metrics
    assert "aggregator_fetch_duration_seconds_bucket" in metrics
    assert 'aggregator_source_last_success_timestamp_seconds{source="good"}' in metrics
    assert "aggregator_publish_duration_seconds_count" in metrics
    assert "aggregator_poll_lateness_seconds_bucket" in metrics
    assert "aggregator_posts_new_total 1.0" in metrics
    assert daemon.stop() == 0


def test_healthz_is_degraded_while_publishing_fails(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    server.add("/a.xml", rss(("1", "第一条")), etag='"v1"')
    write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "interval": "1s", "category": "财经"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: (r := daemon.get("/caijing/feed.xml")) and "第一条" in r.text, what="first post")
    assert daemon.get("/healthz").json()["publish_error"] is None
    shutil.rmtree(tmp_path / "public" / "caijing")
    (tmp_path / "public" / "caijing").write_text("a file where the category's folder goes")  # fails even for root
    server.add("/a.xml", rss(("2", "第二条"), ("1", "第一条")), etag='"v2"')
    health = daemon.wait_for(lambda: (r := daemon.get("/healthz")) and r.json()["publish_error"] and r, what="error")
    assert health.status_code == 200 and health.json()["status"] == "degraded"
    assert "caijing" in health.json()["publish_error"] and health.json()["failing"] == []
    assert "publish failed, old files kept, retrying in 30s or at the next change" in daemon.log
    assert daemon.stop() == 0
    stopping = daemon.log[daemon.log.index("stopping:"):]  # the last try, at the stop, is not retried
    assert "publish failed, old files kept, the posts are stored: the next start publishes them" in stopping
    assert "retrying" not in stopping


def test_stalling_sources_do_not_hold_back_a_healthy_one(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """One worker and one slot per host: without a lane of their own, eight sources that time out would
    hold the only worker for a second each and the healthy source would wait behind them."""
    server.add("/good.xml", rss(("1", "good")))
    slow = [
        {"name": f"slow{n}", "url": server.add(f"/slow{n}.xml", rss(("s", "s")), delay=3), "interval": "1s"}
        for n in range(8)
    ]
    write_config(
        tmp_path,
        [{"name": "good", "url": server.url("/good.xml"), "interval": "1s"}, *slow],
        defaults={"interval": "30m", "timeout": "1s", "deadline": "2s", "workers": 1, "per_host": 1},
    )
    daemon = start_daemon()
    daemon.wait_for(
        lambda: all(row["failures"] for name, row in daemon.status().items() if name != "good"),
        timeout=20,
        what="every slow source to have failed once",
    )
    before = len(server.hits("/good.xml"))
    time.sleep(4)
    assert len(server.hits("/good.xml")) - before >= 3  # about one poll a second, as if alone
    metrics = daemon.get("/metrics").text
    assert 'aggregator_poll_lateness_seconds_count{lane="failing"}' in metrics
    assert 'aggregator_poll_lateness_seconds_count{lane="healthy"}' in metrics
    assert daemon.stop() == 0


def test_a_hanging_article_site_does_not_hold_back_the_feeds(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """One worker, one slot per host. A full_text source's article pages hang past the timeout:
    fetched inside its poll, they held the only worker (and the host's slot) for seconds at every
    poll, and the healthy feed on the same host was polled that much later. Fetched in a lane of
    their own, they do not; and feeds.yaml edits still apply within the reload interval."""
    server.add("/good.xml", rss(("1", "good")))
    items = "".join(
        f"<item><title>teaser {n}</title><guid>t{n}</guid><link>{server.add(f'/article/{n}', '<p>x</p>', delay=3)}"
        f"</link><description>teaser</description><pubDate>Mon, 28 Mar 2022 10:00:00 +0800</pubDate></item>"
        for n in range(4)
    )
    teaser = server.add("/teaser.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}'
                                        "</channel></rss>")
    path = write_config(
        tmp_path,
        [{"name": "good", "url": server.url("/good.xml"), "interval": "1s"},
         {"name": "teaser", "url": teaser, "interval": "1s", "full_text": True, "full_text_retries": 20}],
        defaults={"interval": "30m", "timeout": "1s", "deadline": "2s", "workers": 1, "per_host": 1},
    )
    daemon = start_daemon()
    daemon.wait_for(lambda: len(server.hits("/article/0")) >= 1, what="the first article fetch")
    before = len(server.hits("/good.xml"))
    time.sleep(4)
    assert len(server.hits("/good.xml")) - before >= 3  # about one poll a second, as if alone
    daemon.wait_for(lambda: "articles teaser: 0 stored, 4 failed (" in daemon.log, what="the article job's line")
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("name: good", "name: good2"), encoding="utf-8")
    edited = time.monotonic()
    daemon.wait_for(lambda: "reloaded" in daemon.log, timeout=10, what="the edit to be applied")
    assert time.monotonic() - edited < 4  # checked every 2 s, whatever the polls are doing
    assert "_check_config" not in daemon.log  # never "skipped: maximum number of running instances"
    assert daemon.stop() == 0


def test_retry_after_backoff_redirects_and_gone(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    target = server.add("/new.xml", rss(("m", "moved")))
    server.add("/temp-target.xml", rss(("t", "temp")))
    write_config(
        tmp_path,
        [
            {
                "name": "busy",
                "url": server.add("/busy.xml", b"", status=503, headers={"Retry-After": "30"}),
                "interval": "1s",
            },
            {"name": "error", "url": server.add("/err.xml", b"", status=500), "interval": "1s"},
            {"name": "moved", "url": server.redirect("/old.xml", target, 301), "interval": "1s"},
            {
                "name": "temp",
                "url": server.redirect("/temp.xml", server.url("/temp-target.xml"), 302),
                "interval": "1s",
            },
            {"name": "gone", "url": server.add("/gone.xml", b"", status=410), "interval": "1s"},
        ],
    )
    daemon = start_daemon()
    time.sleep(5.5)
    hits = {
        path: len(server.hits(path))
        for path in ("/busy.xml", "/err.xml", "/old.xml", "/new.xml", "/temp.xml", "/gone.xml")
    }
    assert hits["/busy.xml"] == 1  # Retry-After: 30 s
    assert 2 <= hits["/err.xml"] <= 3  # backoff: 2 s, then 4 s
    assert hits["/old.xml"] == 1 and hits["/new.xml"] >= 3  # 301 remembered
    assert hits["/temp.xml"] >= 3  # 302 followed, not remembered
    assert hits["/gone.xml"] == 1  # 410: no longer polled
    status = daemon.status()
    assert status["gone"]["state"] == "gone" and status["gone"]["next_due"] is None
    assert status["moved"]["state"] == "moved" and status["moved"]["moved_to"] == target
    assert status["error"]["state"] == "failing" and status["error"]["failures"] >= 2
    assert status["busy"]["http_status"] == 503
    assert status["temp"]["state"] == "ok"
    assert "moved permanently to" in daemon.log and "update its url" in daemon.log
    listed = {r["name"]: r for r in json.loads(run_cli("sources", "list", "--format", "json", cwd=tmp_path).stdout)}
    assert listed["moved"]["moved_to"] == target
    assert daemon.stop() == 0
    # state survives a restart: the gone source stays unpolled, the busy one keeps waiting
    reset = run_cli("sources", "reset", "gone", cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    daemon = start_daemon()
    time.sleep(2.5)
    assert len(server.hits("/busy.xml")) == 1
    assert len(server.hits("/gone.xml")) >= 2  # reset: polled again
    assert daemon.stop() == 0


def test_sources_reset_reaches_a_running_daemon(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    """Without a restart or a SIGHUP: a gone source and one waiting out a Retry-After are polled
    again within seconds of `sources reset`, and only they."""
    gone = server.add("/gone.xml", b"", status=410)
    busy = server.add("/busy.xml", b"", status=503, headers={"Retry-After": "600"})
    write_config(tmp_path, [{"name": "gone", "url": gone, "interval": "1s"}, {"name": "busy", "url": busy,
                                                                               "interval": "1s"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: server.hits("/gone.xml") and server.hits("/busy.xml"), what="first polls")
    time.sleep(2.5)
    assert (len(server.hits("/gone.xml")), len(server.hits("/busy.xml"))) == (1, 1)
    server.add("/gone.xml", rss(("back", "回来了")))
    for name in ("gone", "busy"):
        reset = run_cli("sources", "reset", name, cwd=tmp_path)
        assert reset.returncode == 0, reset.stderr
        assert "a running daemon polls it within seconds" in reset.stdout
    daemon.wait_for(lambda: len(server.hits("/gone.xml")) >= 2 and len(server.hits("/busy.xml")) >= 2,
                    timeout=10, what="polls after the reset")
    daemon.wait_for(lambda: daemon.status()["gone"]["state"] == "ok", what="the gone source back")
    assert "source gone was reset: polling it now" in daemon.log
    time.sleep(1.5)
    assert len(server.hits("/busy.xml")) == 2  # answered 503 + Retry-After again: waits again
    assert daemon.stop() == 0


def test_hot_reload_adds_removes_and_survives_invalid_edit(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    server.add("/a.xml", rss(("a1", "甲一")))
    server.add("/b.xml", rss(("b1", "乙一")))
    path = write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "interval": "1s"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: server.hits("/a.xml"), what="first poll of 甲")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sources"].append({"name": "乙", "url": server.url("/b.xml"), "interval": "1s"})
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    daemon.wait_for(lambda: server.hits("/b.xml"), timeout=10, what="the added source to be polled")
    daemon.wait_for(lambda: (r := daemon.get("/yi/feed.xml")) and "乙一" in r.text, what="the new category feed")
    good = path.read_text(encoding="utf-8")
    path.write_text(good.replace("interval: 1s", "interval: never", 1), encoding="utf-8")
    daemon.wait_for(lambda: "bad interval 'never'" in daemon.log, timeout=10, what="the invalid edit to be logged")
    assert "feeds.yaml:" in daemon.log and "keeping the last good config" in daemon.log
    before = len(server.hits("/a.xml"))
    daemon.wait_for(lambda: len(server.hits("/a.xml")) > before + 1, what="polling to go on")
    data["sources"] = [s for s in data["sources"] if s["name"] != "甲"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    daemon.wait_for(lambda: "甲 is no longer polled" in daemon.log, timeout=10, what="the removal")
    time.sleep(1.5)
    removed_at = len(server.hits("/a.xml"))
    time.sleep(2.5)
    assert len(server.hits("/a.xml")) == removed_at
    health = daemon.get("/healthz").json()  # a removed source is no longer part of the daemon's health
    assert "甲" not in json.dumps(health, ensure_ascii=False) and health["sources"]["ok"] == 1, health
    data["server"] = {"port": 1}
    data["site"].update(output_dir="elsewhere", database="other.db")
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    daemon.wait_for(lambda: "need a restart" in daemon.log, timeout=10, what="the restart warning")
    assert "site.database, site.output_dir, server need a restart" in daemon.log
    # until the restart it goes on with the folder it serves and the database it writes, not half of each
    server.add("/b.xml", rss(("b2", "乙二"), ("b1", "乙一")))
    daemon.wait_for(lambda: "乙二" in daemon.get("/yi/feed.xml").text, what="the next post, served")
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "other.db").exists()
    assert daemon.stop() == 0


def test_a_source_given_a_new_url_is_republished_by_the_daemon(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """Its items name its feed URL: the new one reaches the served feeds at its next poll, though
    nothing in the feed changed (no post stored or updated)."""
    for path in ("/old.xml", "/new.xml"):
        server.add(path, rss(("a1", "甲一")))
    path = write_config(tmp_path, [{"name": "甲", "url": server.url("/old.xml"), "interval": "1s"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: (r := daemon.get("/jia/feed.xml")) and "/old.xml" in r.text, what="the first feed")
    path.write_text(path.read_text(encoding="utf-8").replace("/old.xml", "/new.xml"), encoding="utf-8")
    daemon.wait_for(lambda: len(server.hits("/new.xml")) >= 2, timeout=10, what="polls of the new URL")
    daemon.wait_for(lambda: "/new.xml" in daemon.get("/jia/feed.xml").text, timeout=10, what="the new URL served")
    assert "/old.xml" not in daemon.get("/jia/feed.xml").text
    assert daemon.stop() == 0


def test_a_second_daemon_on_the_same_database_is_refused(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    server.add("/a.xml", rss(("a1", "one")))
    write_config(tmp_path, [{"name": "a", "url": server.url("/a.xml"), "interval": "1h"}])
    first = start_daemon()
    second = run_cli("run", "--port", str(free_port()), cwd=tmp_path, timeout=20)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"Error: cannot start: another daemon (pid {first.proc.pid}) is already running on "
        f"{tmp_path / 'agg.db'}"
    )
    assert first.get("/healthz").status_code == 200
    status = run_cli("status", cwd=tmp_path).stdout.splitlines()
    assert status[-1] == f"daemon: running (pid {first.proc.pid})"
    assert first.stop() == 0
    stopped = run_cli("status", cwd=tmp_path).stdout.splitlines()
    assert stopped[-1] == "daemon: not running (next_due is when it would poll)"
    third = start_daemon()  # the lock went with the first daemon
    third.proc.kill()  # killed, not stopped: its pid stays in the lock file, but no process has it
    third.proc.wait()
    assert run_cli("status", cwd=tmp_path).stdout.splitlines()[-1].startswith("daemon: not running")
    fourth = start_daemon()  # the kernel dropped the killed daemon's lock
    assert fourth.stop() == 0


def test_sighup_reloads_at_once(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    server.add("/a.xml", rss(("a1", "one")))
    path = write_config(tmp_path, [{"name": "a", "url": server.url("/a.xml"), "interval": "1h"}])
    daemon = start_daemon()
    path.write_text(path.read_text(encoding="utf-8").replace("interval: 1h", "interval: 2h"), encoding="utf-8")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_for(lambda: "reloaded" in daemon.log, timeout=3, what="reload on SIGHUP")
    assert daemon.stop() == 0


def test_sigterm_exits_0_within_grace_with_database_intact(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    server.add("/slow.xml", rss(("s", "slow")), delay=2)
    server.add("/fast.xml", rss(("f", "fast")))
    write_config(
        tmp_path,
        [
            {"name": "slow", "url": server.url("/slow.xml"), "interval": "1s"},
            {"name": "fast", "url": server.url("/fast.xml"), "interval": "1s"},
        ],
    )
    daemon = start_daemon()
    daemon.wait_for(lambda: server.hits("/slow.xml"), what="a fetch in flight")
    started = time.monotonic()
    assert daemon.stop() == 0
    assert time.monotonic() - started < 5 + 2
    assert "stopped" in daemon.log
    with sqlite3.connect(tmp_path / "agg.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        titles = {row[0] for row in conn.execute("SELECT title FROM posts")}
    assert titles == {"slow", "fast"}  # the in-flight fetch finished and was stored


def test_invalid_config_at_start_exits_2(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text("sources:\n  - name: a\n    url: ftp://x\n", encoding="utf-8")
    result = run_cli("run", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.strip() == "feeds.yaml:3: source 'a': url must be http(s)://..., not 'ftp://x'"


def test_websub_hub_is_linked_and_told_of_changed_feeds(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    from urllib.parse import parse_qs

    server.add("/hub", b"", status=202)
    server.add("/a.xml", rss(("1", "第一条")))
    write_config(
        tmp_path,
        [{"name": "甲", "url": server.url("/a.xml"), "interval": "1s", "category": "财经"}],
        site={"websub_hub": server.url("/hub")},
    )
    daemon = start_daemon()
    daemon.wait_for(lambda: any("caijing" in body for _, body in server.posts), what="a WebSub publish ping")
    announced = {parse_qs(body)["hub.url"][0] for path, body in server.posts if path == "/hub"}
    assert "https://news.example.com/caijing/feed.xml" in announced
    assert all(parse_qs(body)["hub.mode"] == ["publish"] for _, body in server.posts)
    feed = daemon.get("/caijing/feed.xml").text
    assert f'<atom:link href="{server.url("/hub")}" rel="hub"/>' in feed
    assert f'<link href="{server.url("/hub")}" rel="hub"/>' in daemon.get("/caijing/atom.xml").text
    assert daemon.get("/caijing/feed.json").json()["hubs"] == [{"type": "WebSub", "url": server.url("/hub")}]
    assert daemon.stop() == 0


def test_a_source_leaves_the_failing_lane_after_enough_successes() -> None:
    from aggregator.lanes import FAILING, HEALTHY, STRIKES, Lanes

    lanes = Lanes(workers=8, per_host=2)
    assert lanes.failing_workers == 4 and lanes.lane("a") == HEALTHY
    assert lanes.record("a", failed=True) == FAILING
    assert [lanes.record("a", failed=False) for _ in range(STRIKES)] == [FAILING] * (STRIKES - 1) + [HEALTHY]
    lanes.seed("b", failures=3)
    lanes.seed("c", failures=0)
    assert (lanes.lane("b"), lanes.lane("c"), lanes.failing()) == (FAILING, HEALTHY, 1)
    assert lanes.hosts[HEALTHY]("h") is not lanes.hosts[FAILING]("h")  # separate host slots


def test_retry_after_is_honoured_up_to_the_longest_backoff() -> None:
    from datetime import UTC, datetime, timedelta

    from aggregator.config import Source
    from aggregator.models import SourceOutcome
    from aggregator.pipeline import MAX_BACKOFF, next_due

    now = datetime(2026, 12, 3, tzinfo=UTC)
    source = Source(name="s", url="http://127.0.0.1:9/x.xml", categories=(), interval=600)
    for retry_after, waited in ((120.0, 600), (3600.0, 3600), (315_360_000.0, MAX_BACKOFF)):
        outcome = SourceOutcome(source="s", result="error", http_status=503, retry_after=retry_after)
        due = next_due(source, outcome, failures=0, now=now, rng=random.Random(1))
        assert due is not None and timedelta(seconds=waited) <= due - now <= timedelta(seconds=waited + 60)


def test_article_jobs_rerun_when_asked_meanwhile_and_never_stick() -> None:
    """A poll asking for a source's articles while its job runs gets one more run, not a dropped
    job; and a job asked for again right after one ends is not refused by the scheduler (each
    run has its own id), so the source is never left marked as queued with nothing to run."""
    import threading as _threading

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    from aggregator.daemon_articles import ArticlesMixin
    from aggregator.lanes import ARTICLES

    class Probe(ArticlesMixin):
        def __init__(self) -> None:
            self.scheduler = BackgroundScheduler(executors={ARTICLES: ThreadPoolExecutor(2)})
            self.stop_event = _threading.Event()
            self._articles_lock = _threading.Lock()
            self._articles_queued, self._articles_again, self._articles_runs = set(), set(), 0
            self.runs: list[str] = []
            self.running = _threading.Event()

        def _fetch_articles_now(self, name: str) -> None:
            self.runs.append(name)
            self.running.set()
            time.sleep(0.3)

    probe = Probe()
    probe.scheduler.start()
    try:
        probe._queue_articles("s")
        assert probe.running.wait(5)
        probe._queue_articles("s")  # while it runs: twice, one more run
        probe._queue_articles("s")
        deadline = time.monotonic() + 5
        while (probe._articles_queued or len(probe.runs) < 2) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert probe.runs == ["s", "s"] and not probe._articles_queued
        for _ in range(3):  # again and again, right after each run ends
            before = len(probe.runs)
            probe._queue_articles("s")
            while len(probe.runs) == before and time.monotonic() < deadline + 5:
                time.sleep(0.005)
            while probe._articles_queued and time.monotonic() < deadline + 5:
                time.sleep(0.005)
        assert probe.runs == ["s"] * 5 and not probe._articles_queued
    finally:
        probe.scheduler.shutdown(wait=True)


def test_a_database_reached_through_a_symlink_has_the_same_lock(tmp_path: Path) -> None:
    from aggregator.daemon_lock import claim_database, release_database, running_daemon

    database = tmp_path / "real" / "aggregator.db"
    database.parent.mkdir()
    database.touch()
    alias = tmp_path / "alias.db"
    alias.symlink_to(database)
    held = claim_database(database)
    try:
        with pytest.raises(OSError, match="another daemon"):
            claim_database(alias)
        assert running_daemon(alias) is not None
    finally:
        release_database(held)


def test_a_shorter_interval_counts_from_now_and_success_times_survive_a_restart(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    server.add("/a.xml", rss(("1", "one")), etag='"v1"')
    write_config(tmp_path, [{"name": "a", "url": server.url("/a.xml"), "interval": "1h"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: len(server.hits("/a.xml")) == 1, what="the first poll")
    daemon.wait_for(lambda: 'aggregator_source_last_success_timestamp_seconds{source="a"}' in daemon.get("/metrics").text,
                    what="the success gauge")
    assert daemon.stop() == 0
    restarted = start_daemon()  # the source is not due for an hour: the gauge comes from the database
    assert 'aggregator_source_last_success_timestamp_seconds{source="a"}' in restarted.get("/metrics").text
    write_config(tmp_path, [{"name": "a", "url": server.url("/a.xml"), "interval": "1s"}])
    restarted.wait_for(lambda: len(server.hits("/a.xml")) >= 2, timeout=10, what="a poll at the new interval")
    assert restarted.stop() == 0


def test_a_reset_during_a_poll_waits_for_it_then_polls_again(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """Never two fetches of one source at once: a reset while the source's poll is under way polls it
    again once that poll has ended, so the newer result is the one kept."""
    spans: list[tuple[float, float]] = []

    def slow_after_the_first(request: Any) -> None:
        started = time.monotonic()
        time.sleep(2 if spans else 0)
        body = rss(("1", "one")).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
        spans.append((started, time.monotonic()))

    url = server.add("/slow.xml", handler=slow_after_the_first)
    write_config(tmp_path, [{"name": "slow", "url": url, "interval": "1h"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: daemon.status()["slow"]["last_fetch"], what="the first poll stored")
    assert run_cli("sources", "reset", "slow", cwd=tmp_path).returncode == 0
    daemon.wait_for(lambda: len(server.hits("/slow.xml")) == 2, what="the poll the reset asked for")
    assert run_cli("sources", "reset", "slow", cwd=tmp_path).returncode == 0  # while it is under way
    daemon.wait_for(lambda: len(spans) >= 3, timeout=15, what="the poll after the second reset")
    assert spans[2][0] >= spans[1][1] - 0.05, spans  # one after the other, never side by side
    time.sleep(1)
    assert len(server.hits("/slow.xml")) == 3
    assert daemon.stop() == 0


def test_a_deleted_site_is_built_again_within_seconds(server: FeedServer, tmp_path: Path, start_daemon: Any) -> None:
    server.add("/a.xml", rss(("1", "第一条")), etag='"v1"')
    write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "interval": "1h", "category": "财经"}])
    daemon = start_daemon()
    daemon.wait_for(lambda: (r := daemon.get("/caijing/feed.xml")) and "第一条" in r.text, what="the post published")
    daemon.wait_for(lambda: daemon.log.count("published:") >= 2, what="the poll's publish")  # nothing left to write
    shutil.rmtree(tmp_path / "public")
    assert daemon.get("/caijing/feed.xml").status_code == 404
    daemon.wait_for(lambda: (r := daemon.get("/caijing/feed.xml")) and "第一条" in r.text, timeout=10,
                    what="the site built again")
    assert "is gone: building the whole site again" in daemon.log
    assert daemon.stop() == 0


def test_a_build_failing_at_stop_is_not_retried(
    server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A build that fails while the daemon stops says the next start builds again, and schedules no
    retry on the stopping scheduler; the same failure while running schedules one. (The daemon is
    built in-process, never started: its build is called as the scheduler would call it.)"""
    from aggregator.daemon_lock import release_database
    from aggregator.scheduler import Daemon as DaemonProcess

    server.add("/a.xml", rss(("1", "第一条")))
    config = write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "category": "财经"}],
                          defaults={"interval": "30m", "processes": 0})
    assert run_cli("fetch", cwd=tmp_path).returncode == 0
    shutil.rmtree(tmp_path / "public" / "caijing")
    (tmp_path / "public" / "caijing").write_text("a file where the category's folder goes")
    daemon = DaemonProcess(config, port=0)
    try:
        daemon._publish_all()
        assert "build failed, retrying in 30s" in caplog.text
        assert daemon.scheduler.get_job("build") is not None and daemon.publish_errors["build"]
        daemon.scheduler.remove_job("build")
        caplog.clear()
        daemon._stopping = True
        daemon._publish_all()
        assert "build failed, old files kept, the next start builds again" in caplog.text
        assert "retrying" not in caplog.text and daemon.scheduler.get_job("build") is None
    finally:
        daemon.store.close()
        daemon.publish_store.close()
        daemon.cpu.shutdown()
        release_database(daemon._daemon_lock)
    assert (tmp_path / "public" / "caijing").read_text() == "a file where the category's folder goes"
    assert sqlite3.connect(tmp_path / "agg.db").execute("SELECT count(*) FROM posts").fetchone() == (1,)


def test_ctrl_c_to_the_process_group_lets_the_fetch_in_flight_finish(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """Ctrl-C reaches every process of the terminal's group. The worker processes leave stopping
    to the daemon: killed, they failed the fetch it was letting finish (recorded as the source's
    failure) and printed a KeyboardInterrupt traceback. (SIGTERM to the whole group still kills
    them: the pool relies on it when it breaks; the systemd unit sends it to the daemon only.)"""
    server.add("/a.xml", rss(("1", "第一条")))
    write_config(tmp_path, [{"name": "甲", "url": server.url("/a.xml"), "interval": "1s", "category": "财经"}],
                 defaults={"interval": "30m", "timeout": "5s", "deadline": "10s", "processes": 1})
    daemon = start_daemon()
    daemon.wait_for(lambda: (r := daemon.get("/caijing/feed.xml")) and "第一条" in r.text, what="first post")
    # 4,000 entries (the newest 1,000 kept): a second or two in the worker, which the signal then reaches
    entries = [(str(n), f"第{n}条") for n in range(4000, 1, -1)] + [("1", "第一条")]
    server.add("/a.xml", rss(*entries).replace("</item>", "<description>" + "正文。" * 100 + "</description></item>"))
    asked = len(server.hits("/a.xml"))
    daemon.wait_for(lambda: len(server.hits("/a.xml")) > asked, what="the next poll")
    time.sleep(0.2)
    os.killpg(daemon.proc.pid, signal.SIGINT)
    assert daemon.proc.wait(timeout=15) == 0
    log = daemon.log
    assert "Traceback" not in log and "died" not in log, log
    assert "fetch 甲: ok http=200 new=1000" in log[log.index("stopping:"):], log
    assert sqlite3.connect(tmp_path / "agg.db").execute("SELECT count(*) FROM posts").fetchone() == (1001,)
    assert (tmp_path / "public" / "caijing" / "feed.xml").read_text(encoding="utf-8").count("<item>") == 50


def test_a_source_removed_from_feeds_yaml_leaves_the_metrics(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """Its last-success time stayed exported, frozen, until a restart: a staleness alert fired for a
    source that no longer exists."""
    first = {"name": "甲", "url": server.add("/a.xml", rss(("1", "第一条"))), "category": "财经"}
    second = {"name": "乙", "url": server.add("/b.xml", rss(("2", "第二条"))), "category": "财经"}
    write_config(tmp_path, [first, second])
    daemon = start_daemon()
    daemon.wait_for(lambda: (r := daemon.get("/metrics")) and 'last_success_timestamp_seconds{source="乙"}' in r.text
                    and 'last_success_timestamp_seconds{source="甲"}' in r.text, what="both sources' metrics")
    write_config(tmp_path, [first])
    daemon.wait_for(lambda: "source 乙 is no longer polled" in daemon.log, what="the reload")
    metrics = daemon.get("/metrics")
    assert metrics is not None and 'source="乙"' not in metrics.text, metrics.text
    assert 'aggregator_source_last_success_timestamp_seconds{source="甲"}' in metrics.text
    assert 'aggregator_fetches_total{result="ok",source="甲"}' in metrics.text
    assert daemon.stop() == 0


def test_a_source_removed_during_its_poll_does_not_come_back_when_the_poll_ends(
    server: FeedServer, tmp_path: Path, start_daemon: Any
) -> None:
    """The poll in flight ended after the reload had forgotten the source: its metrics were
    exported again, for good, and it was scheduled once more."""
    answered = threading.Event()

    def slow_second_poll(request: Any) -> None:
        if answered.is_set():
            time.sleep(3)
        body = rss(("2", "第二条")).encode()
        request.send_response(200)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
        answered.set()

    first = {"name": "甲", "url": server.add("/a.xml", rss(("1", "第一条"))), "interval": "1h"}
    second = {"name": "乙", "url": server.add("/b.xml", handler=slow_second_poll), "interval": "1s"}
    write_config(tmp_path, [first, second])
    daemon = start_daemon()
    daemon.wait_for(lambda: len(server.hits("/b.xml")) >= 2, what="the second, slow poll of 乙")
    write_config(tmp_path, [first])
    daemon.wait_for(lambda: "reloaded feeds.yaml: 1 sources" in daemon.log, what="the reload")
    daemon.wait_for(lambda: daemon.log.count("fetch 乙: ok") >= 2, timeout=10, what="the slow poll to end")
    log = daemon.log
    assert log.index("reloaded feeds.yaml") < log.index("fetch 乙: ok", log.index("fetch 乙: ok") + 1), log
    time.sleep(1.5)
    metrics = daemon.get("/metrics")
    assert metrics is not None and 'source="乙"' not in metrics.text, metrics.text
    assert len(server.hits("/b.xml")) == 2
    assert "乙" not in daemon.status()
    assert daemon.stop() == 0
