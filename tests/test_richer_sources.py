"""Full article text, JSON Feed sources, autodiscovery and per-source HTTP options (real HTTP)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from aggregator.article import decode_page
from aggregator.pipeline import fetch_sources

from .conftest import fixture, run_cli, write_config
from .feedserver import FeedServer

ARTICLE = """<!doctype html><html><head><meta charset="{charset}"><title>{title}</title></head><body>
<nav class="menu"><a href="/">首页</a> <a href="/news/">新闻</a> <a href="/data/">数据中心</a></nav>
<div class="ad">广告：开户送好礼，点击领取大奖</div>
<article>
<h1>{title}</h1>
<p>从3月28日起，上海以黄浦江为界分别在浦东和浦西开展区域封控和大规模核酸筛查。在这段特殊时间内，由于各金融市场依然照常运行，所以上海的券商行业也需要在此期间能保障各项业务的运转。</p>
<h2>金融科技又立功了</h2>
<p>朱镕基曾说：光大证券表示，为保障业务连续性开展，光大证券加强金融科技创新应用，全力保障生产安全。<a href="more.html">相关阅读</a></p>
<ul><li>佣金宝APP</li><li>网上交易客户端</li><li>微信服务号</li></ul>
<p><img src="img/chart.png" alt="走势图"></p>
<p>公司持续开发线上业务办理功能，截至目前已通过金阳光APP、微信服务号、网上交易客户端等线上渠道，提供了46项业务办理功能。</p>
</article>
<div class="share">分享到：微博 微信 QQ空间</div>
<div id="comments"><h3>网友评论</h3><p>用户甲：写得真好！</p></div>
<footer>版权所有 © 2022 示例财经</footer>
</body></html>"""


def teaser_feed(server: FeedServer, items: list[tuple[str, str]], base: str = "") -> str:
    base = base or server.url("")
    body = "".join(
        f"<item><title>{title}</title><guid>{guid}</guid><link>{base}/news/{guid}.html</link>"
        f"<pubDate>Mon, {10 + i:02d} Mar 2022 10:00:00 +0800</pubDate><description>摘要：{title}</description></item>"
        for i, (guid, title) in enumerate(items)
    )
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'


def article(title: str, charset: str = "utf-8") -> bytes:
    return ARTICLE.format(title=title, charset=charset).encode(charset, errors="xmlcharrefreplace")


def test_full_text_replaces_teaser_with_the_article(server: FeedServer, make_config: Any, open_store: Any) -> None:
    server.add("/feed.xml", teaser_feed(server, [("a1", "券商出台应急方案")]), etag='"1"')
    server.add("/news/a1.html", article("券商出台应急方案"), content_type="text/html; charset=utf-8")
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    store = open_store(config)
    report = fetch_sources(config, store)
    assert report.outcomes[0].articles_ok == 1
    assert (report.new, report.updated) == (1, 0)  # the article completes a new post: not an update too
    (post,) = store.posts()
    assert "光大证券加强金融科技创新应用" in post.content and "<li>佣金宝APP</li>" in post.content
    assert "<h2>金融科技又立功了</h2>" in post.content
    for clutter in ("首页", "数据中心", "广告", "分享到", "网友评论", "用户甲", "版权所有"):
        assert clutter not in post.content, clutter
    assert f'href="{server.url("/news/more.html")}"' in post.content  # resolved against the page
    assert f'src="{server.url("/news/img/chart.png")}"' in post.content
    assert post.summary == "摘要：券商出台应急方案"  # the feed's own text stays as summary
    assert post.updated is not None
    assert store.search("金阳光")[0].id == post.id
    # unchanged feed entry (304): no article fetched again
    fetch_sources(config, store)
    assert len(server.hits("/news/a1.html")) == 1
    # an edit of the entry with the same link updates the title but keeps the article
    server.add("/feed.xml", teaser_feed(server, [("a1", "券商出台应急方案（更新）")]), etag='"2"')
    fetch_sources(config, store)
    (post,) = store.posts()
    assert post.title == "券商出台应急方案（更新）" and "光大证券加强金融科技创新应用" in post.content
    assert len(server.hits("/news/a1.html")) == 1


def test_an_entry_edited_when_its_owed_article_arrives_is_one_update(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    server.add("/feed.xml", teaser_feed(server, [("b1", "标题")]), etag='"1"')
    server.add("/news/b1.html", b"down", status=500)
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    store = open_store(config)
    assert (fetch_sources(config, store).new, store.posts()[0].content) == (1, "摘要：标题")  # article owed
    server.add("/feed.xml", teaser_feed(server, [("b1", "标题（更新）")]), etag='"2"')
    server.add("/news/b1.html", article("标题"), content_type="text/html; charset=utf-8")
    report = fetch_sources(config, store)
    assert report.outcomes[0].articles_ok == 1 and (report.new, report.updated) == (0, 1)
    assert "光大证券" in store.posts()[0].content


def test_gbk_article_page_decodes_from_meta_charset(server: FeedServer, make_config: Any, open_store: Any) -> None:
    server.add("/feed.xml", teaser_feed(server, [("g1", "镕字标题")]))
    server.add("/news/g1.html", article("镕字标题", charset="gbk"), content_type="text/html")
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    store = open_store(config)
    fetch_sources(config, store)
    assert "朱镕基曾说" in store.posts()[0].content


def test_article_pages_decode_as_browsers_read_them_and_resolve_against_base_href(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """A GBK page served as UTF-8 (its <meta> right), a GBK page declaring nothing and a UTF-8
    page keeping its old <meta charset=gb2312> were stored as mojibake or U+FFFD and marked done.
    A <base href> moves what relative links mean; a lazy-loading placeholder is not the picture."""
    page = article("镕字标题", charset="gbk")
    server.add("/feed.xml", teaser_feed(server, [("h1", "错标"), ("h2", "无标"), ("h3", "旧标")]))
    server.add("/news/h1.html", page, content_type="text/html; charset=utf-8")
    server.add("/news/h2.html", page.replace(b'<meta charset="gbk">', b""), content_type="text/html")
    moved = article("镕字标题").replace(b'<meta charset="utf-8">', b'<meta charset="gb2312">')
    moved = moved.replace(b"<title>", b'<base href="/cdn/x/"><title>').replace(
        b'<img src="img/chart.png"', b'<img class="lazy" src="/static/images/grey.gif" data-original="../img/chart.png"')
    server.add("/news/h3.html", moved, content_type="text/html")
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    store = open_store(config)
    fetch_sources(config, store)
    contents = {p.guid: p.content for p in store.posts()}
    for guid in ("h1", "h2", "h3"):
        assert "朱镕基曾说" in contents[guid] and "\ufffd" not in contents[guid], (guid, contents[guid][:200])
    assert f'<img src="{server.url("/cdn/img/chart.png")}"' in contents["h3"], contents["h3"]
    assert f'href="{server.url("/cdn/x/more.html")}"' in contents["h3"]


@pytest.mark.parametrize(
    ("body", "content_type", "forced", "text"),
    [
        ("<p>券商</p>".encode("gbk"), "text/html; charset=utf-8", "", "<p>券商</p>"),  # wrong header, no meta
        ('<meta charset="gb2312"><p>券商</p>'.encode(), "text/html", "", '<meta charset="gb2312"><p>券商</p>'),
        ("<p>券商</p>".encode("gbk"), "text/html", "gbk", "<p>券商</p>"),
        ("<p>券商</p>".encode(), "text/html", "gb18030", "<p>" + "券商".encode().decode("gb18030") + "</p>"),  # told
        ("<p>café</p>".encode("cp1252"), "text/html; charset=windows-1252", "", "<p>café</p>"),
        (b"<p>caf\xe9 </p>", "text/html", "", "<p>caf\xe9 </p>"),  # declares nothing and is not GBK either
        (b"<p>\xff\xfe</p>", "text/html; charset=idna", "", "<p>\xff\xfe</p>"),  # no codec for pages: next one
    ],
)
def test_decode_page(body: bytes, content_type: str, forced: str, text: str) -> None:
    assert decode_page(body, content_type, forced) == text


def test_full_text_turned_on_fetches_the_articles_of_entries_still_in_the_feed(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """Users turn full_text on after a first run: the posts stored without it stayed teasers."""
    server.add("/feed.xml", teaser_feed(server, [("t1", "镕字标题"), ("t2", "第二篇")]))
    for guid in ("t1", "t2"):
        server.add(f"/news/{guid}.html", article("镕字标题"), content_type="text/html; charset=utf-8")
    store = open_store(make_config([{"name": "s", "url": server.url("/feed.xml")}]))
    fetch_sources(make_config([{"name": "s", "url": server.url("/feed.xml")}]), store)
    assert not server.hits("/news/t1.html")
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True}])
    report = fetch_sources(config, store)
    assert report.outcomes[0].articles_ok == 2 and report.updated == 2
    assert all("朱镕基曾说" in p.content for p in store.posts())
    again = fetch_sources(config, store)
    assert (again.outcomes[0].articles_ok, len(server.hits("/news/t1.html"))) == (0, 1)


def test_failing_article_falls_back_is_recorded_retried_then_left_alone(server: FeedServer, tmp_path: Path) -> None:
    server.add("/feed.xml", teaser_feed(server, [("e1", "出错的文章")]), etag='"1"')
    server.add("/news/e1.html", b"oops", status=500)
    write_config(tmp_path, [{"name": "s", "url": server.url("/feed.xml"), "full_text": True, "full_text_retries": 2}])
    first = run_cli("fetch", cwd=tmp_path)
    assert first.returncode == 0, first.stderr  # an article failure is not a failed source
    assert "articles: s: 1 failed, last: " in first.stderr and "HTTP 500" in first.stderr
    rows = [json.loads(line) for line in run_cli("posts", "--format", "json", cwd=tmp_path).stdout.splitlines()]
    assert rows[0]["content"] == "摘要：出错的文章"
    listed = json.loads(run_cli("sources", "list", "--format", "json", cwd=tmp_path).stdout)
    assert "HTTP 500" in listed[0]["article_error"]
    for command in (("sources", "list"), ("status",)):  # the tables show it too, where errors are
        table = run_cli(*command, cwd=tmp_path, env={"COLUMNS": "400"}).stdout
        assert re.search(r"article: \S+/news/e1\.html: HTTP 500", table), table
    for _ in range(4):
        run_cli("fetch", cwd=tmp_path)
    assert len(server.hits("/news/e1.html")) == 3  # first try + full_text_retries, then left alone
    assert [r.path for r in server.requests].count("/feed.xml") == 5


def test_full_text_max_and_owed_articles_after_304(server: FeedServer, make_config: Any, open_store: Any) -> None:
    items = [(f"m{i}", f"文章{i}") for i in range(5)]
    server.add("/feed.xml", teaser_feed(server, items), etag='"1"')
    for guid, title in items:
        server.add(f"/news/{guid}.html", article(title), content_type="text/html")
    config = make_config([{"name": "s", "url": server.url("/feed.xml"), "full_text": True, "full_text_max": 2}])
    store = open_store(config)
    fetch_sources(config, store)
    assert {p.title for p in store.posts() if "光大证券" in p.content} == {"文章4", "文章3"}  # newest first
    second = fetch_sources(config, store)
    assert second.outcomes[0].result == "not-modified" and second.outcomes[0].articles_ok == 2
    assert (second.new, second.updated) == (0, 2)  # posts stored before, completed now: updated
    fetch_sources(config, store)
    assert all("光大证券" in p.content for p in store.posts())
    assert sum(len(server.hits(f"/news/{g}.html")) for g, _ in items) == 5


def test_article_is_fetched_when_only_the_second_source_of_a_twin_has_full_text(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """The same article through a teaser source without full_text (stored first, it owns the post) and
    one with it: the merged post still gets its article, fetched once, with the second source's settings."""
    items = [("t1", "券商出台应急方案")]
    server.add("/plain.xml", teaser_feed(server, items), etag='"1"')
    server.add("/full.xml", teaser_feed(server, items).replace("<guid>t1</guid>", "<guid>other-id</guid>"),
               etag='"1"')
    server.add("/news/t1.html", article("券商出台应急方案"), content_type="text/html; charset=utf-8")
    config = make_config([
        {"name": "plain", "url": server.url("/plain.xml")},
        {"name": "full", "url": server.url("/full.xml"), "full_text": True, "headers": {"X-Token": "full"}},
    ])
    store = open_store(config)
    fetch_sources(config, store, [config.sources[0]])
    assert store.pending_articles("plain", 10, 3) == [] and not server.hits("/news/t1.html")

    report = fetch_sources(config, store)
    assert report.outcomes[1].articles_ok == 1, report.outcomes
    (post,) = store.posts()
    assert post.source == "plain" and "光大证券加强金融科技创新应用" in post.content
    (hit,) = server.hits("/news/t1.html")
    assert hit.headers.get("x-token") == "full"  # the settings of the source that asked for it
    fetch_sources(config, store)
    assert len(server.hits("/news/t1.html")) == 1 and store.pending_articles("full", 10, 3) == []


