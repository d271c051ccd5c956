"""Shared set-up for the publishing tests: a feeds.yaml in tmp_path, real posts in a real SQLite store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import Config, load_config
from aggregator.models import Enclosure, Post
from aggregator.normalise import content_hash, post_id
from aggregator.store import Store

NOW = datetime(2022, 3, 29, 4, 0, 0, tzinfo=UTC)
SEED_TITLE = "上海券商抗疫进行时：各大券商快速出台应急方案 金融科技又立功了 关怀驻守员工身心健康！"

CONFIG = """\
site:
  title: 财经聚合
  url: https://finews.example.org/news/
  timezone: Asia/Shanghai
  output_dir: public
  database: db.sqlite
  feed_size: {feed_size}
  tag_feed_min: {tag_feed_min}
  description: 财经新闻聚合
{site_extra}
sources:
  - name: 每日经济新闻
    url: https://feeds.example.com/nbd.xml
    category: 每日经济新闻
    tags: [每日经济新闻新闻]
    interval: 10m
  - name: Hacker News
    url: https://hn.example.com/rss
    category: Tech
    interval: 2h
  - name: Slow Tech
    url: https://slow.example.com/atom
    category: Tech
    interval: 1d
  - name: Nobody
    url: https://empty.example.com/rss
    category: 空分类
{extra}
"""

JEKYLL = """\
jekyll:
  dir: jekyll
  archive_after_days: 3
  back_to_category: "返回{category}新闻"
"""


def write_config(
    tmp_path: Path, *, feed_size: int = 50, tag_feed_min: int = 1, site_extra: str = "", extra: str = "",
    jekyll: bool = True,
) -> Config:
    """Write feeds.yaml into tmp_path and load it the way the CLI does."""
    text = CONFIG.format(feed_size=feed_size, tag_feed_min=tag_feed_min, site_extra=site_extra, extra=extra)
    path = tmp_path / "feeds.yaml"
    path.write_text(text + (JEKYLL if jekyll else ""), encoding="utf-8")
    return load_config(path)


def make_post(
    source: str, n: int, *, categories: list[str], tags: list[str] | None = None, guid: str | None = None,
    date: datetime | None = None, title: str | None = None, hours_ago: float = 0, **fields: object,
) -> Post:
    """A post as normalise would produce it: stable id from source and guid, content hash set."""
    guid = f"https://articles.example.com/{source}/{n}" if guid is None else guid
    link = str(fields.pop("link", f"https://articles.example.com/{n}?src={n}"))
    when = date or NOW - timedelta(hours=hours_ago)
    post = Post(
        id=post_id(source, guid or link),
        source=source,
        title=title if title is not None else f"标题 {n}",
        link=link,
        guid=guid,
        date=when,
        updated=fields.pop("updated", None),  # type: ignore[arg-type]
        author=str(fields.pop("author", "")),
        summary=str(fields.pop("summary", f"<p>摘要 {n}</p>")),
        content=str(fields.pop("content", f"<p>正文 {n} <strong>粗体</strong></p>")),
        categories=categories,
        tags=tags or [],
        enclosures=list(fields.pop("enclosures", [])),  # type: ignore[call-overload]
    )
    assert not fields, f"unknown fields {fields}"
    post.content_hash = content_hash(post)
    return post


def open_store(config: Config) -> Store:
    return Store(config.site.database)


def store(config: Config, posts: list[Post]) -> Store:
    """Store `posts` in the config's database (tmp_path/db.sqlite) and return the open store."""
    db = open_store(config)
    db.store_posts(posts, config.categories, now=NOW)
    return db


def standard_posts() -> list[Post]:
    """A small realistic mix: Chinese and English posts, tags, an enclosure, authors, odd guids."""
    nbd = ["meirijingjixinwen"]
    return [
        make_post("每日经济新闻", 1, categories=nbd, tags=["每日经济新闻新闻", "券商"], guid="NW202203282325465316",
                  hours_ago=1, title=SEED_TITLE,
                  link="http://finews.zning.xyz/html_News/NewsShare.html?infoCode=NW202203282325465316"),
        make_post("每日经济新闻", 2, categories=nbd, tags=["每日经济新闻新闻"], hours_ago=5, author="记者 张三",
                  updated=NOW - timedelta(hours=2)),
        make_post("每日经济新闻", 3, categories=nbd, tags=["每日经济新闻新闻"], guid="", hours_ago=30,
                  author="editor@nbd.example.com"),
        make_post("Hacker News", 4, categories=["tech"], tags=["Show HN"], guid="tag:hn.example.com,2022:4",
                  hours_ago=2, title="Show HN: <script>alert(1)</script> & friends",
                  enclosures=[Enclosure("https://cdn.example.com/a.mp3", "audio/mpeg", 12345),
                              Enclosure("https://cdn.example.com/b.jpg", "image/jpeg", 0)]),
        make_post("Slow Tech", 5, categories=["tech", "meirijingjixinwen"], guid="urn:isbn:9780000000001",
                  hours_ago=3, title="Cross-posted", summary=""),
    ]


def with_output(config: Config, output_dir: Path) -> Config:
    return replace(config, site=replace(config.site, output_dir=output_dir))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root, by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}
