"""The HTML pages: the home page and one page per category, from Jinja2 templates.

Autoescape is on for everything; the only markup inserted as-is is a post's summary, which the store
holds already sanitised (nh3) — titles, names and links are always escaped. Pages are mobile-friendly,
carry no JavaScript and no build time, and link to their own feeds (autodiscovery and visible links).
Links between pages are relative, so the site works the same served locally or under site.url.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ..config import Site
from ..dates import local_time
from ..models import Post

LABELS = {
    "zh": {"posts": "篇", "empty": "暂无文章。", "all": "全部订阅", "latest": "此处列出最新 {} 篇"},
    "en": {"posts": "posts", "empty": "No posts yet.", "all": "All categories", "latest": "the latest {} shown here"},
}


@dataclass(frozen=True)
class FeedLinks:
    """The hrefs of one feed's three formats, relative to the page that shows them."""

    rss: str
    atom: str
    json: str

    @classmethod
    def under(cls, prefix: str) -> FeedLinks:
        return cls(prefix + "feed.xml", prefix + "atom.xml", prefix + "feed.json")


@dataclass(frozen=True)
class PostView:
    """A post as a page shows it: text fields are escaped by the template, `summary` is trusted."""

    title: str
    link: str
    date: str
    iso_date: str
    source: str
    summary: Markup


@dataclass(frozen=True)
class CategorySummary:
    """One category's box on the home page."""

    name: str
    href: str
    count: int
    feeds: FeedLinks
    posts: Sequence[PostView] = field(default_factory=tuple)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The template environment, built once: loading templates is the slow part of rendering."""
    return Environment(
        loader=PackageLoader("aggregator", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def safe_href(url: str) -> str:
    """`url` when it is an http(s) link, else '' (never a javascript: or data: href)."""
    try:
        return url if urlsplit(url).scheme in ("http", "https") else ""
    except ValueError:
        return ""


def post_view(post: Post, site: Site) -> PostView:
    """What a page needs of a post, its date in the site's zone."""
    local = local_time(post.date, site.timezone)
    return PostView(
        title=post.title,
        link=safe_href(post.link),
        date=local.strftime("%Y-%m-%d %H:%M"),
        iso_date=local.isoformat(),
        source=post.source,
        summary=Markup(post.summary),  # sanitised by normalise before it was stored
    )


def _labels(site: Site) -> dict[str, str]:
    return LABELS["zh"] if site.language.lower().startswith("zh") else LABELS["en"]


def render_category_page(site: Site, name: str, count: int, posts: Sequence[Post]) -> bytes:
    """The page of one category (written as SLUG/index.html): its newest posts and feed links.
    Of `count` posts it shows those given (the feeds' `feed_size`), and says so when that is fewer."""
    html = environment().get_template("category.html").render(
        lang=site.language,
        title=f"{name} · {site.title}",
        description=site.description,
        site_title=site.title,
        home_href="../",
        feeds=FeedLinks.under(""),
        name=name,
        count=count,
        posts=[post_view(p, site) for p in posts],
        labels=_labels(site),
    )
    return html.encode("utf-8")


def render_home_page(site: Site, categories: Sequence[CategorySummary], opml_href: str = "feeds.opml") -> bytes:
    """The home page (index.html): every category with its post count, latest posts and feeds."""
    html = environment().get_template("home.html").render(
        lang=site.language,
        title=site.title,
        description=site.description,
        site_title=site.title,
        home_href="./",
        feeds=FeedLinks.under(""),
        opml_href=opml_href,
        categories=categories,
        labels=_labels(site),
    )
    return html.encode("utf-8")
