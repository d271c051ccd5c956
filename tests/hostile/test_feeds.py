"""Malicious or broken feeds through the real `aggregator fetch` (and `build`) against a local HTTP server.

Issue 6, part 1: external entities, entity expansion, hostile bodies, things that are not feeds.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from ..conftest import write_config
from ..feedserver import FeedServer
from .helpers import (
    OUTPUT_DIRS,
    Run,
    assert_no_traceback,
    assert_outputs_well_formed,
    cli,
    db_text,
    files_under,
    item,
    posts_of,
    rss,
    source_state,
)

#: the CLI alone (Python, click, feedparser, lxml...) peaks at about 105 MB here
MEMORY_LIMIT_MB = 200
GOOD = rss([item("good-1", "a good entry", link="http://good.example.com/1")])


def config(directory: Path, sources: list[dict[str, Any]], **defaults: Any) -> Path:
    return write_config(
        directory,
        sources,
        defaults={"interval": "30m", "timeout": "5s", "deadline": "10s", **defaults},
        jekyll={"dir": "jekyll"},
    )


def everything_written(directory: Path) -> str:
    """All output files, the database and `posts --format json`, as one text to search."""
    texts = [p.read_bytes().decode("utf-8", "replace") for p in files_under(*(directory / d for d in OUTPUT_DIRS))]
    texts.append(db_text(directory / "agg.db"))
    listed = cli("posts", "--format", "json", "--limit", "1000", cwd=directory)
    assert listed.returncode == 0, str(listed)
    texts.append(listed.stdout)
    return "\n".join(texts)


# -- XML external entities ---------------------------------------------------------------------


def test_xml_external_entities_are_never_resolved(server: FeedServer, tmp_path: Path) -> None:
    """file: and http: external entities, an external DTD and a parameter entity: nothing is fetched or read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("XXE-FILE-SECRET-7f3a\n", encoding="utf-8")
    server.add("/xxe-entity.txt", "XXE-HTTP-SECRET-9b2c", content_type="text/plain")
    server.add("/xxe.dtd", '<!ENTITY leak "XXE-DTD-SECRET-4d1e">', content_type="application/xml-dtd")
    server.add(
        "/xxe-param.dtd",
        f'<!ENTITY % all "<!ENTITY pleak SYSTEM \'{server.url("/xxe-param-leak.txt")}\'>"> %all;',
        content_type="application/xml-dtd",
    )
    server.add("/xxe-param-leak.txt", "XXE-PARAM-SECRET-0c5d", content_type="text/plain")
    body = "<item><guid>{g}</guid><title>A &{e}; B</title><link>http://x.example.com/{g}</link>" \
           "<description>before &{e}; after</description></item>"
    feeds = {
        "file": (
            f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY s SYSTEM "file://{secret}">]>',
            body.format(g="f1", e="x") + body.format(g="f2", e="s"),
        ),
        "http": (
            f'<!DOCTYPE rss [<!ENTITY h SYSTEM "{server.url("/xxe-entity.txt")}">]>',
            body.format(g="h1", e="h"),
        ),
        "dtd": (f'<!DOCTYPE rss SYSTEM "{server.url("/xxe.dtd")}">', body.format(g="d1", e="leak")),
        "param": (
            f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{server.url("/xxe-param.dtd")}"> %p;]>',
            body.format(g="p1", e="pleak"),
        ),
    }
    sources = []
    for name, (doctype, items) in feeds.items():
        doc = f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>{name}</title>{items}' \
              "</channel></rss>"
        sources.append({"name": name, "url": server.add(f"/{name}.xml", doc), "category": "xxe"})
    atom = (
        f'<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM "file://{secret}">'
        f'<!ENTITY h SYSTEM "{server.url("/xxe-entity.txt")}">]>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>a</title><id>urn:a</id>'
        "<updated>2022-03-28T10:00:00Z</updated>"
        '<entry><id>urn:a:1</id><title>&x;</title><updated>2022-03-28T10:00:00Z</updated>'
        '<content type="html">&x; &h;</content></entry></feed>'
    )
    sources.append({"name": "atom", "url": server.add("/atom.xml", atom), "category": "xxe"})
    config(tmp_path, sources)

    fetched = cli("fetch", cwd=tmp_path)
    assert fetched.returncode in (0, 1), str(fetched)
    assert_no_traceback(fetched)
    built = cli("build", cwd=tmp_path)
    assert built.returncode == 0, str(built)

    fetched_paths = [r.path for r in server.requests]
    assert not [p for p in fetched_paths if p.startswith("/xxe")], f"entity URLs were requested: {fetched_paths}"
    text = everything_written(tmp_path) + fetched.stdout + fetched.stderr
    for marker in ("XXE-FILE-SECRET-7f3a", "XXE-HTTP-SECRET-9b2c", "XXE-DTD-SECRET-4d1e", "XXE-PARAM-SECRET-0c5d",
                   "root:x:0:0", "/usr/sbin/nologin"):
        assert marker not in text, f"{marker!r} leaked into the output"
    assert_outputs_well_formed(tmp_path / "public", tmp_path / "jekyll")


