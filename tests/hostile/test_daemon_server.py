"""The daemon's HTTP server under hostile requests: traversal, huge URLs, idle and slow clients.

tests/test_server.py covers the static app on its own; these run against a real `aggregator run`, whose
config, database and log sit right next to its output folder.
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..conftest import write_config
from ..feedserver import FeedServer
from ..test_daemon import Daemon
from .conftest import TrackedDaemon, kill
from .helpers import item, rss

SECRETS = (b"SQLite format 3", b"sources:", b"root:x:0:0", b"SECRET-NEXT-TO-OUTPUT", b"INFO serving")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    directory = tmp_path_factory.mktemp("served")
    srv = FeedServer().start()
    started: list[Daemon] = []
    try:
        url = srv.add("/a.xml", rss([item("1", "one", link="http://a.example.com/1")]))
        write_config(directory, [{"name": "a", "url": url, "category": "news"}])
        (directory / "secret.txt").write_text("SECRET-NEXT-TO-OUTPUT\n", encoding="utf-8")
        running = TrackedDaemon(started, directory)
        running.wait_for(lambda: (directory / "public" / "news" / "feed.xml").exists(), what="first publish")
        (directory / "public" / "big.xml").write_bytes(b"<x>" + b" " * 20_000_000 + b"</x>")
        (directory / "public" / "leak.txt").symlink_to(directory / "secret.txt")
        yield running
    finally:
        for each in started:
            kill(each)
        srv.stop()


def raw(daemon: Daemon, target: str, timeout: float = 5) -> tuple[int, bytes]:
    """Send the request target byte for byte (requests would normalise it)."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=timeout)
    try:
        conn.putrequest("GET", target, skip_host=False, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


TRAVERSALS = [
    "/../feeds.yaml", "/../agg.db", "/news/../../agg.db", "/%2e%2e/agg.db", "/%2E%2E/feeds.yaml",
    "/.%2e/feeds.yaml", "/%2e./feeds.yaml", "/..%2fagg.db", "/%2e%2e%2fagg.db", "/news/%2e%2e%2f%2e%2e%2fagg.db",
    "/..%5cagg.db", "/%5c..%5cagg.db", "/..\\agg.db", "/%252e%252e/agg.db", "/%c0%ae%c0%ae/agg.db",
    "/..;/agg.db", "/news/..%00/../agg.db", "/agg.db%00.xml", "/index.html/../../agg.db", "//etc/passwd",
    "/etc/passwd", "/%2fetc%2fpasswd", "/../../../../../../etc/passwd", "/leak.txt", "/../secret.txt",
    "/../daemon.log", "/.%2e/.%2e/.%2e/etc/passwd", "http://127.0.0.1/../agg.db", "../agg.db", "*",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_no_request_reaches_outside_the_output_folder(daemon: Daemon, target: str) -> None:
    try:
        status, body = raw(daemon, target)
    except (http.client.HTTPException, ConnectionError):
        return  # the server hung up on it: nothing leaked either
    assert status in (400, 403, 404), (status, body[:200])
    assert not [s for s in SECRETS if s in body], body[:200]


@pytest.mark.parametrize("length", [3_000, 100_000, 1_000_000])
def test_very_long_urls_are_refused_and_the_server_carries_on(daemon: Daemon, length: int) -> None:
    target = "/news/" + "a" * length
    try:
        status, _ = raw(daemon, target, timeout=10)
        assert status in (400, 404, 414, 431), status
    except (http.client.HTTPException, ConnectionError):
        pass
    query = "/news/feed.xml?" + "q=" + "b" * min(length, 200_000)
    try:
        status, body = raw(daemon, query, timeout=10)
        assert status in (200, 400, 414, 431), status
    except (http.client.HTTPException, ConnectionError):
        pass
    assert daemon.proc.poll() is None
    assert requests.get(daemon.url + "/news/feed.xml", timeout=5).status_code == 200


def test_more_idle_connections_than_the_connection_limit_do_not_lock_readers_out(daemon: Daemon) -> None:
    """250 connections that never send a byte (the server allows 200 at once and drops idle ones after
    30 s): a reader arriving after them must still get its feed within a few seconds."""
    idle = []
    try:
        for _ in range(250):
            idle.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
        time.sleep(0.5)
        started = time.monotonic()
        try:
            response = requests.get(daemon.url + "/news/feed.xml", timeout=5)
            outcome = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            outcome = f"{type(exc).__name__} after {time.monotonic() - started:.1f}s"
        assert outcome == "HTTP 200", f"a reader behind 250 idle connections got: {outcome}"
    finally:
        for sock in idle:
            sock.close()


def test_slow_clients_do_not_block_others(daemon: Daemon) -> None:
    """Twenty clients sending their request a byte at a time and ten that never read a 20 MB response:
    other readers are served at once and the daemon's memory does not hold all those bodies."""
    host = ("127.0.0.1", daemon.port)
    slow_senders = [socket.create_connection(host, timeout=5) for _ in range(20)]
    slow_readers = [socket.create_connection(host, timeout=5) for _ in range(10)]
    try:
        for sock in slow_readers:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /big.xml HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
        request = b"GET /news/feed.xml HTTP/1.1\r\nHost: x\r\n"
        for i in range(6):
            for sock in slow_senders:
                sock.sendall(request[i : i + 1])
            started = time.monotonic()
            response = requests.get(daemon.url + "/news/feed.xml", timeout=5)
            assert response.status_code == 200 and time.monotonic() - started < 2
            time.sleep(0.2)
        health = requests.get(daemon.url + "/healthz", timeout=5)
        assert health.status_code == 200
        rss_kb = int(Path(f"/proc/{daemon.proc.pid}/status").read_text().split("VmRSS:")[1].split()[0])
        assert rss_kb < 400_000, f"daemon holds {rss_kb // 1024} MB with ten unread 20 MB responses"
    finally:
        for sock in [*slow_senders, *slow_readers]:
            sock.close()
    assert daemon.proc.poll() is None
