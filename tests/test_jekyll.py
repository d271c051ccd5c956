"""Jekyll export: the old site's post layout byte for byte, YAML-safe front matter, archiving."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from aggregator.publish import build_site, publish_changed
from aggregator.publish.jekyll import JekyllSettings, render_post, yaml_quote, yaml_tags
from aggregator.store import Store

from .feedserver import FeedServer
from .publish_helpers import NOW, SEED_TITLE, make_post, store, write_config

# a copy of ../shared/seeds/000_28c7a69b8ba706d3.txt, a post of the site this product replaces
SEED = Path(__file__).resolve().parent / "fixtures" / "seed_post.md"
SEED_LINK = "http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203282325465316"
SEED_DATE = datetime(2022, 3, 28, 14, 51, 22, tzinfo=UTC)  # 2022-03-28 22:51:22 +0800
SEED_CONFIG = """\
site:
  title: 财经新闻
  url: https://finews.withounder.com/
  timezone: Asia/Shanghai
  output_dir: public
  database: db.sqlite
sources:
  - name: 每日经济新闻
    url: https://feeds.example.com/nbd.xml
    category: 每日经济新闻
    tags: [每日经济新闻新闻]
jekyll:
  dir: jekyll
  archive_after_days: 3
  back_to_category: "返回{category}新闻"
  back_to_home: "返回首页"
"""


def seed_bytes() -> bytes:
    return SEED.read_bytes()


def seed_content(data: bytes) -> str:
    text = data.decode("utf-8")
    body = text.split("\n---\n", 1)[1]
    return body[: body.index("\n\n<http://")]


def seed_setup(tmp_path: Path, old_site: bool):
    from aggregator.config import load_config

    path = tmp_path / "feeds.yaml"
    # the old site linked categories as /category/SLUG.html
    extra = '  category_url: "{base}category/{slug}.html"\n' if old_site else ""
    path.write_text(SEED_CONFIG + extra, encoding="utf-8")
    config = load_config(path)
    post = make_post("每日经济新闻", 1, categories=["meirijingjixinwen"], tags=["每日经济新闻新闻"],
                     guid="NW202203282325465316", date=SEED_DATE, title=SEED_TITLE, link=SEED_LINK,
                     content=seed_content(seed_bytes()))
    return config, post


def test_seed_post_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    config, post = seed_setup(tmp_path, old_site=True)
    assert config.categories == {"meirijingjixinwen": "每日经济新闻"}
    with store(config, [post]) as db:
        build_site(config, db, now=SEED_DATE + timedelta(hours=2))
    written = tmp_path / "jekyll" / "_posts" / f"2022-03-28-{post.id}.md"
    assert written.read_bytes() == seed_bytes()
    assert not written.read_bytes().endswith(b"\n")


def test_the_seed_post_comes_out_of_its_feed_byte_for_byte(server: FeedServer, tmp_path: Path) -> None:
    """The whole way: the seed's item served as RSS, fetched, sanitised, stored and exported gives the
    old site's file again, its <p class="em_media"> included."""
    from html import escape

    from aggregator.config import load_config
    from aggregator.pipeline import fetch_sources

    item = (f"<item><title>{escape(SEED_TITLE)}</title><link>{escape(SEED_LINK)}</link>"
            '<guid isPermaLink="false">NW202203282325465316</guid>'
            "<pubDate>Mon, 28 Mar 2022 22:51:22 +0800</pubDate>"
            f"<description>{escape(seed_content(seed_bytes()))}</description></item>")
    feed = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>nbd</title>{item}</channel></rss>'
    url = server.add("/nbd.xml", feed)
    config_text = SEED_CONFIG.replace("https://feeds.example.com/nbd.xml", url)
    (tmp_path / "feeds.yaml").write_text(config_text + '  category_url: "{base}category/{slug}.html"\n', "utf-8")
    config = load_config(tmp_path / "feeds.yaml")
    with Store(config.site.database) as db:
        report = fetch_sources(config, db)
        assert report.new == 1, [o.error for o in report.outcomes]
        build_site(config, db, now=SEED_DATE + timedelta(hours=2))
    (written,) = (tmp_path / "jekyll" / "_posts").glob("*.md")
    assert written.name.startswith("2022-03-28-") and written.read_bytes() == seed_bytes()


