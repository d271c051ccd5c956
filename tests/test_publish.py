"""Republishing: feeds, pages and OPML written from a real SQLite store, read back by real parsers."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pickle
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from aggregator.cli_build import build
from aggregator.cli_common import Context
from aggregator.dates import local_time
from aggregator.models import Post
from aggregator.publish import atomic, build_site, publish_changed
from aggregator.publish.atomic import UnsafePathError, inside, write_if_changed
from aggregator.publish.filelist import FileList
from aggregator.publish.items import ATOM_ID_NAMESPACE, is_absolute_iri, public_source_url

from .publish_helpers import (
    NOW,
    make_post,
    mtimes,
    open_store,
    snapshot,
    standard_posts,
    store,
    with_output,
    write_config,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
URL = "https://finews.example.org/news/"


@pytest.fixture
def built(tmp_path: Path):
    config = write_config(tmp_path)
    db = store(config, standard_posts())
    report = build_site(config, db, now=NOW)
    yield config, db, report
    db.close()


def expected_atom_id(post: Post) -> str:
    if post.guid and is_absolute_iri(post.guid):
        return post.guid
    return "urn:uuid:" + str(uuid.uuid5(ATOM_ID_NAMESPACE, f"{post.source}\x00{post.guid or post.id}"))


def terms(post: Post, names: dict[str, str]) -> set[str]:
    return {names[c] for c in post.categories} | set(post.tags)


def parse(path: Path) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
    return parsed


def check_rss(path: Path, posts: list[Post], names: dict[str, str]) -> None:
    parsed = parse(path)
    assert parsed.version == "rss20"
    assert [e.title for e in parsed.entries] == [p.title for p in posts]
    for entry, post in zip(parsed.entries, posts, strict=True):
        assert entry.link == post.link
        assert entry.id == (post.guid or post.id)
        assert entry.published.endswith("+0800")
        assert parsedate_to_datetime(entry.published) == post.date
        assert entry.published == post.date.astimezone(SHANGHAI).strftime("%a, %d %b %Y %H:%M:%S +0800")
        assert {t.term for t in entry.tags} == terms(post, names)
        assert entry.content[0].value == post.content
        assert entry.summary == (post.summary or post.content)
        assert entry.source.href == {"每日经济新闻": "https://feeds.example.com/nbd.xml",
                                     "Hacker News": "https://hn.example.com/rss",
                                     "Slow Tech": "https://slow.example.com/atom"}[post.source]
        assert entry.source.title == post.source
        if post.author:
            assert entry.author == post.author
        if post.enclosures:
            first = post.enclosures[0]
            expected = [(first.url, first.type, str(first.length))]
            assert [(e.href, e.type, e.length) for e in entry.enclosures] == expected


def check_atom(path: Path, posts: list[Post], names: dict[str, str]) -> None:
    parsed = parse(path)
    assert parsed.version == "atom10"
    assert [e.title for e in parsed.entries] == [p.title for p in posts]
    for entry, post in zip(parsed.entries, posts, strict=True):
        assert entry.id == expected_atom_id(post)
        alternate = [link.href for link in entry.links if link.rel == "alternate"]
        assert alternate == [post.link]
        enclosures = [(link.href, link.type, link.get("length")) for link in entry.links if link.rel == "enclosure"]
        assert enclosures == [(e.url, e.type, str(e.length) if e.length else None) for e in post.enclosures]
        assert entry.published == post.date.astimezone(SHANGHAI).isoformat()
        assert datetime.fromisoformat(entry.updated) == (post.updated or post.date)
        assert entry.updated.endswith("+08:00")
        assert {t.term for t in entry.tags} == terms(post, names)
        assert entry.content[0].type == "text/html"
        assert entry.content[0].value == post.content
        assert entry.source.title == post.source
        if post.author:
            assert entry.author_detail.name == post.author


def check_json(path: Path, posts: list[Post], names: dict[str, str]) -> None:
    feed = json.loads(path.read_bytes())
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"].startswith(URL) and feed["title"]
    assert [i["title"] for i in feed["items"]] == [p.title for p in posts]
    for item, post in zip(feed["items"], posts, strict=True):
        assert item["id"] == (post.guid or post.id)
        assert item["url"] == post.link
        assert item["content_html"] == post.content
        assert item["date_published"] == post.date.astimezone(SHANGHAI).isoformat()
        assert set(item["tags"]) == terms(post, names)
        assert [a["url"] for a in item.get("attachments", [])] == [e.url for e in post.enclosures]


def test_round_trip_of_every_feed(built) -> None:
    config, db, report = built
    out, names = config.site.output_dir, config.categories
    for slug in ("meirijingjixinwen", "tech"):
        posts = db.posts(category=slug, limit=None)
        assert posts
        check_rss(out / slug / "feed.xml", posts, names)
        check_atom(out / slug / "atom.xml", posts, names)
        check_json(out / slug / "feed.json", posts, names)
    everything = db.posts(limit=None)
    assert len(everything) == 5
    check_rss(out / "feed.xml", everything, names)
    check_atom(out / "atom.xml", everything, names)
    check_json(out / "feed.json", everything, names)
    tagged = db.posts(tag="meirijingjixinwenxinwen", limit=None)
    assert len(tagged) == 3
    check_rss(out / "tag" / "meirijingjixinwenxinwen" / "feed.xml", tagged, names)
    check_atom(out / "tag" / "meirijingjixinwenxinwen" / "atom.xml", tagged, names)
    assert (out / "tag" / "show-hn" / "feed.xml").is_file()
    assert not report.warnings


def test_feed_size_keeps_the_newest_posts_newest_first(tmp_path: Path) -> None:
    config = write_config(tmp_path, feed_size=3)
    posts = [make_post("Hacker News", n, categories=["tech"], hours_ago=n) for n in range(7)]
    with store(config, posts) as db:
        build_site(config, db, now=NOW)
    parsed = parse(config.site.output_dir / "tech" / "feed.xml")
    assert [e.title for e in parsed.entries] == ["标题 0", "标题 1", "标题 2"]
    assert len(json.loads((config.site.output_dir / "tech" / "feed.json").read_bytes())["items"]) == 3
    page = (config.site.output_dir / "tech" / "index.html").read_text(encoding="utf-8")
    assert page.count("<li>") == 3 and "7 篇 (此处列出最新 3 篇)" in page  # the count says what is left out


def test_chinese_titles_are_written_byte_for_byte(built) -> None:
    config, _, _ = built
    out = config.site.output_dir
    title = "上海券商抗疫进行时：各大券商快速出台应急方案 金融科技又立功了 关怀驻守员工身心健康！".encode()
    for path in ("meirijingjixinwen/feed.xml", "meirijingjixinwen/atom.xml", "meirijingjixinwen/feed.json",
                 "meirijingjixinwen/index.html", "feed.xml", "index.html"):
        assert title in (out / path).read_bytes(), path
    assert "<category>每日经济新闻</category>".encode() in (out / "feed.xml").read_bytes()
    assert "<title>每日经济新闻 · 财经聚合</title>".encode() in (out / "meirijingjixinwen" / "feed.xml").read_bytes()


def test_rss_link_is_the_alternate_page_and_the_self_link_is_public(built) -> None:
    config, _, _ = built
    out = config.site.output_dir
    for folder, page in (("meirijingjixinwen/", "meirijingjixinwen/"), ("", ""), ("tag/show-hn/", "")):
        channel = etree.parse(str(out / folder / "feed.xml")).getroot().find("channel")
        assert channel.findtext("link") == URL + page
        selfs = channel.findall(f"{ATOM}link")
        assert [(s.get("rel"), s.get("href"), s.get("type")) for s in selfs] == [
            ("self", URL + folder + "feed.xml", "application/rss+xml")]
        feed = etree.parse(str(out / folder / "atom.xml")).getroot()
        links = {(link.get("rel"), link.get("href")) for link in feed.findall(f"{ATOM}link")}
        assert ("self", URL + folder + "atom.xml") in links
        assert ("alternate", URL + page) in links


def test_atom_content_is_typed_html_and_entry_links_keep_their_rel(built) -> None:
    config, _, _ = built
    feed = etree.parse(str(config.site.output_dir / "tech" / "atom.xml")).getroot()
    contents = feed.findall(f"{ATOM}entry/{ATOM}content")
    assert contents and all(c.get("type") == "html" for c in contents)
    links = [(link.get("rel"), link.get("type"), link.get("length")) for link in feed.iter(f"{ATOM}link")]
    assert all(rel for rel, _, _ in links)
    assert ("enclosure", "audio/mpeg", "12345") in links
    assert ("enclosure", "image/jpeg", None) in links


def test_rss_is_valid_by_the_spec(built) -> None:
    config, _, _ = built
    out = config.site.output_dir
    ttls = {"meirijingjixinwen/": "10", "tech/": "120", "kongfenlei/": "30", "": "10"}
    for folder, ttl in ttls.items():
        root = etree.parse(str(out / folder / "feed.xml")).getroot()
        assert root.tag == "rss" and root.get("version") == "2.0"
        channel = root.find("channel")
        for name in ("title", "link", "description", "lastBuildDate"):
            assert (channel.findtext(name) or "").strip(), name
        assert channel.findtext("ttl") == ttl
        assert parsedate_to_datetime(channel.findtext("lastBuildDate")).tzinfo is not None
        guids = [item.findtext("guid") for item in channel.findall("item")]
        assert len(guids) == len(set(guids))
        for item in channel.findall("item"):
            assert item.findtext("title").strip()
            parsedate_to_datetime(item.findtext("pubDate"))
            for author in item.findall("author"):
                assert re.match(r"^[^@\s]+@[^@\s]+$", author.text)
        for element in root.iter():
            if element.tag in ("channel", "item", "rss") or element.attrib:
                continue
            assert (element.text or "").strip(), f"empty {element.tag} in {folder}feed.xml"
    items = etree.parse(str(out / "meirijingjixinwen" / "feed.xml")).getroot().findall("channel/item")
    by_title = {item.findtext("title"): item for item in items}
    assert by_title["标题 2"].findtext(f"{DC}creator") == "记者 张三"
    assert by_title["标题 2"].find("author") is None
    assert by_title["标题 3"].findtext("author") == "editor@nbd.example.com"
    assert by_title["标题 3"].findtext(f"{CONTENT}encoded") == "<p>正文 3 <strong>粗体</strong></p>"


def test_atom_is_valid_by_rfc4287(built) -> None:
    config, _, _ = built
    for folder in ("meirijingjixinwen/", "tech/", "kongfenlei/", "", "tag/show-hn/"):
        feed = etree.parse(str(config.site.output_dir / folder / "atom.xml")).getroot()
        assert feed.tag == f"{ATOM}feed"
        assert feed.findtext(f"{ATOM}id") == URL + folder + "atom.xml"
        assert feed.findtext(f"{ATOM}title").strip()
        assert feed.findtext(f"{ATOM}subtitle").strip()
        assert RFC3339.match(feed.findtext(f"{ATOM}updated"))
        assert feed.findtext(f"{ATOM}author/{ATOM}name") == "财经聚合"
        ids = [e.findtext(f"{ATOM}id") for e in feed.findall(f"{ATOM}entry")]
        assert len(ids) == len(set(ids))
        for entry in feed.findall(f"{ATOM}entry"):
            assert is_absolute_iri(entry.findtext(f"{ATOM}id"))
            assert entry.findtext(f"{ATOM}title").strip()
            assert RFC3339.match(entry.findtext(f"{ATOM}updated"))
            assert RFC3339.match(entry.findtext(f"{ATOM}published"))


def feed_ids(out: Path) -> tuple[list[str], list[str], list[str]]:
    atom = [e.id for e in parse(out / "atom.xml").entries]
    rss = [e.id for e in parse(out / "feed.xml").entries]
    return atom, rss, [i["id"] for i in json.loads((out / "feed.json").read_bytes())["items"]]


def test_ids_stay_the_same_when_a_post_is_updated(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    posts = standard_posts()
    with store(config, posts) as db:
        build_site(config, db, now=NOW)
        out = config.site.output_dir
        before = feed_ids(out)
        changed = make_post("每日经济新闻", 3, categories=["meirijingjixinwen"], tags=["每日经济新闻新闻"], guid="",
                            hours_ago=30, author="editor@nbd.example.com", content="<p>改过了</p>")
        result = db.store_posts([changed], config.categories, now=NOW)
        assert result.updated == 1
        publish_changed(config, db, result.categories, result.tags, result.post_ids, now=NOW)
        after = feed_ids(out)
    assert after == before
    assert changed.id in before[1]  # no guid: our own stable post id


def test_a_guid_two_sources_share_stays_with_the_post_that_had_it_first(tmp_path: Path) -> None:
    """Hacker News has entry "1"; later Slow Tech (same category) publishes a newer entry "1".
    The older post keeps "1" and its Atom id; the newer gets its own ids from its first build on,
    and keeps them once the older post has left the feed's window."""
    config = write_config(tmp_path)
    out = config.site.output_dir / "tech"
    first = make_post("Hacker News", 1, categories=["tech"], guid="1", hours_ago=5)
    with store(config, [first]) as db:
        build_site(config, db, now=NOW)
        before = feed_ids(out)
        assert before == (["urn:uuid:" + str(uuid.uuid5(ATOM_ID_NAMESPACE, "Hacker News\x001"))], ["1"], ["1"])
        second = make_post("Slow Tech", 2, categories=["tech"], guid="1", hours_ago=1)
        result = db.store_posts([second], config.categories, now=NOW)
        publish_changed(config, db, result.categories, result.tags, result.post_ids, now=NOW)
        atom, rss, json_ids = feed_ids(out)
        assert (atom[1], rss[1], json_ids[1]) == (before[0][0], "1", "1")  # the older post: unchanged
        assert rss[0] == json_ids[0] == second.id and atom[0] not in (atom[1], "1")
        window = with_output(config, tmp_path / "window")
        window = dataclasses.replace(window, site=dataclasses.replace(window.site, feed_size=1))
        build_site(window, db, now=NOW)
        assert feed_ids(tmp_path / "window" / "tech") == ([atom[0]], [second.id], [second.id])
        # retention deletes the older post: the newer keeps its ids (readers would see it twice)
        assert db.delete_posts_before(NOW - timedelta(hours=3)) == 1
        build_site(config, db, now=NOW)
        assert feed_ids(out) == ([atom[0]], [second.id], [second.id])