# -- entity expansion ------------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{n} "{f"&lol{n - 1};" * 10 if n > 1 else "&lol;" * 10}">\n' for n in range(1, 10))
    + ']>\n<rss version="2.0"><channel><title>lol</title>'
    + "<item><guid>bomb-1</guid><title>&lol9;</title><description>&lol9;</description></item>"
    + "</channel></rss>"
)
QUADRATIC = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "' + "A" * 50_000 + '">]>\n'
    '<rss version="2.0"><channel><title>quad</title>'
    "<item><guid>bomb-1</guid><title>quad</title><description>" + "&a;" * 50_000 + "</description></item>"
    "</channel></rss>"
)


# the DOCTYPE pushed past the first 4 KB by a comment, and a "]>" inside an entity's value: both once
# hid the declarations from the check, leaving expat's own 100x amplification limit as the only guard
PADDED = BILLION_LAUGHS.replace("<!DOCTYPE", "<!-- " + "x" * 5000 + " -->\n<!DOCTYPE", 1)
EARLY_END = QUADRATIC.replace("<!ENTITY a ", '<!ENTITY x "]>"><!ENTITY a ', 1)


@pytest.mark.parametrize("opening", ["<ul><li>", "<a"], ids=["nested-lists", "unclosed-tags"])
def test_deeply_nested_html_is_stored_as_text_not_parsed_for_minutes(
    server: FeedServer, tmp_path: Path, opening: str
) -> None:
    """`<ul><li>` 80,000 times (640 KB): an HTML parser's cost grows with the square of the depth, and
    this kept a worker busy for 18 minutes, every poll. Past 1,000 levels the entry is read as text,
    by a scan that stays linear even when no tag is ever closed (`<a<a<a...`)."""
    deep = opening * 80_000 + "<script>alert(1)</script>deep end"
    feed = rss([item("deep-1", "deep", link="http://deep.example.com/1", description=f"<![CDATA[{deep}]]>")])
    config(tmp_path, [{"name": "deep", "url": server.add("/deep.xml", feed)},
                      {"name": "good", "url": server.add("/good.xml", GOOD)}])
    run = cli("fetch", cwd=tmp_path)
    assert_no_traceback(run)
    assert run.returncode == 0 and run.seconds < 20, str(run)
    (post,) = posts_of(tmp_path / "agg.db", "deep")
    assert post["content"].endswith("deep end") and "<" not in post["content"]  # the script's text is inert text
    assert len(posts_of(tmp_path / "agg.db", "good")) == 1


@pytest.mark.parametrize("bomb", [BILLION_LAUGHS, QUADRATIC, PADDED, EARLY_END],
                         ids=["billion-laughs", "quadratic-blowup", "doctype-after-4kb", "early-subset-end"])
def test_entity_expansion_is_bounded_and_fails_the_source(server: FeedServer, tmp_path: Path, bomb: str) -> None:
    """Parsing stays fast and small, the source is recorded as failed, nothing of it is stored, others go on."""
    config(
        tmp_path,
        [
            {"name": "bomb", "url": server.add("/bomb.xml", bomb)},
            {"name": "good", "url": server.add("/good.xml", GOOD)},
        ],
    )
    run = cli("fetch", cwd=tmp_path)
    assert_no_traceback(run)
    assert run.seconds < 5, f"fetch took {run.seconds:.1f}s"
    assert run.max_rss_mb < MEMORY_LIMIT_MB, f"fetch peaked at {run.max_rss_mb:.0f} MB"
    db = tmp_path / "agg.db"
    assert source_state(db, "good")["result"] == "ok" and len(posts_of(db, "good")) == 1
    bomb_state = source_state(db, "bomb")
    stored = [(p["title"][:40], len(p["title"]), len(p["content"])) for p in posts_of(db, "bomb")]
    assert bomb_state["result"] == "error", (
        f"entity bomb recorded as {bomb_state['result']!r} (warning {bomb_state['warning']!r}); stored {stored}"
    )
    assert bomb_state["error"] and stored == []
    assert run.returncode == 1 and "failed: bomb: " in run.stderr, str(run)


