"""HTML sanitising (nh3, the Python binding of the Rust `ammonia` crate) and URL helpers.

nh3 is used rather than hand-written filtering because it parses HTML the way browsers do, so
malformed markup cannot slip a `<script>` past it, and it is fast enough to run on every entry.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

SAFE_SCHEMES = {"http", "https", "mailto"}
# where a block element starts or ends: a space goes there (a lookahead, so the replacement is a
# plain " " and no match groups are copied: this runs on every entry)
_BLOCK_START = re.compile(r"(?=</?(?:p|div|br|li|ul|ol|h[1-6]|tr|td|th|blockquote|section|article|pre|hr|img)\b)", re.I)
#: C0/C1 controls, line/paragraph separators, a stray byte-order mark, and the explicit bidi
#: embeddings, overrides and isolates (U+202A-E, U+2066-9): in a title, an unclosed right-to-left
#: override runs on into the date and source name printed after it ("Trojan Source" spoofing).
#: Marks (U+200E/F) and joiners stay: right-to-left text and emoji sequences need them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
# what XML 1.0 cannot carry (the feeds drop it at publishing): dropped from stored HTML once, at
# ingest, so no output (the Jekyll files included) sees a form feed or U+FFFE
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|spm|from|share_token)$", re.IGNORECASE)

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
# class on paragraphs, as the old site's posts kept it (<p class="em_media">（文章来源：每日经济新闻）</p>).
# Not on every element: class-heavy pages (WordPress) would double in size, and a link or a block
# could take the site's own classes (Bootstrap's stretched-link, d-none)
_ATTRIBUTES["p"] = _ATTRIBUTES.get("p", set()) | {"class"}
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    url_schemes=SAFE_SCHEMES,
    link_rel="noopener noreferrer",
    strip_comments=True,
)
_URL_ATTRIBUTE = re.compile(r'(\s(?:href|src|cite|poster|longdesc)=")([^"]*)"')
_NOT_IN_URI = re.compile(r'[\x00-\x20"<>\\^`{|}\x7f]')
MAX_DEPTH = 1000
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^<>]*?(/?)>")  # a whole tag, so `i<n` in a script is none
_ANY_TAG = re.compile(r"<[^<>]*>")  # never past the next "<": linear even for "<a<a<a..."
_NEVER_DEEPER = {  # void elements, and those whose end tag is optional (HTML's "optional tags")
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup",
    "caption", "rb", "rt", "rp", "rtc",
}
_HAS_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:")
# HTML's element names (obsolete ones included, <template> not: its content is never shown). In
# text read as HTML, a "<" that opens none of them, nor a custom element (<my-card>), a prefixed
# one (<o:p>), a comment or a declaration, is a literal "<": `std::vector<int>`, `Map<K, V>`. The
# sanitiser would take it for an unknown element and drop the rest of the title with it.
_HTML_ELEMENTS = (
    "a abbr acronym address applet area article aside audio b base basefont bdi bdo big blink blockquote body br "
    "button canvas caption center cite code col colgroup data datalist dd del details dfn dialog dir div dl dt em "
    "embed fieldset figcaption figure font footer form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html "
    "i iframe image img input ins kbd label legend li link listing main map mark marquee math menu meta meter nav nobr "
    "noembed noframes noscript object ol optgroup option output p param picture plaintext pre progress q rb rp rt "
    "rtc ruby s samp script search section select slot small source span strike strong style sub summary sup svg "
    "table tbody td textarea tfoot th thead time title tr track tt u ul var video wbr xmp"
)
_FOREIGN_START = re.compile(r"<(?:math|svg)(?=[\s/>])", re.IGNORECASE)
_FOREIGN_END = re.compile(r"</(?:math|svg)\s*>", re.IGNORECASE)
_LITERAL_LT = re.compile(
    r"<(?!/?(?:" + _HTML_ELEMENTS.replace(" ", "|") + r")(?=[\s/>])|/?[A-Za-z][\w.]*[-:]|[!?])", re.IGNORECASE
)
_TEXT_ONLY = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"}, attributes={})
# lazy-loaded images (WeChat articles, most CMS themes): the picture is in data-src (or
# data-original...), and src is missing or a data: placeholder that a script would replace
_IMG_TAG = re.compile(r"<img\b[^<>]*>", re.IGNORECASE)
_VALUE = r"""\s*=\s*("[^"]*"|'[^']*'|[^\s"'<>=`]+)"""
_LAZY_SRC = re.compile(r"\sdata-(?:src|original|lazy-src|actualsrc)" + _VALUE, re.IGNORECASE)
_SRC = re.compile(r"\ssrc" + _VALUE, re.IGNORECASE)
# the picture a lazy-loading script replaces (jQuery lazyload's grey.gif, WordPress's blank.gif...)
_PLACEHOLDER = re.compile(
    r"(?:^|[/_-])(?:blank|grey|gray|loading|lazy|placeholder|spacer|pixel|transparent|default)[\w-]*\.(?:gif|png|svg|jpe?g)(?:$|[?#])",
    re.IGNORECASE,
)
_LAZY_HINT = re.compile(r"\sdata-", re.IGNORECASE)


