"""Feed autodiscovery: from a web page's `<link rel="alternate">` elements to the feeds it offers.

A plain `application/json` link only counts when the target really is a JSON Feed, since many sites
link their REST API that way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urljoin

import lxml.html
import requests
from lxml import etree

from .article import decode_page
from .errors import AggregatorError, FetchError
from .fetch import FetchLimits, fetch_url
from .parse import parse_feed
from .parse_json import is_json_feed

FEED_TYPES = {
    "application/rss+xml": "RSS",
    "application/atom+xml": "Atom",
    "application/feed+json": "JSON Feed",
    "application/json": "JSON",
    "application/rdf+xml": "RSS 1.0",
}


class DiscoveryError(AggregatorError):
    """The URL has no feed we can subscribe to."""


@dataclass(frozen=True)
class Candidate:
    url: str
    kind: str
    title: str = ""


def feed_links(page: str, page_url: str) -> list[Candidate]:
    """The feeds a page links as rel=alternate, resolved against the page (and its <base>)."""
    try:
        document = lxml.html.fromstring(page)
    except (etree.ParserError, ValueError):
        return []
    base = page_url
    for element in document.iter("base"):
        if element.get("href"):
            base = urljoin(page_url, element.get("href"))
            break
    found: list[Candidate] = []
    for link in document.iter("link"):
        rel = (link.get("rel") or "").lower().split()
        kind = FEED_TYPES.get((link.get("type") or "").split(";")[0].strip().lower())
        href = (link.get("href") or "").strip()
        if "alternate" in rel and kind and href:
            url = urljoin(base, href)
            if url.startswith(("http://", "https://")) and url not in [c.url for c in found]:
                found.append(Candidate(url, kind, (link.get("title") or "").strip()))
    return found


def _is_json_feed(session: requests.Session, url: str, limits: FetchLimits) -> bool:
    try:
        body = fetch_url(session, url, limits=limits).body or b""
        return is_json_feed(json.loads(body.decode("utf-8-sig")))
    except (FetchError, UnicodeDecodeError, ValueError):
        return False


def discover_feeds(session: requests.Session, url: str, limits: FetchLimits = FetchLimits()) -> list[Candidate]:  # noqa: B008
    """The feeds at `url`: the URL itself when it is a feed, else the ones its page links.

    Raises FetchError when the URL cannot be fetched and DiscoveryError when it has no feed.
    """
    response = fetch_url(session, url, limits=limits)
    body = response.body or b""
    try:
        feed = parse_feed(body, response.headers)
        return [Candidate(url, "feed", feed.title)]
    except AggregatorError:
        pass
    page = decode_page(body, response.headers.get("content-type", ""))
    candidates = []
    for candidate in feed_links(page, response.url):
        if candidate.kind == "JSON":
            if not _is_json_feed(session, candidate.url, limits):
                continue
            candidate = Candidate(candidate.url, "JSON Feed", candidate.title)
        candidates.append(candidate)
    if not candidates:
        raise DiscoveryError(f"{url}: no feed found (not a feed, and the page links none)")
    return candidates