# -- hostile bodies --------------------------------------------------------------------------------

HUNDRED_MB = 100_000_000
CHUNK = b" " * 65536


class Sent:
    """Counts what a handler managed to write before the client went away."""

    def __init__(self) -> None:
        self.bytes = 0


def big_body(sent: Sent, *, declare_length: bool) -> Any:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        if declare_length:
            request.send_header("Content-Length", str(HUNDRED_MB))
        else:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        try:
            request.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>big</title>')
            while sent.bytes < HUNDRED_MB:
                request.wfile.write(CHUNK)
                sent.bytes += len(CHUNK)
        except OSError:
            return

    return handler


def gzip_bomb(size: int) -> bytes:
    """`size` bytes of an RSS document padded with zeros, gzip-compressed (about 1000:1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'<?xml version="1.0"?><rss version="2.0"><channel><title>bomb</title><!--')]
    block = b"\0" * 1_000_000
    parts += [packer.compress(block) for _ in range(size // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)


def serve_raw(body: bytes, headers: dict[str, str]) -> Any:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            request.send_header(key, value)
        request.end_headers()
        try:
            request.wfile.write(body)
        except OSError:
            return

    return handler


def drip(body: bytes, pause: float) -> Any:
    def handler(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        try:
            for i in range(len(body)):
                request.wfile.write(body[i : i + 1])
                request.wfile.flush()
                time.sleep(pause)
        except OSError:
            return

    return handler


def fetch_one(tmp_path: Path, url: str, **defaults: Any) -> tuple[Run, dict[str, Any]]:
    config(tmp_path, [{"name": "hostile", "url": url}], **defaults)
    run = cli("fetch", cwd=tmp_path)
    assert_no_traceback(run)
    state = source_state(tmp_path / "agg.db", "hostile")
    assert state["result"] == "error", f"source recorded as {state['result']!r}\n{run}"
    assert run.returncode == 1 and f"failed: hostile: {state['error']}" in run.stderr, str(run)
    assert posts_of(tmp_path / "agg.db", "hostile") == []
    return run, state


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "close-delimited"])
def test_100mb_response_stops_at_body_cap(server: FeedServer, tmp_path: Path, declared: bool) -> None:
    sent = Sent()
    server.add("/big.xml", handler=big_body(sent, declare_length=declared))
    run, state = fetch_one(tmp_path, server.url("/big.xml"), max_body="2MB")
    assert "2,097,152-byte cap" in state["error"], state["error"]
    assert run.seconds < 15 and run.max_rss_mb < MEMORY_LIMIT_MB, str(run)
    assert sent.bytes < 50_000_000, f"the client read {sent.bytes:,} bytes of a 2 MB cap"


def test_endless_chunked_stream_stops_at_body_cap(server: FeedServer, tmp_path: Path) -> None:
    run, state = fetch_one(tmp_path, server.add("/endless.xml", endless=True), max_body="2MB")
    assert "2,097,152-byte cap" in state["error"], state["error"]
    assert run.seconds < 15 and run.max_rss_mb < MEMORY_LIMIT_MB, str(run)


def test_gzip_bomb_stops_at_cap_on_decompressed_bytes(server: FeedServer, tmp_path: Path) -> None:
    bomb = gzip_bomb(HUNDRED_MB)
    assert len(bomb) < 200_000
    url = server.add("/bomb.xml", handler=serve_raw(bomb, {"Content-Type": "application/rss+xml",
                                                          "Content-Encoding": "gzip"}))
    run, state = fetch_one(tmp_path, url, max_body="2MB")
    assert "2,097,152-byte cap" in state["error"], state["error"]
    assert run.seconds < 15 and run.max_rss_mb < MEMORY_LIMIT_MB, str(run)


def test_dripping_server_hits_total_deadline(server: FeedServer, tmp_path: Path) -> None:
    """One byte a second never trips the 2 s read timeout; the 3 s total deadline must."""
    url = server.add("/drip.xml", handler=drip(GOOD, 1.0))
    run, state = fetch_one(tmp_path, url, timeout="2s", deadline="3s")
    assert "deadline" in state["error"], state["error"]
    assert run.seconds < 3 + 4, f"fetch took {run.seconds:.1f}s with a 3 s deadline"


# -- not a feed ------------------------------------------------------------------------------------

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\0" * 2000
NOT_FEEDS: dict[str, tuple[bytes, str, tuple[str, ...]]] = {
    # name: (body, content type, words one of which the recorded error must contain)
    "html": (
        b"<!doctype html><html><head><title>Shop</title></head><body><h1>Welcome</h1><p>Buy now</p></body></html>",
        "text/html; charset=utf-8",
        ("html",),
    ),
    "json": (
        json.dumps({"data": [{"id": 1, "title": "not a JSON Feed"}], "next": None}).encode(),
        "application/json",
        ("not a feed", "json"),
    ),
    "png": (PNG, "image/png", ("not a feed", "image")),
    "empty": (b"", "application/rss+xml", ("empty",)),
    "invalid-utf8": (
        rss([item("u1", "bad BYTES here", link="http://u.example.com/1")]).replace(b"BYTES", b"\xc3\x28 \xff\xfe"),
        "application/rss+xml; charset=utf-8",
        ("utf-8", "utf8", "encoding", "decode"),
    ),
    "plain-text": (b"Service temporarily moved. Please come back later.", "text/plain", ("not a feed",)),
}
WRONG_CHARSET = (
    '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>cs</title>'
    "<item><guid>cs-1</guid><title>中文标题 café</title><link>http://cs.example.com/1</link>"
    "<description>正文 naïve</description></item></channel></rss>"
).encode()


@pytest.fixture(scope="module")
def not_feeds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Run, Run]]:
    """One `aggregator fetch` + `build` over every kind of non-feed, a wrong charset and a good source."""
    directory = tmp_path_factory.mktemp("notfeeds")
    srv = FeedServer().start()
    try:
        sources = [
            {"name": name, "url": srv.add(f"/{name}", body, content_type=ctype), "category": "mixed"}
            for name, (body, ctype, _) in NOT_FEEDS.items()
        ]
        sources.append({"name": "good", "url": srv.add("/good.xml", GOOD), "category": "mixed"})
        sources.append({
            "name": "wrong-charset",
            "url": srv.add("/cs.xml", WRONG_CHARSET, content_type="application/rss+xml; charset=iso-8859-1"),
            "category": "mixed",
        })
        config(directory, sources)
        fetched = cli("fetch", cwd=directory)
        built = cli("build", cwd=directory)
        yield directory, fetched, built
    finally:
        srv.stop()


def test_good_source_beside_non_feeds_is_stored(not_feeds: tuple[Path, Run, Run]) -> None:
    directory, fetched, built = not_feeds
    assert_no_traceback(fetched)
    assert_no_traceback(built)
    assert fetched.returncode == 1 and built.returncode == 0, f"{fetched}\n{built}"
    assert source_state(directory / "agg.db", "good")["result"] == "ok"
    assert [p["title"] for p in posts_of(directory / "agg.db", "good")] == ["a good entry"]
    assert_outputs_well_formed(directory / "public", directory / "jekyll")


@pytest.mark.parametrize("name", list(NOT_FEEDS))
def test_not_a_feed_is_a_clear_error_and_nothing_is_stored(not_feeds: tuple[Path, Run, Run], name: str) -> None:
    directory, fetched, _ = not_feeds
    db = directory / "agg.db"
    state = source_state(db, name)
    stored = [(p["title"], p["guid"]) for p in posts_of(db, name)]
    assert state["result"] == "error", (
        f"{name}: recorded as {state['result']!r} with warning {state['warning']!r}; stored {stored}"
    )
    error = state["error"]
    assert error and "\n" not in error and len(error) <= 300, repr(error)
    assert any(word in error.lower() for word in NOT_FEEDS[name][2]), f"{name}: unclear error {error!r}"
    assert f"failed: {name}: {error}" in fetched.stderr
    assert stored == []


def test_wrong_declared_charset_is_ingested_or_refused_without_crash(not_feeds: tuple[Path, Run, Run]) -> None:
    """A feed that declares ISO-8859-1 (header and XML declaration) but is UTF-8.

    Decoding it as declared is legitimate (the result is then mojibake, which we cannot call wrong), and so
    is refusing it. What must hold: no crash, the source has a recorded result, an error is one clear line,
    and whatever was stored is readable text (no control characters) that every output carries well-formed.
    """
    directory, fetched, _ = not_feeds
    state = source_state(directory / "agg.db", "wrong-charset")
    assert state["result"] in ("ok", "error")
    if state["result"] == "error":
        assert state["error"] and "\n" not in state["error"]
    else:
        posts = posts_of(directory / "agg.db", "wrong-charset")
        assert len(posts) == 1
        title = posts[0]["title"]
        assert title and not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in title), repr(title)
        feed = json.loads((directory / "public" / "mixed" / "feed.json").read_text(encoding="utf-8"))
        assert title in [i["title"] for i in feed["items"]]