def test_full_text_selector(server: FeedServer, make_config: Any, open_store: Any) -> None:
    server.add("/feed.xml", teaser_feed(server, [("s1", "选择器")]))
    server.add("/news/s1.html", article("选择器"), content_type="text/html")
    config = make_config(
        [{"name": "s", "url": server.url("/feed.xml"), "full_text": True, "full_text_selector": "div.share"}]
    )
    store = open_store(config)
    fetch_sources(config, store)
    assert store.posts()[0].content == "<div>分享到：微博 微信 QQ空间</div>"  # class is kept on <p> only


def test_json_feed_sources(server: FeedServer, make_config: Any, open_store: Any) -> None:
    feed11 = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON 财经",
        "home_page_url": "https://json.example.com/",
        "items": [
            {
                "id": "j1",
                "url": "https://json.example.com/1",
                "title": "第一条",
                "content_html": "<p>正文<script>x</script></p>",
                "summary": "摘要",
                "date_published": "2022-03-28T22:51:22+08:00",
                "date_modified": "2022-03-29T08:00:00+08:00",
                "authors": [{"name": "记者甲"}],
                "tags": ["券商", "市场"],
                "attachments": [
                    {"url": "https://json.example.com/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 42}
                ],
            },
            {"id": 2, "url": "/2", "content_text": "纯文本内容\n \n\n第二段\r\n第二行 <b>\n", "date_published": "2022-03-28 10:00:00"},
        ],
    }
    feed10 = {
        "version": "https://jsonfeed.org/version/1",
        "title": "old",
        "items": [
            {
                "id": "o1",
                "url": "https://old.example.com/1",
                "title": "旧版",
                "content_text": "x",
                "author": {"name": "作者乙"},
            }
        ],
    }
    config = make_config(
        [
            {"name": "j11", "url": server.add("/f.json", json.dumps(feed11), content_type="application/feed+json")},
            {"name": "j10", "url": server.add("/old.json", json.dumps(feed10), content_type="application/json")},
            {"name": "api", "url": server.add("/api.json", json.dumps({"data": []}), content_type="application/json")},
        ]
    )
    store = open_store(config)
    report = fetch_sources(config, store)
    results = {o.source: (o.result, o.error) for o in report.outcomes}
    assert results["j11"][0] == "ok" and results["j10"][0] == "ok"
    assert results["api"] == ("error", "not a feed: JSON without a jsonfeed.org version")
    by_guid = {p.guid: p for p in store.posts(limit=None)}
    first = by_guid["j1"]
    assert first.title == "第一条" and first.content == "<p>正文</p>" and first.summary == "摘要"
    assert first.date.isoformat() == "2022-03-28T14:51:22+00:00" and first.updated is not None
    assert first.author == "记者甲" and first.tags == ["券商", "市场"]
    assert first.enclosures[0].url == "https://json.example.com/a.mp3" and first.enclosures[0].length == 42
    second = by_guid["2"]
    assert second.link == "https://json.example.com/2" and second.title == "纯文本内容 第二段 第二行 <b>"
    assert second.content == "<p>纯文本内容</p><p>第二段<br>第二行 &lt;b&gt;</p>"  # a line end is a line break
    assert second.date.isoformat() == "2022-03-28T02:00:00+00:00"  # zone-less: read in Asia/Shanghai
    assert by_guid["o1"].author == "作者乙"