def test_newest_post_date_not_the_clock_dates_the_feed(built) -> None:
    config, db, _ = built
    root = etree.parse(str(config.site.output_dir / "meirijingjixinwen" / "feed.xml")).getroot()
    newest = max((p.updated or p.date) for p in db.posts(category="meirijingjixinwen", limit=None))
    assert parsedate_to_datetime(root.findtext("channel/lastBuildDate")) == newest


def test_empty_category_gets_valid_empty_feeds(built) -> None:
    config, _, _ = built
    folder = config.site.output_dir / "kongfenlei"
    rss, atom = parse(folder / "feed.xml"), parse(folder / "atom.xml")
    assert rss.entries == [] and atom.entries == []
    assert rss.feed.title == "空分类 · 财经聚合" and rss.feed.link == URL + "kongfenlei/"
    assert rss.feed.updated == "Thu, 01 Jan 1970 08:00:00 +0800"
    assert atom.feed.updated == "1970-01-01T08:00:00+08:00"
    assert json.loads((folder / "feed.json").read_bytes())["items"] == []
    assert "空分类".encode() in (folder / "index.html").read_bytes()


def test_incremental_publish_gives_every_linked_category_its_page(tmp_path: Path) -> None:
    """A first `fetch` publishes incrementally: the home page and OPML link 空分类 (no posts, so
    never a changed category), and its page and feeds must exist all the same: no 404s."""
    config = write_config(tmp_path)
    out = config.site.output_dir
    with store(config, standard_posts()) as db:
        posts = db.posts(limit=None)
        changed = {c for p in posts for c in p.categories}
        assert "kongfenlei" not in changed
        publish_changed(config, db, changed, set(db.tag_counts()), [p.id for p in posts], now=NOW)
        assert "kongfenlei/" in (out / "index.html").read_text(encoding="utf-8")
        assert URL + "kongfenlei/feed.xml" in (out / "feeds.opml").read_text(encoding="utf-8")
        assert sorted(p.name for p in (out / "kongfenlei").iterdir()) == [
            "atom.xml", "feed.json", "feed.xml", "index.html"]
        again = publish_changed(config, db, set(), set(), [], now=NOW)  # published now: not redone
        assert not [p for p in again.written if "kongfenlei" in str(p)]
        fresh = with_output(config, tmp_path / "fresh")
        build_site(fresh, db, now=NOW)
    assert snapshot(out) == snapshot(tmp_path / "fresh")