def absolute_url(url: str, base: str) -> str:
    """`url` resolved against `base`; '' unless the result is http(s)."""
    url = (url or "").strip()
    if not url:
        return ""
    try:
        joined = urljoin(base, url) if base else url
        parts = urlsplit(joined)
    except ValueError:
        return ""
    return joined if parts.scheme in ("http", "https") and parts.netloc else ""


def web_url(url: str) -> str:
    """`url` with the ASCII characters a URI never holds literally percent-encoded (spaces, quotes,
    `<>\\^`{|}`, controls), as a browser sends them. Feeds carry such links; republished as they
    are, they make invalid RSS and Atom and break Markdown and Liquid. Escapes already there and
    non-ASCII text (an IRI, which feed readers take) are kept as they are."""
    return _NOT_IN_URI.sub(_percent, url) if _NOT_IN_URI.search(url) else url


def _percent(match: re.Match[str]) -> str:
    return f"%{ord(match.group()):02X}"


def canonical_link(url: str) -> str:
    """The link used to recognise one article reached through two sources.

    Drops the fragment and tracking parameters (utm_*, fbclid...), lower-cases scheme and host and
    ignores http vs https.
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    host = (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    return urlunsplit(("http", host, parts.path or "/", query, ""))


def sanitise_html(fragment: str, base: str = "") -> str:
    """Return `fragment` with everything dangerous removed and relative URLs made absolute.

    Script and style elements go with their contents; event attributes, iframes, forms and any URL
    whose scheme is not http(s)/mailto (javascript:, vbscript:, data:) are dropped. The cleaner is
    built once; relative URLs are resolved on its output (where every attribute is double-quoted),
    which costs far less than a Python callback per attribute.
    """
    if not fragment or not fragment.strip():
        return ""
    if _too_deep(fragment):
        return html.escape(_flat_text(fragment), quote=False)
    fragment = _unwrap_cdata(_NOT_XML.sub("", fragment))
    fragment = unlazy_images(fragment)
    try:
        cleaned = _CLEANER.clean(fragment).strip()
    except (ValueError, TypeError):
        return html.escape(plain_text(fragment))
    return _URL_ATTRIBUTE.sub(lambda m: m[1] + _resolved(m[2], base) + '"', cleaned) if base else cleaned


def _unwrap_cdata(fragment: str) -> str:
    """`fragment` with each CDATA section replaced by what it holds. A feed that escapes a CDATA
    section once too often (`&lt;![CDATA[标题]]&gt;`, common in hand-made PHP feeds) hands us one
    inside the HTML, which parsers read as a comment: the title or the whole text was lost."""
    start = fragment.find("<![CDATA[")
    if start < 0:
        return fragment
    parts, done = [], 0
    while start >= 0:  # one pass: a regex's lazy (.*?) rescanned the rest from every unclosed opener
        end = fragment.find("]]>", start + 9)
        if end < 0:
            break
        parts += [fragment[done:start], fragment[start + 9:end]]
        done = end + 3
        start = fragment.find("<![CDATA[", done)
    return "".join(parts) + fragment[done:]


def unlazy_images(fragment: str) -> str:
    """`fragment` with each lazy-loaded picture moved to its <img>'s src (see `_lazy_image`); also
    run on a whole page before its article is extracted, which keeps src and drops data-*."""
    return _IMG_TAG.sub(_lazy_image, fragment) if _LAZY_HINT.search(fragment) else fragment


def _lazy_image(tag: re.Match[str]) -> str:
    """An <img> whose picture is only in a lazy-loading attribute, with it moved to src: a feed
    reader runs no script, and the sanitiser drops data-* and data: URLs, leaving a bare <img>."""
    text = tag.group()
    lazy = _LAZY_SRC.search(text)
    if lazy is None:
        return text
    src = _SRC.search(text)
    value = src[1].strip("\"' ") if src is not None else ""
    if value and not value.lower().startswith("data:") and not _PLACEHOLDER.search(value):
        return text  # a real picture already
    if src is not None:
        text = text[: src.start()] + text[src.end() :]
    return f"<img src={lazy[1]}" + text[4:]


def _too_deep(fragment: str) -> bool:
    """Whether elements nest more than MAX_DEPTH deep. An HTML parser's tree building costs about the
    square of the depth (`<ul><li>` 80,000 times, 640 KB, kept nh3 busy for two minutes), and no
    real article nests a thousand deep; such a fragment is read as text instead. Void elements and
    those whose end tag may be left out (`<p>`, `<li>`...) do not count: sloppy pages leave them open."""
    if fragment.count("<") <= MAX_DEPTH:  # the usual case: not enough tags to be that deep
        return False
    depth = 0
    for tag in _TAG_NAME.finditer(fragment):
        name = tag[2].lower()
        if name in _NEVER_DEEPER or tag[3]:  # void, end tag optional, or self-closed (<path/> in SVG)
            continue
        if tag[1]:
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > MAX_DEPTH:
                return True
    return False


def _flat_text(fragment: str) -> str:
    """The text of a fragment with every tag dropped, by a linear scan rather than a parser."""
    return " ".join(_CONTROL.sub("", html.unescape(_ANY_TAG.sub(" ", fragment))).split())


def _resolved(value: str, base: str) -> str:
    """An attribute's URL (as HTML text) made absolute against `base`; one with a scheme is kept."""
    if _HAS_SCHEME.match(value):
        return value
    joined = urljoin(base, html.unescape(value).strip())
    return html.escape(joined) if urlsplit(joined).scheme in ("http", "https") else ""


