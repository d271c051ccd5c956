"""Orchestration: which outputs to (re)build from the database, and writing them.

`build_site` rebuilds everything (after applying retention); `publish_changed` rebuilds only what a
fetch touched: the feeds and pages of the changed categories and tags, the all-categories feeds, the
home page, the OPML list and the Jekyll files of the changed posts. Both go through the same
per-output functions, so the incremental path gives the same bytes as a full build.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from ..config import Config
from ..errors import NotFoundError, PublishError
from ..models import Post
from ..store import Store
from ..workers import shared_pool
from . import jekyll
from .atomic import inside, remove_file, sweep_temp_files, write_if_changed
from .feeds import render_atom, render_rss
from .filelist import FileList
from .items import FeedInfo, feed_items, public_source_url, xml_text
from .jekyll_jobs import Export
from .jsonfeed import render_json
from .opml import OpmlFeed, render_opml
from .pages import CategorySummary, FeedLinks, post_view, render_category_page, render_home_page

HOME_POSTS_PER_CATEGORY = 5
TAG_DIR = "tag"
FEED_FILES = ("feed.xml", "atom.xml", "feed.json")
TAG_FEED_FILES = ("feed.xml", "atom.xml")
CATEGORY_FILES = ("feed.xml", "atom.xml", "feed.json", "index.html")
_SAFE_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass
class PublishReport:
    """What a build did: files written because their bytes changed, files left alone, files removed."""

    written: FileList = field(default_factory=FileList)
    unchanged: int = 0
    removed: FileList = field(default_factory=FileList)
    deleted_posts: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.written)} written, {self.unchanged} unchanged, {len(self.removed)} removed"
        return text + (f"; {self.deleted_posts} old posts deleted" if self.deleted_posts else "")


class _Publisher:
    """One build: the config, the store and what is known about categories and tags for it."""

    def __init__(self, config: Config, store: Store, now: datetime | None, tags: Iterable[str] | None = None):
        """`tags`: only these tags will be published (their counts are looked up alone); None: all."""
        self.config = config
        self.store = store
        self.site = config.site
        self.now = now or datetime.now(UTC)
        self.report = PublishReport()
        stored = store.category_names()
        unknown = {slug: name for slug, name in config.categories.items() if slug not in stored}
        if unknown:  # published below even without posts: known from now on, so removing it from
            with contextlib.suppress(sqlite3.OperationalError):  # feeds.yaml makes it stale and its
                store.remember_categories(unknown)  # folder goes; busy now, it is recorded next time
        self.names = {**stored, **config.categories}
        self.source_urls = {s.name: public_source_url(s.url) for s in config.sources}
        self.counts = store.category_counts()
        self.tags = store.tag_counts() if tags is None else store.tag_info(tags, config.site.tag_feed_min)

    # -- writing -------------------------------------------------------------------------------

    def write(self, data: bytes, *parts: str) -> None:
        path = inside(self.site.output_dir, *parts)
        if write_if_changed(path, data):
            self.report.written.append(path)
        else:
            self.report.unchanged += 1

    def remove(self, *parts: str) -> None:
        path = inside(self.site.output_dir, *parts)
        if remove_file(path):
            self.report.removed.append(path)

    # -- what exists ---------------------------------------------------------------------------

    def categories(self) -> list[str]:
        """Every category to publish: the config's (even empty ones), then others still holding posts
        (a category renamed or removed in feeds.yaml, until its posts are gone)."""
        others = {s for s in self.names if s not in self.config.categories and not self.stale(s)}
        slugs = list(self.config.categories) + sorted(others)
        return [s for s in slugs if self.safe(s, "category")]

    def stale(self, slug: str) -> bool:
        """A category stored once that is no longer published: no longer configured, no posts left."""
        return slug not in self.config.categories and not self.counts.get(slug, 0)

    def stale_categories(self) -> list[str]:
        return sorted(s for s in self.names if self.stale(s) and self.safe(s, "category"))

    def safe(self, slug: str, kind: str) -> bool:
        """Slugs are safe by construction, but the database may hold anything: skip (and say) otherwise."""
        if _SAFE_SLUG.match(slug):
            return True
        warning = f"skipped {kind} with unsafe slug {slug!r}"
        if warning not in self.report.warnings:
            self.report.warnings.append(warning)
        return False

    def ttl(self, sources: Iterable[str] | None = None, category: str | None = None) -> int:
        """Minutes a reader may cache a feed: the shortest interval among the sources feeding it."""
        enabled = [s for s in self.config.sources if s.enabled]
        if category is not None:
            chosen = [s for s in enabled if any(c.slug == category for c in s.categories)]
        elif sources is not None:
            wanted = set(sources)
            chosen = [s for s in enabled if s.name in wanted]
        else:
            chosen = enabled
        interval = min((s.interval for s in chosen or enabled), default=self.config.defaults.interval)
        return max(1, math.ceil(interval / 60))

    def info(self, title: str, home: str, prefix: str, ttl: int, json: bool = True) -> FeedInfo:
        url = self.site.url
        title = xml_text(title)
        return FeedInfo(
            title=title,
            description=xml_text(self.site.description) or title,
            home_url=url + home,
            rss_url=url + prefix + "feed.xml",
            atom_url=url + prefix + "atom.xml",
            json_url=url + prefix + "feed.json" if json else "",
            language=self.site.language,
            author_name=xml_text(self.site.title),
            author_url=url,
            ttl_minutes=ttl,
            zone=self.site.timezone,
            hub_url=self.site.websub_hub,
        )

    # -- outputs -------------------------------------------------------------------------------

    def feeds(self, info: FeedInfo, posts: list[Post], folder: tuple[str, ...], json: bool = True) -> None:
        owners = self.store.guid_owners(p.guid for p in posts)
        items = feed_items(posts, self.site.timezone, self.names, self.source_urls, owners)
        self.write(render_rss(info, items), *folder, "feed.xml")
        self.write(render_atom(info, items), *folder, "atom.xml")
        if json:
            self.write(render_json(info, items), *folder, "feed.json")

    def category(self, slug: str) -> None:
        """SLUG/feed.xml, atom.xml, feed.json and index.html; removed for a stale category."""
        if self.stale(slug):
            if (self.site.output_dir / slug).is_symlink():  # an operator's alias of another folder: not ours
                return
            for file in CATEGORY_FILES:
                self.remove(slug, file)
            with contextlib.suppress(OSError):  # the folder, when nothing else is in it
                inside(self.site.output_dir, slug).rmdir()
            return
        name = self.names.get(slug, slug)
        posts = self.store.posts(category=slug, limit=self.site.feed_size)
        title = f"{name} · {self.site.title}"
        self.feeds(self.info(title, f"{slug}/", f"{slug}/", self.ttl(category=slug)), posts, (slug,))
        page = render_category_page(self.site, name, self.counts.get(slug, 0), posts)
        self.write(page, slug, "index.html")

    def everything(self) -> None:
        """The all-categories feeds at the top of output_dir."""
        posts = self.store.posts(limit=self.site.feed_size)
        self.feeds(self.info(self.site.title, "", "", self.ttl()), posts, ())

    def tag(self, slug: str) -> None:
        """tag/SLUG/feed.xml and atom.xml when the tag is on enough posts, else remove them."""
        name, count = self.tags.get(slug, (slug, 0))
        if count < self.site.tag_feed_min:
            for file in TAG_FEED_FILES:
                self.remove(TAG_DIR, slug, file)
            return
        posts = self.store.posts(tag=slug, limit=self.site.feed_size)
        info = self.info(f"#{name} · {self.site.title}", "", f"{TAG_DIR}/{slug}/", self.ttl({p.source for p in posts}))
        self.feeds(info, posts, (TAG_DIR, slug), json=False)

    def home(self) -> None:
        boxes = [
            CategorySummary(
                name=self.names.get(slug, slug),
                href=f"{slug}/",
                count=self.counts.get(slug, 0),
                feeds=FeedLinks.under(f"{slug}/"),
                posts=[post_view(p, self.site) for p in self.store.posts(category=slug, limit=HOME_POSTS_PER_CATEGORY)],
            )
            for slug in self.categories()
        ]
        self.write(render_home_page(self.site, boxes), "index.html")

    def opml(self) -> None:
        url = self.site.url
        feeds = [OpmlFeed(self.names.get(s, s), f"{url}{s}/feed.xml", f"{url}{s}/") for s in self.categories()]
        self.write(render_opml(self.site.title, feeds), "feeds.opml")

    def stale_tags(self) -> list[str]:
        """Tag folders on disk whose tag no longer has a feed (too few posts left)."""
        folder = self.site.output_dir / TAG_DIR
        if not folder.is_dir():
            return []
        return sorted(e.name for e in os.scandir(folder) if e.is_dir() and e.name not in self.tags)

    # -- Jekyll --------------------------------------------------------------------------------

    def jekyll_settings(self) -> jekyll.JekyllSettings | None:
        return jekyll.JekyllSettings.from_config(self.config, self.names, self.now)

    def start_jekyll(self, post_ids: list[str] | None = None) -> Callable[[], None]:
        """Start exporting `post_ids` (None: every post, pruning files of posts gone); the returned
        function waits for the export, deletes the files of posts not stored, archives aged ones.
        Between the two, a big export runs on the worker processes while this one builds feeds."""
        settings = self.jekyll_settings()
        if settings is None:
            return lambda: None
        everything = post_ids is None
        ids = sorted(self.store.post_ids()) if post_ids is None else list(dict.fromkeys(post_ids))
        export = Export(self.store, settings, ids, shared_pool(self.config.defaults.processes))

        def finish() -> None:
            result = jekyll.JekyllReport()
            missing: list[str] = []
            export.finish(result, missing)
            if everything:
                jekyll.prune(set(ids), settings, result)
            else:
                jekyll.remove_posts(missing, settings, result)
            jekyll.archive_old(settings, result)
            self.merge(result)

        return finish

    def jekyll_posts(self, posts: list[Post]) -> None:
        """Export these posts (a one-category build) and archive aged files."""
        settings = self.jekyll_settings()
        if settings is None:
            return
        result = jekyll.JekyllReport()
        jekyll.export_posts(posts, settings, result, [p.id for p in posts])
        jekyll.archive_old(settings, result)
        self.merge(result)

    def merge(self, result: jekyll.JekyllReport) -> None:
        self.report.written += result.written
        self.report.unchanged += result.unchanged
        self.report.removed += result.removed
        self.report.warnings += [f"skipped Jekyll export of post with unsafe id {i!r}" for i in result.skipped]


F = TypeVar("F", bound=Callable[..., Any])


def _publish_errors(func: F) -> F:
    """Any OSError while writing output becomes a PublishError naming the path."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PublishError:
            raise
        except OSError as exc:  # a move names its target second: that is where it could not write
            where = exc.filename2 or exc.filename or "the output"
            raise PublishError(f"cannot write {where}: {exc.strerror or exc}") from exc

    return wrapper  # type: ignore[return-value]


