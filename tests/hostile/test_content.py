"""Hostile HTML in entries: nothing active survives into any output (feeds, pages, Jekyll posts).

One `aggregator fetch` and one `aggregator build` (with a jekyll section) over an RSS and an Atom source
full of XSS payloads; then every file under output_dir and the Jekyll folder is scanned.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from ..conftest import write_config
from ..feedserver import FeedServer
from .helpers import (
    ATOM,
    Run,
    assert_no_traceback,
    assert_outputs_well_formed,
    cli,
    db_rows,
    files_under,
    front_matter,
    html_fields,
    html_problems,
    titles_in,
)

PAYLOADS = [
    '<p>KEEP-ME paragraph <b>bold</b> <a href="http://ok.example.com/page">ok link</a></p>',
    '<script>alert("s1")</script>',
    '<SCRIPT SRC="http://evil.example.com/x.js"></SCRIPT>',
    '<style>body{background:url("javascript:alert(1)")} @import "http://evil.example.com/x.css";</style>',
    '<iframe src="http://evil.example.com/frame"></iframe>',
    '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>',
    '<img src="http://ok.example.com/a.png" onerror="alert(\'e1\')" onload="alert(2)">',
    '<p onclick="alert(1)" onmouseover="alert(2)">handlers</p>',
    '<a href="javascript:alert(\'j1\')">js</a>',
    '<a href="JaVaScRiPt:alert(1)">case</a>',
    '<a href="  javascript:alert(1)">leading space</a>',
    '<a href="jav&#x09;ascript:alert(\'tab\')">tab entity</a>',
    '<a href="jav\nascript:alert(1)">newline</a>',
    '<a href="&#106;&#97;vascript:alert(1)">decimal entities</a>',
    '<a href="&#x6A;avascript&colon;alert(1)">hex entity and colon</a>',
    '<a href="vbscript:msgbox(\'v1\')">vb</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data link</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<img srcset="javascript:alert(1) 1x, http://ok.example.com/b.png 2x">',
    '<video poster="javascript:alert(1)"><source src="javascript:alert(2)"></video>',
    '<table background="javascript:alert(1)"><tr><td>cell</td></tr></table>',
    '<div style="width: expression(alert(\'css\')); background: url(javascript:alert(1))">styled</div>',
    '<meta http-equiv="refresh" content="0;url=http://evil.example.com/">',
    '<base href="http://evil.example.com/">',
    '<link rel="stylesheet" href="http://evil.example.com/x.css">',
    '<scr<script>ipt>alert("nested")</scr</script>ipt>',
    '<img src=x onerror=alert(1)//',
    '<svg onload=alert("svg")><circle r="1"/></svg>',
    '<svg><script>alert("svg script")</script></svg>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert("mxss")>',
    '<noscript><p title="</noscript><img src=x onerror=alert(\'noscript\')>">',
    '<!--[if gte IE 4]><script>alert("cc")</script><![endif]-->',
    '<object data="javascript:alert(1)"></object><embed src="http://evil.example.com/x.swf">',
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(2)">go</button><input name=x></form>',
    '<isindex action="javascript:alert(1)" type="image">',
    '<body onload="alert(\'body\')">',
    '<details open ontoggle="alert(1)">d</details>',
    '<a href="http://ok.example.com/" target="_blank">KEEP-ME second link</a>',
]
HOSTILE_HTML = "\n".join(PAYLOADS)
MARKDOWN_BAD_LINK = re.compile(
    r"(\]\(\s*<?|^\s*\[[^\]]+\]:\s*<?)\s*(javascript|vbscript|data|livescript):[^)\s>]*", re.IGNORECASE | re.MULTILINE
)
AUTOLINK = re.compile(r"^<([a-zA-Z][a-zA-Z0-9+.-]*:[^<>\s]*)>$")
#: titles: HTML in the title (escaped once), markup in CDATA, and a plain-text title that shows markup
TITLES = {
    "t1": '&lt;script&gt;alert("t1")&lt;/script&gt;Title one &lt;b&gt;bold&lt;/b&gt;',
    "t2": '<![CDATA[<img src=x onerror=alert("t2")>Title two <svg onload=alert(1)>]]>',
    "t3": 'Shows &amp;lt;script&amp;gt;alert("t3")&amp;lt;/script&amp;gt; as text',
    "t4": "Statement \u202egpj.exe\u202c ready \u2067spoof\u2069 \ufeff\u05e9\u05dc\u05d5\u05dd\u200f",  # bidi
}
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def rss_feed() -> str:
    items = []
    for n, (guid, title) in enumerate(TITLES.items()):
        items.append(
            f"<item><guid>{guid}</guid><title>{title}</title><link>http://evil.example.com/{guid}</link>"
            f"<pubDate>Mon, 28 Mar 2022 1{n}:00:00 +0800</pubDate>"
            f"<author>x@example.com (&lt;script&gt;alert(1)&lt;/script&gt;)</author>"
            f"<description><![CDATA[{HOSTILE_HTML}]]></description>"
            f"<content:encoded>{html.escape(HOSTILE_HTML)}</content:encoded>"
            f"<category>&lt;script&gt;alert(1)&lt;/script&gt;</category>"
            '<enclosure url="javascript:alert(1)" type="audio/mpeg" length="1"/></item>'
        )
    items.append(  # plain text that Markdown (kramdown renders Jekyll posts) would turn into links
        "<item><guid>markdown</guid><title>markdown text</title><link>http://evil.example.com/md</link>"
        "<pubDate>Mon, 28 Mar 2022 08:00:00 +0800</pubDate><description>Click [here](javascript:alert('md')) "
        "or ![pic](javascript:alert('img')) or [ref][x] or &lt;javascript:alert('auto')&gt;\n\n"
        "[x]: javascript:alert('ref')</description></item>"
    )
    items.append(  # Jekyll runs Liquid over a post's body: an article quoting Liquid must stay text
        "<item><guid>liquid</guid><title>liquid text</title><link>http://evil.example.com/liquid</link>"
        "<pubDate>Mon, 28 Mar 2022 07:00:00 +0800</pubDate><description>&lt;p&gt;Use {{ site.time }} and "
        "{% include ../../../etc/passwd %} or {% if %} unbalanced {% endraw %}&lt;/p&gt;</description></item>"
    )
    items.append(
        "<item><guid>badlink</guid><title>bad link</title><link>javascript:alert('link')</link>"
        "<pubDate>Mon, 28 Mar 2022 09:00:00 +0800</pubDate><description>x</description></item>"
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>evil &lt;script&gt;</title>'
        f"<link>http://evil.example.com/</link>{''.join(items)}</channel></rss>"
    )


def atom_feed() -> str:
    xhtml = (
        '<div xmlns="http://www.w3.org/1999/xhtml"><p>KEEP-ME xhtml</p><script>alert("x1")</script>'
        '<a href="javascript:alert(1)">x</a><img src="http://ok.example.com/c.png" onerror="alert(1)"/></div>'
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><title>atom</title>'
        "<id>urn:evil</id><updated>2022-03-28T10:00:00Z</updated>"
        '<entry><id>urn:evil:1</id><title type="html">&lt;iframe src="http://evil.example.com/"&gt;&lt;/iframe&gt;'
        'Atom title</title><updated>2022-03-28T10:00:00Z</updated><link href="javascript:alert(1)"/>'
        f'<summary type="html">{html.escape(HOSTILE_HTML)}</summary><content type="xhtml">{xhtml}</content></entry>'
        "</feed>"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Run, Run]]:
    directory = tmp_path_factory.mktemp("content")
    srv = FeedServer().start()
    try:
        write_config(
            directory,
            [
                {"name": "evil <script>", "url": srv.add("/evil.xml", rss_feed()), "category": "恶意",
                 "tags": ["<b>tag</b>"]},
                {"name": "atom", "url": srv.add("/atom.xml", atom_feed()), "category": "恶意"},
            ],
            site={"title": "站 <script>alert(1)</script>", "description": "<img src=x onerror=alert(1)>"},
            jekyll={"dir": "jekyll"},
        )
        fetched = cli("fetch", cwd=directory)
        built = cli("build", cwd=directory)
        yield directory, fetched, built
    finally:
        srv.stop()


def outputs(directory: Path) -> list[Path]:
    return [p for p in files_under(directory / "public", directory / "jekyll") if not p.name.startswith(".")]


def test_fetch_and_build_succeed_and_benign_content_is_kept(site: tuple[Path, Run, Run]) -> None:
    directory, fetched, built = site
    assert fetched.returncode == 0 and built.returncode == 0, f"{fetched}\n{built}"
    assert_no_traceback(fetched)
    assert len(db_rows(directory / "agg.db", "SELECT id FROM posts")) == 8
    assert_outputs_well_formed(directory / "public", directory / "jekyll")
    page = (directory / "public" / "eyi" / "index.html").read_text(encoding="utf-8")
    assert "KEEP-ME paragraph" in page and 'href="http://ok.example.com/page"' in page
    assert len(list((directory / "jekyll").rglob("*.md"))) == 8


def test_no_active_content_in_any_output(site: tuple[Path, Run, Run]) -> None:
    """Every field a consumer renders as HTML (pages, RSS description/content:encoded, Atom html content and
    summary, JSON Feed content_html, Jekyll post bodies) is free of script, event handlers, bad URL schemes,
    CSS expressions, frames, forms, meta refresh and the like."""
    directory = site[0]
    problems: list[str] = []
    scanned = 0
    for path in outputs(directory):
        for where, text, page in html_fields(path, jekyll_titles=False):
            scanned += 1
            problems += html_problems(text, where, page=page)
    assert scanned > 30
    assert not problems, "\n".join(problems[:40])


def test_links_and_enclosures_in_feeds_are_http_only(site: tuple[Path, Run, Run]) -> None:
    directory = site[0]
    urls: list[str] = []
    for path in outputs(directory):
        if path.name in ("feed.xml", "atom.xml"):
            root = etree.fromstring(path.read_bytes())
            urls += [el.text or "" for el in root.iter("link") if el.text]
            urls += [el.get("url", "") for el in root.iter("enclosure")]
            urls += [el.get("href", "") for el in root.iter(f"{ATOM}link")]
        elif path.name == "feed.json":
            for entry in json.loads(path.read_text(encoding="utf-8"))["items"]:
                urls += [entry.get("url", "")] + [a["url"] for a in entry.get("attachments", [])]
        elif path.suffix == ".md":
            urls += [m.group(1) for line in front_matter(path)[1].splitlines() if (m := AUTOLINK.match(line))]
    assert urls
    bad = sorted({u for u in urls if u and urlsplit(u.strip()).scheme not in ("http", "https")})
    assert not bad, bad


def test_titles_are_plain_text_and_escaped_in_pages(site: tuple[Path, Run, Run]) -> None:
    """Titles come out as text: markup in a title is stripped, a title that shows markup is escaped in pages."""
    directory = site[0]
    stored = {r["guid"]: r["title"] for r in db_rows(directory / "agg.db", "SELECT guid, title FROM posts")}
    assert stored["t1"].startswith("Title one") and "<" not in stored["t1"], stored
    assert stored["t2"].startswith("Title two") and "<" not in stored["t2"], stored
    assert stored["urn:evil:1"] == "Atom title", stored
    for path in [directory / "public" / "eyi" / name for name in ("feed.xml", "atom.xml", "feed.json")]:
        assert set(stored.values()) <= set(titles_in(path)), path
    for page in (directory / "public" / "index.html", directory / "public" / "eyi" / "index.html"):
        text = page.read_text(encoding="utf-8")
        assert html.escape(stored["t3"], quote=False).replace('"', "&#34;") in text, page
        assert "<script" not in text.lower(), page
        assert "站 &lt;script&gt;alert(1)&lt;/script&gt;" in text, page


def test_titles_lose_bidi_overrides_but_keep_right_to_left_text(site: tuple[Path, Run, Run]) -> None:
    """An unclosed right-to-left override in a title would run on into the date and source name a
    page prints after it ("Trojan Source" spoofing): embeddings, overrides and isolates are dropped
    at ingest, a byte-order mark too; Hebrew letters and the right-to-left mark stay."""
    directory = site[0]
    stored = {r["guid"]: r["title"] for r in db_rows(directory / "agg.db", "SELECT guid, title FROM posts")}
    assert stored["t4"] == "Statement gpj.exe ready spoof \u05e9\u05dc\u05d5\u05dd\u200f", stored["t4"]
    for path in outputs(directory):
        text = path.read_text(encoding="utf-8")
        assert not BIDI_CONTROLS.search(text), path
    page = (directory / "public" / "index.html").read_text(encoding="utf-8")
    assert "Statement gpj.exe ready spoof" in page


def test_jekyll_front_matter_title_is_not_raw_html(site: tuple[Path, Run, Run]) -> None:
    """Liquid does not escape: a layout's `{{ page.title }}` puts the front matter title into the page as is.

    A plain-text title that shows markup (the feed escaped it twice, as t3 does) must therefore not reach
    a Jekyll post as a raw `<script>` element.
    """
    directory = site[0]
    problems: list[str] = []
    for path in sorted((directory / "jekyll").rglob("*.md")):
        title = str(front_matter(path)[0]["title"])
        problems += [f"{p} ({title!r})" for p in html_problems(title, f"{path.name} front matter title")]
    assert not problems, "\n".join(problems)


def test_jekyll_post_body_has_no_script_links_in_markdown(site: tuple[Path, Run, Run]) -> None:
    """Jekyll renders a post's body as Markdown (kramdown, which does not sanitise): text in the sanitised
    HTML such as `[here](javascript:...)` or a `[x]: javascript:...` definition becomes a live link.

    kramdown reads the body as written: a character reference such as `&#91;` is text to it, never Markdown
    syntax, so the raw body is what is checked; the text itself must still be there once HTML-decoded."""
    directory = site[0]
    problems = []
    shown = ""
    for path in sorted((directory / "jekyll").rglob("*.md")):
        body = front_matter(path)[1]
        shown += html.unescape(body)
        problems += [f"{path.name}: Markdown link {m.group(0)!r}" for m in MARKDOWN_BAD_LINK.finditer(body)]
    assert not problems, "\n".join(problems)
    assert "](javascript:alert('md'" in shown  # kept as visible text, not dropped


def test_liquid_in_content_is_inert_in_jekyll_posts(site: tuple[Path, Run, Run]) -> None:
    """Jekyll renders Liquid in a post's body: `{% include ... %}` would pull in files, `{{ site.* }}` leaks
    settings and an unbalanced `{% if %}` stops the whole Jekyll build. The export must keep such text inert,
    e.g. `render_with_liquid: false` in the front matter (Jekyll 4) or the body inside {% raw %}...{% endraw %}
    with any `{% endraw %}` in it broken up."""
    directory = site[0]
    (path,) = [p for p in (directory / "jekyll").rglob("*.md") if "liquid text" in p.read_text(encoding="utf-8")]
    meta, body, _ = front_matter(path)
    assert "{% include" in body or "{%" in html.unescape(body), body  # the text itself is kept
    if meta.get("render_with_liquid") is False:
        return
    outside_raw = re.sub(r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}", "", body, flags=re.S)
    assert "{%" not in outside_raw and "{{" not in outside_raw, f"{path.name}: live Liquid in the body:\n{body}"
