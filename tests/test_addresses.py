"""Article fetches reach public addresses and, for a feed at an IP address, that address's kind.

Every server here is on loopback. A feed at http://127.0.0.1:PORT/ is a loopback feed and may fetch
loopback articles; a feed at http://localhost:PORT/ is named, and a name unlocks nothing (its DNS
would belong to the feed's site). What must be refused, and before any connection: 0.0.0.0 (which
Linux connects to this very machine), a link-local metadata address, a private one, directly or at
the end of a redirect, or through a connection kept alive for another source.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from aggregator.addresses import address_kind, feed_kinds
from aggregator.pipeline import fetch_sources

from .conftest import run_cli, write_config
from .feedserver import FeedServer
from .test_richer_sources import article, teaser_feed


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("0.0.0.0", "loopback"), ("0.1.2.3", "loopback"), ("::", "loopback"), ("::ffff:0.0.0.0", "loopback"),
    ("::7f00:1", "loopback"), ("64:ff9b::7f00:1", "loopback"), ("2002:7f00:1::", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"), ("64:ff9b::a9fe:a9fe", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("::ffff:192.168.1.1", "private"), ("100.64.0.1", "private"), ("fec0::1", "private"),
    ("224.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("240.0.0.1", "reserved"),
    ("8.8.8.8", "public"), ("2001:4860:4860::8888", "public"), ("::ffff:8.8.8.8", "public"),
    ("64:ff9b::808:808", "public"),  # NAT64 to a public IPv4 address: an IPv6-only host's way out
])
def test_address_kinds(address: str, kind: str) -> None:
    assert address_kind(address) == kind


def test_only_a_feed_at_an_ip_address_unlocks_its_kind() -> None:
    assert feed_kinds("127.0.0.1") == {"loopback"} and feed_kinds("::1") == {"loopback"}
    assert feed_kinds("10.0.0.5") == {"private"} and feed_kinds("[fd00::5]") == {"private"}
    assert feed_kinds("8.8.8.8") == frozenset() and feed_kinds("224.0.0.1") == frozenset()
    assert feed_kinds("localhost") == frozenset()  # a name: whatever it resolves to
    assert feed_kinds("feeds.example.com") == frozenset()


def local_feed(server: FeedServer, items: list[tuple[str, str]], links: dict[str, str]) -> str:
    feed = teaser_feed(server, items)
    for guid, link in links.items():
        feed = feed.replace(server.url(f"/news/{guid}.html"), link)
    return feed


def test_a_loopback_feed_fetches_loopback_articles_and_nothing_else(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/news/ok.html", article("本机文章"), content_type="text/html; charset=utf-8")
    server.add("/news/zero.html", article("零地址文章"), content_type="text/html; charset=utf-8")
    server.redirect("/news/hop.html", "http://169.254.169.254/latest/meta-data/", status=302)
    items = [("ok", "本机文章"), ("zero", "零地址文章"), ("meta", "元数据"), ("lan", "内网"), ("hop", "跳转")]
    server.add("/feed.xml", local_feed(server, items, {
        "zero": f"http://0.0.0.0:{port}/news/zero.html", "meta": "http://169.254.169.254/latest/meta-data/",
        "lan": "http://10.255.255.1/admin"}))
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    store = open_store(config)

    started = time.monotonic()
    report = fetch_sources(config, store)
    assert time.monotonic() - started < 10  # nothing was sent to 169.254.169.254 or 10.255.255.1
    (outcome,) = report.outcomes
    assert outcome.result == "ok" and outcome.articles_ok == 2 and outcome.articles_failed == 3, outcome
    posts = {p.title: p for p in store.posts()}
    assert "光大证券" in posts["本机文章"].content and "光大证券" in posts["零地址文章"].content  # loopback both
    for title in ("元数据", "内网", "跳转"):
        assert posts[title].content == f"摘要：{title}"  # the feed's text stays
    assert len(server.hits("/news/hop.html")) == 1  # refused at the redirect's target
    assert "is a link-local address: not fetched" in store.source_state("s").article_error


def test_a_named_feed_unlocks_nothing(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """localhost resolves to 127.0.0.1, but a name's DNS belongs to the feed's site: no loopback."""
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/news/ok.html", article("本机文章"), content_type="text/html; charset=utf-8")
    server.add("/feed.xml", local_feed(server, [("ok", "本机文章"), ("zero", "零地址文章")], {
        "ok": server.url("/news/ok.html"), "zero": f"http://0.0.0.0:{port}/news/ok.html"}))
    config = make_config([{"name": "s", "url": f"http://localhost:{port}/feed.xml", "full_text": True}])
    store = open_store(config)
    report = fetch_sources(config, store)
    assert report.outcomes[0].result == "ok" and report.outcomes[0].articles_failed == 2
    assert not server.hits("/news/ok.html")
    assert all(p.content.startswith("摘要：") for p in store.posts())


def test_full_text_any_address_allows_them(server: FeedServer, make_config: Any, open_store: Any) -> None:
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/news/ok.html", article("本机文章"), content_type="text/html; charset=utf-8")
    server.add("/feed.xml", teaser_feed(server, [("ok", "本机文章")]))
    config = make_config([{"name": "s", "url": f"http://localhost:{port}/feed.xml", "full_text": True,
                           "full_text_any_address": True}])
    store = open_store(config)
    assert fetch_sources(config, store).outcomes[0].articles_ok == 1
    assert "光大证券" in store.posts()[0].content and len(server.hits("/news/ok.html")) == 1


def test_refusal_is_one_clear_line_from_the_cli(server: FeedServer, tmp_path: Path) -> None:
    feed = teaser_feed(server, [("meta", "元数据")]).replace(
        server.url("/news/meta.html"), "http://169.254.169.254/latest/meta-data/")
    server.add("/feed.xml", feed)
    write_config(tmp_path, [{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    done = run_cli("fetch", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # an article failure is not a failed source
    expected = "169.254.169.254 is a link-local address: not fetched (full_text_any_address: true allows it)"
    assert f"articles: s: 1 failed, last: http://169.254.169.254/latest/meta-data/: {expected}\n" in done.stderr
    listed = json.loads(run_cli("sources", "list", "--format", "json", cwd=tmp_path).stdout)
    assert listed[0]["article_error"].endswith(expected)
    bad = write_config(tmp_path, [{"name": "s", "url": server.url("/feed.xml"), "full_text_any_address": "maybe"}])
    check = run_cli("check", "--config", str(bad), cwd=tmp_path)
    assert check.returncode != 0 and "full_text_any_address" in check.stderr


def test_a_connection_kept_alive_for_a_feed_is_checked_before_an_article_uses_it(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """Source `intranet` (a feed at 127.0.0.1, chosen by the operator) leaves a kept-alive connection
    to 127.0.0.1 in the pool; source `other`, a named feed, links to an article on 127.0.0.1: reusing
    that connection must not skip the check."""
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/intranet.xml", teaser_feed(server, [("i1", "内网")]))
    server.add("/news/x.html", article("借用连接"), content_type="text/html; charset=utf-8")
    server.add("/other.xml", teaser_feed(server, [("x", "借用连接")]))
    config = make_config([
        {"name": "intranet", "url": server.url("/intranet.xml")},
        {"name": "other", "url": f"http://localhost:{port}/other.xml", "full_text": True},
    ])
    store = open_store(config)
    report = fetch_sources(config, store, workers=1)
    assert [o.result for o in report.outcomes] == ["ok", "ok"]
    assert report.outcomes[1].articles_failed == 1 and not server.hits("/news/x.html")
    assert "127.0.0.1 is a loopback address: not fetched" in store.source_state("other").article_error
