"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1) of the same items as the RSS and Atom feeds.

Keys are written in a fixed order with fixed `json.dumps` settings (non-ASCII kept as is), so the
bytes only change when the items do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..sanitise import plain_text
from .items import FeedInfo, FeedItem

VERSION = "https://jsonfeed.org/version/1.1"


def render_json(info: FeedInfo, items: Sequence[FeedItem]) -> bytes:
    """A JSON Feed 1.1 document of `items` (already newest first and cut to size), as UTF-8 bytes."""
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": info.title,
        "home_page_url": info.home_url,
        "feed_url": info.json_url,
        "description": info.description,
        "language": info.language,
        "authors": [{"name": info.author_name, "url": info.author_url}],
        "items": [_item(item) for item in items],
    }
    if info.hub_url:
        feed["hubs"] = [{"type": "WebSub", "url": info.hub_url}]
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _item(item: FeedItem) -> dict[str, Any]:
    result: dict[str, Any] = {"id": item.guid, "title": item.title}
    if item.link:
        result["url"] = item.link
    result["content_html"] = item.content
    summary = plain_text(item.summary)  # JSON Feed's summary is plain text
    if summary:
        result["summary"] = summary
    result["date_published"] = item.published.isoformat()
    result["date_modified"] = item.updated.isoformat()
    if item.author:
        result["authors"] = [{"name": item.author}]
    if item.categories:
        result["tags"] = list(item.categories)
    if item.enclosures:
        result["attachments"] = [
            {"url": e.url, "mime_type": e.type or "application/octet-stream", **_size(e.length)}
            for e in item.enclosures
        ]
    if item.source_name:  # its URL only when it may be published (public_source_url)
        result["_source"] = {"title": item.source_name, **({"feed_url": item.source_url} if item.source_url else {})}
    return result


def _size(length: int) -> dict[str, int]:
    return {"size_in_bytes": length} if length > 0 else {}
