"""RawEntry -> Post: dates, filters, rules, categories, tags, sanitising, URLs and ids.

This is where our policy lives; everything before it reports what the feed said and everything
after it only sees `Post`s.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from .config import Rule, Source
from .models import Enclosure, ParsedFeed, Post, RawEntry
from .parse_dates import names_zone
from .sanitise import absolute_url, excerpt, label_text, plain_text, sanitise_html, web_url
from .search_text import fts_text

FUTURE_TOLERANCE = timedelta(days=1)
TITLE_FALLBACK_LENGTH = 60
SUMMARY_EXCERPT_LENGTH = 280
MAX_GUID_LENGTH = 2048
# an entry's own tags kept (the source's and the rules' always are): each tag gets a feed and every
# item lists its tags, so 2,000 <category> elements in one entry made 4,000 files and 259 MB
MAX_ENTRY_TAGS = 25
_CST = re.compile(r"\bCST\s*\)?\s*$")
_NUMERIC_OFFSET = re.compile(r"[+-]\d{2}:?\d{2}\b")
_NOT_IN_MEDIA_TYPE = re.compile(r"[^!#$%&'*+\-.^_`|~0-9A-Za-z/;= \"]")  # RFC 9110 tokens, parameters
EARLIEST_YEAR = 1900  # earlier is garbage (year 1 cannot even be shown in a zone west of UTC): missing


def read_date(raw: str, parsed: datetime | None, zone: ZoneInfo) -> datetime | None:
    """The aware datetime of an entry date.

    feedparser reads a date without a zone as UTC; when the raw string names no zone, the same
    wall-clock time is read in `zone` (the source's, else the site's) instead. So is `CST` when
    that zone is at +08:00, where it means China Standard Time.
    """
    if parsed is None or parsed.year < EARLIEST_YEAR:
        return None
    wall: datetime | None = None
    if raw and not names_zone(raw):
        wall = parsed
    elif raw and _CST.search(raw) and not _NUMERIC_OFFSET.search(raw):  # "+0800 CST" says it already
        # feedparser reads CST as US Central (-06:00), but in a feed from a zone at +08:00 (China,
        # Taiwan) it means China Standard Time: there, read it as the zone's own wall clock
        central = parsed - timedelta(hours=6)
        if (zone.utcoffset(central.replace(tzinfo=None)) or timedelta(0)) == timedelta(hours=8):
            wall = central
    if wall is None:
        return parsed
    try:
        return wall.replace(tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):  # year 1 in a zone ahead of UTC: no such instant
        return None


def _dedupe(names: Iterable[str]) -> list[str]:
    """Trimmed names without case-insensitive duplicates, first spelling and order kept."""
    seen: set[str] = set()
    result = []
    for name in names:
        name = label_text(name)[:100]
        key = name.casefold()
        if name and key not in seen:
            seen.add(key)
            result.append(name)
    return result


def _first_tags(names: list[str], limit: int) -> list[str]:
    """The first `limit` distinct names (compared as written, case aside), as written."""
    seen: set[str] = set()
    result = []
    for name in names:
        key = name.strip().casefold()
        if key and key not in seen:
            seen.add(key)
            result.append(name)
            if len(result) == limit:
                break
    return result


def post_id(source: str, key: str) -> str:
    """A stable id: the same source and guid (or link, or content) always give the same id."""
    return hashlib.sha256(f"{source}\x00{key}".encode()).hexdigest()[:20]


def _scheme_twin_id(source: str, key: str) -> str:
    """The post id `key` would give with http and https swapped, or "" when it is not such a URL."""
    scheme, colon, rest = key.partition(":")
    other = {"http": "https", "https": "http"}.get(scheme.lower()) if colon and rest.startswith("//") else None
    return post_id(source, f"{other}:{rest}") if other else ""


def content_hash(post: Post) -> str:
    """A digest of everything a reader would see change; date only when the feed gave one."""
    payload = [
        post.title, post.link, post.author, post.summary, post.content, post.categories, post.tags,
        [[e.url, e.type, e.length] for e in post.enclosures],
        post.date.isoformat() if post.dated else "",
        post.updated.isoformat() if post.updated else "",
    ]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:32]


def _matches(patterns: Iterable[re.Pattern[str]], texts: list[str]) -> bool:
    return any(p.search(t) for p in patterns for t in texts if t)


class Normaliser:
    """Turns one source's raw entries into Posts under the config's rules."""

    def __init__(self, source: Source, rules: Sequence[Rule], site_zone: ZoneInfo, fetched_at: datetime):
        self.source = source
        self.rules = rules
        self.fetched_at = fetched_at
        self.zone = source.timezone or site_zone
        self.skipped: list[str] = []

    def posts(self, feed: ParsedFeed) -> list[Post]:
        """Posts of a feed, newest first, at most `max_entries`, without duplicate ids."""
        seen: set[str] = set()
        posts = []
        for position, entry in enumerate(feed.entries):
            try:
                post = self.post(entry, feed, position)
            except (OverflowError, ValueError) as exc:  # one bad entry must not sink the batch
                self.skipped.append(f"{entry.guid or entry.link or entry.title[:60] or 'an entry'}: {exc}")
                continue
            if post is not None and post.id not in seen:
                seen.add(post.id)
                posts.append(post)
        posts.sort(key=lambda p: p.date, reverse=True)
        return posts[: self.source.max_entries]

    def post(self, entry: RawEntry, feed: ParsedFeed, position: int = 0) -> Post | None:
        """The Post of one entry (the `position`-th of its feed), or None when the source's
        include/exclude filters drop it."""
        if not (entry.title.strip() or entry.link or entry.guid or entry.summary.strip() or entry.content.strip()):
            raise ValueError("no title, link, id or text")  # <item></item>: nothing to show or to know it by
        feed_base = absolute_url(feed.link, self.source.url) or self.source.url
        guid = entry.guid[:MAX_GUID_LENGTH]  # the stored guid is cut; the id comes from all of it
        link = absolute_url(entry.link, feed_base) or absolute_url(entry.guid, "")
        base = link or feed_base
        # relative URLs in Atom content resolve against its xml:base (RFC 4287), else the entry's link
        content_base = absolute_url(entry.content_base if entry.content else entry.summary_base, "") or base
        content = sanitise_html(entry.content or entry.summary, content_base)
        text = plain_text(content)
        summary_is_content = not entry.content  # the same fragment: sanitised and read once
        if summary_is_content:
            summary, summary_text = content, text
        else:
            summary_base = absolute_url(entry.summary_base, "") or base
            summary = sanitise_html(entry.summary, summary_base) if entry.summary else ""
            if not summary and text:
                summary = excerpt(text, SUMMARY_EXCERPT_LENGTH).replace("&", "&amp;").replace("<", "&lt;")
            summary_text = plain_text(summary)
        title = label_text(entry.title, entry.title_is_html)
        title = title or excerpt(text, TITLE_FALLBACK_LENGTH) or link or "(untitled)"
        if self.source.include and not _matches(self.source.include, [title, summary_text]):
            return None
        if _matches(self.source.exclude, [title, summary_text]):
            return None
        categories = [c.slug for c in self.source.categories]
        tags = list(self.source.tags) + _first_tags(entry.tags, MAX_ENTRY_TAGS)
        for rule in self.rules:
            if _matches([rule.match], [title, summary_text, *entry.tags]):
                categories += [c.slug for c in rule.categories if c.slug not in categories]
                tags += rule.tags
        published = read_date(entry.published_raw, entry.published, self.zone)
        updated = read_date(entry.updated_raw, entry.updated, self.zone)
        date = published or updated
        if updated is not None and self._future(updated):
            updated = None  # clamped, it would be a new "update" at every poll
        post = Post(
            id=post_id(self.source.name, entry.guid or link or hashlib.sha256((title + content).encode()).hexdigest()),
            source=self.source.name,
            title=title,
            link=web_url(link),  # the id above comes from the link as the feed gave it: ids stay stable
            guid=guid,
            date=self._clamp(date, position),
            # with only <updated>, it is also kept: a later edit is then dated by the feed itself
            updated=updated if updated and (updated != date or published is None) else None,
            author=label_text(entry.author or feed.author)[:200],
            summary=summary,
            content=content,
            categories=list(dict.fromkeys(categories)),
            tags=_dedupe(tags),
            enclosures=self._enclosures(entry.enclosures, base),
            # a date that can move (none; only Atom's <updated>, which changes with every edit;
            # one from the future, clamped to each fetch) is not ours to follow: the post keeps
            # the date it was first stored with, and its Jekyll file keeps its name
            dated=published is not None and not self._future(published),
        )
        post.content_hash = content_hash(post)
        post.scheme_twin_id = _scheme_twin_id(self.source.name, entry.guid or link)
        # the full-text index's words, made ready here in the worker rather than by the one thread
        # that stores every source's posts (the words once when the summary is the content)
        post.text = fts_text(text if summary_is_content else summary_text + " " + text)
        return post

    def _future(self, when: datetime) -> bool:
        return when > self.fetched_at + FUTURE_TOLERANCE

    def _clamp(self, when: datetime | None, position: int) -> datetime:
        """A missing date becomes the fetch time; one more than a day ahead is clamped to it. Less
        a second per entry above it in the feed: feeds list their newest first, and entries seen
        at the same moment would otherwise tie, and come out in whatever order they were stored."""
        if when is None or self._future(when):
            return self.fetched_at - timedelta(seconds=position)
        return when

    @staticmethod
    def _enclosures(enclosures: list[Enclosure], base: str) -> list[Enclosure]:
        """Absolute enclosures with a media type. feedparser gives an Atom enclosure link without a
        `type` its default for links, text/html; the file's extension says better (a.mp3 is
        audio/mpeg), else application/octet-stream."""
        result = []
        for enc in enclosures:
            url = web_url(absolute_url(enc.url, base))
            if url:
                kind = _NOT_IN_MEDIA_TYPE.sub("", enc.type).lower()
                if kind in ("", "text/html"):
                    kind = mimetypes.guess_type(urlsplit(url).path)[0] or "application/octet-stream"
                result.append(Enclosure(url, kind[:100], enc.length))
        return result