def test_tag_feeds_only_for_tags_on_enough_posts(tmp_path: Path) -> None:
    config = write_config(tmp_path, tag_feed_min=2)
    with store(config, standard_posts()) as db:
        build_site(config, db, now=NOW)
    tags = config.site.output_dir / "tag"
    assert sorted(p.name for p in tags.iterdir()) == ["meirijingjixinwenxinwen"]
    assert sorted(p.name for p in (tags / "meirijingjixinwenxinwen").iterdir()) == ["atom.xml", "feed.xml"]


def test_incremental_publish_gives_a_tag_its_feed_once_enough_posts_carry_it(tmp_path: Path) -> None:
    """publish_changed counts only the changed tags, and only up to tag_feed_min: same bytes as a full build."""
    config = write_config(tmp_path, tag_feed_min=2)
    tags = config.site.output_dir / "tag"
    with store(config, standard_posts()) as db:
        build_site(config, db, now=NOW)
        assert not (tags / "quanshang").exists()  # 券商: on one post only
        second = make_post("每日经济新闻", 50, categories=["meirijingjixinwen"], tags=["券商"], hours_ago=0.5)
        result = db.store_posts([second], config.categories, now=NOW)
        assert result.tags == {"quanshang"}
        assert db.tag_info(["quanshang", "meirijingjixinwenxinwen", "nosuchtag"], 2) == {
            "quanshang": ("券商", 2), "meirijingjixinwenxinwen": ("每日经济新闻新闻", 2)}  # stops at 2 of 3
        publish_changed(config, db, result.categories, result.tags, result.post_ids, now=NOW)
        assert sorted(p.name for p in (tags / "quanshang").iterdir()) == ["atom.xml", "feed.xml"]
        fresh = with_output(config, tmp_path / "fresh")
        build_site(fresh, db, now=NOW)
    assert snapshot(config.site.output_dir) == snapshot(tmp_path / "fresh")


