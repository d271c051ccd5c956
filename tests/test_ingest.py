"""The ingest spine end to end in-process: real HTTP, parse, normalise, SQLite."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import pytest

from aggregator.fetch import make_session
from aggregator.pipeline import INLINE, fetch_sources, record, retrieve
from aggregator.publish import build_site, publish_changed
from aggregator.slugs import slugify
from aggregator.store import SourceState, Store, to_db_time
from aggregator.store.articles import PENDING_QUERIES
from aggregator.workers import CpuPool

from .conftest import fixture
from .feedserver import FeedServer

SHANGHAI = ZoneInfo("Asia/Shanghai")


def rss(items: str, title: str = "Test feed", encoding: str = "utf-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://site.example.com/</link><description>d</description>{items}</channel></rss>"
    )


def item(guid: str = "", title: str = "T", link: str = "", date: str = "", body: str = "", extra: str = "") -> str:
    parts = [f"<title>{title}</title>"]
    if guid:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if link:
        parts.append(f"<link>{link}</link>")
    if date:
        parts.append(f"<pubDate>{date}</pubDate>")
    if body:
        parts.append(f"<description><![CDATA[{body}]]></description>")
    return "<item>" + "".join(parts) + extra + "</item>"


def fetch(config: Any, store: Any, **kwargs: Any) -> Any:
    return fetch_sources(config, store, **kwargs)


def atom_document(entries: str, feed_attributes: str = "") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{feed_attributes}>'
            f"<title>t</title><id>urn:t</id><updated>2022-03-29T00:00:00Z</updated>{entries}</feed>")


def atom_entry(n: int, inner: str) -> str:
    """Entry urn:t:N (a link, updated 2022-03-28 1N:00Z) with `inner` (its title, author...)."""
    return (f'<entry><id>urn:t:{n}</id>{inner}<link href="http://x.example.com/{n}"/>'
            f"<updated>2022-03-28T1{n}:00:00Z</updated></entry>")


def atom_posts(server: FeedServer, make_config: Any, open_store: Any, entries: str, feed_attributes: str = "") -> Any:
    """Serve an Atom feed of `entries`, fetch it as one source, and return its posts by guid."""
    document = atom_document(entries, feed_attributes)
    config = make_config([{"name": "a", "url": server.add("/atom.xml", document, content_type="application/atom+xml")}])
    store = open_store(config)
    fetch(config, store)
    return {p.guid: p for p in store.posts()}


def test_rss20_chinese_feed_maps_onto_post_schema(server: FeedServer, make_config: Any, open_store: Any) -> None:
    url = server.add("/mrjj.xml", fixture("rss20.xml"))
    config = make_config(
        [{"name": "每日经济新闻", "url": url, "tags": ["每日经济新闻新闻"], "exclude": ["广告"]}],
        rules=[{"match": "券商", "categories": ["券商"], "tags": ["券商"]}],
    )
    store = open_store(config)
    report = fetch(config, store)
    assert report.count("ok") == 1 and report.new == 2
    posts = store.posts()
    assert [p.title for p in posts] == [
        "上海券商抗疫进行时：各大券商快速出台应急方案 金融科技又立功了 关怀驻守员工身心健康！",
        "央行：保持流动性合理充裕",
    ]
    first = posts[0]
    assert first.date.astimezone(SHANGHAI).isoformat() == "2022-03-28T22:51:22+08:00"
    assert first.guid == "NW202203282325465316"
    assert first.link == "http://finews.example.com/html_News/NewsShare.html?infoCode=NW202203282325465316"
    assert first.categories == ["meirijingjixinwen", "quanshang"]
    assert first.tags == ["每日经济新闻新闻", "证券", "券商"]
    assert first.author == "每经记者"
    assert first.enclosures[0].url == "http://finews.example.com/audio/1.mp3"
    assert first.enclosures[0].length == 12345
    # sanitised, relative URLs resolved against the entry's link
    assert "<script" not in first.content and "alert" not in first.content and "onclick" not in first.content
    assert "javascript:" not in first.content
    assert 'src="http://finews.example.com/img/chart.png"' in first.content
    assert 'href="http://finews.example.com/html_News/other.html"' in first.content
    assert "<strong>上海各大券商保障封控期间服务不间断 </strong>" in first.content
    assert first.summary == "<p>从3月28日起，上海以黄浦江为界分别在浦东和浦西开展区域封控。</p>"
    assert store.category_names() == {"meirijingjixinwen": "每日经济新闻", "quanshang": "券商"}


def test_rss091_rss10_and_atom(server: FeedServer, make_config: Any, open_store: Any) -> None:
    sources = [
        {"name": "old", "url": server.add("/091.xml", fixture("rss091.xml"))},
        {"name": "rdf", "url": server.add("/10.xml", fixture("rss10.xml"))},
        {"name": "atom", "url": server.add("/atom.xml", fixture("atom10.xml"), content_type="application/atom+xml")},
    ]
    config = make_config(sources)
    store = open_store(config)
    report = fetch(config, store)
    assert report.count("ok") == 3, [o.error for o in report.outcomes]
    assert sorted(p.title for p in store.posts(source="old")) == ["First & oldest story", "Second story"]
    (rdf,) = store.posts(source="rdf")
    assert rdf.date == datetime(2024, 5, 1, 6, 30, tzinfo=UTC) and rdf.tags == ["markets"]
    (atom,) = store.posts(source="atom")
    assert atom.title == "Bold title with & markup"  # markup stripped from titles
    assert atom.link == "http://atom.example.com/blog/posts/1.html"
    assert atom.guid == "tag:atom.example.com,2024:1"
    assert atom.author == "Ann Author"
    assert atom.tags == ["economy"]  # de-duplicated case-insensitively, first spelling kept
    assert atom.updated == datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    # relative to the content's xml:base (http://atom.example.com/blog/), not to the entry's link
    assert 'href="http://atom.example.com/about.html"' in atom.content
    assert atom.summary == "Short summary."


def test_gbk_feed_declared_gb2312_decodes_without_mojibake(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    text = rss(
        item(
            "g1",
            "朱镕基谈改革：券商与银行",
            "http://g.example.com/1",
            "Mon, 28 Mar 2022 10:00:00 +0800",
            "<p>镕字只有 GBK 才有</p>",
        ),
        encoding="gb2312",
    )
    body = text.encode("gbk")
    with_header = server.add("/gbk-header.xml", body, content_type="application/xml; charset=gb2312")
    decl_only = server.add("/gbk-decl.xml", body.replace(b"g.example", b"h.example"), content_type="text/xml")
    config = make_config([{"name": "h", "url": with_header}, {"name": "d", "url": decl_only}])
    store = open_store(config)
    assert fetch(config, store).count("ok") == 2
    for name in ("h", "d"):
        (post,) = store.posts(source=name)
        assert post.title == "朱镕基谈改革：券商与银行"
        assert "镕字只有 GBK 才有" in post.content


def test_source_encoding_overrides_a_wrong_declaration(server: FeedServer, make_config: Any, open_store: Any) -> None:
    body = rss(item("b1", "大五碼標題", "http://b.example.com/1")).encode("big5")
    url = server.add("/big5.xml", body, content_type="application/xml; charset=utf-8")
    config = make_config([{"name": "b", "url": url, "encoding": "big5"}])
    store = open_store(config)
    fetch(config, store)
    assert store.posts()[0].title == "大五碼標題"


def test_dates_naive_missing_and_future(server: FeedServer, make_config: Any, open_store: Any) -> None:
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    items = "".join(
        [
            item("naive", "naive", "http://d.example.com/1", "2022-03-28 22:51:22"),
            item("nodate", "no date", "http://d.example.com/2"),
            item("future", "future", "http://d.example.com/3", future),
            item("garbage", "garbage", "http://d.example.com/4", "not a date at all"),
        ]
    )
    config = make_config(
        [
            {"name": "cn", "url": server.add("/cn.xml", rss(items))},
            {
                "name": "uk",
                "url": server.add("/uk.xml", rss(items.replace("d.example", "e.example"))),
                "timezone": "Europe/London",
            },
        ]
    )
    store = open_store(config)
    before = datetime.now(UTC).replace(microsecond=0)
    fetch(config, store)
    after = datetime.now(UTC) + timedelta(seconds=1)
    posts = {(p.source, p.guid): p for p in store.posts(limit=None)}
    assert posts["cn", "naive"].date.astimezone(SHANGHAI).isoformat() == "2022-03-28T22:51:22+08:00"
    assert posts["uk", "naive"].date == datetime(2022, 3, 28, 21, 51, 22, tzinfo=UTC)  # London was on BST
    for guid in ("nodate", "future", "garbage"):  # the fetch time, less a second per entry above
        assert before - timedelta(seconds=3) <= posts["cn", guid].date <= after, guid
    assert posts["cn", "nodate"].date > posts["cn", "future"].date > posts["cn", "garbage"].date


# the dates Chinese feeds write that feedparser alone misread (1 December 2022) or did not read
# (the fetch time); each is 20:00 on 28 March 2022 in Shanghai, with or without a zone
CHINESE_AND_ZONELESS_DATES = {
    "cjk": "2022年03月28日 20:00",
    "cjk-seconds": "2022年3月28日 20:00:00",
    "cjk-hanzi-time": "2022年03月28日 20时00分",
    "slash": "2022/03/28 20:00:00",
    "slash-short": "2022/3/28 20:00",
    "dot": "2022.03.28 20:00",
    "slash-zone": "2022/03/28 12:00:00 +0000",
    "rfc822-no-zone": "Mon, 28 Mar 2022 20:00:00",
    "rfc822-no-seconds": "Mon, 28 Mar 2022 20:00",
    "rfc822-gmt+8": "Mon, 28 Mar 2022 20:00:00 GMT+8",
    "rfc822-utc+08:00": "Mon, 28 Mar 2022 20:00:00 UTC+08:00",
    "rfc822-gmt": "Mon, 28 Mar 2022 12:00:00 GMT",  # already read right: still is
    "iso-naive": "2022-03-28 20:00:00",
    "cst": "Mon, 28 Mar 2022 20:00:00 CST",  # China Standard Time in a +08:00 zone, not US Central
    # what programs print (feedparser lost the time, or applied a short offset twice)
    "go": "2022-03-28 20:00:00 +0800 CST",
    "postgres": "2022-03-28 20:00:00+08",
    "iso-short-offset": "2022-03-28T20:00:00+08",
    "ruby-utc": "2022-03-28 12:00:00 UTC",
    "iso-cst": "2022-03-28 20:00:00 CST",
    "iso-fraction": "2022-03-28T12:00:00.250Z",
    "cjk-weekday": "2022年03月28日 20:00 星期一",
    "cjk-weekday-between": "2022年03月28日（周一） 20:00",
}


def test_chinese_and_zoneless_date_forms(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = "".join(item(guid, guid, f"http://d.example.com/{guid}", date)
                    for guid, date in CHINESE_AND_ZONELESS_DATES.items())
    config = make_config([{"name": "cn", "url": server.add("/dates.xml", rss(items))}])
    store = open_store(config)
    fetch(config, store)
    dates = {p.guid: p.date.astimezone(SHANGHAI).isoformat() for p in store.posts(limit=None)}
    assert dates == {guid: "2022-03-28T20:00:00+08:00" for guid in CHINESE_AND_ZONELESS_DATES}
    day_only = rss(item("day", "day", "http://d.example.com/day", "2022年3月28日"))
    config = make_config([{"name": "day", "url": server.add("/day.xml", day_only)}])
    fetch(config, store)
    (day,) = [p for p in store.posts(limit=None) if p.source == "day"]
    assert day.date.astimezone(SHANGHAI).isoformat() == "2022-03-28T00:00:00+08:00"
    # a date that cannot be is no date (the fetch time), not 2 March or 1 December
    impossible = rss(item("feb30", "feb30", "http://d.example.com/feb30", "2022/02/30 10:00"))
    config = make_config([{"name": "feb", "url": server.add("/feb.xml", impossible)}])
    before = datetime.now(UTC) - timedelta(seconds=1)
    fetch(config, store)
    (feb30,) = [p for p in store.posts(limit=None) if p.source == "feb"]
    assert feb30.date >= before
    central = rss(item("us", "us", "http://d.example.com/us", "Mon, 28 Mar 2022 20:00:00 CST"))
    config = make_config([{"name": "us", "url": server.add("/us.xml", central), "timezone": "America/Chicago"}])
    fetch(config, store)
    (us,) = [p for p in store.posts(limit=None) if p.source == "us"]
    assert us.date == datetime(2022, 3, 29, 2, 0, tzinfo=UTC)  # elsewhere CST is US Central, -06:00


# zones feedparser reads itself, which must not be taken for wall-clock times in the source's zone
# (Shanghai here) nor thrown away: 20:00 in each, as a UTC instant
ZONED_DATES = {
    "est-lower": ("Mon, 28 Mar 2022 20:00:00 est", datetime(2022, 3, 29, 1, tzinfo=UTC)),
    "ast": ("Mon, 28 Mar 2022 20:00:00 AST", datetime(2022, 3, 29, 0, tzinfo=UTC)),
    "comment": ("Mon, 28 Mar 2022 20:00:00 -0700 (PDT)", datetime(2022, 3, 29, 3, tzinfo=UTC)),
    "cst-comment": ("Mon, 28 Mar 2022 20:00:00 +0800 (CST)", datetime(2022, 3, 28, 12, tzinfo=UTC)),
    "offset-cst": ("Mon, 28 Mar 2022 20:00:00 +0800 CST", datetime(2022, 3, 28, 12, tzinfo=UTC)),
    "mest": ("Mon, 28 Mar 2022 20:00:00 MEST", datetime(2022, 3, 28, 18, tzinfo=UTC)),
    "gmt": ("Mon, 28 Mar 2022 20:00:00 GMT", datetime(2022, 3, 28, 20, tzinfo=UTC)),
}


def test_dates_with_zones_keep_their_zone(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = "".join(item(guid, guid, f"http://z.example.com/{guid}", raw) for guid, (raw, _) in ZONED_DATES.items())
    config = make_config([{"name": "z", "url": server.add("/zoned.xml", rss(items))}])
    store = open_store(config)
    fetch(config, store)
    assert {p.guid: p.date for p in store.posts(limit=None)} == {g: when for g, (_, when) in ZONED_DATES.items()}


def test_missing_date_keeps_first_seen_time_across_updates(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    url = server.add("/f.xml", rss(item("a", "first", "http://x.example.com/a")))
    config = make_config([{"name": "s", "url": url}])
    store = open_store(config)
    fetch(config, store)
    seen = store.posts()[0].date
    server.add("/f.xml", rss(item("a", "edited", "http://x.example.com/a")))
    report = fetch(config, store)
    assert report.updated == 1
    assert store.posts()[0].title == "edited" and store.posts()[0].date == seen


def test_dates_that_move_do_not_move_the_post(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """A date from the future is clamped to the fetch time: refetched unchanged, the post must not
    count as updated (nor jump to the top) at every poll. An Atom entry with only <updated>, when
    edited, keeps the date it was first stored with (its Jekyll file keeps its name)."""
    future = item("f", "future", "http://x.example.com/f", "Wed, 01 Jan 2098 00:00:00 +0000")
    url = server.add("/future.xml", rss(future))

    def atom(updated: str, text: str) -> str:
        return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>a</title>'
                '<id>urn:a</id><updated>2022-03-29T00:00:00Z</updated><entry><id>urn:a:1</id><title>t</title>'
                f'<link href="http://x.example.com/1"/><updated>{updated}</updated><content>{text}</content>'
                "</entry></feed>")

    atom_url = server.add("/atom.xml", atom("2022-03-28T12:00:00Z", "first"), content_type="application/atom+xml")
    config = make_config([{"name": "s", "url": url}, {"name": "a", "url": atom_url}])
    store = open_store(config)
    fetch(config, store)
    dates = {p.source: p.date for p in store.posts()}
    assert dates["a"] == datetime(2022, 3, 28, 12, tzinfo=UTC)
    server.add("/future.xml", rss(future) + " ")  # the same entry, a new body: no 304
    server.add("/atom.xml", atom("2022-03-29T08:00:00Z", "edited"), content_type="application/atom+xml")
    report = fetch(config, store)
    assert (report.new, report.updated) == (0, 1)  # only the Atom entry, which was edited
    posts = {p.source: p for p in store.posts()}
    assert {source: p.date for source, p in posts.items()} == dates
    assert posts["a"].content == "edited" and posts["a"].updated == datetime(2022, 3, 29, 8, tzinfo=UTC)


def test_plain_text_titles_keep_every_character(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """An Atom title of type="text" is text: `<raise>` and `&amp;` are meant literally. Atom HTML
    titles and RSS titles (which say nothing and often carry escaped HTML) lose their tags."""
    atom = atom_document(
        atom_entry(1, "<title type=\"text\">\"Fed\" &amp; 'ECB' &lt;raise&gt; rates &amp;amp; more</title>")
        + atom_entry(2, '<title type="html">&lt;b&gt;Bold&lt;/b&gt; &amp;amp; html</title>'))
    items = item("r", "&lt;script&gt;x&lt;/script&gt;RSS &lt;b&gt;bold&lt;/b&gt; AT&amp;amp;T", "http://x.example.com/r")
    config = make_config([{"name": "a", "url": server.add("/t.xml", atom, content_type="application/atom+xml")},
                          {"name": "r", "url": server.add("/r.xml", rss(items))}])
    store = open_store(config)
    fetch(config, store)
    assert {p.guid: p.title for p in store.posts()} == {
        "urn:t:1": "\"Fed\" & 'ECB' <raise> rates &amp; more", "urn:t:2": "Bold & html", "r": "RSS bold AT&T"}


def test_rss_titles_keep_angle_brackets_that_are_not_html(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """RSS titles are read as HTML, but `&lt;int&gt;` there is code, not a tag: the sanitiser took it
    for an unknown element and dropped the rest of the title ("C++ std::vector")."""
    titles = ["C++ std::vector&lt;int&gt; tips", "Map&lt;String, Integer&gt; in Java", "Use &lt;template&gt; in Vue",
              "x&lt;y and y&gt;z", "&lt;em&gt;Breaking&lt;/em&gt;: &lt;my-card&gt;cards&lt;/my-card&gt;",
              # MathML and SVG children (<mi>, <path>) are markup too: dropped as they always were
              "Spin waves in &lt;math display=\"inline\"&gt;&lt;mrow&gt;&lt;msub&gt;&lt;mi&gt;CrI&lt;/mi&gt;"
              "&lt;/msub&gt;&lt;/mrow&gt;&lt;/math&gt; monolayers",
              "Icon &lt;SVG&gt;&lt;path d=\"M0 0\"/&gt;&lt;/SVG&gt; title"]
    items = "".join(item(f"g{n}", title, f"http://x.example.com/{n}") for n, title in enumerate(titles))
    config = make_config([{"name": "r", "url": server.add("/r.xml", rss(items))}])
    store = open_store(config)
    fetch(config, store)
    assert sorted(p.title for p in store.posts()) == sorted([
        "C++ std::vector<int> tips", "Map<String, Integer> in Java", "Use <template> in Vue", "x<y and y>z",
        "Breaking: cards", "Spin waves in monolayers", "Icon title"])
    build_site(config, store)
    channel = feedparser.parse((config.site.output_dir / "feed.xml").read_bytes())
    assert "C++ std::vector<int> tips" in {e.title for e in channel.entries}


def test_authors_are_their_names_kept_whole(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """An Atom <name> is text ("<Smith>" is part of it); feedparser's `author` glues the e-mail to the
    name, which then showed in every output as "Alice (a@example.com)"."""
    atom = atom_document(
        atom_entry(1, '<title>t1</title><author><name>Alice "A" &lt;Smith&gt;</name><email>a@example.com</email></author>')
        + atom_entry(2, "<title>t2</title><author><name>Bob &lt;b@x.com&gt; &amp;amp; co</name></author>"))
    items = (item("r1", "r1", "http://x.example.com/r1", extra="<author>a@example.com (Alice)</author>")
             + item("r2", "r2", "http://x.example.com/r2", extra="<author>&lt;b&gt;Carol&lt;/b&gt;</author>"))
    config = make_config([{"name": "a", "url": server.add("/a.xml", atom, content_type="application/atom+xml")},
                          {"name": "r", "url": server.add("/r.xml", rss(items))}])
    store = open_store(config)
    fetch(config, store)
    assert {p.guid: p.author for p in store.posts()} == {
        "urn:t:1": 'Alice "A" <Smith>', "urn:t:2": "Bob <b@x.com> &amp; co", "r1": "Alice", "r2": "Carol"}


def test_plain_text_summaries_and_content_keep_every_character(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """An Atom summary or content is text unless it says otherwise: "&lt;stdio.h&gt;" is the text
    <stdio.h>, which read as HTML would be dropped with all that follows it."""
    posts = atom_posts(server, make_config, open_store, (
            '<entry><id>urn:t:1</id><title>C tips</title><link href="http://x.example.com/1"/>'
            "<updated>2022-03-28T10:00:00Z</updated>"
            "<summary>Always #include &lt;stdio.h&gt; first. Compare a&lt;b with x &lt;y.</summary></entry>"
            '<entry><id>urn:t:2</id><title>Two</title><link href="http://x.example.com/2"/>'
            "<updated>2022-03-28T11:00:00Z</updated><summary>short &amp; plain</summary>"
            '<content type="text">plain &lt;text&gt; stays\n\nsecond paragraph</content></entry>'
            '<entry><id>urn:t:3</id><title>Three</title><link href="http://x.example.com/3"/>'
            '<updated>2022-03-28T12:00:00Z</updated><content type="html">&lt;p&gt;x &lt;b&gt;bold&lt;/b&gt;'
            "&lt;script&gt;bad()&lt;/script&gt;&lt;/p&gt;</content></entry>"
            '<entry><id>urn:t:4</id><title>Four</title><link href="http://x.example.com/4"/>'
            "<updated>2022-03-28T13:00:00Z</updated><content>only content: a&lt;b and more</content></entry>"))
    assert posts["urn:t:1"].content == "Always #include &lt;stdio.h&gt; first. Compare a&lt;b with x &lt;y."
    assert posts["urn:t:2"].content == "plain &lt;text&gt; stays\n\nsecond paragraph"
    assert posts["urn:t:2"].summary == "short &amp; plain"
    assert posts["urn:t:3"].content == "<p>x <b>bold</b></p>"  # HTML, as it said: sanitised
    # no summary: feedparser copies the content into it, which is text too
    assert posts["urn:t:4"].summary == posts["urn:t:4"].content == "only content: a&lt;b and more"


def test_content_only_atom_entries_resolve_the_summary_against_the_content_base(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """Without a summary the summary is the content (feedparser copies it), so its relative links
    resolve against the content's xml:base, not against the entry's link: else the summary of every
    output points at images that do not exist."""
    posts = atom_posts(server, make_config, open_store, (
            '<entry><title>P</title><id>urn:xb:1</id><link href="2026/12/post.html"/>'
            '<updated>2026-12-02T00:00:00Z</updated>'
            '<content type="html">&lt;p&gt;&lt;img src="images/a.png"&gt;&lt;/p&gt;</content></entry>'
            '<entry><title>Q</title><id>urn:xb:2</id><link href="http://x.example.org/a/b.html"/>'
            '<updated>2026-12-02T00:00:00Z</updated><content type="html" xml:base="http://y.example.org/z/">'
            '&lt;a href="q.html"&gt;q&lt;/a&gt;</content></entry>'), ' xml:base="http://blog.example.org/"')
    assert 'src="http://blog.example.org/images/a.png"' in posts["urn:xb:1"].content
    assert 'src="http://blog.example.org/images/a.png"' in posts["urn:xb:1"].summary
    assert 'href="http://y.example.org/z/q.html"' in posts["urn:xb:2"].content
    assert 'href="http://y.example.org/z/q.html"' in posts["urn:xb:2"].summary


def test_undated_entries_keep_the_feeds_order(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """Entries without a date are dated when first seen: those seen together must still come out
    in the source's order (newest first), and the newest must be the ones a short feed keeps."""
    items = "".join(f"<item><title>第{n}条</title><link>http://u.example.com/{n}</link>"
                    f"<description>d</description></item>" for n in range(1, 6))
    config = make_config([{"name": "U", "url": server.add("/u.xml", rss(items))}], site={"feed_size": 2})
    store = open_store(config)
    fetch(config, store)
    assert [p.title for p in store.posts(source="U")] == ["第1条", "第2条", "第3条", "第4条", "第5条"]
    build_site(config, store)
    parsed = feedparser.parse((config.site.output_dir / "u" / "feed.xml").read_bytes())
    assert [e.title for e in parsed.entries] == ["第1条", "第2条"]


