"""The shapes that cross stages: what fetch returns, what parse yields and the post schema.

Every stage takes and returns these typed values, never loose dicts, so a field added here is
visible (and type-checked) everywhere it flows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Enclosure:
    """A file attached to an entry (podcast audio, an image...)."""

    url: str
    type: str = ""
    length: int = 0


@dataclass
class FetchResult:
    """What one HTTP fetch of a source produced.

    `body` is None for a 304 (not modified); `url` is where the request ended after redirects and
    `permanent_redirect` says whether every hop to it was a 301/308 (so the new URL may be remembered).
    """

    status: int
    body: bytes | None
    headers: dict[str, str]
    url: str
    permanent_redirect: bool = False
    elapsed_ms: int = 0
    #: where the redirects the request began with were all permanent (301/308) to: the source's new
    #: URL even when a temporary one follows (http -> https for good, then a CDN's 302); '' if none
    moved_to: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class RawEntry:
    """One entry as the feed gave it, before any of our rules: the output of `parse`.

    Dates are kept both as the raw string (so a date without a zone can be read in the source's
    zone) and as feedparser's UTC reading.
    """

    guid: str = ""
    link: str = ""
    title: str = ""
    title_is_html: bool = False
    summary: str = ""
    content: str = ""
    #: the xml:base in effect on the summary and on the content (Atom), which their relative
    #: URLs are resolved against; "" when the feed sets none
    summary_base: str = ""
    content_base: str = ""
    author: str = ""
    published_raw: str = ""
    published: datetime | None = None
    updated_raw: str = ""
    updated: datetime | None = None
    tags: list[str] = field(default_factory=list)
    enclosures: list[Enclosure] = field(default_factory=list)


@dataclass
class ParsedFeed:
    """The result of parsing one feed document."""

    title: str
    link: str
    entries: list[RawEntry]
    warning: str = ""
    author: str = ""  # the feed's own author: an entry without one inherits it (Atom, RFC 4287 4.2.1)


@dataclass
class Post:
    """The post schema: the one shape every stage after parsing passes around.

    `date` and `updated` are timezone-aware. `categories` holds slugs; `tags` holds tag names.
    `dated` is False when the feed gave no fixed publication date (none, only Atom's `updated`, or
    one more than a day ahead, clamped to the fetch time): an update of the entry then keeps the
    date the post was first stored with instead of moving it.
    """

    id: str
    source: str
    title: str
    link: str
    guid: str
    date: datetime
    updated: datetime | None
    author: str
    summary: str
    content: str
    categories: list[str]
    tags: list[str]
    enclosures: list[Enclosure]
    content_hash: str = ""
    dated: bool = True
    #: plain text of summary and content for the full-text index, Han characters spaced
    #: (search_text.fts_text), computed once by normalise in a worker process (not stored, not
    #: public; empty on posts read back from the database)
    text: str = ""
    #: the id the post would have if its guid (or link, without a guid) had the other of http and
    #: https: a site moving to HTTPS republishes every entry under a new guid, and the store then
    #: keeps the post it holds under this id (normalise sets it; not stored, not public)
    scheme_twin_id: str = ""

    #: the fields `posts --format json` prints, in order: the public post schema
    PUBLIC_FIELDS = (
        "id", "source", "title", "link", "guid", "date", "updated", "author", "summary",
        "content", "categories", "tags", "enclosures",
    )


@dataclass
class SourceOutcome:
    """What one fetch of one source did: recorded on the source and summed up by the CLI."""

    source: str
    result: str  # "ok", "not-modified" or "error"
    http_status: int | None = None
    error: str = ""
    warning: str = ""
    new: int = 0
    updated: int = 0
    url: str = ""
    permanent_redirect: bool = False
    moved_to: str = ""  # FetchResult.moved_to
    elapsed_ms: int = 0
    changed_categories: set[str] = field(default_factory=set)
    changed_tags: set[str] = field(default_factory=set)
    changed_post_ids: list[str] = field(default_factory=list)
    retry_after: float | None = None
    articles_ok: int = 0
    articles_failed: int = 0
    article_error: str = ""
