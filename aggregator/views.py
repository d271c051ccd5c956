"""Presentation of posts and sources as plain data (for JSON output, tables and the status page)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from .config import Config
from .dates import local_time
from .models import Post
from .store import SourceState


def local_iso(when: datetime | None, zone: tzinfo) -> str | None:
    """ISO 8601 in the site's zone, e.g. 2022-03-28T22:51:22+08:00."""
    return local_time(when, zone).replace(microsecond=0).isoformat() if when else None


def post_json(post: Post, zone: tzinfo) -> dict[str, Any]:
    """The public post schema, exactly these fields, dates in the site's zone."""
    return {
        "id": post.id,
        "source": post.source,
        "title": post.title,
        "link": post.link,
        "guid": post.guid,
        "date": local_iso(post.date, zone),
        "updated": local_iso(post.updated, zone),
        "author": post.author,
        "summary": post.summary,
        "content": post.content,
        "categories": post.categories,
        "tags": post.tags,
        "enclosures": [{"url": e.url, "type": e.type, "length": e.length} for e in post.enclosures],
    }


def source_status(enabled: bool, state: SourceState, url: str) -> str:
    """One word for a source: ok, failing, gone, moved, waiting or disabled."""
    fresh = state.url in ("", url)
    if not enabled:
        return "disabled"
    if fresh and state.gone:
        return "gone"
    if not fresh or not state.last_fetch:
        return "waiting"
    if state.failures:  # failing where it moved to is failing: the move is said beside the error
        return "failing"
    return "moved" if state.moved_to else "ok"


def source_rows(config: Config, states: dict[str, SourceState]) -> list[dict[str, Any]]:
    """One row per configured source, for `sources list` and `status`: its settings, its state word
    and what its last fetch did. State recorded for an older URL of the source does not count."""
    rows = []
    for src in config.sources:
        state = states.get(src.name) or SourceState(name=src.name)
        fresh = state.url in ("", src.url)
        rows.append(
            {
                "name": src.name,
                "url": src.url,
                "category": ",".join(c.slug for c in src.categories),
                "categories": [c.slug for c in src.categories],
                "tags": list(src.tags),
                "interval": src.interval,
                "enabled": src.enabled,
                "state": source_status(src.enabled, state, src.url),
                "result": state.result if fresh else "",
                "http_status": state.http_status if fresh else None,
                "last_fetch": state.last_fetch if fresh else None,
                "last_success": state.last_success if fresh else None,
                "last_error": state.error if fresh else "",
                "failures": state.failures if fresh else 0,
                "new": state.new if fresh else 0,
                "updated": state.updated if fresh else 0,
                "posts": state.posts,
                "next_due": state.next_due if fresh and not state.gone else None,
                "moved_to": state.moved_to if fresh else "",
                "gone": bool(state.gone) if fresh else False,
                "warning": state.warning if fresh else "",
                "article_error": state.article_error if fresh else "",
            }
        )
    return rows
