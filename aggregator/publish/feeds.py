"""RSS 2.0 and Atom 1.0 documents through feedgen, with its known faults worked around.

feedgen 1.0.0 is used for the envelope (namespaces, RFC 822 dates, escaping), but it has traps that
would make our feeds wrong or unstable, each handled here:

* the RSS channel `<link>` is the href of the *last* `link()` call whatever its rel, so the self
  link is added first and the alternate (HTML page) last;
* `updated`/`lastBuildDate` default to now, so both are always set from the newest item;
* `add_entry` prepends, so entries are added with `order="append"` to stay newest first;
* Atom `<content>` has no `type` unless told, so HTML content is given `type="html"`;
* Atom entry links lose `rel`, `type` and `length` (a reused loop variable), which would turn an
  enclosure into a second alternate link, so entry links and `<source>` are written by a small
  entry extension (`_AtomEntryLinks`) instead of `link()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from ..dates import local_time
from .items import FeedInfo, FeedItem, feed_updated

GENERATOR = "aggregator"
GENERATOR_URI = "https://github.com/aggregator-dev/aggregator"
DEFAULT_ENCLOSURE_TYPE = "application/octet-stream"


def render_rss(info: FeedInfo, items: Sequence[FeedItem]) -> bytes:
    """An RSS 2.0 channel of `items` (already newest first and cut to size), as UTF-8 bytes."""
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)  # dc:creator carries author names
    fg.title(info.title)
    fg.link(href=info.rss_url, rel="self", type="application/rss+xml")
    fg.link(href=info.home_url, rel="alternate", type="text/html")  # last: it becomes <link>
    fg.description(info.description)
    fg.language(info.language)
    fg.ttl(info.ttl_minutes)
    fg.generator(GENERATOR)
    fg.lastBuildDate(local_time(feed_updated(items), info.zone))
    for item in items:
        _rss_item(fg.add_entry(order="append"), item)
    return _with_hub(bytes(fg.rss_str(pretty=True)), info.hub_url)


def _with_hub(rss: bytes, hub_url: str) -> bytes:
    """feedgen drops rel="hub" links from RSS: add the WebSub hub next to the self link."""
    if not hub_url:
        return rss
    self_link = b'rel="self" type="application/rss+xml"/>'
    hub = f"\n    <atom:link href={quoteattr(hub_url)} rel=\"hub\"/>".encode()
    return rss.replace(self_link, self_link + hub, 1)


def _rss_item(entry: FeedEntry, item: FeedItem) -> None:
    entry.title(item.title)
    if item.link:
        entry.link(href=item.link)
    entry.guid(item.guid, permalink=False)
    entry.description(item.summary or item.content)
    entry.content(item.content)  # with a description set, this becomes content:encoded
    entry.published(item.published)
    if item.author_email:
        entry.author(email=item.author_email)
    elif item.author:
        entry.dc.dc_creator(item.author)  # RSS <author> must be an e-mail address
    if item.categories:
        entry.category([{"term": name} for name in item.categories])
    if item.enclosures:  # RSS allows one enclosure per item: the first audio or video one (a podcast's)
        enc = next((e for e in item.enclosures if e.type.startswith(("audio/", "video/"))), item.enclosures[0])
        entry.enclosure(enc.url, str(max(enc.length, 0)), enc.type or DEFAULT_ENCLOSURE_TYPE)
    if item.source_url:
        entry.source(url=item.source_url, title=item.source_name)


def render_atom(info: FeedInfo, items: Sequence[FeedItem]) -> bytes:
    """An Atom 1.0 feed of `items` (already newest first and cut to size), as UTF-8 bytes."""
    fg = FeedGenerator()
    fg.id(info.atom_url)
    fg.title(info.title)
    fg.subtitle(info.description)
    fg.link(href=info.atom_url, rel="self", type="application/atom+xml")
    if info.hub_url:
        fg.link(href=info.hub_url, rel="hub")
    fg.link(href=info.home_url, rel="alternate", type="text/html")
    fg.author(name=info.author_name, uri=info.author_url)  # covers entries without an author
    fg.language(info.language)
    fg.generator(GENERATOR, uri=GENERATOR_URI)
    fg.updated(local_time(feed_updated(items), info.zone))
    for item in items:
        _atom_entry(fg.add_entry(order="append"), item)
    return bytes(fg.atom_str(pretty=True))


def _atom_entry(entry: FeedEntry, item: FeedItem) -> None:
    entry.id(item.atom_id)
    entry.title(item.title)
    entry.updated(item.updated)
    entry.published(item.published)
    if item.author:
        entry.author({"name": item.author, **({"email": item.author_email} if item.author_email else {})})
    entry.content(item.content, type="html")
    if item.summary:
        entry.summary(item.summary, type="html")
    if item.categories:
        entry.category([{"term": name} for name in item.categories])
    entry.register_extension("links", _AtomEntryLinks, atom=True, rss=False)
    entry.links.item = item


class _AtomEntryLinks(BaseEntryExtension):
    """Writes an Atom entry's alternate and enclosure links and its `<source>` with their attributes.

    feedgen's own entry links lose rel/type/length, so `link()` is never called on Atom entries.
    """

    def __init__(self) -> None:
        self.item: FeedItem | None = None

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        item = self.item
        if item is None:
            return entry
        if item.link:
            etree.SubElement(entry, "link", rel="alternate", href=item.link)
        for enc in item.enclosures:
            link = etree.SubElement(entry, "link", rel="enclosure", href=enc.url)
            link.set("type", enc.type or DEFAULT_ENCLOSURE_TYPE)
            if enc.length > 0:
                link.set("length", str(enc.length))
        if item.source_name:  # its URL only when it may be published (public_source_url)
            source = etree.SubElement(entry, "source")
            if item.source_url:
                etree.SubElement(source, "id").text = item.source_url
            etree.SubElement(source, "title").text = item.source_name
            if item.source_url:
                etree.SubElement(source, "link", rel="self", href=item.source_url)
        return entry
