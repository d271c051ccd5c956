"""HTTP retrieval against a real local server: validators, caps, deadlines, errors, redirects."""

from __future__ import annotations

import base64
import gzip
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from aggregator import fetch
from aggregator.errors import FetchError
from aggregator.fetch import (
    USER_AGENT,
    FetchLimits,
    fetch_url,
    may_carry_headers,
    origin_of,
    parse_retry_after,
)

from .conftest import fixture
from .feedserver import FeedServer

_TRANSPORT = {"curl": True}


@pytest.fixture(autouse=True, params=["curl", "requests"])
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test here runs over both ways a GET leaves: libcurl (feed polls) and requests' adapter
    (article fetches, which check addresses; proxies and netrc take requests' own way)."""
    _TRANSPORT["curl"] = request.param == "curl"
    yield request.param
    _TRANSPORT["curl"] = True


def make_session(pool_size: int = 16) -> requests.Session:
    return fetch.make_session(pool_size, use_curl=_TRANSPORT["curl"])


def test_plain_fetch_sends_user_agent_and_returns_body(server: FeedServer) -> None:
    url = server.add("/feed.xml", fixture("rss20.xml"), etag='"v1"', last_modified="Mon, 28 Mar 2022 15:00:00 GMT")
    result = fetch_url(make_session(), url)
    assert result.status == 200 and result.body == fixture("rss20.xml")
    assert result.headers["etag"] == '"v1"'
    sent = server.hits("/feed.xml")[0].headers
    assert sent["user-agent"] == USER_AGENT and "aggregator/" in USER_AGENT and "github.com" in USER_AGENT
    assert "gzip" in sent["accept-encoding"]


def test_headers_named_in_any_case_replace_the_sessions_own(server: FeedServer) -> None:
    url = server.add("/feed.xml", fixture("rss20.xml"))
    fetch_url(make_session(), url, headers={"accept": "application/atom+xml"}, user_agent="reader-bot/1")
    sent = server.hits("/feed.xml")[0].headers
    assert sent["accept"] == "application/atom+xml" and sent["user-agent"] == "reader-bot/1"


@pytest.mark.parametrize("through_proxy", [False, True], ids=["direct", "proxy"])
def test_no_cookie_is_kept_from_one_feed_to_the_next(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch, through_proxy: bool
) -> None:
    """Both ways a request leaves (straight to the adapter, or through Session.get when proxies
    matter) keep no cookies: a site must not see what another site, or an earlier poll, set."""
    # through the proxy (the local server plays it), requests name the absolute URL
    base = "http://feeds.example.invalid" if through_proxy else ""
    first = server.add(f"{base}/first.xml", fixture("rss20.xml"), headers={"Set-Cookie": "visitor=42; Path=/"})
    second = server.add(f"{base}/second.xml", fixture("rss20.xml"))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    if through_proxy:
        monkeypatch.setenv("http_proxy", server.url(""))
        first, second = first.removeprefix(server.url("")), second.removeprefix(server.url(""))
    session = make_session()
    assert session.trust_env is through_proxy
    assert fetch_url(session, first).headers["set-cookie"] == "visitor=42; Path=/"
    fetch_url(session, second)
    fetch_url(session, first)
    assert len(session.cookies) == 0
    assert all("cookie" not in hit.headers for hit in server.requests)
    assert len(server.requests) == 3


def _clear_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                 "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-such-netrc"))