def plain_text(fragment: str, is_html: bool = True) -> str:
    """Text of an HTML fragment: tags stripped, entities decoded, whitespace collapsed. With
    `is_html` false the fragment is text already (a title the feed marks as plain text, where
    `<raise>` and `&amp;` are meant literally): only control characters and spacing are cleaned."""
    if not fragment:
        return ""
    if not is_html:
        return " ".join(_CONTROL.sub("", fragment).split())
    if _too_deep(fragment):
        return _flat_text(fragment)
    fragment = _unwrap_cdata(fragment)
    if "<" in fragment:  # block boundaries separate words: <p>a</p><p>b</p> reads "a b"
        fragment = _BLOCK_START.sub(" ", fragment)
    text = html.unescape(_TEXT_ONLY.clean(fragment)) if "<" in fragment or "&" in fragment else fragment
    return " ".join(_CONTROL.sub("", text).split())  # runs of whitespace (str.isspace) -> one space


def label_text(fragment: str, is_html: bool = True) -> str:
    """`plain_text` of a title, author or tag as the feed gives it (not sanitised yet): there, a "<"
    that opens no HTML element is meant literally (`std::vector&lt;int&gt;` in an RSS title). Not
    for whole bodies: they are sanitised first, and the check costs ~70 us on 2 KB of HTML."""
    if is_html and "<" in fragment:
        fragment = _escape_literal_lt(fragment)
    return plain_text(fragment, is_html)


def _escape_literal_lt(fragment: str) -> str:
    """`_LITERAL_LT` applied outside <math> and <svg> elements, whose children (<mi>, <path>) are
    markup too. One pass: each search starts where the last element ended (an unclosed one runs to
    the end), so a title of a thousand unclosed "<math" costs no more than one."""
    parts, start = [], 0
    while (opened := _FOREIGN_START.search(fragment, start)) is not None:
        closed = _FOREIGN_END.search(fragment, opened.end())
        end = closed.end() if closed else len(fragment)
        parts += [_LITERAL_LT.sub("&lt;", fragment[start : opened.start()]), fragment[opened.start() : end]]
        start = end
    parts.append(_LITERAL_LT.sub("&lt;", fragment[start:]))
    return "".join(parts)


def excerpt(text: str, length: int) -> str:
    """The start of `text`, cut at `length` characters with an ellipsis when cut."""
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"
