"""The format-neutral shape of one published feed: what RSS, Atom and JSON Feed all render.

Turning a `Post` into a `FeedItem` is where the publishing policy lives (which id a reader sees,
which names become categories, which dates), so the three renderers cannot disagree about it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from urllib.parse import unquote, urlsplit, urlunsplit

from ..dates import local_time
from ..models import Enclosure, Post

#: the `updated` of a feed with no posts: fixed, so an empty feed is the same bytes every build
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: namespace of the uuid5 ids given to Atom entries whose guid is not an absolute IRI
ATOM_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/aggregator-dev/aggregator#atom-id")

_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HTTP_IRI = re.compile(r"^https?://[^\s<>\"{}|\\^`/?#]+[^\s<>\"{}|\\^`]*$", re.IGNORECASE)
_TAG_URI = re.compile(r"^tag:[^\s,:/]+,\d{4}(-\d{2}(-\d{2})?)?:[^\s<>\"{}|\\^`]*$")
_URN = re.compile(r"^urn:[a-z0-9][a-z0-9-]{0,30}[a-z0-9]:[^\s<>\"{}|\\^`]+$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[a-z0-9-]+(\.[a-z0-9-]+)+$", re.IGNORECASE)


#: words of a query (or fragment, or path ;parameter) name that say it carries a credential:
#: api_key, apiKey, access_token, password, pw, X-Amz-Signature, session_id... A name is cut into
#: words (at _ - . and camelCase), so that "keyword" or "author" is not taken for one
_SECRET_WORDS = frozenset({
    "key", "apikey", "token", "accesstoken", "authtoken", "secret", "pass", "password", "passwd", "pw", "pwd",
    "auth", "sig", "signature", "session", "sessionid", "sid", "jsessionid", "phpsessid", "cred", "creds",
    "credential", "credentials",
})
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD_BREAK = re.compile(r"[_.\-\s]+")


def _secret_parameters(text: str) -> bool:
    for part in re.split(r"[&;]", text):
        name = unquote(part.partition("=")[0]).strip()
        words = _WORD_BREAK.split(_CAMEL.sub("_", name).lower())
        if name.lower() in ("u", "p", "k") or _SECRET_WORDS.intersection(words):
            return True
    return False


def public_source_url(url: str) -> str:
    """A source's feed URL as each of its items names it (RSS `<source url>`, Atom `<source>`, JSON
    Feed `_source`): never with a user and password, and not at all when its query or fragment
    has a parameter named like a credential, which feeds.yaml may hold but the published feeds
    must not repeat. (A token in the path is not recognised: put tokens in `headers:`.)"""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urlsplit can take: nothing worth publishing
        return ""
    if any(_secret_parameters(text) for text in (parts.query, parts.fragment, parts.path.partition(";")[2])):
        return ""
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class FeedInfo:
    """What a feed says about itself: titles, its public URLs, its owner and refresh hint."""

    title: str
    description: str
    home_url: str  # the HTML page this feed is the feed of (RSS <link>, Atom rel=alternate)
    rss_url: str
    atom_url: str
    json_url: str
    language: str
    author_name: str
    author_url: str
    ttl_minutes: int
    zone: tzinfo
    hub_url: str = ""  # WebSub hub announced in the feed (site.websub_hub)


@dataclass(frozen=True)
class FeedItem:
    """One post as every feed format shows it; text already safe to put in XML."""

    guid: str  # RSS guid and JSON Feed id: the original guid, else our stable post id
    atom_id: str  # an absolute IRI, as RFC 4287 wants
    title: str
    link: str
    published: datetime
    updated: datetime
    author: str
    summary: str  # sanitised HTML
    content: str  # sanitised HTML, never empty
    categories: tuple[str, ...]  # category names then tags, without exact duplicates
    enclosures: tuple[Enclosure, ...]
    source_name: str
    source_url: str

    @property
    def author_email(self) -> str:
        """The author when it is an e-mail address (the only thing RSS <author> may hold)."""
        return self.author if _EMAIL.match(self.author) else ""


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot carry (lxml refuses them outright)."""
    return _XML_ILLEGAL.sub("", text) if text else ""


