"""Full article text: decode a publisher's page and extract its main content.

trafilatura does the extraction (paragraphs, headings, lists, images and links kept; navigation,
comments, share buttons and ads dropped). It is deliberately not given the page URL: with `url=` it
resolves relative links against the site root rather than the page, so relative links are left for
our sanitiser, which resolves them against the page itself. `full_text_selector` replaces extraction
by a CSS selection for sites where it guesses wrong.
"""

from __future__ import annotations

import codecs
import logging
import re
from html import unescape
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "euc-cn", "csgb2312"}
_BASE_HREF = re.compile(r"""<base\s[^>]*?\bhref\s*=\s*["']?([^"'>]+)""", re.IGNORECASE)
_WRAPPER = re.compile(r"^\s*<html>\s*<body>\s*|\s*</body>\s*</html>\s*$")
MIN_TEXT = 1  # characters of text an extraction must hold to count

logging.getLogger("trafilatura").setLevel(logging.ERROR)


def _codec(name: str) -> str:
    """Python's codec for a declared charset name ('' when unknown); GB family read as gb18030."""
    name = name.strip().lower()
    if name in _GB_FAMILY:
        return "gb18030"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return ""


def declared_charsets(body: bytes, content_type: str) -> list[str]:
    """The page's charsets as declared: the HTTP header's, then its <meta> tag's."""
    header = _HEADER_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(body[:8192])
    names = [header.group(1) if header else "", meta.group(1).decode("ascii", "ignore") if meta else ""]
    return [codec for codec in map(_codec, names) if codec]


def decode_page(body: bytes, content_type: str, forced: str = "") -> str:
    """The page as text: in the source's `encoding:` when set; else as UTF-8 when the bytes are UTF-8
    (a site moved to UTF-8 keeps its old <meta charset=gb2312>); else in the first declared charset
    that reads the bytes (a GBK page served as UTF-8 by a proxy, with the right <meta>); else
    gb18030, then windows-1252, as an undeclared page most likely is. Never fails: bytes nothing
    reads become U+FFFD in the first declared charset."""
    declared = declared_charsets(body, content_type)
    candidates = [_codec(forced) or "utf-8"] if forced else ["utf-8", *declared, "gb18030", "cp1252"]
    for codec in candidates:
        try:
            return body.decode(codec)
        except (UnicodeError, LookupError):  # also a codec Python has but pages cannot use (idna)
            continue
    try:
        return body.decode(candidates[0] if forced else (declared or ["utf-8"])[0], errors="replace")
    except (UnicodeError, LookupError):
        return body.decode("utf-8", errors="replace")


def page_base(page: str, url: str) -> str:
    """What relative links on the page resolve against: its <base href> (itself relative to the
    page's URL), as a browser does, else the page's URL."""
    match = _BASE_HREF.search(page, 0, 65536)  # in <head>, near the start
    if match:
        base = urljoin(url, unescape(match.group(1).strip()))
        if urlsplit(base).scheme in ("http", "https"):
            return base
    return url


def _select(page: str, selector: str) -> str:
    document = lxml.html.fromstring(page)
    parts = [etree.tostring(node, encoding="unicode", method="html") for node in document.cssselect(selector)]
    return "\n".join(parts)


def extract_article(page: str, selector: str = "") -> str:
    """The article's HTML from a page, or '' when nothing worth keeping was found."""
    if not page.strip():
        return ""
    try:
        if selector:
            html = _select(page, selector)
        else:
            # imported here: trafilatura costs ~26 MB and ~0.12 s in every process that loads it,
            # and only sources with full_text ever need it
            import trafilatura

            html = trafilatura.extract(
                page, output_format="html", include_links=True, include_images=True, include_formatting=True,
                include_tables=True, include_comments=False, favor_precision=True,
            ) or ""
    except (ValueError, etree.LxmlError):
        return ""
    html = _WRAPPER.sub("", html)
    text = lxml.html.fromstring(f"<div>{html}</div>").text_content().strip() if html.strip() else ""
    return html if len(text) >= MIN_TEXT else ""
