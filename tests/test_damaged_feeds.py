"""Feeds damaged on the way or by their generator: what is stored must never be worse than before.

A download cut short, an empty <item>, a GBK declaration over UTF-8 bytes: each is real, and
each used to replace stored posts with less (or add a junk one) without a word.
"""

from __future__ import annotations

from typing import Any

from aggregator.pipeline import fetch_sources

from .feedserver import FeedServer

HEAD = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>C</title>'
        "<link>http://example.org/</link><description>d</description>")
LONG = ("<item><title>Long</title><link>http://example.org/long</link><guid>long</guid>"
        "<pubDate>Mon, 28 Mar 2022 20:00:00 +0800</pubDate><description>short summary</description>"
        "<content:encoded><![CDATA[<p>Para one.</p><p>Para two.</p>]]></content:encoded></item>")
OTHER = ("<item><title>Other</title><link>http://example.org/other</link><guid>other</guid>"
         "<pubDate>Sun, 27 Mar 2022 20:00:00 +0800</pubDate><description>other</description></item>")


def test_a_feed_cut_short_keeps_what_is_stored(server: FeedServer, make_config: Any, open_store: Any) -> None:
    url = server.add("/f.xml", HEAD + LONG + OTHER + "</channel></rss>")
    config = make_config([{"name": "s", "url": url}])
    store = open_store(config)
    fetch_sources(config, store)
    # cut inside the first entry's content: what was read of it would replace the article by the summary
    server.add("/f.xml", HEAD + LONG.split("Para two")[0])
    report = fetch_sources(config, store)
    assert report.outcomes[0].result == "error" and "ends inside an entry" in report.outcomes[0].error
    # cut inside a new entry's title, after a complete one: the complete one is read, no "(untitled)" post
    server.add("/f.xml", HEAD + LONG + "<item><title>Next")
    report = fetch_sources(config, store)
    assert report.outcomes[0].result == "ok" and "ends inside an entry" in report.outcomes[0].warning
    assert (report.new, report.updated) == (0, 0)
    posts = {p.guid: p for p in store.posts()}
    assert set(posts) == {"long", "other"}
    assert posts["long"].content == "<p>Para one.</p><p>Para two.</p>" and posts["long"].updated is None
    # only the closing tags missing (a generator's bug): the last entry is whole and is read
    server.add("/f.xml", HEAD + LONG + OTHER.replace("other", "third"))
    report = fetch_sources(config, store)
    assert report.new == 1 and {p.guid for p in store.posts()} == {"long", "other", "third"}


def test_empty_items_are_skipped_with_a_warning(server: FeedServer, make_config: Any, open_store: Any) -> None:
    config = make_config([{"name": "s", "url": server.add("/f.xml", HEAD + "<item></item>" + OTHER + "</channel></rss>")}])
    store = open_store(config)
    report = fetch_sources(config, store)
    assert report.new == 1 and [p.title for p in store.posts()] == ["Other"]
    assert "1 entries skipped, e.g. an entry: no title, link, id or text" in report.outcomes[0].warning


def test_a_gbk_declaration_over_utf8_bytes_reads_utf8(server: FeedServer, make_config: Any, open_store: Any) -> None:
    body = ('<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>C</title>'
            "<item><title>央行宣布降准 利好券商</title><link>http://example.org/1</link>"
            "<description>中国人民银行决定下调存款准备金率。</description></item></channel></rss>").encode()
    declared = server.add("/decl.xml", body, content_type="application/xml")  # no charset: the declaration
    header = server.add("/header.xml", body.replace(b'encoding="gb2312"', b""), content_type="text/xml; charset=gbk")
    config = make_config([{"name": "d", "url": declared}, {"name": "h", "url": header}])
    store = open_store(config)
    report = fetch_sources(config, store)
    for outcome in report.outcomes:
        assert outcome.result == "ok" and "the bytes are UTF-8: read as UTF-8" in outcome.warning, outcome
    for post in store.posts():
        assert post.title == "央行宣布降准 利好券商" and post.summary == "中国人民银行决定下调存款准备金率。"


def test_bytes_not_valid_gbk_are_replaced_and_said(server: FeedServer, make_config: Any, open_store: Any) -> None:
    body = ('<?xml version="1.0" encoding="gbk"?><rss version="2.0"><channel><title>C</title>'
            "<item><title>朱镕基谈改革</title><link>http://example.org/1</link></item></channel></rss>").encode("gbk")
    body = body.replace("改革".encode("gbk"), "改革".encode("gbk") + b"\xff")  # one stray byte
    config = make_config([{"name": "g", "url": server.add("/g.xml", body, content_type="application/xml")}])
    store = open_store(config)
    report = fetch_sources(config, store)
    assert report.outcomes[0].result == "ok" and "not valid as gb18030" in report.outcomes[0].warning
    assert store.posts()[0].title.startswith("朱镕基谈改革")


def test_cdata_escaped_once_too_often_keeps_its_title_and_text(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """`&lt;![CDATA[标题]]&gt;` (a generator escaping its CDATA section) reaches the HTML as a CDATA
    section, which HTML parsers drop as a comment: the title became the body's first words and the
    body was empty. What the section holds is kept (and sanitised like any other HTML)."""
    entry = ("<item><title>&lt;![CDATA[央行宣布降准 &amp;amp; 利率]]&gt;</title><guid>g1</guid>"
             "<link>http://example.org/1</link><description>&lt;![CDATA[&lt;p&gt;正文第一段。&lt;/p&gt;"
             "&lt;script&gt;alert(1)&lt;/script&gt;]]&gt;</description></item>")
    config = make_config([{"name": "s", "url": server.add("/f.xml", HEAD + entry + "</channel></rss>")}])
    store = open_store(config)
    fetch_sources(config, store)
    (post,) = store.posts()
    assert post.title == "央行宣布降准 & 利率"
    assert post.summary == "<p>正文第一段。</p>"
