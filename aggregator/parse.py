"""Bytes -> ParsedFeed: feedparser, with the encoding fixes real Chinese feeds need.

Many Chinese feeds declare gb2312 and then use characters only GBK has (镕, for one), so a feed that
declares gb2312 or gbk is decoded as gb18030, the superset of both, before feedparser sees it. A
source may also force an encoding. feedparser's own sanitiser and relative-URL resolution are turned
off: `normalise` does both with nh3 and the entry's own link as base, and we never hand feedparser the
response URL, which would make it resolve relative guids (`NW2022...` -> `http://host/NW2022...`).
"""

from __future__ import annotations

import calendar
import html
import re
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXException

import feedparser
import feedparser.api

from .errors import ParseError
from .models import Enclosure, ParsedFeed, RawEntry
from .parse_dates import register as register_date_handlers
from .parse_json import looks_like_json, parse_json_feed, text_as_html

_XML_DECL = re.compile(rb"^(\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"'][^>]*\?>")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "euc-cn", "gb_2312-80", "csgb2312"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
# the prolog, token by token: space, processing instructions, comments and the DOCTYPE with its
# internal subset read quote by quote (a "]>" inside a quoted value does not end it). Each
# alternative starts with a different character, so matching is linear.
_PROLOG_TOKEN = re.compile(
    rb"""\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>"']|"[^"]*"|'[^']*')*"""
    rb"""(?:\[(?:<!--.*?-->|"[^"]*"|'[^']*'|[^\]"'<]|<(?!!--))*\])?\s*>""",
    re.IGNORECASE | re.DOTALL,
)
_ENTITY = re.compile(rb"""<!ENTITY\s+%?\s*([^\s>]+)\s+((?:"[^"]*"|'[^']*'|[^>"'])*)>""", re.IGNORECASE)
_CHAR_REF = re.compile(rb"&#(?:[0-9]+|x[0-9a-fA-F]+);")
MAX_ENTITIES = 50
MAX_ENTITY_LENGTH = 40

# feedparser asks xml.sax for the first driver of this list it can load (drv_libxml2 by default,
# which is not installed, then the standard expat reader): ours is that reader with text buffered
feedparser.api.PREFERRED_XML_PARSERS = ["aggregator.parse_sax"]
register_date_handlers()  # the Chinese and zone-less date forms feedparser misreads


def declared_encoding(body: bytes, content_type: str) -> str:
    """The charset the response claims: the header first, then the XML declaration."""
    match = _CHARSET.search(content_type or "")
    if match:
        return match.group(1).lower()
    decl = _XML_DECL.match(body[:512])
    return decl.group(2).decode("ascii").lower() if decl else ""


def _recode(body: bytes, encoding: str) -> tuple[bytes, str]:
    """Decode `body` as `encoding` and re-encode it as UTF-8 with the XML declaration to match;
    with a note when some bytes were not valid there (they become U+FFFD)."""
    note = ""
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        text = body.decode(encoding, errors="replace")
        note = f"bytes not valid as {encoding} replaced by \ufffd (the first at byte {exc.start})"
    text = text.lstrip("\ufeff")
    text = re.sub(r"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])[^\"']+([\"'])", r"\1utf-8\2", text, count=1)
    return text.encode("utf-8"), note


def _is_utf8_text(body: bytes) -> bool:
    """Valid UTF-8 with characters beyond ASCII: GBK text practically never is (its byte pairs do
    not fall into UTF-8's lead and continuation pattern for long), so such bytes are UTF-8."""
    return not body.isascii() and _decodes_as_utf8(body)


def _decodes_as_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def prepare_body(
    body: bytes, headers: dict[str, str], forced_encoding: str = ""
) -> tuple[bytes, dict[str, str], str]:
    """Return (bytes, headers, note) for feedparser, with GB-family and forced encodings made
    UTF-8; the note says what was not as declared."""
    content_type = headers.get("content-type", "")
    declared = declared_encoding(body, content_type)
    encoding = forced_encoding.lower() or declared
    if encoding in _GB_FAMILY:
        encoding = "gb18030"
    # Only the headers that matter for decoding: never content-location, which feedparser would
    # use as a base to rewrite relative guids.
    kept = {"content-type": content_type} if content_type else {}
    note = ""
    if forced_encoding or encoding == "gb18030":
        if not forced_encoding and _is_utf8_text(body):  # a GBK declaration left on a site now in UTF-8
            encoding, note = "utf-8", f"declared {declared} but the bytes are UTF-8: read as UTF-8"
        body, bad_bytes = _recode(body, encoding)
        note = note or bad_bytes
        mime = content_type.split(";")[0].strip() or "application/xml"
        kept = {"content-type": f"{mime}; charset=utf-8"}
    return body, kept, note


def _utf8_ok(data: bytes, headers: dict[str, str]) -> bool:
    """False only for bytes that claim (or default to) UTF-8 and are not valid UTF-8.

    feedparser also flags a UTF-8 feed served as text/xml without a charset (RFC 3023 says
    us-ascii then), which real servers do all the time: such a feed is fine.
    """
    declared = declared_encoding(data, headers.get("content-type", ""))
    return declared not in ("", "utf-8", "utf8", "us-ascii", "ascii") or _decodes_as_utf8(data)


def refuse_entity_declarations(body: bytes) -> None:
    """Refuse a document whose prolog declares entities beyond a few short literals.

    Entity expansion ("billion laughs", quadratic blow-up) and external entities are attacks, not
    feeds: feedparser would strip them and fall back to its loose parser, which looks like success.
    """
    subset = _doctype(body)
    if not subset:
        return
    declarations = _ENTITY.findall(subset)
    if len(declarations) > MAX_ENTITIES:
        raise ParseError(f"refused: the document declares {len(declarations)} XML entities")
    for name, value in declarations:
        literal = _CHAR_REF.sub(b"", value)
        if len(value) > MAX_ENTITY_LENGTH or re.search(rb"[&%]|SYSTEM|PUBLIC", literal):
            raise ParseError(f"refused: XML entity {name.decode('ascii', 'replace')!r} is external, "
                             "nested or too long (entity expansion or XXE attack)")


def _doctype(body: bytes) -> bytes:
    """The document's DOCTYPE declaration ('' when none), read through the whole prolog, however
    long its comments; an unterminated one counts to the end of the body."""
    position = 3 if body.startswith(b"\xef\xbb\xbf") else 0
    while position < len(body):
        token = _PROLOG_TOKEN.match(body, position)
        if token is None:
            if body[position : position + 9].upper() == b"<!DOCTYPE":
                return body[position:]  # not closed: everything after it may be declarations
            return b""  # the root element (or not XML at all): no DOCTYPE
        if token.group()[:9].upper() == b"<!DOCTYPE":
            return token.group()
        position = token.end()
    return b""


def _as_datetime(parsed: Any) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _author(item: Any, atom: bool) -> str:
    """The author's name as HTML, as titles are read: its name alone (feedparser's `author` glues an
    e-mail to it, "Alice (a@example.com)"), escaped when Atom, whose <name> is text, not markup."""
    name = _text((item.get("author_detail") or {}).get("name")) or _text(item.get("author"))
    return html.escape(name, quote=False) if atom else name


def _as_html(value: str, detail: Any, atom: bool) -> str:
    """An entry's summary or content as HTML. Atom says what they are, and a text construct (the
    default) is meant literally: "a&lt;b" is the text a<b, not a tag to drop with what follows.
    RSS does not say, and its descriptions are HTML; feedparser's guess is not trusted there."""
    if atom and value and (detail or {}).get("type") == "text/plain":
        return text_as_html(value, paragraphs=False)  # as it always read: no churn of stored posts
    return value


def _size(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def _entry(item: Any, atom: bool) -> RawEntry:
    content = content_base = ""
    content_part: Any = None
    for part in item.get("content") or []:
        if part.get("value"):
            content, content_base = _as_html(part["value"], part, atom), _text(part.get("base"))
            content_part = part
            break
    summary = _text(item.get("summary"))
    summary_detail = item.get("summary_detail")
    if summary_detail is None and content_part is not None and summary == content_part["value"]:
        summary_detail = content_part  # feedparser copied the content into an entry without a summary
    enclosures = []
    for link in item.get("links") or []:
        if link.get("rel") == "enclosure" and link.get("href"):
            enclosures.append(Enclosure(link["href"], _text(link.get("type")), _size(link.get("length"))))
    # Media RSS (media:content, alone or in a media:group): video and podcast feeds that carry
    # their file only there; not media:thumbnail, which is a picture of the entry, not its media
    for media in item.get("media_content") or []:
        url = _text(media.get("url"))
        if url and all(e.url != url for e in enclosures):
            enclosures.append(Enclosure(url, _text(media.get("type")), _size(media.get("filesize"))))
    title_detail = item.get("title_detail") or {}
    return RawEntry(
        guid=_text(item.get("id")).strip(),
        link=_text(item.get("link")).strip(),
        title=_text(item.get("title")),
        # Atom says what a title is (type="text" is text, meant literally). RSS does not, and its
        # titles carry escaped HTML often enough that feedparser's guess (text unless every tag is
        # one it knows) is not trusted: they are read as HTML, as feed readers do
        title_is_html=not atom or title_detail.get("type") in ("text/html", "application/xhtml+xml"),
        summary=_as_html(summary, summary_detail, atom),
        content=content,
        summary_base=_text((summary_detail or {}).get("base")),
        content_base=content_base,
        author=_author(item, atom),
        published_raw=_text(item.get("published")),
        published=_as_datetime(item.get("published_parsed")),
        # plain dict access: FeedParserDict.get("updated") falls back to `published` (with a warning)
        updated_raw=_text(dict.get(item, "updated")),
        updated=_as_datetime(dict.get(item, "updated_parsed")),
        tags=[_text(t.get("term") or t.get("label")) for t in item.get("tags") or [] if t],
        enclosures=enclosures,
    )


#: expat's errors for a document that stops before it is complete
_ENDS_EARLY = ("no element found", "unclosed token", "unclosed CDATA section", "partial character")
_ENTRY_END = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)>\s*$")


def _cut_inside_an_entry(problem: Any, data: bytes) -> bool:
    """Whether the XML stops early, and not right after an entry's end tag (a download cut short
    mid-entry: that entry's content, or all but its title, is missing). A feed that only lacks
    its closing tags ends after an entry, and keeps it."""
    if not isinstance(problem, SAXException) or not str(problem).endswith(_ENDS_EARLY):
        return False
    return _ENTRY_END.search(data[-256:]) is None


def parse_feed(body: bytes, headers: dict[str, str] | None = None, encoding: str = "") -> ParsedFeed:
    """Parse a feed document; raise ParseError when it is not a feed at all.

    A feed feedparser flags as malformed is still returned when it yields entries, with the problem
    in `warning`.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body or not body.strip():
        raise ParseError("empty response body")
    if looks_like_json(body, headers.get("content-type", "")):
        return parse_json_feed(body)
    refuse_entity_declarations(body)
    data, kept, note = prepare_body(body, headers, encoding)
    result = feedparser.parse(data, response_headers=kept, sanitize_html=False, resolve_relative_uris=False)
    problem = result.get("bozo_exception")
    if isinstance(problem, feedparser.CharacterEncodingOverride) and not encoding and not _utf8_ok(data, headers):
        raise ParseError(f"the bytes are not valid in the declared encoding ({problem}); "
                         "set encoding: for this source if the feed is otherwise right")
    warning = f"{type(problem).__name__}: {problem}".splitlines()[0][:300] if result.get("bozo") and problem else ""
    feed = result.get("feed") or {}
    if not result.entries and not result.get("version"):
        mime = headers.get("content-type", "").split(";")[0].strip().lower()
        what = "an HTML page" if mime in _HTML_TYPES or b"<html" in body[:2048].lower() else "not a feed"
        raise ParseError(f"{what}: no RSS or Atom found" + (f" ({warning})" if warning else ""))
    items = list(result.entries)
    if items and _cut_inside_an_entry(problem, data):
        items.pop()  # the document stops inside its last entry: what was read of it is not the entry
        warning = f"the document ends inside an entry (cut short?), which was left out ({warning})"
    if not items and isinstance(problem, SAXException):
        # broken XML that gave nothing: an error (a failing source), not an empty feed that is "ok"
        raise ParseError(f"malformed feed, no entries could be read ({warning})")
    atom = str(result.get("version", "")).startswith("atom")
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        entries=[_entry(item, atom) for item in items],
        warning="; ".join(w for w in (note, warning) if w),
        # Atom's feed author is every entry's without one; RSS's managingEditor is a contact, not that
        author=_author(feed, atom) if atom else "",
    )