def test_opml_lists_every_category_feed_by_public_url(built) -> None:
    config, _, _ = built
    root = etree.parse(str(config.site.output_dir / "feeds.opml")).getroot()
    assert root.get("version") == "2.0"
    outlines = [(o.get("text"), o.get("xmlUrl"), o.get("htmlUrl"), o.get("type")) for o in root.iter("outline")]
    assert outlines == [
        ("每日经济新闻", URL + "meirijingjixinwen/feed.xml", URL + "meirijingjixinwen/", "rss"),
        ("Tech", URL + "tech/feed.xml", URL + "tech/", "rss"),
        ("空分类", URL + "kongfenlei/feed.xml", URL + "kongfenlei/", "rss"),
    ]


def test_pages_are_escaped_discoverable_and_script_free(built) -> None:
    config, _, _ = built
    out = config.site.output_dir
    home = (out / "index.html").read_text(encoding="utf-8")
    tech = (out / "tech" / "index.html").read_text(encoding="utf-8")
    for page in (home, tech):
        assert '<html lang="zh-CN">' in page
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        assert '<link rel="alternate" type="application/rss+xml"' in page
        assert '<link rel="alternate" type="application/atom+xml"' in page
        assert "<script" not in page
        assert "Show HN: &lt;script&gt;alert(1)&lt;/script&gt; &amp; friends" in page
    assert 'href="feed.xml"' in tech and 'href="atom.xml"' in tech
    assert "<p>摘要 4</p>" in tech  # the stored (sanitised) summary goes in as HTML
    assert tech.index("Show HN") < tech.index("Cross-posted")  # newest first
    assert "此处列出" not in tech  # every post shown: no "the latest N" note
    assert 'href="meirijingjixinwen/feed.xml"' in home and 'href="kongfenlei/atom.xml"' in home
    assert re.search(r'href="meirijingjixinwen/">每日经济新闻</a> <span class="meta">\(4\)</span>', home)
    assert re.search(r'href="tech/">Tech</a> <span class="meta">\(2\)</span>', home)