def test_a_session_reads_nothing_from_an_empty_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_environment(monkeypatch, tmp_path)
    assert make_session().trust_env is False  # no per-request walk of os.environ, no netrc stat
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    assert make_session().trust_env is True


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[FeedServer, Path]]:
    """An HTTPS server whose certificate only a throw-away CA (in the returned PEM file) vouches for."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    srv = FeedServer().start(tls=context)
    yield srv, bundle
    srv.stop()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # verify=False, on purpose
def test_a_ca_bundle_named_in_the_environment_is_used(
    tls_server: tuple[FeedServer, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, bundle = tls_server
    url = server.add("/feed.xml", fixture("rss20.xml"))
    _clear_environment(monkeypatch, tmp_path)
    with pytest.raises(FetchError):  # the system's CAs do not know ours
        fetch_url(make_session(), url)
    assert fetch_url(make_session(), url, verify=False).status == 200  # verify_tls: false
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, str(bundle))
        session = make_session()
        assert session.trust_env is False and fetch_url(session, url).body == fixture("rss20.xml")
        monkeypatch.delenv(name)


def test_a_proxy_named_in_the_environment_is_used(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # the local server plays the proxy: a proxied request names the absolute URL in its request line
    target = "http://feeds.example.invalid/feed.xml"
    server.add(target, fixture("rss20.xml"))
    monkeypatch.setenv("http_proxy", server.url(""))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    result = fetch_url(make_session(), target)
    assert result.status == 200 and result.body == fixture("rss20.xml")
    assert len(server.hits(target)) == 1


def test_the_header_deadline_holds_through_a_proxy(server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    target = "http://slow.example.invalid/feed.xml"
    server.add(target, handler=_drip_bytes(b"HTTP/1.1 200 OK\r\nX-Slow: "))
    monkeypatch.setenv("http_proxy", server.url(""))
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetch_url(make_session(), target, limits=FetchLimits(timeout=1, deadline=1.5))
    assert time.monotonic() - started < 4


def test_a_netrc_file_still_gives_credentials(server: FeedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login reader password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    url = server.add("/private.xml", fixture("rss20.xml"))
    assert fetch_url(make_session(), url).status == 200
    sent = server.hits("/private.xml")[0].headers
    assert sent["authorization"] == "Basic " + base64.b64encode(b"reader:s3cret").decode()


def test_conditional_get_returns_304_without_body(server: FeedServer) -> None:
    url = server.add("/feed.xml", fixture("rss20.xml"), etag='"v1"')
    result = fetch_url(make_session(), url, etag='"v1"')
    assert result.not_modified and result.body is None
    assert server.hits("/feed.xml")[0].headers["if-none-match"] == '"v1"'


def test_connections_are_kept_alive_across_200s_and_304s(server: FeedServer) -> None:
    url = server.add("/feed.xml", fixture("rss20.xml"), etag='"v1"')
    session = make_session()
    assert fetch_url(session, url).status == 200
    assert all(fetch_url(session, url, etag='"v1"').not_modified for _ in range(3))
    assert len({hit.client_port for hit in server.hits("/feed.xml")}) == 1


def test_a_304_that_claims_a_chunked_body_does_not_hang(server: FeedServer) -> None:
    def chunked_304(handler: object) -> None:
        handler.send_response(304)  # type: ignore[attr-defined]
        handler.send_header("Transfer-Encoding", "chunked")  # type: ignore[attr-defined]
        handler.end_headers()  # type: ignore[attr-defined]
        handler.close_connection = True  # type: ignore[attr-defined]

    url = server.add("/odd.xml", handler=chunked_304)
    started = time.monotonic()
    assert fetch_url(make_session(), url, etag='"v1"', limits=FetchLimits(timeout=3)).not_modified
    assert time.monotonic() - started < 2


def test_gzip_body_is_decoded(server: FeedServer) -> None:
    url = server.add("/feed.xml", fixture("rss20.xml"), gzip=True)
    assert fetch_url(make_session(), url).body == fixture("rss20.xml")


def test_body_over_cap_is_refused(server: FeedServer) -> None:
    url = server.add("/big.xml", b"x" * 300_000)
    with pytest.raises(FetchError, match="over the 100,000-byte cap"):
        fetch_url(make_session(), url, limits=FetchLimits(max_body=100_000))


def test_gzip_bomb_stops_at_cap_on_decompressed_bytes(server: FeedServer) -> None:
    url = server.add("/bomb.xml", b"\0" * 50_000_000, gzip=True)
    assert len(gzip.compress(b"\0" * 50_000_000)) < 100_000
    with pytest.raises(FetchError, match="cap"):
        fetch_url(make_session(), url, limits=FetchLimits(max_body=1_000_000))


def test_endless_stream_stops_at_cap(server: FeedServer) -> None:
    url = server.add("/endless.xml", endless=True)
    started = time.monotonic()
    with pytest.raises(FetchError, match="cap"):
        fetch_url(make_session(), url, limits=FetchLimits(max_body=2_000_000))
    assert time.monotonic() - started < 10


def test_slow_server_hits_read_timeout(server: FeedServer) -> None:
    url = server.add("/slow.xml", fixture("rss20.xml"), delay=3)
    with pytest.raises(FetchError, match="timed out"):
        fetch_url(make_session(), url, limits=FetchLimits(timeout=0.5, deadline=10))


def test_a_body_that_stalls_is_a_read_timeout_not_a_broken_connection(server: FeedServer) -> None:
    url = server.add("/stall.xml", fixture("rss20.xml"), drip=3)  # headers, one byte, then silence
    with pytest.raises(FetchError) as caught:
        fetch_url(make_session(), url, limits=FetchLimits(timeout=0.5, deadline=10))
    assert str(caught.value) == "read timed out while downloading the body"


def test_dripping_server_hits_total_deadline(server: FeedServer) -> None:
    url = server.add("/drip.xml", fixture("rss20.xml"), drip=0.2)
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetch_url(make_session(), url, limits=FetchLimits(timeout=1, deadline=1.5))
    assert time.monotonic() - started < 4


def _drip_bytes(prefix: bytes) -> Any:
    def handler(request: Any) -> None:
        try:
            request.wfile.write(prefix)
            for _ in range(40):  # a byte every 0.25 s: each read is quick, the whole never ends
                request.wfile.write(b"a")
                request.wfile.flush()
                time.sleep(0.25)
        except OSError:
            return
    return handler


@pytest.mark.parametrize("prefix", [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"HTTP/1.1 2"], ids=["headers", "status-line"])
def test_a_server_dripping_its_headers_hits_the_total_deadline(server: FeedServer, prefix: bytes) -> None:
    """A timeout that bounds each read lets headers sent a byte at a time hold a fetch thread for
    ever (and every source queued behind it), as requests' once did. The deadline covers the wait
    for the headers too. (libcurl counts no header byte as progress, so there the per-read timeout
    trips as well: the deadline is set shorter here to show that it holds on its own.)"""
    url = server.add("/drip-headers.xml", handler=_drip_bytes(prefix))
    session = make_session()
    started = time.monotonic()
    with pytest.raises(FetchError, match="no complete response within the 1.5 s deadline"):
        fetch_url(session, url, limits=FetchLimits(timeout=2, deadline=1.5))
    assert time.monotonic() - started < 4
    ok = server.add("/fine.xml", fixture("rss20.xml"))  # the session is still good for the next source
    assert fetch_url(session, ok, limits=FetchLimits(timeout=2, deadline=1.5)).status == 200


def test_server_error_raises_with_status(server: FeedServer) -> None:
    url = server.add("/err.xml", b"oops", status=500)
    with pytest.raises(FetchError, match="HTTP 500") as caught:
        fetch_url(make_session(), url)
    assert caught.value.status == 500


def test_retry_after_is_read_from_503(server: FeedServer) -> None:
    url = server.add("/busy.xml", b"busy", status=503, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as caught:
        fetch_url(make_session(), url)
    assert caught.value.status == 503 and caught.value.retry_after == 120


def test_parse_retry_after_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 60) == 60
    assert parse_retry_after("garbage") is None


def test_connection_refused_is_one_line() -> None:
    with pytest.raises(FetchError, match="^connection refused$"):
        fetch_url(make_session(), "http://127.0.0.1:9/feed.xml", limits=FetchLimits(timeout=2))


def test_permanent_and_temporary_redirects(server: FeedServer) -> None:
    target = server.add("/new.xml", fixture("rss20.xml"))
    moved = server.redirect("/old.xml", target, 301)
    result = fetch_url(make_session(), moved)
    assert result.url == target and result.permanent_redirect
    temp = server.redirect("/temp.xml", target, 302)
    result = fetch_url(make_session(), temp)
    assert result.url == target and not result.permanent_redirect


def test_headers_may_follow_an_upgrade_to_https_of_the_same_host_only() -> None:
    feed = origin_of("http://feeds.example.com/rss")
    assert may_carry_headers(feed, origin_of("http://FEEDS.example.com:80/other"))
    assert may_carry_headers(feed, origin_of("https://feeds.example.com/rss"))  # http -> https, default ports
    assert not may_carry_headers(feed, origin_of("http://feeds.example.com:8080/rss"))
    assert not may_carry_headers(feed, origin_of("https://feeds.example.com:8443/rss"))
    assert not may_carry_headers(feed, origin_of("https://other.example.com/rss"))
    secure = origin_of("https://feeds.example.com/rss")
    assert not may_carry_headers(secure, origin_of("http://feeds.example.com/rss"))  # never down to clear text


def test_a_session_made_elsewhere_still_fetches_conditionally(server: FeedServer) -> None:
    """fetch_url takes any requests Session: one without our adapter goes through requests' own."""
    url = server.add("/feed.xml", fixture("rss20.xml"), etag='"v1"')
    session = requests.Session()
    assert fetch_url(session, url).body == fixture("rss20.xml")
    assert fetch_url(session, url, etag='"v1"').not_modified
    assert server.hits("/feed.xml")[1].headers["if-none-match"] == '"v1"'