PAGE = """<html><head><title>站点</title>
<link rel="alternate" type="application/rss+xml" title="RSS 全部" href="/feeds/all.xml">
<link rel="alternate" type="application/atom+xml" title="Atom 财经" href="feeds/finance.atom">
<link rel="alternate" type="application/json" title="REST API" href="/wp-json/">
<link rel="alternate" type="application/json" title="JSON Feed" href="/feed.json">
<link rel="stylesheet" href="/style.css">
</head><body>home</body></html>"""


def test_autodiscovery_adds_first_lists_and_picks(server: FeedServer, tmp_path: Path) -> None:
    server.add("/site/", PAGE, content_type="text/html; charset=utf-8")
    server.add("/feeds/all.xml", fixture("rss091.xml"))
    server.add("/site/feeds/finance.atom", fixture("atom10.xml"), content_type="application/atom+xml")
    server.add("/wp-json/", json.dumps({"routes": {}}), content_type="application/json")
    server.add(
        "/feed.json",
        json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": []}),
        content_type="application/json",
    )
    path = write_config(tmp_path, [])
    listed = run_cli("sources", "add", server.url("/site/"), "--list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        f"1. {server.url('/feeds/all.xml')} (RSS: RSS 全部)",
        f"2. {server.url('/site/feeds/finance.atom')} (Atom: Atom 财经)",
        f"3. {server.url('/feed.json')} (JSON Feed: JSON Feed)",
    ]
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["sources"] == []
    first = run_cli("sources", "add", server.url("/site/"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"({server.url('/feeds/all.xml')}, found on {server.url('/site/')})" in first.stdout
    picked = run_cli("sources", "add", server.url("/site/"), "--pick", "2", "--name", "财经", cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr
    sources = yaml.safe_load(path.read_text(encoding="utf-8"))["sources"]
    assert [(s["name"], s["url"]) for s in sources] == [
        ("RSS 全部", server.url("/feeds/all.xml")),
        ("财经", server.url("/site/feeds/finance.atom")),
    ]
    too_far = run_cli("sources", "add", server.url("/site/"), "--pick", "9", cwd=tmp_path)
    assert too_far.returncode == 2 and "only 3 feed(s) found" in too_far.stderr


def test_autodiscovery_without_feeds_is_a_clear_error(server: FeedServer, tmp_path: Path) -> None:
    server.add("/plain/", "<html><head><title>x</title></head><body>no feeds</body></html>", content_type="text/html")
    path = write_config(tmp_path, [])
    before = path.read_bytes()
    result = run_cli("sources", "add", server.url("/plain/"), cwd=tmp_path)
    assert result.returncode == 1
    assert (
        result.stderr.strip() == f"error: {server.url('/plain/')}: no feed found (not a feed, and the page links none)"
    )
    assert path.read_bytes() == before


def test_headers_and_env_token_reach_only_the_feed_host_and_appear_nowhere(server: FeedServer, tmp_path: Path) -> None:
    token = "s3cr3t-T0KEN-value"
    other = f"http://localhost:{server.port}"  # the same server under another host name
    server.add("/feed.xml", teaser_feed(server, [("h1", "头条")], base=other), etag='"x"')
    server.add("/news/h1.html", article("头条"), content_type="text/html")
    # a second feed (other links, so no post is shared) reached through a redirect to another host
    server.add("/hop.xml", teaser_feed(server, [("k1", "转载")], base="http://hop.example.com"))
    server.redirect("/moved.xml", f"{other}/hop.xml", 302)
    write_config(
        tmp_path,
        [
            {
                "name": "private",
                "url": server.url("/feed.xml"),
                "full_text": True,
                "user_agent": "MyReader/2 (${UA_TAG})",
                "headers": {"Authorization": "Bearer ${FEED_TOKEN}", "Referer": "https://finance.example.com/"},
            },
            {"name": "hop", "url": server.url("/moved.xml"), "headers": {"X-Token": "${FEED_TOKEN}"}},
        ],
        jekyll={"dir": "jekyll"},
    )
    env = {"FEED_TOKEN": token, "UA_TAG": "ops"}
    result = run_cli("fetch", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    feed_hits = server.hits("/feed.xml")
    direct = feed_hits
    assert direct[0].headers["authorization"] == f"Bearer {token}"
    assert direct[0].headers["referer"] == "https://finance.example.com/"
    assert direct[0].headers["user-agent"] == "MyReader/2 (ops)"
    # the article lives on another host: no source headers go there
    (article_hit,) = server.hits("/news/h1.html")
    assert "authorization" not in article_hit.headers and "referer" not in article_hit.headers
    # a redirect to another host drops the header
    assert server.hits("/moved.xml")[0].headers["x-token"] == token
    (via_redirect,) = server.hits("/hop.xml")
    assert via_redirect.headers["host"].startswith("localhost") and "x-token" not in via_redirect.headers
    # the secret is nowhere: output, logs, database, published files
    outputs = [result.stdout, result.stderr]
    for command in (
        ["sources", "list", "--format", "json"],
        ["status", "--format", "json"],
        ["check"],
        ["posts", "--format", "json"],
    ):
        run = run_cli(*command, cwd=tmp_path, env=env)
        outputs += [run.stdout, run.stderr]
    assert not any(token in text for text in outputs)
    for file in tmp_path.rglob("*"):
        if file.is_file() and file.name != "feeds.yaml":
            assert token.encode() not in file.read_bytes(), file


def test_headers_do_not_follow_to_another_port_of_the_same_host(server: FeedServer, tmp_path: Path) -> None:
    """Another port is another server: neither a redirect nor an article link takes the token there."""
    elsewhere = FeedServer().start()
    try:
        elsewhere.add("/p.xml", teaser_feed(elsewhere, [("p1", "跳转")], base="http://p.example.com"))
        elsewhere.add("/news/a1.html", article("文章"), content_type="text/html")
        server.redirect("/jump.xml", elsewhere.url("/p.xml"), 302)
        server.add("/art.xml", teaser_feed(server, [("a1", "文章")], base=elsewhere.url("")))
        token = {"X-Token": "s3cr3t"}
        write_config(tmp_path, [
            {"name": "jump", "url": server.url("/jump.xml"), "headers": token},
            {"name": "art", "url": server.url("/art.xml"), "headers": token, "full_text": True},
        ])
        result = run_cli("fetch", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert server.hits("/jump.xml")[0].headers["x-token"] == "s3cr3t"
        assert server.hits("/art.xml")[0].headers["x-token"] == "s3cr3t"
        for path in ("/p.xml", "/news/a1.html"):
            (hit,) = elsewhere.hits(path)
            assert "x-token" not in hit.headers, path
    finally:
        elsewhere.stop()


def test_unset_environment_variable_is_a_config_error(tmp_path: Path) -> None:
    write_config(
        tmp_path, [{"name": "p", "url": "https://p.example.com/rss", "headers": {"X-Key": "${NOT_SET_ANYWHERE}"}}]
    )
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "header 'X-Key': environment variable NOT_SET_ANYWHERE is not set" in result.stderr
    assert result.stderr.startswith("feeds.yaml:")


def test_verify_tls_false_is_warned_by_check(tmp_path: Path) -> None:
    write_config(tmp_path, [{"name": "intranet", "url": "https://10.0.0.1/rss", "verify_tls": False, "timeout": "5s"}])
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 0
    assert "warning: feeds.yaml:" in result.stderr and "verify_tls is false" in result.stderr
