"""OPML 2.0 subscription list of every category feed, by absolute public URL.

Readers import this file once to subscribe to every category, so it names feeds by their URL under
site.url, never by a local path. It holds no dates, so it only changes when the categories do.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from .items import xml_text


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription: a category's name, its RSS feed and its HTML page."""

    name: str
    xml_url: str
    html_url: str


def render_opml(title: str, feeds: Sequence[OpmlFeed]) -> bytes:
    """The OPML document listing `feeds` in the given order, as UTF-8 bytes."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = xml_text(title)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        ET.SubElement(
            body, "outline", type="rss", text=xml_text(feed.name), title=xml_text(feed.name),
            xmlUrl=feed.xml_url, htmlUrl=feed.html_url,
        )
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
