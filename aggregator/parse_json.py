"""JSON Feed 1.0 and 1.1 documents -> ParsedFeed, the same raw entries RSS and Atom give."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from .errors import ParseError
from .models import Enclosure, ParsedFeed, RawEntry

VERSION_PREFIX = "https://jsonfeed.org/version/"


def looks_like_json(body: bytes, content_type: str) -> bool:
    mime = content_type.split(";")[0].strip().lower()
    return mime in ("application/feed+json", "application/json") or body.lstrip()[:1] == b"{"


def is_json_feed(document: Any) -> bool:
    return isinstance(document, dict) and str(document.get("version", "")).startswith(VERSION_PREFIX)


def _date(text: Any) -> tuple[str, datetime | None]:
    """RFC 3339 date of a JSON Feed item; the raw text is kept so a zone-less date can be re-read."""
    if not isinstance(text, str) or not text.strip():
        return "", None
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw, None
    # like feedparser: a date without a zone is read as UTC here; normalise re-reads it in the source's zone
    try:
        return raw, parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30:00+14:00 is before year 1 in UTC: no date, not a failed source
        return raw, None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _authors(item: dict[str, Any]) -> str:
    authors = item.get("authors")
    if not isinstance(authors, list):
        authors = [item["author"]] if isinstance(item.get("author"), dict) else []
    return ", ".join(_text(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name"))


def _entry(item: dict[str, Any]) -> RawEntry:
    published_raw, published = _date(item.get("date_published"))
    updated_raw, updated = _date(item.get("date_modified"))
    html = _text(item.get("content_html"))
    text = _text(item.get("content_text"))
    content = html or text_as_html(text)
    enclosures = []
    for attachment in item.get("attachments") or []:
        if isinstance(attachment, dict) and isinstance(attachment.get("url"), str):
            size = attachment.get("size_in_bytes")
            enclosures.append(Enclosure(attachment["url"], _text(attachment.get("mime_type")),
                                        size if isinstance(size, int) and size > 0 else 0))
    guid = item.get("id")
    return RawEntry(
        guid=str(guid) if isinstance(guid, str | int) and not isinstance(guid, bool) else "",
        link=_text(item.get("url")) or _text(item.get("external_url")),
        title=_text(item.get("title")),
        summary=_escape(_text(item.get("summary"))),
        content=content,
        author=_authors(item),
        published_raw=published_raw,
        published=published,
        updated_raw=updated_raw,
        updated=updated,
        tags=[t for t in item.get("tags") or [] if isinstance(t, str)],
        enclosures=enclosures,
    )


_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")  # a paragraph break: lines with nothing but spaces


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text_as_html(text: str, paragraphs: bool = True) -> str:
    """Plain text (JSON Feed's content_text, an Atom text construct) as the HTML a post's body is:
    escaped, so that "#include <stdio.h>" stays text, and in paragraphs at blank lines, with a line
    break at every other line end, unless told not to (an Atom text construct keeps the form it was
    always stored in)."""
    if not paragraphs:
        return _escape(text)
    if not text.strip():
        return ""
    paragraphs = _BLANK_LINES.split(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_escape(part.strip("\n")).replace("\n", "<br>") for part in paragraphs if part.strip())
    return "".join(f"<p>{line}</p>" for line in lines)


def parse_json_feed(body: bytes) -> ParsedFeed:
    """Parse a JSON Feed; raise ParseError for JSON that is not one (a REST API, say)."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(f"not a feed: invalid JSON ({exc})") from None
    if not is_json_feed(document):
        raise ParseError("not a feed: JSON without a jsonfeed.org version")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed has no items list")
    return ParsedFeed(
        title=_text(document.get("title")),
        link=_text(document.get("home_page_url")),
        entries=[_entry(item) for item in items if isinstance(item, dict)],
        author=_authors(document),
    )