def test_a_url_in_chinese_is_sent_quoted_every_time(server: FeedServer) -> None:
    """Where a URL leads is worked out once per session (a daemon polls the same URLs all day): the
    second fetch must send what the first did."""
    server.add("/%E6%96%B0%E9%97%BB/rss.xml?%E9%A2%91%E9%81%93=%E8%B4%A2%E7%BB%8F", fixture("rss20.xml"))
    quoted = server.url("/%E6%96%B0%E9%97%BB/rss.xml?%E9%A2%91%E9%81%93=%E8%B4%A2%E7%BB%8F")
    session = make_session()
    url = server.url("/新闻/rss.xml?频道=财经")
    assert [fetch_url(session, url).url for _ in range(2)] == [quoted, quoted]  # stored as final_url
    assert fetch_url(session, url + "#top").status == 200  # a fragment is never sent


def test_a_redirect_to_an_unquoted_location_is_stored_quoted(server: FeedServer) -> None:
    server.add("/new%20feed.xml", fixture("rss20.xml"))
    moved = server.redirect("/old.xml", "new feed.xml", 301)
    result = fetch_url(make_session(), moved)
    assert result.url == server.url("/new%20feed.xml") and result.permanent_redirect


def _header_spy(seen: list[list[str]]) -> Any:
    def handler(request: Any) -> None:
        seen.append(request.headers.get_all("User-Agent") or [])
        request.send_response(200)
        request.send_header("Content-Length", "0")
        request.end_headers()
    return handler


