"""The built-in feed server (waitress + our static app) over real HTTP on 127.0.0.1."""

from __future__ import annotations

import gzip
import http.client
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from aggregator.server import FeedServer, StaticSite


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "public"
    (root / "meirijingjixinwen").mkdir(parents=True)
    (root / "meirijingjixinwen" / "feed.xml").write_text("<rss>" + "新闻" * 500 + "</rss>", encoding="utf-8")
    (root / "meirijingjixinwen" / "atom.xml").write_text("<feed/>", encoding="utf-8")
    (root / "meirijingjixinwen" / "feed.json").write_text("{}", encoding="utf-8")
    (root / "meirijingjixinwen" / "index.html").write_text("<html>分类</html>", encoding="utf-8")
    (root / "index.html").write_text("<html>home</html>", encoding="utf-8")
    (root / "feeds.opml").write_text("<opml/>", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("SECRET", encoding="utf-8")
    app = StaticSite(root, health=lambda: (200, {"status": "ok"}))
    server = FeedServer(app, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{server.port}", root
    server.stop()


@pytest.mark.parametrize(
    ("path", "ctype"),
    [
        ("/meirijingjixinwen/feed.xml", "application/rss+xml; charset=utf-8"),
        ("/meirijingjixinwen/atom.xml", "application/atom+xml; charset=utf-8"),
        ("/meirijingjixinwen/feed.json", "application/feed+json; charset=utf-8"),
        ("/feeds.opml", "text/x-opml; charset=utf-8"),
        ("/", "text/html; charset=utf-8"),
        ("/meirijingjixinwen/", "text/html; charset=utf-8"),
    ],
)
def test_content_types(site: tuple[str, Path], path: str, ctype: str) -> None:
    response = requests.get(site[0] + path)
    assert response.status_code == 200 and response.headers["Content-Type"] == ctype
    assert response.headers["ETag"] and response.headers["Last-Modified"]


def test_category_folder_serves_its_index(site: tuple[str, Path]) -> None:
    assert requests.get(site[0] + "/meirijingjixinwen/").text == "<html>分类</html>"


def test_folder_without_its_slash_redirects_to_it(site: tuple[str, Path]) -> None:
    """/slug would serve the page with its relative links (feed.xml) resolving to the site's own."""
    base = site[0]
    moved = requests.get(base + "/meirijingjixinwen?x=1", allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["Location"] == "/meirijingjixinwen/?x=1"
    followed = requests.get(base + "/meirijingjixinwen")
    assert followed.url == base + "/meirijingjixinwen/" and followed.text == "<html>分类</html>"
    assert requests.head(base + "/meirijingjixinwen", allow_redirects=False).status_code == 301
    assert requests.get(base + "/meirijingjixinwen/index.html", allow_redirects=False).status_code == 200
    assert requests.get(base + "/nothing", allow_redirects=False).status_code == 404


def test_conditional_requests_answer_304(site: tuple[str, Path]) -> None:
    url = site[0] + "/meirijingjixinwen/feed.xml"
    first = requests.get(url, headers={"Accept-Encoding": "identity"})
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    again = requests.get(url, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status_code == 304 and again.content == b""
    since = requests.get(url, headers={"If-Modified-Since": modified, "Accept-Encoding": "identity"})
    assert since.status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_changed_file_gets_new_etag(site: tuple[str, Path]) -> None:
    url = site[0] + "/index.html"
    etag = requests.get(url).headers["ETag"]
    time.sleep(0.01)
    (site[1] / "index.html").write_text("<html>new home</html>", encoding="utf-8")
    response = requests.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 200 and "new home" in response.text


def test_gzip_when_accepted_with_its_own_etag(site: tuple[str, Path]) -> None:
    url = site[0] + "/meirijingjixinwen/feed.xml"
    raw = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    body = raw.raw.read(decode_content=False)
    assert raw.headers["Content-Encoding"] == "gzip" and raw.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body).decode() == (site[1] / "meirijingjixinwen" / "feed.xml").read_text()
    plain = requests.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["ETag"] != raw.headers["ETag"]
    assert (
        requests.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": raw.headers["ETag"]}).status_code == 304
    )


@pytest.mark.parametrize(("accept", "gzipped"), [
    ("gzip;q=0", False), ("gzip; q=0.0, identity", False), ("*;q=0", False), ("br, gzip;q=0.5", True),
    ("*", True), ("x-gzip", True), ("deflate", False), ("gzip;q=0, *", False), ("GZIP;Q=1", True),
    ("gzip ; q = 0", False),
])
def test_gzip_only_when_its_q_value_is_above_zero(site: tuple[str, Path], accept: str, gzipped: bool) -> None:
    response = requests.get(site[0] + "/meirijingjixinwen/feed.xml", headers={"Accept-Encoding": accept}, stream=True)
    assert (response.headers.get("Content-Encoding") == "gzip") is gzipped


def test_head(site: tuple[str, Path]) -> None:
    response = requests.head(site[0] + "/meirijingjixinwen/feed.xml", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200 and response.content == b""
    assert int(response.headers["Content-Length"]) == (site[1] / "meirijingjixinwen" / "feed.xml").stat().st_size


def raw_get(base: str, path: str) -> tuple[int, bytes]:
    """Send the path byte for byte (requests would normalise it)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    conn.endheaders()
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/meirijingjixinwen/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/meirijingjixinwen/%2e%2e%2f%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/etc/passwd",
        "/%252e%252e/secret.txt",
        "/" + "a" * 5000,
        "/nothing-here.xml",
        "/.hidden",
        "/%2500",  # a NUL after the second decoding: 404, not a 500 from the file system
        "/%00/index.html",
        "/meirijingjixinwen/feed.xml/",  # a file named as a folder
    ],
)
def test_no_path_leaves_output_dir(site: tuple[str, Path], path: str) -> None:
    status, body = raw_get(site[0], path)
    assert status in (400, 404)
    assert b"SECRET" not in body and b"root:" not in body
    if status == 404:
        assert b"404 Not Found" in body


def test_files_with_chinese_names_are_served(site: tuple[str, Path]) -> None:
    """WSGI hands the path over as Latin-1 text of its bytes: a percent-encoded UTF-8 name must
    still find its file (an operator's own pages beside ours), and the folder redirect keep it."""
    base, root = site
    (root / "报告").mkdir()
    (root / "报告" / "index.html").write_text("<html>报告</html>", encoding="utf-8")
    (root / "说明.html").write_text("<html>说明</html>", encoding="utf-8")
    assert requests.get(base + "/%E8%AF%B4%E6%98%8E.html").text == "<html>说明</html>"
    assert requests.get(base + "/%E6%8A%A5%E5%91%8A/").text == "<html>报告</html>"
    moved = requests.get(base + "/%E6%8A%A5%E5%91%8A", allow_redirects=False)
    assert moved.status_code == 301 and moved.headers["Location"] == "/%E6%8A%A5%E5%91%8A/"
    assert requests.get(base + "/%FF%FE.html").status_code == 404  # not UTF-8: no such file


def test_plain_404_page(site: tuple[str, Path]) -> None:
    response = requests.get(site[0] + "/missing/feed.xml")
    assert response.status_code == 404 and response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "404 Not Found" in response.text


def test_idle_connections_do_not_block_others(site: tuple[str, Path]) -> None:
    host, port = site[0].removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(50)]
    try:
        slow = socket.create_connection((host, int(port)))
        slow.sendall(b"GET /index.html HTTP/1.1\r\nHo")  # a slow client that never finishes
        assert requests.get(site[0] + "/index.html", timeout=5).status_code == 200
    finally:
        for sock in [*idle, slow]:
            sock.close()


def test_port_in_use_is_an_error_in_the_caller(site: tuple[str, Path]) -> None:
    port = int(site[0].rsplit(":", 1)[1])
    with pytest.raises(OSError) as raised:
        FeedServer(StaticSite(site[1]), "127.0.0.1", port)
    assert str(raised.value) == f"cannot serve on 127.0.0.1:{port}: Address already in use"


def test_healthz(site: tuple[str, Path]) -> None:
    response = requests.get(site[0] + "/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_request_body_is_refused_not_spooled_to_disk(site: tuple[str, Path]) -> None:
    """waitress keeps a request's body (up to 1 GB by default) in a temporary file; we serve GET and
    HEAD only, so a body is refused at once."""
    base, _root = site
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /feed.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 65536)
        answer = sock.recv(200)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert requests.get(base + "/feeds.opml", timeout=5).status_code == 200
