"""Article fetches reach public addresses and their feed's own kind only (real HTTP on 127.0.0.1).

Every server here is on loopback, so the feeds are loopback feeds and their loopback articles are
allowed; what must be refused is an article on another kind of address: 0.0.0.0 (which Linux
connects to this very machine, the way a browser's "0.0.0.0 day" worked), a link-local metadata
address, a private one, directly or at the end of a redirect.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from aggregator.addresses import address_kind, host_kinds
from aggregator.pipeline import fetch_sources

from .conftest import run_cli, write_config
from .feedserver import FeedServer
from .test_richer_sources import article, teaser_feed


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"), ("127.9.9.9", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1%eth0", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("::ffff:192.168.1.1", "private"),
    ("0.0.0.0", "reserved"), ("::", "reserved"), ("100.64.0.1", "reserved"), ("224.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"), ("192.0.2.1", "private"),
    ("8.8.8.8", "public"), ("2001:4860:4860::8888", "public"), ("::ffff:8.8.8.8", "public"),
])
def test_address_kinds(address: str, kind: str) -> None:
    assert address_kind(address) == kind


def test_host_kinds_of_names_and_literals() -> None:
    assert host_kinds("127.0.0.1") == {"loopback"}
    assert host_kinds("localhost") <= {"loopback"} and host_kinds("localhost")
    assert host_kinds("[::1]") == {"loopback"}
    assert host_kinds("no-such-host.invalid") == frozenset()  # unresolved: public addresses only


def test_articles_on_another_kind_of_address_are_refused_before_connecting(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/news/ok.html", article("本机文章"), content_type="text/html; charset=utf-8")
    server.add("/news/zero.html", article("零地址文章"), content_type="text/html; charset=utf-8")
    server.redirect("/news/hop.html", f"http://0.0.0.0:{port}/news/zero.html", status=302)
    feed = teaser_feed(server, [("ok", "本机文章"), ("zero", "零地址文章"), ("meta", "元数据"), ("hop", "跳转")])
    feed = (feed.replace(server.url("/news/zero.html"), f"http://0.0.0.0:{port}/news/zero.html")
                .replace(server.url("/news/meta.html"), "http://169.254.169.254/latest/meta-data/"))
    server.add("/feed.xml", feed)
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    store = open_store(config)

    started = time.monotonic()
    report = fetch_sources(config, store)
    assert time.monotonic() - started < 10  # no connection attempted to 169.254.169.254 (it would time out)
    (outcome,) = report.outcomes
    assert outcome.result == "ok" and outcome.articles_ok == 1 and outcome.articles_failed == 3, outcome
    posts = {p.title: p for p in store.posts()}
    assert "光大证券" in posts["本机文章"].content  # loopback feed, loopback article: fetched
    for title in ("零地址文章", "元数据", "跳转"):
        assert posts[title].content == f"摘要：{title}"  # the feed's text stays
    assert not server.hits("/news/zero.html")  # neither directly nor after the redirect
    assert len(server.hits("/news/hop.html")) == 1
    assert store.source_state("s").article_error  # recorded on the source


def test_full_text_any_address_allows_them(server: FeedServer, make_config: Any, open_store: Any) -> None:
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/news/zero.html", article("零地址文章"), content_type="text/html; charset=utf-8")
    feed = teaser_feed(server, [("zero", "零地址文章")]).replace(
        server.url("/news/zero.html"), f"http://0.0.0.0:{port}/news/zero.html")
    server.add("/feed.xml", feed)
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True,
                           "full_text_any_address": True}])
    store = open_store(config)
    assert fetch_sources(config, store).outcomes[0].articles_ok == 1
    assert "光大证券" in store.posts()[0].content and len(server.hits("/news/zero.html")) == 1


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
    """Source `intranet` (a loopback feed the operator chose) leaves a kept-alive connection to
    127.0.0.1 in the pool; source `other`, whose feed is on 0.0.0.0 (another kind), links to an
    article on 127.0.0.1: reusing that connection must not skip the check."""
    port = server.url("").split(":")[2].split("/")[0]
    server.add("/intranet.xml", teaser_feed(server, [("i1", "内网")]))
    server.add("/news/x.html", article("借用连接"), content_type="text/html; charset=utf-8")
    feed = teaser_feed(server, [("x", "借用连接")])
    server.add("/other.xml", feed)
    config = make_config([
        {"name": "intranet", "url": server.url("/intranet.xml")},
        {"name": "other", "url": f"http://0.0.0.0:{port}/other.xml", "full_text": True},
    ])
    store = open_store(config)
    report = fetch_sources(config, store, workers=1)
    assert [o.result for o in report.outcomes] == ["ok", "ok"]
    assert report.outcomes[1].articles_failed == 1 and not server.hits("/news/x.html")
    assert "127.0.0.1 is a loopback address: not fetched" in store.source_state("other").article_error