def test_a_header_named_in_another_case_is_sent_once(server: FeedServer) -> None:
    seen: list[list[str]] = []
    url = server.add("/spy.xml", handler=_header_spy(seen))
    fetch_url(make_session(), url, user_agent="first/1", headers={"user-agent": "second/2"})
    fetch_url(make_session(), url, headers={"USER-AGENT": "third/3"})
    assert seen == [["second/2"], ["third/3"]]


def test_a_cookie_wall_redirect_is_passed_and_its_cookie_goes_nowhere_else(server: FeedServer) -> None:
    """A page that sets a cookie and redirects to itself (a CMS's cookie check) looped to "more than
    10 redirects" for good. The cookie is sent back within that one fetch, to its own origin only."""
    def cookie_wall(request: Any) -> None:
        if "sid=ok" in (request.headers.get("Cookie") or ""):
            body = b"<p>the article</p>"
            request.send_response(200)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
            return
        request.send_response(302)
        request.send_header("Location", request.path)
        request.send_header("Set-Cookie", "sid=ok; Path=/; HttpOnly")
        request.send_header("Set-Cookie", "theme=dark")
        request.send_header("Content-Length", "0")
        request.end_headers()

    session = make_session()
    url = server.add("/wall.html", handler=cookie_wall)
    assert fetch_url(session, url).body == b"<p>the article</p>"
    assert [r.headers.get("cookie") for r in server.hits("/wall.html")] == [None, "sid=ok; theme=dark"]
    other = FeedServer()  # another origin (port): the cookie is not for it
    other.start()
    try:
        target = other.add("/elsewhere.xml", "<rss/>")
        server.redirect("/bounce.html", target, status=302)
        server.routes["/bounce.html"].headers["Set-Cookie"] = "sid=ok"
        fetch_url(session, server.url("/bounce.html"))
        assert [r.headers.get("cookie") for r in other.hits("/elsewhere.xml")] == [None]
    finally:
        other.stop()
    fetch_url(session, server.url("/bounce.html"))  # a new fetch starts with no cookie
    assert [r.headers.get("cookie") for r in server.hits("/bounce.html")] == [None, None]


def test_a_body_cut_short_says_how_it_broke(server: FeedServer) -> None:
    def short_body(request: Any) -> None:
        request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        request.wfile.flush()
        request.close_connection = True

    url = server.add("/short.xml", handler=short_body)
    with pytest.raises(FetchError) as caught:
        fetch_url(make_session(), url)
    assert str(caught.value) == (
        "connection broke while reading: Connection broken: IncompleteRead(10 bytes read, 990 more expected)"
    )


def test_a_url_urlsplit_cannot_take_fails_in_one_line() -> None:
    with pytest.raises(FetchError, match="IPv6"):
        fetch_url(make_session(), "http://[fe80::1%25%5D]/feed.xml")


def test_a_header_value_that_would_split_the_request_is_refused_in_one_line(server: FeedServer) -> None:
    url = server.add("/feed.xml", fixture("rss20.xml"))
    with pytest.raises(FetchError) as caught:
        fetch_url(make_session(), url, headers={"X-Token": "abc\r\nX-Injected: 1"})
    assert "\n" not in str(caught.value) and "header" in str(caught.value).lower()
    assert server.hits("/feed.xml") == []


def test_a_source_moved_for_good_before_a_temporary_redirect_is_moved(server: FeedServer) -> None:
    """http -> https for good, then a CDN's 302: the source's new URL is the first hop's target."""
    final = server.add("/cdn/feed.xml", fixture("rss20.xml"))
    middle = server.redirect("/new.xml", final, 302)
    result = fetch_url(make_session(), server.redirect("/old.xml", middle, 301))
    assert result.url == final and not result.permanent_redirect and result.moved_to == middle
    twice = fetch_url(make_session(), server.redirect("/older.xml", server.url("/old.xml"), 308))
    assert twice.moved_to == middle  # permanent, permanent, then temporary
    temporary_first = fetch_url(make_session(), server.redirect("/temp.xml", server.url("/old.xml"), 302))
    assert temporary_first.moved_to == ""  # a temporary hop first: the source has not moved
