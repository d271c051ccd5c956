"""feedparser runs on our buffered expat driver: fewer callbacks, the very same result."""

from __future__ import annotations

import xml.sax
from pathlib import Path
from xml.sax.handler import ContentHandler

import feedparser
import feedparser.api
import pytest

from aggregator.parse import parse_feed
from aggregator.parse_sax import BufferedExpatParser

FIXTURES = Path(__file__).parent / "fixtures"

ESCAPED_HTML_FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>券商 &amp; 基金</title><link>http://127.0.0.1/</link>
<item><title>A &lt;b&gt;bold&lt;/b&gt; &#x5238;商 title</title><guid>g1</guid>
<description>&lt;p&gt;第一段 &amp;amp; one&lt;/p&gt;
&lt;p&gt;second &#8212; line&lt;/p&gt;</description>
<content:encoded><![CDATA[<p>In <em>CDATA</em> &amp; raw</p>]]></content:encoded></item>
<item><title>xhtml</title><guid>g2</guid></item>
</channel></rss>
""".encode()

XHTML_ATOM_FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:x</id><updated>2026-11-25T08:00:00+08:00</updated>
<entry><id>urn:e1</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">A &amp; <b>B</b></div></title>
<updated>2026-11-25T08:00:00+08:00</updated>
<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x &lt; y &amp;&amp; <a href="/a?b=1&amp;c=2">link</a></p>
<p>\xe7\xac\xac\xe4\xba\x8c</p></div></content></entry></feed>
"""


class CountingHandler(ContentHandler):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[str] = []

    def characters(self, content: str) -> None:
        self.pieces.append(content)


def test_feedparser_is_given_the_buffered_driver() -> None:
    assert feedparser.api.PREFERRED_XML_PARSERS == ["aggregator.parse_sax"]
    assert isinstance(xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS), BufferedExpatParser)


def test_text_with_references_arrives_in_one_piece() -> None:
    doc = b"<d>a &lt;p&gt; b &amp;amp; c &#x5238; d\nnext line</d>"
    plain, buffered = CountingHandler(), CountingHandler()
    xml.sax.parseString(doc, plain)  # the standard reader: cut at every reference and line end
    parser = BufferedExpatParser()
    parser.setContentHandler(buffered)
    parser.feed(doc)
    parser.close()
    assert "".join(buffered.pieces) == "".join(plain.pieces) == "a <p> b &amp; c 券 d\nnext line"
    assert len(plain.pieces) > 5
    assert len(buffered.pieces) == 1


def _parsed_both_ways(body: bytes) -> tuple[object, object]:
    saved = list(feedparser.api.PREFERRED_XML_PARSERS)
    try:
        feedparser.api.PREFERRED_XML_PARSERS = ["xml.sax.expatreader"]
        standard = parse_feed(body, {"content-type": "application/xml"})
    finally:
        feedparser.api.PREFERRED_XML_PARSERS = saved
    return standard, parse_feed(body, {"content-type": "application/xml"})


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.xml")))
def test_fixture_feeds_parse_the_same_as_with_the_standard_reader(name: str) -> None:
    standard, buffered = _parsed_both_ways((FIXTURES / name).read_bytes())
    assert buffered == standard


@pytest.mark.parametrize("body", [ESCAPED_HTML_FEED, XHTML_ATOM_FEED], ids=["escaped-html", "xhtml"])
def test_escaped_cdata_and_xhtml_content_parse_the_same(body: bytes) -> None:
    standard, buffered = _parsed_both_ways(body)
    assert buffered == standard
    assert buffered.entries  # type: ignore[attr-defined]


def test_escaped_html_reaches_the_entry_whole() -> None:
    feed = parse_feed(ESCAPED_HTML_FEED, {"content-type": "application/rss+xml; charset=utf-8"})
    first = feed.entries[0]
    assert first.title == "A <b>bold</b> 券商 title"
    assert first.summary == "<p>第一段 &amp; one</p>\n<p>second \u2014 line</p>"
    assert first.content == "<p>In <em>CDATA</em> &amp; raw</p>"