def is_absolute_iri(value: str) -> bool:
    """True for http(s) URLs, tag: URIs and well-formed urn: names: ids Atom may keep as they are."""
    return bool(_HTTP_IRI.match(value) or _TAG_URI.match(value) or _URN.match(value))


def atom_id(post: Post) -> str:
    """The post's Atom id: its guid when that is an absolute IRI, else a uuid5 derived from it.

    Derived from the guid (or our post id when the entry had none) and the source name, so it never
    changes when the post is updated and two sources' identical relative guids stay distinct.
    """
    guid = post.guid.strip()
    if guid and is_absolute_iri(guid) and xml_text(guid) == guid:  # XML must be able to carry it
        return guid
    return "urn:uuid:" + str(uuid.uuid5(ATOM_ID_NAMESPACE, f"{post.source}\x00{guid or post.id}"))


def feed_updated(items: Iterable[FeedItem]) -> datetime:
    """The newest change among the items: a feed's own date, never the build time."""
    return max((i.updated for i in items), default=EPOCH)


def _names(post: Post, category_names: Mapping[str, str]) -> tuple[str, ...]:
    names = [category_names.get(slug, slug) for slug in post.categories] + list(post.tags)
    cleaned = (xml_text(name).strip() for name in names)
    return tuple(dict.fromkeys(name for name in cleaned if name))


def feed_item(post: Post, zone: tzinfo, category_names: Mapping[str, str], source_urls: Mapping[str, str]) -> FeedItem:
    """The FeedItem of one post, dates in the site's zone."""
    published = local_time(post.date, zone)
    updated = local_time(max(post.updated, post.date), zone) if post.updated else published
    content = post.content or post.summary or _escape(post.title)
    return FeedItem(
        guid=xml_text(post.guid.strip()) or post.id,
        atom_id=atom_id(post),
        title=xml_text(post.title) or "(untitled)",
        link=xml_text(post.link),
        published=published,
        updated=updated,
        author=xml_text(post.author).strip(),
        summary=xml_text(post.summary),
        content=xml_text(content),
        categories=_names(post, category_names),
        enclosures=tuple(Enclosure(xml_text(e.url), xml_text(e.type), e.length) for e in post.enclosures),
        source_name=xml_text(post.source),
        source_url=source_urls.get(post.source, ""),
    )


def feed_items(
    posts: Iterable[Post], zone: tzinfo, category_names: Mapping[str, str], source_urls: Mapping[str, str],
    guid_owners: Mapping[str, str] | None = None,
) -> list[FeedItem]:
    """FeedItems of `posts` in their order, with ids unique within the feed and stable across builds.

    Two sources may use the same guid (each numbering its entries 1, 2, 3...), and a reader would
    then drop one entry. `guid_owners` (guid -> the post stored first with it, "" when that one is
    gone) says who keeps the guid: every later post gets ids from our own post id instead, from its
    first publication on, whatever else is in the feed's window, and after the first post is
    deleted. Without it, the first of a feed to use a guid keeps it.
    """
    items: list[FeedItem] = []
    guids: set[str] = set()
    atom_ids: set[str] = set()
    for post in posts:
        item = feed_item(post, zone, category_names, source_urls)
        owner = (guid_owners or {}).get(post.guid, post.id)
        if owner != post.id or item.guid in guids:
            item = replace(item, guid=post.id)
        if item.atom_id in atom_ids or (owner != post.id and item.atom_id == post.guid.strip()):
            fallback = "urn:uuid:" + str(uuid.uuid5(ATOM_ID_NAMESPACE, f"{post.source}\x00{post.id}"))
            item = replace(item, atom_id=fallback)
        guids.add(item.guid)
        atom_ids.add(item.atom_id)
        items.append(item)
    return items


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