def test_duplicate_guids_in_one_feed_store_one_post(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = item("dup", "one", "http://x.example.com/1") + item("dup", "two", "http://x.example.com/1")
    config = make_config([{"name": "s", "url": server.add("/f.xml", rss(items))}])
    store = open_store(config)
    assert fetch(config, store).new == 1
    assert store.count_posts() == 1


def test_entries_without_guid_or_title(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = (
        "<item><link>http://x.example.com/only-link</link><description>Body text here</description></item>"
        "<item><description>Only a body, no link or title at all</description></item>"
    )
    config = make_config([{"name": "s", "url": server.add("/f.xml", rss(items))}])
    store = open_store(config)
    assert fetch(config, store).new == 2
    titles = sorted(p.title for p in store.posts())
    assert titles == ["Body text here", "Only a body, no link or title at all"]
    assert fetch(config, store).new == 0  # ids are stable: link, else content hash


def test_relative_links_resolve_against_feed(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = item("r1", "rel", "/news/1.html", body='<a href="more.html">more</a><img src="//cdn.example.com/i.png">')
    config = make_config([{"name": "s", "url": server.add("/f.xml", rss(items))}])
    store = open_store(config)
    fetch(config, store)
    post = store.posts()[0]
    assert post.link == "http://site.example.com/news/1.html"
    assert 'href="http://site.example.com/news/more.html"' in post.content
    assert 'src="http://cdn.example.com/i.png"' in post.content
    assert post.guid == "r1"  # a relative-looking guid is never rewritten into a URL


def test_lazy_loaded_images_keep_their_picture(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """WeChat articles and lazy-loading themes put the picture in data-src (src missing or a data:
    placeholder): with no script to move it, and data-* and data: URLs sanitised away, the image
    was lost. A real src is kept as it is."""
    body = ('<p><img data-src="https://mmbiz.qpic.cn/chart.png" class="rich_pages"></p>'
            '<img src="data:image/gif;base64,R0lGOD" data-original="/img/b.jpg" alt="b">'
            '<img src="https://real.example.com/x.png" data-src="https://other.example.com/y.png">')
    config = make_config([{"name": "s", "url": server.add("/f.xml", rss(item("l1", "lazy", "/news/1.html", body=body)))}])
    store = open_store(config)
    fetch(config, store)
    content = store.posts()[0].content
    assert '<img src="https://mmbiz.qpic.cn/chart.png">' in content
    assert '<img src="http://site.example.com/img/b.jpg" alt="b">' in content
    assert '<img src="https://real.example.com/x.png">' in content and "other.example.com" not in content


def test_hostile_html_is_sanitised(server: FeedServer, make_config: Any, open_store: Any) -> None:
    body = (
        '<p>ok</p><script>alert(1)</script><style>p{color:red}</style><iframe src="http://evil/"></iframe>'
        '<a href="javascript:alert(2)">j</a><a href="JaVaScRiPt:alert(3)">k</a><img src="data:image/png;base64,AA">'
        '<img src="x.png" onerror="alert(4)"><a href="vbscript:msgbox(5)">v</a>'
        '<meta http-equiv="refresh" content="0;url=http://evil/"><div style="width: expression(alert(6))">css</div>'
    )
    config = make_config(
        [
            {
                "name": "s",
                "url": server.add("/f.xml", rss(item("h", "<b>x</b> & y", "http://a.example.com/1", body=body))),
            }
        ]
    )
    store = open_store(config)
    fetch(config, store)
    post = store.posts()[0]
    for bad in (
        "<script",
        "alert",
        "<style",
        "<iframe",
        "javascript",
        "data:",
        "onerror",
        "vbscript",
        "<meta",
        "expression",
    ):
        assert bad not in post.content.lower(), bad
        assert bad not in post.summary.lower(), bad
    assert "<p>ok</p>" in post.content
    assert post.title == "x & y"


def test_include_exclude_and_rules(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = "".join(
        [
            item("1", "券商季报出炉", "http://f.example.com/1"),
            item("2", "证券市场广告", "http://f.example.com/2"),
            item("3", "天气晴朗", "http://f.example.com/3", body="与券商无关？提到了券商"),
            item("4", "体育新闻", "http://f.example.com/4", extra="<category>证券</category>"),
        ]
    )
    url = server.add("/f.xml", rss(items))
    config = make_config(
        [
            {"name": "filtered", "url": url, "include": ["券商|证券"], "exclude": ["广告"]},
            {"name": "all", "url": url + "?all", "category": "综合"},
        ],
        rules=[{"match": "券商", "categories": ["券商"], "tags": ["券商"]}, {"match": "^证券$", "tags": ["证券标签"]}],
    )
    server.add("/f.xml?all", rss(items.replace("f.example", "g.example")))
    store = open_store(config)
    fetch(config, store)
    kept = {p.title for p in store.posts(source="filtered")}
    assert kept == {"券商季报出炉", "天气晴朗"}  # include matches title or summary; exclude drops 2; 4 lacks both
    by_title = {p.title: p for p in store.posts(source="all", limit=None)}
    assert by_title["券商季报出炉"].categories == ["zonghe", "quanshang"]
    assert by_title["天气晴朗"].tags == ["券商"]
    assert by_title["体育新闻"].tags == ["证券", "证券标签"]  # rule matched the entry's own tag
    assert len(store.posts(category="quanshang")) == 4


def test_modified_entry_updates_in_place(server: FeedServer, make_config: Any, open_store: Any) -> None:
    date = "Mon, 28 Mar 2022 10:00:00 +0800"
    url = server.add("/f.xml", rss(item("m", "original", "http://m.example.com/1", date, "<p>v1</p>")))
    config = make_config([{"name": "s", "url": url}])
    store = open_store(config)
    assert fetch(config, store).new == 1
    assert fetch(config, store).updated == 0  # unchanged: nothing written
    server.add("/f.xml", rss(item("m", "corrected", "http://m.example.com/1", date, "<p>v2</p>")))
    report = fetch(config, store)
    assert (report.new, report.updated) == (0, 1)
    (post,) = store.posts(limit=None)
    assert post.title == "corrected" and post.content == "<p>v2</p>"
    assert post.updated is not None and post.updated > post.date
    assert store.search("corrected")[0].id == post.id and store.search("original") == []


def test_same_article_through_two_sources_is_stored_once(server: FeedServer, make_config: Any, open_store: Any) -> None:
    a = server.add("/a.xml", rss(item("a-1", "共同报道", "https://same.example.com/story?id=7&utm_source=a#top")))
    b = server.add("/b.xml", rss(item("b-99", "共同报道", "http://same.example.com/story?utm_medium=b&id=7")))
    config = make_config(
        [
            {"name": "A", "url": a, "category": "甲", "tags": ["甲新闻"]},
            {"name": "B", "url": b, "category": "乙", "tags": ["乙新闻"]},
        ]
    )
    store = open_store(config)
    fetch(config, store)
    (post,) = store.posts(limit=None)
    assert sorted(post.categories) == ["jia", "yi"]
    assert sorted(post.tags) == ["乙新闻", "甲新闻"]
    assert store.posts(category="yi")[0].id == post.id


def test_an_edit_from_the_first_source_keeps_what_the_second_added(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """The merged post is A's; A's edit rewrites it while B answers 304: B's category and tag stay."""
    link = "https://same.example.com/story?id=8"
    a = server.add("/a.xml", rss(item("a-1", "共同报道", link, body="<p>初稿</p>")))
    b = server.add("/b.xml", rss(item("b-1", "共同报道", link)), etag='"b1"')
    config = make_config(
        [
            {"name": "A", "url": a, "category": "甲", "tags": ["甲新闻"]},
            {"name": "B", "url": b, "category": "乙", "tags": ["乙新闻"]},
        ]
    )
    store = open_store(config)
    fetch(config, store, sources=config.sources[:1])  # A first: the post is A's
    fetch(config, store, sources=config.sources[1:])
    server.add("/a.xml", rss(item("a-1", "共同报道（更正）", link, body="<p>更正稿</p>")))
    report = fetch(config, store)
    assert (report.updated, report.count("not-modified")) == (1, 1)  # A edited, B a 304
    (post,) = store.posts(limit=None)
    assert post.title == "共同报道（更正）"
    assert (post.categories, post.tags) == (["jia", "yi"], ["甲新闻", "乙新闻"])
    assert [p.id for p in store.posts(category="yi")] == [post.id]
    assert [p.id for p in store.posts(tag=slugify("乙新闻"))] == [post.id]


def test_a_category_renamed_in_the_second_source_moves_and_the_first_sources_edits_keep_it(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """Each source's share of a merged post is its own: B's category renamed in feeds.yaml replaces
    B's old one (not added beside it for ever); A's edits keep B's share; a third source adds its own."""
    link = "https://same.example.com/story?id=9"
    a = server.add("/a.xml", rss(item("a-1", "共同报道", link, body="<p>一</p>")))
    b = server.add("/b.xml", rss(item("b-1", "共同报道", link)))
    c = server.add("/c.xml", rss(item("c-1", "共同报道", link)))
    sources = [{"name": "A", "url": a, "category": "甲"}, {"name": "B", "url": b, "category": "乙", "tags": ["乙新闻"]},
               {"name": "C", "url": c, "category": "甲", "tags": ["丙新闻"]}]
    config = make_config(sources)
    store = open_store(config)
    for source in config.sources:  # in this order: the post is A's
        fetch(config, store, sources=[source])
    (post,) = store.posts(limit=None)
    assert (post.categories, post.tags) == (["jia", "yi"], ["乙新闻", "丙新闻"])
    sources[1]["category"] = "丁"
    config = make_config(sources)
    fetch(config, store, sources=[config.sources[1]])
    (post,) = store.posts(limit=None)
    assert (post.categories, post.tags) == (["jia", "ding"], ["乙新闻", "丙新闻"])
    assert store.posts(category="yi") == [] and [p.id for p in store.posts(category="ding")] == [post.id]
    server.add("/a.xml", rss(item("a-1", "共同报道（更正）", link, body="<p>二</p>")))
    fetch(config, store, sources=[config.sources[0]])
    (post,) = store.posts(limit=None)
    assert post.title == "共同报道（更正）" and (post.categories, post.tags) == (["jia", "ding"], ["乙新闻", "丙新闻"])


def test_a_merged_post_forgets_the_shares_of_removed_sources_and_of_another_article(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """A source removed from feeds.yaml loses its share at the post's next change; an owner whose
    entry now links elsewhere is another article: the others' shares go, and they store their own."""
    link = "https://same.example.com/story?id=10"
    a = server.add("/a.xml", rss(item("a-1", "共同报道", link, body="<p>一</p>")))
    b = server.add("/b.xml", rss(item("b-1", "共同报道", link)))
    c = server.add("/c.xml", rss(item("c-1", "共同报道", link)))
    sources = [{"name": "A", "url": a, "category": "甲"}, {"name": "B", "url": b, "category": "乙"},
               {"name": "C", "url": c, "category": "丙"}]
    config = make_config(sources)
    store = open_store(config)
    for source in config.sources:
        fetch(config, store, sources=[source])
    assert store.posts(limit=None)[0].categories == ["jia", "yi", "bing"]
    config = make_config(sources[:2])  # C removed
    server.add("/a.xml", rss(item("a-1", "共同报道（更正）", link, body="<p>二</p>")))
    fetch(config, store)
    (post,) = store.posts(limit=None)
    assert post.categories == ["jia", "yi"] and store.posts(category="bing") == []
    server.add("/a.xml", rss(item("a-1", "另一篇", "https://same.example.com/other", body="<p>三</p>")))
    server.add("/b.xml", rss(item("b-1", "共同报道", link, body="<p>乙的</p>")))
    fetch(config, store, sources=config.sources[:1])
    assert [p.categories for p in store.posts(limit=None)] == [["jia"]]
    fetch(config, store, sources=config.sources[1:])
    assert sorted(p.categories for p in store.posts(limit=None)) == [["jia"], ["yi"]]
    assert len(store.posts(category="yi")) == 1


def test_max_entries_keeps_newest(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = "".join(
        item(f"g{i}", f"t{i}", f"http://n.example.com/{i}", f"Mon, {i + 1:02d} Mar 2022 10:00:00 +0000")
        for i in range(20)
    )
    config = make_config([{"name": "s", "url": server.add("/f.xml", rss(items)), "max_entries": 5}])
    store = open_store(config)
    fetch(config, store)
    assert [p.title for p in store.posts()] == ["t19", "t18", "t17", "t16", "t15"]


def test_304_costs_no_parse_and_records_status(server: FeedServer, make_config: Any, open_store: Any) -> None:
    url = server.add("/f.xml", fixture("rss20.xml"), etag='"abc"')
    config = make_config([{"name": "s", "url": url}])
    store = open_store(config)
    assert fetch(config, store).count("ok") == 1
    report = fetch(config, store)
    assert report.count("not-modified") == 1 and report.new == 0
    assert server.hits("/f.xml")[-1].headers["if-none-match"] == '"abc"'
    state = store.source_state("s")
    assert (state.result, state.http_status, state.etag, state.failures) == ("not-modified", 304, '"abc"', 0)


def test_failures_are_recorded_and_others_go_on(server: FeedServer, make_config: Any, open_store: Any) -> None:
    config = make_config(
        [
            {"name": "good", "url": server.add("/good.xml", fixture("rss091.xml"))},
            {"name": "broken", "url": server.add("/500.xml", b"boom", status=500)},
            {
                "name": "html",
                "url": server.add("/page.html", b"<html><body>hi</body></html>", content_type="text/html"),
            },
            {"name": "slow", "url": server.add("/slow.xml", fixture("rss091.xml"), delay=8)},
            {"name": "empty", "url": server.add("/empty.xml", b"")},
        ],
        defaults={"timeout": "1s", "deadline": "3s"},
    )
    store = open_store(config)
    report = fetch(config, store)
    results = {o.source: (o.result, o.error) for o in report.outcomes}
    assert results["good"][0] == "ok"
    assert results["broken"] == ("error", "HTTP 500 Internal Server Error")
    assert results["html"][0] == "error" and "HTML page" in results["html"][1]
    assert results["slow"] == ("error", "read timed out")
    assert results["empty"] == ("error", "empty response body")
    assert store.count_posts() == 2
    state = store.source_state("broken")
    assert (state.result, state.http_status, state.failures) == ("error", 500, 1)
    fetch(config, store)
    assert store.source_state("broken").failures == 2


def test_malformed_feed_with_entries_is_ingested_with_warning(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    body = rss(item("w", "Broken & unescaped", "http://w.example.com/1")).replace("</channel></rss>", "")
    config = make_config([{"name": "s", "url": server.add("/f.xml", body, etag='"v1"')}])
    store = open_store(config)
    report = fetch(config, store)
    assert report.count("ok") == 1 and store.count_posts() == 1
    warning = store.source_state("s").warning
    assert warning and report.outcomes[0].warning == warning
    assert fetch(config, store).count("not-modified") == 1  # the same broken feed: its warning holds
    assert store.source_state("s").warning == warning
    server.add("/f.xml", rss(item("w", "Fixed", "http://w.example.com/1")), etag='"v2"')
    assert fetch(config, store).count("ok") == 1 and store.source_state("s").warning == ""


def test_broken_xml_with_no_entries_is_a_failure_and_keeps_the_posts(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """A feed that turns into garbage must show as failing, not as "ok" with 0 new posts forever;
    a well-formed feed without items stays ok."""
    url = server.add("/f.xml", rss(item("1", "kept", "http://w.example.com/1")))
    config = make_config([{"name": "s", "url": url},
                          {"name": "empty", "url": server.add("/empty.xml", rss(""))}])
    store = open_store(config)
    assert fetch(config, store).count("ok") == 2
    server.add("/f.xml", "<rss version='2.0'><channel><title>inv</ti<item><<<>>>&&&garbage")
    report = fetch(config, store)
    (failed,) = report.failed
    assert failed.source == "s" and failed.error.startswith("malformed feed, no entries could be read (SAXParse")
    assert report.count("ok") == 1 and [p.title for p in store.posts()] == ["kept"]
    assert store.source_state("s").failures == 1


def test_enclosure_types_and_the_one_rss_keeps(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """An Atom enclosure link without a type is not text/html (feedparser's default for links); RSS,
    which keeps one enclosure, keeps the audio one rather than whichever came first."""
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>p</title>'
            '<id>urn:p</id><updated>2022-03-29T00:00:00Z</updated><entry><id>urn:p:1</id><title>episode</title>'
            '<link href="http://x.example.com/1"/><updated>2022-03-28T12:00:00Z</updated>'
            '<link rel="enclosure" href="http://x.example.com/a.bin"/><link rel="enclosure" href="http://x.example.com/c.jpg"/>'
            '<link rel="enclosure" type="audio/mpeg" length="42" href="http://x.example.com/b.mp3"/></entry></feed>')
    config = make_config([{"name": "p", "url": server.add("/p.xml", atom, content_type="application/atom+xml")}])
    store = open_store(config)
    fetch(config, store)
    (post,) = store.posts()
    assert [(e.url.rsplit("/", 1)[1], e.type) for e in post.enclosures] == [
        ("a.bin", "application/octet-stream"), ("c.jpg", "image/jpeg"), ("b.mp3", "audio/mpeg")]
    build_site(config, store)
    rss_feed = feedparser.parse((config.site.output_dir / "feed.xml").read_bytes())
    assert [(e.href, e.type) for e in rss_feed.entries[0].enclosures] == [("http://x.example.com/b.mp3", "audio/mpeg")]


def test_media_rss_content_is_an_enclosure(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """Video and podcast feeds that carry their file only in media:content (alone or in a
    media:group) keep it; a thumbnail is not the entry's media, and a file given both ways is one."""
    items = ('<item><title>v</title><link>http://x.example.com/1</link>'
             '<media:content url="http://x.example.com/v.mp4" type="video/mp4" fileSize="1234" medium="video"/>'
             '<media:thumbnail url="http://x.example.com/t.jpg"/></item>'
             '<item><title>a</title><link>http://x.example.com/2</link><media:group>'
             '<media:content url="http://x.example.com/a.mp3" type="audio/mpeg"/></media:group></item>'
             '<item><title>e</title><link>http://x.example.com/3</link>'
             '<enclosure url="http://x.example.com/e.mp3" type="audio/mpeg" length="5"/>'
             '<media:content url="http://x.example.com/e.mp3" type="audio/mpeg"/></item>')
    feed = rss(items).replace('<rss version="2.0"', '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"')
    config = make_config([{"name": "m", "url": server.add("/m.xml", feed)}])
    store = open_store(config)
    fetch(config, store)
    found = {p.title: [(e.url.rsplit("/", 1)[1], e.type, e.length) for e in p.enclosures] for p in store.posts()}
    assert found == {"v": [("v.mp4", "video/mp4", 1234)], "a": [("a.mp3", "audio/mpeg", 0)],
                     "e": [("e.mp3", "audio/mpeg", 5)]}


def test_atom_entries_inherit_the_feed_author(server: FeedServer, make_config: Any, open_store: Any) -> None:
    atom = ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>a</title>'
            '<id>urn:a</id><updated>2022-03-29T00:00:00Z</updated><author><name>Atom Author</name></author>'
            '<entry><id>urn:a:1</id><title>one</title><link href="http://x.example.com/1"/>'
            '<updated>2022-03-28T12:00:00Z</updated></entry>'
            '<entry><id>urn:a:2</id><title>two</title><link href="http://x.example.com/2"/>'
            '<updated>2022-03-28T13:00:00Z</updated><author><name>Own</name></author></entry></feed>')
    editor = rss(item("r", "rss", "http://x.example.com/r")).replace(
        "<description>d</description>", "<description>d</description><managingEditor>ed@x.example.com</managingEditor>")
    config = make_config([{"name": "a", "url": server.add("/a.xml", atom, content_type="application/atom+xml")},
                          {"name": "r", "url": server.add("/r.xml", editor)}])
    store = open_store(config)
    fetch(config, store)
    assert {p.title: p.author for p in store.posts()} == {"one": "Atom Author", "two": "Own", "rss": ""}


def test_chinese_full_text_search_finds_words_mid_sentence(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    config = make_config([{"name": "s", "url": server.add("/f.xml", fixture("rss20.xml"))}])
    store = open_store(config)
    fetch(config, store)
    for word in ("券商", "金融科技", "核酸筛查", "国金证券", "流动性"):
        assert store.search(word), word
    assert [p.guid for p in store.search("逆回购")] == ["NW202203281111111111"]
    assert store.search("证券 流动性") == []  # every word must match
    assert store.search("不存在的词") == []
    assert store.search('"quotes" OR AND') == []  # query syntax is never interpreted


def test_utf8_feed_served_as_text_xml_without_charset(server: FeedServer, make_config: Any, open_store: Any) -> None:
    body = rss(item("u1", "券商新闻 UTF-8", "http://u.example.com/1")).replace(' encoding="utf-8"', "")
    config = make_config([{"name": "s", "url": server.add("/f.xml", body.encode("utf-8"), content_type="text/xml")}])
    store = open_store(config)
    report = fetch(config, store)
    assert report.count("ok") == 1, report.outcomes[0].error
    assert store.posts()[0].title == "券商新闻 UTF-8"


def test_nested_transactions_are_savepoints(tmp_path: Any) -> None:
    """fetch_sources groups sources in one commit, each in a savepoint of its own: a source that
    fails undoes only its own writes, and those of the others in the batch are still committed."""
    store = Store(tmp_path / "agg.db")
    with store.transaction():
        store.save_source_state(SourceState(name="kept", url="http://127.0.0.1/a"))
        with pytest.raises(ZeroDivisionError), store.transaction():
            store.save_source_state(SourceState(name="undone", url="http://127.0.0.1/b"))
            raise ZeroDivisionError
        other = sqlite3.connect(tmp_path / "agg.db")
        assert other.execute("SELECT count(*) FROM sources").fetchone()[0] == 0  # nothing committed yet
    assert set(store.source_states()) == {"kept"}
    assert other.execute("SELECT name FROM sources").fetchall() == [("kept",)]
    store.close()


def test_posts_and_state_of_a_source_are_stored_together(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """record() stores a source's posts and its new state (validators, next poll) in one
    transaction: when the state cannot be saved, the posts are not kept either, so the next
    fetch is not answered 304 for posts that were never stored."""
    url = server.add("/feed.xml", rss(item("g1", "新闻一") + item("g2", "新闻二")), etag='"v1"')
    config = make_config([{"name": "券商新闻", "url": url}])
    store = open_store(config)
    source = config.sources[0]
    now = datetime.now(UTC)
    retrieved = retrieve(config, source, SourceState(name=source.name), make_session(), now, INLINE)
    assert retrieved.outcome.result == "ok" and len(retrieved.posts) == 2

    def broken_schedule(failures: int) -> datetime | None:
        raise RuntimeError("scheduler gone")

    with pytest.raises(RuntimeError):
        record(store, config, source, retrieved, now, schedule=broken_schedule)
    assert store.count_posts() == 0 and store.source_state(source.name).etag == ""
    record(store, config, source, retrieved, now)
    assert store.count_posts() == 2 and store.source_state(source.name).etag == '"v1"'


def test_sources_are_committed_in_batches_and_reported_only_once_committed(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """Several sources share a commit; each is reported (progress) only when another connection,
    a reader such as the built-in server, can already see its posts."""
    sources = [
        {"name": f"s{n}", "url": server.add(f"/s{n}.xml", rss(item(f"g{n}", f"标题{n}", f"http://n.example.com/{n}")))}
        for n in range(40)
    ]
    config = make_config(sources)
    store = open_store(config)
    reader = sqlite3.connect(config.site.database)
    seen: list[tuple[str, int]] = []

    def progress(outcome: Any) -> None:
        count = reader.execute("SELECT count(*) FROM posts WHERE source = ?", (outcome.source,)).fetchone()[0]
        (result,) = reader.execute("SELECT result FROM sources WHERE name = ?", (outcome.source,)).fetchone()
        seen.append((outcome.source, count, result))

    report = fetch(config, store, progress=progress)
    assert report.count("ok") == 40 and report.new == 40
    assert sorted(seen) == sorted((f"s{n}", 1, "ok") for n in range(40))
    assert not store.conn.in_transaction
    # the states (written together when a batch commits) are there too, for a poll without posts
    server.add("/s3.xml", b"gone", status=500)
    seen.clear()
    report = fetch(config, store, progress=progress)
    assert report.count("ok") == 39 and report.count("error") == 1
    assert sorted(seen) == sorted((f"s{n}", 1, "error" if n == 3 else "ok") for n in range(40))
    assert store.source_state("s3").failures == 1 and store.source_state("s4").failures == 0


def test_posts_retention_deleted_do_not_come_back_at_the_next_poll(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """Retention deletes old posts while their entries are still in the feed: the next poll must not
    store them again (the dated ones as old "new" posts, an undated one dated now, at the top)."""
    now = datetime.now(UTC)
    dated = [("fresh", 1), ("old", 400), ("older", 500)]
    items = "".join(item(g, f"title {g}", date=format_datetime(now - timedelta(days=d))) for g, d in dated)
    server.add("/feed.xml", rss(items + item("undated", "no date")), etag='"1"')
    sources = [{"name": "s", "url": server.url("/feed.xml")}]
    store = open_store(make_config(sources))
    assert fetch(make_config(sources), store).new == 4  # no retention yet: everything is kept

    config = make_config(sources, site={"retention_days": 30})
    store.conn.execute("UPDATE posts SET date = ? WHERE guid = 'undated'", (to_db_time(now - timedelta(days=40)),))
    assert build_site(config, store).deleted_posts == 3
    server.add("/feed.xml", rss(items + item("undated", "no date") + item("new", "new one")), etag='"2"')
    report = fetch(config, store)
    assert (report.new, report.updated) == (1, 0)
    assert sorted(p.guid for p in store.posts()) == ["fresh", "new"]

    # a source added with an archive older than the retention stores only what retention keeps
    server.add("/archive.xml", rss(items), etag='"1"')
    config = make_config([*sources, {"name": "archive", "url": server.url("/archive.xml")}],
                         site={"retention_days": 30})
    assert fetch(config, store).new == 1
    assert build_site(config, store).deleted_posts == 0


def test_a_renamed_category_leaves_the_site_once_its_posts_have_moved(
    server: FeedServer, make_config: Any, open_store: Any, tmp_path: Any
) -> None:
    """Renaming a category (or removing its source) must not leave the old one listed, empty, for
    ever: once no post is in it and feeds.yaml does not name it, its files and its OPML entry go."""
    server.add("/a.xml", rss(item("1", "one", date="Mon, 28 Mar 2022 10:00:00 +0800")), etag='"1"')
    config = make_config([{"name": "a", "url": server.url("/a.xml"), "category": "Old Name"}])
    store = open_store(config)
    report = fetch(config, store)
    publish_changed(config, store, report.changed_categories, report.changed_tags, report.changed_post_ids)
    out = config.site.output_dir
    assert (out / "old-name" / "feed.xml").is_file()

    config = make_config([{"name": "a", "url": server.url("/a.xml"), "category": "New Name"}])
    server.add("/a.xml", rss(item("1", "one", date="Mon, 28 Mar 2022 10:00:00 +0800")), etag='"2"')
    report = fetch(config, store)
    assert report.updated == 1 and "old-name" in report.changed_categories
    publish_changed(config, store, report.changed_categories, report.changed_tags, report.changed_post_ids)
    assert not (out / "old-name").exists() and (out / "new-name" / "feed.xml").is_file()
    assert "old-name" not in (out / "feeds.opml").read_text(encoding="utf-8")
    assert "Old Name" not in (out / "index.html").read_text(encoding="utf-8")
    # a full build agrees, and removes what an older version left behind
    (out / "old-name").mkdir()
    (out / "old-name" / "feed.xml").write_text("stale", encoding="utf-8")
    build_site(config, store)
    assert not (out / "old-name").exists()
    # but an operator's symlink keeping the old URL alive is theirs: the live category stays whole
    (out / "old-name").symlink_to(out / "new-name", target_is_directory=True)
    build_site(config, store)
    assert (out / "old-name").is_symlink() and (out / "new-name" / "feed.xml").is_file()
    assert sorted(p.name for p in (out / "new-name").iterdir()) == ["atom.xml", "feed.json", "feed.xml", "index.html"]


def test_a_category_that_never_held_a_post_leaves_the_site_with_its_source(
    make_config: Any, open_store: Any
) -> None:
    """Configured categories are published even when empty; one whose source never delivered a
    post was unknown to the database, so removing the source left its folder served for ever."""
    config = make_config([{"name": "例子", "url": "http://127.0.0.1:9/rss.xml", "category": "财经"},
                          {"name": "b", "url": "http://127.0.0.1:9/b.xml", "category": "Other"}])
    store = open_store(config)
    build_site(config, store)
    out = config.site.output_dir
    assert (out / "caijing" / "feed.xml").is_file()
    config = make_config([{"name": "b", "url": "http://127.0.0.1:9/b.xml", "category": "Other"}])
    build_site(config, store)
    assert not (out / "caijing").exists() and (out / "other" / "feed.xml").is_file()
    assert "caijing" not in (out / "feeds.opml").read_text(encoding="utf-8")


def test_hostile_answers_fail_their_own_source_never_the_pass(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """A redirect to a non-URL, a Retry-After of '²' and an article page in the 'idna' charset each
    once raised out of fetch_sources: the whole pass stopped, the good source was not recorded."""
    server.add("/good.xml", rss(item("g1", "good", link=server.url("/page.html"))))
    server.add("/page.html", b'<html><head><meta charset="idna"></head><body><article><p>' + b"text " * 200
               + b"</p></article></body></html>", content_type="text/html")
    config = make_config([
        {"name": "a-location", "url": server.add("/loc.xml", b"", status=302, headers={"Location": "http://[::1/x"})},
        {"name": "b-retry", "url": server.add("/retry.xml", b"busy", status=503, headers={"Retry-After": "\xb2"})},
        {"name": "c-good", "url": server.url("/good.xml"), "full_text": True},
    ])
    store = open_store(config)
    report = fetch(config, store)
    errors = {o.source: o.error for o in report.outcomes}
    assert errors["a-location"] == "redirect to an invalid URL: 'http://[::1/x'"
    assert errors["b-retry"] == "HTTP 503 Service Unavailable" and report.outcomes[1].retry_after is None
    assert errors["c-good"] == "" and report.outcomes[2].articles_ok == 1
    assert "text text" in store.posts()[0].content


def test_a_worker_killed_mid_parse_fails_its_source_not_the_pass(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """WorkerDied (a worker killed, or out of memory) is the source's failure; the pass goes on."""
    big = "".join(item(f"b{i}", f"entry {i}", body="<p>" + "正文 " * 400 + "</p>") for i in range(3000))
    server.add("/big.xml", rss(big))
    server.add("/small.xml", rss(item("s1", "small")))
    config = make_config([{"name": "big", "url": server.url("/big.xml")},
                          {"name": "small", "url": server.url("/small.xml")}])
    store = open_store(config)
    pool = CpuPool(processes=1)
    try:
        worker = pool.run(os.getpid)
        killer = threading.Thread(target=lambda: (wait_for_hit(server, "/big.xml"), time.sleep(0.5),
                                                  os.kill(worker, signal.SIGKILL)))
        killer.start()
        report = fetch_sources(config, store, cpu=pool)
        killer.join()
    finally:
        pool.shutdown()
    outcomes = {o.source: o for o in report.outcomes}
    assert outcomes["big"].result == "error" and "worker process died" in outcomes["big"].error
    assert store.source_state("big").failures == 1
    assert outcomes["small"].result == "ok"  # parsed by a fresh pool after the death


def wait_for_hit(server: FeedServer, path: str) -> None:
    deadline = time.monotonic() + 10
    while not server.hits(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_pending_articles_are_read_off_indexes(open_store: Any, make_config: Any) -> None:
    """Run after every poll of a full_text source: a scan of every post there took 2.3 s at 500,000."""
    store = open_store(make_config([]))
    for query, index in zip(PENDING_QUERIES, ("posts_article_pending", "posts_article_source"), strict=True):
        plan = " ".join(str(row) for row in store.conn.execute("EXPLAIN QUERY PLAN " + query, ("s", 3, 10)))
        assert index in plan and "SCAN" not in plan, plan


def test_a_retention_longer_than_the_calendar_keeps_everything(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    server.add("/a.xml", rss(item("a1", "one", date="Mon, 28 Mar 2022 10:00:00 +0800")))
    config = make_config([{"name": "a", "url": server.url("/a.xml")}], site={"retention_days": 1_000_000_000})
    assert fetch(config, open_store(config)).new == 1


def test_a_source_moving_to_https_keeps_its_posts(server: FeedServer, make_config: Any, open_store: Any) -> None:
    """A site moving to HTTPS changes every guid (and link) from http:// to https://. The posts stored
    under the old form are updated in place and keep their ids and guids: nothing is stored or
    published twice. A feed listing both forms has two entries, and keeps both."""
    date = "Mon, 28 Mar 2022 1{}:00:00 +0800"

    def feed(scheme: str, *extra: str) -> str:
        return rss(item(guid=f"{scheme}://blog.example.com/?p=1", link=f"{scheme}://blog.example.com/1",
                        title="一", date=date.format(1))
                   + item(link=f"{scheme}://blog.example.com/2", title="二", date=date.format(2))  # the link is its id
                   + "".join(extra))

    url = server.add("/feed.xml", feed("http"))
    both = server.add("/both.xml", rss(item(guid="http://x.example.com/a", title="甲", date=date.format(3))
                                       + item(guid="https://x.example.com/a", title="甲", date=date.format(3))))
    config = make_config([{"name": "blog", "url": url, "category": "博客"}, {"name": "both", "url": both}])
    store = open_store(config)
    fetch(config, store)
    before = {p.title: p for p in store.posts(source="blog")}
    assert {t: p.guid for t, p in before.items()} == {"一": "http://blog.example.com/?p=1", "二": ""}
    server.add("/feed.xml", feed("https", item(guid="https://blog.example.com/?p=3", title="三", date=date.format(4))))
    report = fetch(config, store)
    blog = next(o for o in report.outcomes if o.source == "blog")
    assert (blog.new, blog.updated) == (1, 2)
    after = {p.title: p for p in store.posts(source="blog")}
    assert sorted(after) == ["一", "三", "二"]
    for title in ("一", "二"):
        assert (after[title].id, after[title].guid) == (before[title].id, before[title].guid)
        assert after[title].link.startswith("https://")
    assert len(store.posts(source="both")) == 2
    again = fetch(config, store)
    assert [(o.new, o.updated) for o in again.outcomes] == [(0, 0), (0, 0)]
    build_site(config, store)
    channel = feedparser.parse((config.site.output_dir / "boke" / "feed.xml").read_bytes())
    assert sorted(e.title for e in channel.entries) == ["一", "三", "二"]


def test_a_category_renamed_in_feeds_yaml_takes_every_stored_post_along(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """A source's posts take its category when stored: a rename reached only the entries still in its
    feed, and the rest (for a source polled for years, nearly all) stayed in the old category for
    good, listed on the home page and in the OPML beside the new one. Every stored post now moves
    at the next fetch, a 304 included; a category a rule added stays."""
    date = "Mon, 28 Mar 2022 1{}:00:00 +0800"
    entries = [item(guid=f"g{n}", title=f"第{n}条 {'降准' if n == 1 else ''}", date=date.format(n)) for n in range(5)]
    url = server.add("/feed.xml", rss("".join(entries[:3])), etag='"v1"')
    rules = [{"match": "降准", "categories": ["货币政策"]}]
    config = make_config([{"name": "甲", "url": url, "category": "经济"}], rules=rules)
    store = open_store(config)
    fetch(config, store)
    server.add("/feed.xml", rss("".join(entries[2:])), etag='"v2"')  # g0 and g1 have left the feed
    fetch(config, store)
    build_site(config, store)
    config = make_config([{"name": "甲", "url": url, "category": "宏观"}], rules=rules)
    report = fetch(config, store)  # the feed answers 304
    assert report.outcomes[0].result == "not-modified" and report.updated == 5
    categories = {p.guid: p.categories for p in store.posts(limit=None)}
    assert categories == {"g0": ["hongguan"], "g1": ["hongguan", "huobizhengce"], "g2": ["hongguan"],
                          "g3": ["hongguan"], "g4": ["hongguan"]}
    assert store.category_counts().get("jingji", 0) == 0 and store.category_counts()["hongguan"] == 5
    publish_changed(config, store, report.changed_categories, report.changed_tags, report.changed_post_ids)
    home = (config.site.output_dir / "index.html").read_text(encoding="utf-8")
    assert "宏观" in home and "经济" not in home
    old_feed = config.site.output_dir / "jingji" / "feed.xml"
    assert not old_feed.exists() or not feedparser.parse(old_feed.read_bytes()).entries
    assert again_unchanged(config, store)


def again_unchanged(config: Any, store: Any) -> bool:
    report = fetch(config, store)
    return (report.new, report.updated) == (0, 0)


def test_a_source_moving_to_https_keeps_the_other_sources_share_of_a_merged_post(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """The same article through two sources, stored once with both sources' categories. The first
    moving to HTTPS changes the post's link by its scheme only: the same article, so the second
    source's category stays (it answers 304 and would not give it back)."""
    def body(scheme: str) -> str:
        return rss(item(guid=f"{scheme}://site.example.com/story", title="同一篇", date="Mon, 28 Mar 2022 10:00:00 +0800"))

    first = server.add("/a.xml", body("http"), etag='"a1"')
    second = server.add("/b.xml", rss(item(guid="b-1", link="http://site.example.com/story", title="同一篇",
                                           date="Mon, 28 Mar 2022 10:00:00 +0800")), etag='"b"')
    config = make_config([{"name": "甲", "url": first, "category": "甲类"},
                          {"name": "乙", "url": second, "category": "乙类"}])
    store = open_store(config)
    # 甲 stored first, so the post is 甲's and 乙's is the share (in one pass, whichever fetch
    # finishes first would own it)
    fetch(config, store, sources=config.sources[:1])
    fetch(config, store, sources=config.sources[1:])
    (post,) = store.posts(limit=None)
    assert sorted(post.categories) == ["jialei", "yilei"]
    server.add("/a.xml", body("https"), etag='"a2"')
    report = fetch(config, store)
    assert [o.result for o in report.outcomes] == ["ok", "not-modified"]
    (moved,) = store.posts(limit=None)
    assert (moved.id, moved.link) == (post.id, "https://site.example.com/story")
    assert sorted(moved.categories) == ["jialei", "yilei"]
    assert [p.id for p in store.posts(category="yilei")] == [post.id]


def test_a_renamed_category_moves_a_sources_share_of_a_merged_post(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    def body(guid: str) -> str:
        return rss(item(guid=guid, link="http://site.example.com/story", title="同一篇",
                        date="Mon, 28 Mar 2022 10:00:00 +0800"))

    first, second = server.add("/a.xml", body("x"), etag='"a"'), server.add("/b.xml", body("y"), etag='"b"')

    def config_with(category: str) -> Any:
        return make_config([{"name": "甲", "url": first, "category": "甲类"},
                            {"name": "乙", "url": second, "category": category}])

    store = open_store(config := config_with("乙类"))
    fetch(config, store)
    (post,) = store.posts(limit=None)
    assert sorted(post.categories) == ["jialei", "yilei"]  # the same article: stored once
    report = fetch(config_with("丙类"), store)
    assert [o.result for o in report.outcomes] == ["not-modified", "not-modified"] and report.updated == 1
    (post,) = store.posts(limit=None)
    assert sorted(post.categories) == ["binglei", "jialei"]
    assert store.posts(category="yilei") == [] and [p.id for p in store.posts(category="binglei")] == [post.id]


def test_a_fetch_beside_the_daemon_does_not_undo_its_record_of_a_source(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """`fetch` reads every source's state when its pass starts and saved it back whole after each
    fetch: a poll the daemon recorded in between (its failures, its next due time) was undone."""
    url = server.add("/down.xml", "", status=500)
    config = make_config([{"name": "s", "url": url}])
    (source,) = config.sources
    store = open_store(config)
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    read = store.source_state("s", counts=False)  # what the pass read when it started
    daemons = SourceState(name="s", url=url, last_fetch="2026-12-03T09:59:59Z", result="error", error="HTTP 500",
                          failures=3, next_due="2026-12-03T11:00:00Z")
    store.save_source_state(daemons)  # the daemon's poll, recorded meanwhile
    retrieved = retrieve(config, source, read, make_session(), now, INLINE)
    record(store, config, source, retrieved, now, read)
    saved = store.source_state("s", counts=False)
    assert (saved.failures, saved.next_due, saved.last_fetch) == (4, "2026-12-03T11:00:00Z", to_db_time(now))
    # with nobody writing in between, the state read is the one saved over
    record(store, config, source, retrieve(config, source, saved, make_session(), now, INLINE), now, saved)
    assert store.source_state("s", counts=False).failures == 5


def test_a_sources_reset_during_a_fetch_is_not_undone_by_it(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """`sources reset` (another process) clears failures, backoff and validators but leaves
    `last_fetch`: the fetch in flight, saving over the state it read, undid the reset."""
    url = server.add("/down.xml", "", status=500)
    config = make_config([{"name": "s", "url": url}])
    (source,) = config.sources
    store = open_store(config)
    store.save_source_state(SourceState(name="s", url=url, last_fetch="2026-12-03T09:00:00Z", result="error",
                                        error="HTTP 500", failures=6, next_due="2026-12-04T09:00:00Z",
                                        etag='"e1"'))
    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    read = store.source_state("s", counts=False)  # what the fetch read when it started
    assert store.reset_source("s")  # meanwhile
    record(store, config, source, retrieve(config, source, read, make_session(), now, INLINE), now, read)
    saved = store.source_state("s", counts=False)
    assert (saved.failures, saved.etag, saved.last_fetch) == (1, "", to_db_time(now))