def test_hostile_category_writes_nothing_outside_output_dir(tmp_path: Path) -> None:
    extra = "  - name: Evil\n    url: https://evil.example.com/rss\n    category: ../../etc\n"
    config = write_config(tmp_path, extra=extra)
    config = with_output(config, tmp_path / "deep" / "er" / "public")
    assert "etc" in config.categories  # slugify made the name safe
    posts = standard_posts() + [
        make_post("Evil", 9, categories=["../../etc", "../../../tmp/x"], tags=["../../etc", "/abs"]),
    ]
    with store(config, posts) as db:
        report = build_site(config, db, now=NOW)
    allowed = (tmp_path / "deep" / "er" / "public", tmp_path / "jekyll")
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.name not in ("feeds.yaml",) and not path.name.startswith("db.sqlite"):
            assert any(path.is_relative_to(root) for root in allowed), path
    assert not (tmp_path / "deep" / "etc").exists() and not (tmp_path / "etc").exists()
    assert any("../../etc" in w for w in report.warnings)
    assert (tmp_path / "deep" / "er" / "public" / "etc" / "feed.xml").is_file()


def test_inside_refuses_paths_that_escape(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    for parts in (("..", "x"), ("/etc/passwd",), ("a", "..", "..", "b"), ("link", "x"), (".",)):
        with pytest.raises(UnsafePathError):
            inside(root, *parts)
    assert inside(root, "a", "feed.xml") == root.resolve() / "a" / "feed.xml"


@pytest.mark.parametrize("unnamed", [True, False], ids=["o_tmpfile", "named-temp"])
def test_write_if_changed_makes_readable_files_under_any_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    monkeypatch.setattr(atomic, "_unnamed_files", unnamed and atomic._unnamed_files)
    old = os.umask(0o077)
    try:
        target = tmp_path / "new" / "folder" / "feed.xml"  # folders made on demand
        assert write_if_changed(target, b"<rss/>")
    finally:
        os.umask(old)
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_write_if_changed_steps_over_a_dead_writers_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed process with our pid may have left `.NAME.PID.N.tmp` files: they are never reused."""
    monkeypatch.setattr(atomic, "_WRITES", itertools.count(7))  # the numbers this process tries next
    taken = [tmp_path / f".feed.xml.{os.getpid()}.{n}.tmp" for n in range(7, 57)]
    for path in taken:
        path.write_bytes(b"old")
    target = tmp_path / "feed.xml"
    target.write_bytes(b"first")  # replacing a file: always through a named temporary file
    assert write_if_changed(target, b"new") and target.read_bytes() == b"new"
    assert all(p.read_bytes() == b"old" for p in taken)
    assert len(list(tmp_path.iterdir())) == len(taken) + 1  # its own temp file was renamed


def test_a_new_file_is_written_unnamed_then_linked_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Linux a new file never exists half-written under any name, not even a temporary one."""
    if not atomic._unnamed_files:
        pytest.skip("no O_TMPFILE here")

    def no_named_temp(path: Path) -> tuple[int, str]:
        raise AssertionError(f"a named temporary file was made for {path}")

    monkeypatch.setattr(atomic, "_create_temp", no_named_temp)
    target = tmp_path / "made" / "on" / "demand.md"
    assert write_if_changed(target, "标题\n".encode() * 10_000)
    assert target.read_bytes() == "标题\n".encode() * 10_000
    assert sorted(p.name for p in target.parent.iterdir()) == ["demand.md"]
    assert not atomic._link_new(target, b"other", False)  # it exists now: never replaced this way
    assert target.read_bytes() == "标题\n".encode() * 10_000


def test_without_o_tmpfile_new_files_use_named_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an old kernel does with O_TMPFILE (it opens the folder, and writing a folder fails
    with EISDIR): the first refusal switches this process to named temporary files."""
    monkeypatch.setattr(atomic, "_unnamed_files", True)
    monkeypatch.setattr(atomic, "_UNNAMED", os.O_WRONLY)
    assert write_if_changed(tmp_path / "a.xml", b"a") and (tmp_path / "a.xml").read_bytes() == b"a"
    assert atomic._unnamed_files is False
    assert write_if_changed(tmp_path / "b.xml", b"b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.xml", "b.xml"]


def test_write_if_changed_is_atomic_and_keeps_unchanged_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "feed.xml"
    assert write_if_changed(target, b"one")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    assert not write_if_changed(target, b"one")
    assert target.stat().st_mtime_ns == 1_000_000_000
    assert write_if_changed(target, b"two") and target.read_bytes() == b"two"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
    (tmp_path / "sub" / "dir").mkdir()
    with pytest.raises(OSError):
        write_if_changed(tmp_path / "sub" / "dir", b"x")  # cannot replace a folder: temp file cleaned up
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["dir", "feed.xml"]


def test_a_file_said_to_be_absent_that_exists_is_compared_and_replaced_as_usual(tmp_path: Path) -> None:
    """`absent` (a folder scan saw no such file) skips asking first; one written meanwhile is
    neither doubled nor left stale."""
    target = tmp_path / "post.md"
    assert write_if_changed(target, b"one", absent=True) and target.read_bytes() == b"one"
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    assert not write_if_changed(target, b"one", absent=True)
    assert target.stat().st_mtime_ns == 1_000_000_000
    assert write_if_changed(target, b"two", absent=True) and target.read_bytes() == b"two"
    assert [p.name for p in tmp_path.iterdir()] == ["post.md"]


def test_builds_leave_no_temporary_files(built) -> None:
    config, _, _ = built
    for root in (config.site.output_dir, config.jekyll.dir):
        assert not [p for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_two_builds_write_identical_bytes(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with store(config, standard_posts()) as db:
        build_site(config, db, now=NOW)
        first = snapshot(config.site.output_dir)
        again = build_site(config, db, now=NOW + timedelta(hours=1))
        assert again.written == [] and again.removed == []
        assert again.unchanged == len(first) + 5  # every page and feed plus the five Jekyll posts
        other = with_output(config, tmp_path / "fresh")
        build_site(other, db, now=NOW + timedelta(days=1))
    assert snapshot(config.site.output_dir) == first
    assert snapshot(tmp_path / "fresh") == first


def test_incremental_rebuild_after_one_new_post_rewrites_only_what_changed(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    out = config.site.output_dir
    with store(config, standard_posts()) as db:
        build_site(config, db, now=NOW)
        for path in out.rglob("*"):
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        before = mtimes(out)
        new = make_post("Hacker News", 42, categories=["tech"], hours_ago=0.5, title="全新的一篇")
        result = db.store_posts([new], config.categories, now=NOW)
        report = publish_changed(config, db, result.categories, result.tags, result.post_ids, now=NOW)
        fresh = with_output(config, tmp_path / "fresh")
        build_site(fresh, db, now=NOW)
    changed = {str(p.relative_to(out)) for p in report.written if p.is_relative_to(out)}
    assert changed == {"tech/feed.xml", "tech/atom.xml", "tech/feed.json", "tech/index.html",
                       "feed.xml", "atom.xml", "feed.json", "index.html"}
    jekyll_written = [p.name for p in report.written if not p.is_relative_to(out)]
    assert jekyll_written == [f"2022-03-29-{new.id}.md"]
    after = mtimes(out)
    assert {k for k in before if after[k] != before[k]} == changed
    assert snapshot(out) == snapshot(tmp_path / "fresh")  # incremental == full build


def test_retention_deletes_old_posts_from_database_and_every_output(tmp_path: Path) -> None:
    config = write_config(tmp_path, site_extra="  retention_days: 7")
    old = make_post("每日经济新闻", 77, categories=["meirijingjixinwen"], tags=["旧标签", "每日经济新闻新闻"],
                    title="OLDPOST 旧文章", hours_ago=24 * 10)
    with store(config, standard_posts() + [old]) as db:
        early = build_site(config, db, now=NOW - timedelta(days=5))
        assert early.deleted_posts == 0
        assert (config.site.output_dir / "tag" / "jiubiaoqian" / "feed.xml").is_file()
        assert list(config.jekyll.dir.rglob(f"*{old.id}.md"))
        old_num = db.conn.execute("SELECT num FROM posts WHERE id = ?", (old.id,)).fetchone()[0]
        report = build_site(config, db, now=NOW)
        assert report.deleted_posts == 1
        assert db.get_post(old.id) is None and db.count_posts() == 5
        kept = {r[0] for r in db.conn.execute("SELECT num FROM posts")}
        for table, column in (("post_categories", "post"), ("post_tags", "post"), ("posts_fts", "rowid")):
            nums = {r[0] for r in db.conn.execute(f"SELECT {column} FROM {table}")}
            assert old_num not in nums and nums <= kept, table
        assert db.search("OLDPOST") == []
    for path in list(config.site.output_dir.rglob("*")) + list(config.jekyll.dir.rglob("*")):
        if path.is_file():
            assert b"OLDPOST" not in path.read_bytes(), path
    assert not (config.site.output_dir / "tag" / "jiubiaoqian").exists()
    assert not list(config.jekyll.dir.rglob(f"*{old.id}.md"))
    assert any(p.name == "feed.xml" and "jiubiaoqian" in str(p) for p in report.removed)


def test_build_one_category(built, tmp_path: Path) -> None:
    config, db, _ = built
    other = with_output(config, tmp_path / "one")
    report = build_site(other, db, category="tech", now=NOW)
    names = {str(p.relative_to(tmp_path / "one")) for p in report.written if p.is_relative_to(tmp_path / "one")}
    assert names == {"tech/feed.xml", "tech/atom.xml", "tech/feed.json", "tech/index.html", "feed.xml", "atom.xml",
                     "feed.json", "index.html", "feeds.opml"}


def test_cli_build_prints_what_it_wrote(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    open_store(config).close()
    with store(config, standard_posts()):
        pass
    runner = CliRunner()
    result = runner.invoke(build, [], obj=Context(config.path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"wrote {config.site.output_dir.resolve() / 'feed.xml'}" in lines
    assert re.match(r"^\d+ written, 0 unchanged, 0 removed", lines[-1])
    again = runner.invoke(build, ["--category", "tech"], obj=Context(config.path))
    assert again.exit_code == 0 and again.output.splitlines() == [again.output.splitlines()[-1]]
    assert re.match(r"^0 written, \d+ unchanged", again.output)
    by_name = runner.invoke(build, ["--category", config.categories["tech"]], obj=Context(config.path))
    assert by_name.exit_code == 0 and re.match(r"^0 written, \d+ unchanged", by_name.output)  # as `posts` takes it
    bad = runner.invoke(build, ["--category", "nope"], obj=Context(config.path))
    assert bad.exit_code == 2 and "no category 'nope' (known slugs: " in bad.output


def test_all_feed_dates_carry_the_site_offset(built) -> None:
    config, _, _ = built
    text = (config.site.output_dir / "feed.xml").read_text(encoding="utf-8")
    dates = re.findall(r"<pubDate>([^<]+)</pubDate>", text)
    assert dates and all(d.endswith("+0800") for d in dates)
    assert datetime.fromisoformat(
        json.loads((config.site.output_dir / "feed.json").read_bytes())["items"][0]["date_published"]
    ) == NOW - timedelta(hours=1)
    assert NOW.tzinfo is UTC


def test_text_xml_cannot_carry_is_dropped_not_fatal(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    post = make_post("Hacker News", 1, categories=["tech"], title="bad\x00\x0b title\x1f", author="a\x01b",
                     content="<p>x\x02y</p>", tags=["t\x03"])
    with store(config, [post]) as db:
        build_site(config, db, now=NOW)
    for name in ("feed.xml", "atom.xml"):
        entry = parse(config.site.output_dir / "tech" / name).entries[0]
        assert entry.title == "bad title" and entry.content[0].value == "<p>xy</p>"
        assert "t" in {t.term for t in entry.tags}


@pytest.mark.parametrize(
    ("guid", "kept"),
    [
        ("https://example.com/a/1", True),
        ("http://example.com/?p=1", True),
        ("tag:example.com,2022-03-28:post/1", True),
        ("urn:uuid:2f015ad8-7f43-5f48-8726-5c495e6b69e7", True),
        ("urn:isbn:9780000000001", True),
        ("NW202203282325465316", False),
        ("12345", False),
        ("http://exa mple.com/x", False),
        ("urn:x:", False),
        ("tag:nodate:1", False),
        ("/relative/path", False),
        ("", False),
    ],
)
def test_atom_keeps_only_absolute_iris_as_ids(guid: str, kept: bool) -> None:
    from aggregator.publish.items import atom_id

    post = make_post("Hacker News", 1, categories=["tech"], guid=guid)
    if kept:
        assert atom_id(post) == guid
    else:
        assert atom_id(post) == expected_atom_id(post) and atom_id(post).startswith("urn:uuid:")
        assert atom_id(post) == atom_id(make_post("Hacker News", 1, categories=["tech"], guid=guid, title="changed"))


def test_duplicate_guids_in_one_feed_get_distinct_ids(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    posts = [make_post("Hacker News", 1, categories=["tech"], guid="1", hours_ago=1),
             make_post("Slow Tech", 2, categories=["tech"], guid="1", hours_ago=2)]
    with store(config, posts) as db:
        build_site(config, db, now=NOW)
    for name in ("feed.xml", "atom.xml"):
        ids = [e.id for e in parse(config.site.output_dir / "tech" / name).entries]
        assert len(set(ids)) == 2


def test_a_big_jekyll_export_on_the_workers_writes_the_same_files(tmp_path: Path, monkeypatch) -> None:
    """Split over the worker processes (each with its own connection), the export is byte-identical
    to one made in this process, and deleted posts' files still go."""
    from dataclasses import replace as replaced

    from aggregator.publish import jekyll, jekyll_jobs
    from aggregator.workers import shared_pool

    config = write_config(tmp_path)
    posts = [make_post("每日经济新闻", n, categories=["meirijingjixinwen"], tags=["每日经济新闻新闻"], hours_ago=n)
             for n in range(40)]
    db = store(config, posts)
    inline = replaced(config, jekyll=replaced(config.jekyll, dir=tmp_path / "inline"))
    build_site(inline, db, now=NOW)
    monkeypatch.setattr(jekyll_jobs, "PARALLEL_MIN", 1)
    parallel = replaced(config, jekyll=replaced(config.jekyll, dir=tmp_path / "parallel"),
                        defaults=replaced(config.defaults, processes=2))
    report = build_site(parallel, db, now=NOW)
    assert len([p for p in report.written if p.suffix == ".md"]) == 40
    settings = jekyll.JekyllSettings.from_config(parallel, {**db.category_names(), **parallel.categories}, NOW)
    assert settings is not None
    export = jekyll_jobs.Export(db, settings, [p.id for p in posts], shared_pool(2))
    assert len(export.parts) == 2  # it did run on the workers
    export.finish(jekyll.JekyllReport())
    assert snapshot(tmp_path / "parallel") == snapshot(tmp_path / "inline")
    gone = posts[0].id
    db.conn.execute("DELETE FROM posts WHERE id = ?", (gone,))
    publish_changed(parallel, db, set(), set(), [p.id for p in posts], now=NOW)
    assert not [p for p in (tmp_path / "parallel").rglob("*.md") if gone in p.name]
    assert len(list((tmp_path / "parallel").rglob("*.md"))) == 39
    db.close()


def test_file_list_is_a_sequence_of_paths_kept_as_strings(tmp_path: Path) -> None:
    files = FileList([tmp_path / "a.xml"])
    files.append(str(tmp_path / "b.xml"))
    files += [tmp_path / "c.md"]
    files += FileList([tmp_path / "d.md"])
    assert list(files) == [tmp_path / n for n in ("a.xml", "b.xml", "c.md", "d.md")] == files
    assert files[1] == tmp_path / "b.xml" and files[-2:] == [tmp_path / "c.md", tmp_path / "d.md"]
    assert tmp_path / "c.md" in files and tmp_path / "e.md" not in files and len(files) == 4
    back = pickle.loads(pickle.dumps(files))  # a Jekyll part comes back from a worker this way
    assert back == files and isinstance(back[0], Path)


def test_a_year_one_date_stored_by_an_older_version_still_publishes_west_of_utc() -> None:
    """Year 1 cannot be shown in America/New_York (before year 1 there): every build once failed."""
    when = datetime(1, 1, 1, 2, 0, tzinfo=UTC)
    assert local_time(when, ZoneInfo("America/New_York")) == when
    assert local_time(when, ZoneInfo("America/New_York")).utcoffset() == timedelta(0)


def test_a_source_url_with_a_password_or_a_key_is_never_published(tmp_path: Path) -> None:
    """feeds.yaml may hold a feed's URL with credentials in it; each published item names its
    source's feed, but never with a user and password, and not at all when the query has a key."""
    extra = """\
  - name: Private
    url: https://reader:s3cretpw@private.example.com/feed.xml
    category: Tech
  - name: Keyed
    url: https://keyed.example.com/feed.xml?format=rss&apikey=TOPSECRET
    category: Tech
"""
    config = write_config(tmp_path, extra=extra)
    posts = [make_post("Private", 1, categories=["tech"]), make_post("Keyed", 2, categories=["tech"]),
             make_post("Hacker News", 3, categories=["tech"])]
    db = store(config, posts)
    build_site(config, db, now=NOW)
    db.close()
    published = [p for p in (tmp_path / "public").rglob("*") if p.is_file()]
    assert published and not [p for p in published if b"s3cretpw" in p.read_bytes() or b"TOPSECRET" in p.read_bytes()]
    entries = {e.title: e for e in parse(tmp_path / "public" / "tech" / "feed.xml").entries}
    assert entries["标题 1"].source.href == "https://private.example.com/feed.xml"
    assert "href" not in entries["标题 2"].get("source", {})
    assert entries["标题 3"].source.href == "https://hn.example.com/rss"
    atom = {e.title: e for e in parse(tmp_path / "public" / "tech" / "atom.xml").entries}
    assert atom["标题 2"].source.title == "Keyed" and "href" not in atom["标题 2"].source  # named, no URL
    items = {i["title"]: i for i in json.loads((tmp_path / "public" / "tech" / "feed.json").read_text())["items"]}
    assert items["标题 2"]["_source"] == {"title": "Keyed"}


@pytest.mark.parametrize(("url", "published"), [
    ("https://u:pw@h.example/f.xml?x=1", "https://h.example/f.xml?x=1"),
    ("https://h.example/f?format=rss;apikey=X", ""), ("https://h.example/feed;jsessionid=1", ""),
    ("https://h.example/f#access_token=X", ""), ("https://h.example/f?u=bob&p=hunter2", ""),
    ("https://h.example/f?apiKey=1", ""), ("https://h.example/f?X-Amz-Signature=1", ""),
    ("https://h.example/f?API%5FKEY=1", ""),
    ("https://h.example/f?author=bob&keyword=py&design=1&passage=2", "https://h.example/f?author=bob&keyword=py&design=1&passage=2"),
])
def test_public_source_url(url: str, published: str) -> None:
    assert public_source_url(url) == published