@_publish_errors
def build_site(config: Config, store: Store, category: str | None = None, now: datetime | None = None) -> PublishReport:
    """Rebuild every output (or only one category's) from the database; return what changed.

    A full build first applies `site.retention_days` (deleting older posts from the database), then
    writes every category, tag and all-categories feed, the pages, the OPML list and the Jekyll
    export, and removes tag feeds and Jekyll files whose posts are gone. A one-category build leaves
    retention alone: deleting posts would leave every other category's outputs stale.
    """
    if category is not None:
        names = store.category_names(config.categories)
        if category not in names:
            raise NotFoundError(f"no category with slug {category!r} (known: {', '.join(sorted(names))})")
        publisher = _Publisher(config, store, now)
        publisher.category(category)
        publisher.everything()
        publisher.home()
        publisher.opml()
        publisher.jekyll_posts(store.posts(category=category, limit=None))
        return publisher.report
    sweep_temp_files(config.site.output_dir)  # left behind by a process killed mid-write
    if config.jekyll is not None:
        sweep_temp_files(config.jekyll.dir)
    owed = store.abandoned_runs()  # runs killed before publishing: this build covers what they stored
    deleted = 0
    if config.site.retention_days:
        owed.append(store.note_run())  # killed after deleting, it would leave the deleted posts' files
        cutoff = (now or datetime.now(UTC)) - timedelta(days=config.site.retention_days)
        deleted = store.delete_posts_before(cutoff)
    publisher = _Publisher(config, store, now)
    publisher.report.deleted_posts = deleted
    finish_jekyll = publisher.start_jekyll()
    for slug in publisher.categories() + publisher.stale_categories():
        publisher.category(slug)
    for slug in sorted(publisher.tags):
        if publisher.safe(slug, "tag"):
            publisher.tag(slug)
    for slug in publisher.stale_tags():
        if publisher.safe(slug, "tag folder"):
            publisher.tag(slug)
    publisher.everything()
    publisher.home()
    publisher.opml()
    finish_jekyll()
    store.forget_runs(owed)
    return publisher.report


@_publish_errors
def publish_changed(
    config: Config, store: Store, categories: set[str], tags: set[str], post_ids: list[str],
    now: datetime | None = None,
) -> PublishReport:
    """Rebuild only what a fetch changed: those categories and tags (slugs), the shared outputs
    (all-categories feeds, home page, OPML), any category not published yet and the Jekyll files
    of `post_ids`.

    Called by the pipeline after storing a batch with the StoreResult's categories, tags and post ids.
    """
    publisher = _Publisher(config, store, now, tags)
    finish_jekyll = publisher.start_jekyll(post_ids)
    # the home page and the OPML list link every category: one never published yet (no posts so
    # far, or added to feeds.yaml since) gets its empty page and feeds now, not a 404
    unpublished = {s for s in publisher.categories() if not (config.site.output_dir / s / "index.html").is_file()}
    for slug in sorted(categories | unpublished):
        if publisher.safe(slug, "category"):
            publisher.category(slug)
    for slug in sorted(tags):
        if publisher.safe(slug, "tag"):
            publisher.tag(slug)
    publisher.everything()
    publisher.home()
    publisher.opml()
    finish_jekyll()
    return publisher.report