def test_default_layout_links_to_our_category_page(tmp_path: Path) -> None:
    config, post = seed_setup(tmp_path, old_site=False)
    with store(config, [post]) as db:
        build_site(config, db, now=SEED_DATE)
    written = (tmp_path / "jekyll" / "_posts" / f"2022-03-28-{post.id}.md").read_bytes()
    expected = seed_bytes().replace(b"//finews.withounder.com/category/meirijingjixinwen.html",
                                    b"//finews.withounder.com/meirijingjixinwen/")
    assert written == expected
    last_line = (
        "[返回每日经济新闻新闻](//finews.withounder.com/meirijingjixinwen/)｜[返回首页](//finews.withounder.com/)"
    )
    assert written.endswith(last_line.encode())


def front_matter(data: bytes) -> dict:
    text = data.decode("utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text[4: text.index("\n---\n")])


def settings(tmp_path: Path) -> JekyllSettings:
    config = write_config(tmp_path)
    result = JekyllSettings.from_config(config, config.categories, NOW)
    assert result is not None
    return result


HOSTILE_TITLES = [
    'He said "hi"', "a: b", "key: value # not a comment", "---", "--- \n...", "line1\nline2", "@user", "*bold*",
    "&anchor", "!tag", "? question", "- dash", "| pipe", "> folded", "%directive", "`tick", "[x]", "{a: 1}",
    "it's", "back\\slash", "\\n literal", "tab\there", "\x00\x07\x08\x1b\x1f", "del\x7f c1\x80\x9f", "nel\x85x",
    "ls\u2028ps\u2029", "\ufeffbom", "yes", "null", "~", "123", "1e3", "2022-03-28", "emoji 😀", "中文：冒号",
    " leading and trailing ", "", '"', "\\", "\r\n",
]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_any_title_reads_back_unchanged(tmp_path: Path, title: str) -> None:
    post = make_post("Hacker News", 1, categories=["tech"], tags=["a b", "c"], title=title)
    data = render_post(post, settings(tmp_path))
    meta = front_matter(data)
    # `<` and `>` are written as references so a layout's unescaped {{ page.title }} adds no tags
    assert meta["title"] == title.replace("<", "&lt;").replace(">", "&gt;")
    assert meta["layout"] == "post" and meta["categories"] == "tech" and meta["tags"] == ["a b", "c"]
    assert meta["date"] == "2022-03-29 12:00:00 +0800"  # Jekyll reads this form itself
    assert yaml.safe_load(yaml_quote(title)) == title
    head = data.decode().split("\n---\n", 1)[0]
    assert len(head.splitlines()) == 6  # nothing in a title can add a line to the front matter


def test_no_liquid_survives_in_the_body_or_the_link(tmp_path: Path) -> None:
    """Jekyll runs Liquid over the whole file: one `{%` without its end stops the site's build."""
    post = make_post("Hacker News", 1, categories=["tech"], content="<p>{{ site.x }} {% raw %} [a](b)</p>",
                     link="http://h.example.com/q?x={%25 raw %25}&y={{a}}&z={%raw%}")
    body = render_post(post, settings(tmp_path)).decode().split("\n---\n", 1)[1]
    assert "{" not in body  # a lone }} or %} is text to Liquid: only { opens a tag
    assert "\n\n<http://h.example.com/q?x=%7B%25%20raw%20%25%7D&y=%7B%7Ba%7D%7D&z=%7B%raw%%7D>\n\n" in body
    assert "<p>&#123;&#123; site.x }} &#123;% raw %} &#91;a&#93;(b)</p>" in body


@pytest.mark.parametrize(
    ("content", "body"),
    [
        ("<p>already a _block_</p>", "<p>already a _block_</p>"),  # the usual case and the seed's: untouched
        ("Plain _underscore_ and | pipe.\n# not a heading\n\n    indented",
         "<p>Plain _underscore_ and | pipe.\n# not a heading</p><p>indented</p>"),
        ("intro <b>bold</b>\n\n<p>para</p>", "<div>intro <b>bold</b>\n\n<p>para</p></div>"),
        ('<a href="https://x.example.com/">read\n\nmore</a>', '<div><a href="https://x.example.com/">read\n\nmore</a></div>'),
        ("<img src=\"https://x.example.com/i.png\"><pre>x\n\ny</pre>", "<div><img src=\"https://x.example.com/i.png\"><pre>x\n\ny</pre></div>"),
        ("<details><summary>s</summary>\n\nbody</details>", "<details><summary>s</summary>\n\nbody</details>"),
        # pretty-printed (a full-text article): the indented lines after the first block were a code block
        ("<p>a</p>\n    <p>b</p>\n\t<p>c</p>", "<div><p>a</p>\n    <p>b</p>\n\t<p>c</p></div>"),
        ("<h1>t</h1>\n  \t<p>b</p>", "<div><h1>t</h1>\n  \t<p>b</p></div>"),
        ("<p>a</p>\n <p>b</p>\n   <p>c</p>", "<p>a</p>\n <p>b</p>\n   <p>c</p>"),  # the seed's one-space lines
    ],
)
def test_body_text_is_inside_html_blocks_so_kramdown_leaves_it(tmp_path: Path, content: str, body: str) -> None:
    """kramdown reads text outside HTML blocks as Markdown: _x_ became emphasis, a | a table."""
    post = make_post("Hacker News", 1, categories=["tech"], content=content, link="")
    written = render_post(post, settings(tmp_path)).decode().split("\n---\n", 1)[1]
    assert written.split("\n\n[")[0] == body


@pytest.mark.parametrize(
    ("tags", "written"),
    [
        (["每日经济新闻新闻"], "每日经济新闻新闻"),
        (["rust", "python3", "C++"], "rust python3 C++"),
        (["foo bar", "baz"], '["foo bar", baz]'),
        (["yes"], '["yes"]'),
        (["2022"], '["2022"]'),
        (["c#", "a,b", "x]"], '["c#", "a,b", "x]"]'),
        (['say "hi"', "中文 标签"], '["say \\"hi\\"", "中文 标签"]'),
        ([], "[]"),
    ],
)
def test_tags_are_plain_words_or_a_flow_list(tags: list[str], written: str) -> None:
    assert yaml_tags(tags) == written
    value = yaml.safe_load(f"tags: {written}")["tags"]
    assert (value.split() if isinstance(value, str) else value) == tags


def test_back_links_use_the_category_and_source_names(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config = replace(config, jekyll=replace(config.jekyll, back_to_category="回到{category}（{source}）",
                                            back_to_home="回到[首页]"))
    result = JekyllSettings.from_config(config, config.categories, NOW)
    post = make_post("Hacker News", 1, categories=["tech"], title="t")
    text = render_post(post, result).decode()
    assert text.endswith(
        "[回到Tech（Hacker News）](//finews.example.org/news/tech/)｜[回到\\[首页\\]](//finews.example.org/news/)"
    )


def jekyll_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.md"))}


def test_old_posts_are_archived_by_moving_not_copying(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    recent = make_post("Hacker News", 1, categories=["tech"], hours_ago=1)
    old = make_post("Hacker News", 2, categories=["tech"], hours_ago=24 * 10)
    root = config.jekyll.dir
    with store(config, [recent, old]) as db:
        build_site(config, db, now=NOW)
        assert sorted(jekyll_files(root)) == [f"_posts/2022-03-29-{recent.id}.md", f"old_posts/2022-03-19-{old.id}.md"]
        moving = root / "_posts" / f"2022-03-29-{recent.id}.md"
        os.utime(moving, ns=(1_000_000_000, 1_000_000_000))
        content, inode = moving.read_bytes(), moving.stat().st_ino
        later = NOW + timedelta(days=5)
        report = publish_changed(config, db, set(), set(), [], now=later)  # nothing new: only ageing
        moved = root / "old_posts" / moving.name
        assert moved in report.written and not moving.exists()
        assert moved.read_bytes() == content and moved.stat().st_ino == inode
        assert moved.stat().st_mtime_ns == 1_000_000_000
        assert sorted(jekyll_files(root)) == [
            f"old_posts/2022-03-19-{old.id}.md", f"old_posts/2022-03-29-{recent.id}.md"]
        again = build_site(config, db, now=later)
    assert not [p for p in again.written if p.is_relative_to(root)]


def test_boundary_of_archive_after_days_is_by_local_date(tmp_path: Path) -> None:
    config = write_config(tmp_path)  # archive_after_days: 3
    at = datetime(2022, 3, 26, 0, 30, tzinfo=UTC)  # 08:30 on the 26th in Shanghai
    kept = make_post("Hacker News", 1, categories=["tech"], date=at)
    gone = make_post("Hacker News", 2, categories=["tech"], date=at - timedelta(hours=9))  # 25th, 23:30
    with store(config, [kept, gone]) as db:
        build_site(config, db, now=NOW)  # 29th in Shanghai: the 26th is 3 days ago
    assert sorted(jekyll_files(config.jekyll.dir)) == [
        f"_posts/2022-03-26-{kept.id}.md", f"old_posts/2022-03-25-{gone.id}.md"]


def test_reexport_of_unchanged_posts_rewrites_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    posts = [make_post("Hacker News", n, categories=["tech"], hours_ago=n) for n in range(4)]
    with store(config, posts) as db:
        first = build_site(config, db, now=NOW)
        assert len([p for p in first.written if p.suffix == ".md"]) == 4
        for path in config.jekyll.dir.rglob("*.md"):
            os.utime(path, ns=(1_000_000_000, 1_000_000_000))
        report = publish_changed(config, db, {"tech"}, set(), [p.id for p in posts], now=NOW)
    assert not [p for p in report.written if p.suffix == ".md"]
    assert all(p.stat().st_mtime_ns == 1_000_000_000 for p in config.jekyll.dir.rglob("*.md"))


def test_a_post_whose_date_changes_leaves_no_duplicate(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    post = make_post("Hacker News", 1, categories=["tech"], hours_ago=1)
    with store(config, [post]) as db:
        build_site(config, db, now=NOW)
        moved = make_post("Hacker News", 1, categories=["tech"], hours_ago=49, content="<p>new date</p>")
        result = db.store_posts([moved], config.categories, now=NOW)
        report = publish_changed(config, db, result.categories, result.tags, result.post_ids, now=NOW)
    assert sorted(jekyll_files(config.jekyll.dir)) == [f"_posts/2022-03-27-{post.id}.md"]
    assert config.jekyll.dir / "_posts" / f"2022-03-29-{post.id}.md" in report.removed


def test_an_incremental_publish_removes_only_the_files_of_posts_gone(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    posts = [make_post("Hacker News", n, categories=["tech"], hours_ago=n) for n in range(1, 4)]
    with store(config, posts) as db:
        build_site(config, db, now=NOW)
        before = jekyll_files(config.jekyll.dir)
        db.delete_posts_before(NOW - timedelta(hours=2, minutes=30))  # the oldest post goes
        report = publish_changed(config, db, {"tech"}, set(), [p.id for p in posts], now=NOW)
    gone = [name for name in before if posts[2].id in name]
    assert len(gone) == 1
    assert jekyll_files(config.jekyll.dir) == {k: v for k, v in before.items() if k not in gone}
    assert list(report.removed) == [config.jekyll.dir / gone[0]]


def test_the_sites_own_jekyll_posts_are_left_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path, site_extra="  retention_days: 1")
    mine = [config.jekyll.dir / "_posts" / "2019-01-01-hello.md", config.jekyll.dir / "old_posts" / "2018-05-05-x.md"]
    for path in mine:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("---\ntitle: mine\n---\n", encoding="utf-8")
    with store(config, [make_post("Hacker News", 1, categories=["tech"], hours_ago=1)]) as db:
        build_site(config, db, now=NOW + timedelta(days=30))  # retention deletes the post, archive runs
    assert all(path.read_text(encoding="utf-8") == "---\ntitle: mine\n---\n" for path in mine)
    assert sorted(jekyll_files(config.jekyll.dir)) == ["_posts/2019-01-01-hello.md", "old_posts/2018-05-05-x.md"]


def test_no_jekyll_section_writes_no_jekyll_files(tmp_path: Path) -> None:
    config = write_config(tmp_path, jekyll=False)
    with store(config, [make_post("Hacker News", 1, categories=["tech"])]) as db:
        report = build_site(config, db, now=NOW)
    assert all(p.is_relative_to(config.site.output_dir) for p in report.written)
    assert not (tmp_path / "jekyll").exists()


def test_control_characters_are_dropped_from_the_body_as_from_the_feeds(tmp_path: Path) -> None:
    """Dropped once, when the HTML is sanitised at ingest: no output sees them."""
    from aggregator.sanitise import sanitise_html

    html = sanitise_html('<p class="em_media">a\x01b\x08c\x0cd\ufffee\uffff</p><a class="btn" href="http://x.example/">x</a>')
    assert html == '<p class="em_media">abcde</p><a href="http://x.example/" rel="noopener noreferrer">x</a>'
    post = make_post("每日经济新闻", 7, categories=["meirijingjixinwen"], content=html)
    text = render_post(post, settings(tmp_path)).decode("utf-8")
    assert "<p class=\"em_media\">abcde</p>" in text and not any(c in text for c in "\x01\x08\x0c\ufffe\uffff")
