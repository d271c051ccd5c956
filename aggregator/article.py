"""Full article text: decode a publisher's page and extract its main content.

trafilatura does the extraction (paragraphs, headings, lists, images and links kept; navigation,
comments, share buttons and ads dropped). It is deliberately not given the page URL: with `url=` it
resolves relative links against the site root rather than the page, so relative links are left for
our sanitiser, which resolves them against the page itself. `full_text_selector` replaces extraction
by a CSS selection for sites where it guesses wrong.
"""

from __future__ import annotations

import logging
import re

import lxml.html
from lxml import etree

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_GB_FAMILY = {"gb2312", "gbk", "gb18030", "x-gbk", "cp936", "euc-cn", "csgb2312"}
_WRAPPER = re.compile(r"^\s*<html>\s*<body>\s*|\s*</body>\s*</html>\s*$")
MIN_TEXT = 1  # characters of text an extraction must hold to count

logging.getLogger("trafilatura").setLevel(logging.ERROR)


def page_encoding(body: bytes, content_type: str) -> str:
    """The page's charset: the HTTP header, else a <meta> tag, else UTF-8; GB family read as gb18030."""
    match = _HEADER_CHARSET.search(content_type or "")
    name = match.group(1) if match else ""
    if not name:
        meta = _META_CHARSET.search(body[:8192])
        name = meta.group(1).decode("ascii", "ignore") if meta else "utf-8"
    name = name.lower()
    if name in _GB_FAMILY:
        return "gb18030"
    try:
        "".encode(name)
    except LookupError:
        return "utf-8"
    return name


def decode_page(body: bytes, content_type: str) -> str:
    """The page as text; a charset Python knows but cannot read a page with (`idna`, `punycode`)
    is read as UTF-8 rather than failing."""
    try:
        return body.decode(page_encoding(body, content_type), errors="replace")
    except (UnicodeError, LookupError):
        return body.decode("utf-8", errors="replace")


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
