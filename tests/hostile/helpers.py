"""Shared helpers of the hostile-input tests: feeds, the CLI with its peak memory, output scanning."""

from __future__ import annotations

import html
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from ..conftest import ROOT

RSS_NS = {"content": "http://purl.org/rss/1.0/modules/content/"}
ATOM = "{http://www.w3.org/2005/Atom}"
OUTPUT_DIRS = ("public", "jekyll")
DB_FILES = ("agg.db", "agg.db-wal", "agg.db-shm", "agg.db-journal", "agg.db-slugs.json")  # the database and its sidecars


def rss(items: list[str] | str, title: str = "t", link: str = "http://src.example.com/") -> bytes:
    body = "".join(items) if isinstance(items, list) else items
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>{title}</title><link>{link}</link>{body}</channel></rss>"
    ).encode()


def item(guid: str, title: str = "", *, link: str = "", date: str = "Mon, 28 Mar 2022 10:00:00 +0800",
         description: str = "", extra: str = "") -> str:
    parts = [f"<guid>{guid}</guid>"]
    if title:
        parts.append(f"<title>{title}</title>")
    if link:
        parts.append(f"<link>{link}</link>")
    if date:
        parts.append(f"<pubDate>{date}</pubDate>")
    if description:
        parts.append(f"<description>{description}</description>")
    return "<item>" + "".join(parts) + extra + "</item>"


# -- the CLI ---------------------------------------------------------------------------------------

_MEASURED = (
    "import resource, runpy, sys\n"
    "sys.argv = ['aggregator', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('aggregator', run_name='__main__', alter_sys=True)\n"
    "finally:\n"
    "    sys.stderr.flush()\n"
    "    sys.stderr.write('\\nMAXRSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float

    def __str__(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.1f}s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"


def cli(*args: str, cwd: Path, timeout: float = 90) -> Run:
    """The real `aggregator` CLI in a subprocess, with its wall time and peak resident memory."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("AGGREGATOR_CONFIG", None)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    seconds = time.monotonic() - started
    stderr, rss = proc.stderr, 0.0
    match = re.search(r"\nMAXRSS_KB=(\d+)\n", stderr)  # an uncaught exception is printed after it
    if match:
        rss = int(match.group(1)) / 1024
        stderr = stderr[: match.start()] + stderr[match.end() :]
    return Run(proc.returncode, proc.stdout, stderr, seconds, rss)


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.stderr and "Traceback" not in run.stdout, str(run)


# -- the database ------------------------------------------------------------------------------------


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


def source_state(db: Path, name: str) -> dict[str, Any]:
    rows = db_rows(db, "SELECT * FROM sources WHERE name = ?", (name,))
    assert rows, f"no state recorded for source {name!r}"
    return dict(rows[0])


def posts_of(db: Path, source: str) -> list[dict[str, Any]]:
    return [dict(r) for r in db_rows(db, "SELECT * FROM posts WHERE source = ? ORDER BY date DESC", (source,))]


def db_text(db: Path) -> str:
    """Every value in the database as text (a dump), to look for strings that must never be stored."""
    conn = sqlite3.connect(db)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


# -- the file tree -------------------------------------------------------------------------------------


def tree(root: Path, *, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime_ns) of every file and folder under `root`, minus `skip` subtrees."""
    skipped = [p.resolve() for p in skip]
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath).resolve()
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in skipped]
        for name in [*dirnames, *filenames]:
            path = here / name
            if path.resolve() in skipped:
                continue
            stat = path.lstat()
            found[str(path.relative_to(root.resolve()))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return found


def files_under(*roots: Path) -> list[Path]:
    return sorted(p for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def temp_leftovers(*roots: Path) -> list[Path]:
    return [p for p in files_under(*roots) if p.name.startswith(".") and p.name.endswith(".tmp")]


def front_matter(path: Path) -> tuple[dict[str, Any], str, list[str]]:
    """(parsed front matter, body, raw front matter lines) of a Jekyll post."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n"), path
    head, sep, body = text[4:].partition("\n---\n")
    assert sep, f"{path}: front matter not closed"
    meta = yaml.safe_load(head)
    assert isinstance(meta, dict), path
    return meta, body, head.split("\n")


def assert_outputs_well_formed(*roots: Path) -> int:
    """Every XML parses, every JSON parses, every page is complete, every post's front matter parses."""
    count = 0
    for path in files_under(*roots):
        if path.name.startswith("."):
            continue
        count += 1
        data = path.read_bytes()
        if path.suffix in (".xml", ".opml"):
            etree.fromstring(data)
        elif path.suffix == ".json":
            json.loads(data)
        elif path.suffix == ".html":
            assert data.rstrip().endswith(b"</html>"), f"{path}: page is incomplete"
        elif path.suffix == ".md":
            front_matter(path)
    return count


# -- what a consumer will read as HTML ---------------------------------------------------------------

DANGEROUS_TAGS = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input", "button",
    "meta", "base", "link", "svg", "math", "template", "noscript", "xml", "import",
}
URL_ATTRIBUTES = {
    "href", "src", "action", "formaction", "xlink:href", "poster", "background", "data", "cite", "longdesc",
    "srcset", "lowsrc", "dynsrc", "codebase", "manifest", "ping",
}
BAD_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")
_STRIPPED = re.compile(r"[\x00-\x20\x7f]+")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def html_problems(fragment: str, where: str, *, page: bool = False) -> list[str]:
    """What in `fragment`, read as HTML, could run script or load active content."""
    parser = _Collector()
    parser.feed(fragment)
    parser.close()
    problems = []
    if page:  # the template's own head: one <style>, <meta charset/name>, <link rel=alternate>
        styles = [t for t, _ in parser.tags if t == "style"]
        if len(styles) > 1:
            problems.append(f"{where}: {len(styles)} <style> elements, the template has one")
        main = re.search(r"<main>(.*)</main>", fragment, re.S)
        problems += html_problems(main.group(1) if main else fragment, f"{where} <main>")
    for tag, attrs in parser.tags:
        allowed = page and (
            tag == "style"
            or tag == "meta" and not any(n == "http-equiv" for n, _ in attrs)
            or tag == "link" and ("rel", "alternate") in attrs
        )
        if tag in DANGEROUS_TAGS and not allowed:
            problems.append(f"{where}: <{tag}> element")
        for name, value in attrs:
            value = value or ""
            squeezed = _STRIPPED.sub("", html.unescape(value)).lower()
            if name.startswith("on"):
                problems.append(f"{where}: <{tag} {name}=...> event attribute")
            if name == "style" and ("expression" in squeezed or "javascript:" in squeezed or "url(" in squeezed):
                problems.append(f"{where}: <{tag} style={value!r}>")
            if name in URL_ATTRIBUTES and squeezed.startswith(BAD_SCHEMES):
                problems.append(f"{where}: <{tag} {name}={value!r}>")
            if name == "http-equiv" and value.lower() == "refresh":
                problems.append(f"{where}: <meta http-equiv=refresh>")
    return problems


def html_fields(path: Path, *, jekyll_titles: bool = True) -> list[tuple[str, str, bool]]:
    """(where, text, is_whole_page) of everything in an output file that a consumer renders as HTML."""
    data = path.read_bytes()
    name = str(path)
    if path.suffix == ".html":
        return [(name, data.decode("utf-8"), True)]
    if path.suffix == ".md":
        meta, body, _ = front_matter(path)
        # Liquid does not escape: a layout's {{ page.title }} puts the title into the page as-is
        found = [(f"{name} body", body, False)]
        if jekyll_titles:
            found.append((f"{name} front matter title", str(meta.get("title", "")), False))
        return found
    if path.suffix == ".json":
        feed = json.loads(data)
        return [(f"{name} item {i} content_html", it.get("content_html", ""), False)
                for i, it in enumerate(feed.get("items", []))]
    if path.suffix == ".xml":
        root = etree.fromstring(data)
        found = []
        if root.tag == "rss":
            for i, el in enumerate(root.iter("item")):
                for child in ("description", "content:encoded"):
                    node = el.find(child, RSS_NS)
                    if node is not None and node.text:
                        found.append((f"{name} item {i} {child}", node.text, False))
        elif root.tag == f"{ATOM}feed":
            for i, el in enumerate(root.iter(f"{ATOM}entry")):
                for child in ("content", "summary", "title"):
                    node = el.find(f"{ATOM}{child}")
                    if node is not None and node.text and node.get("type") in ("html", "xhtml"):
                        found.append((f"{name} entry {i} {child}", node.text, False))
        return found
    return []


def titles_in(path: Path) -> list[str]:
    """The item titles a feed file (RSS, Atom or JSON Feed) gives, as plain text."""
    data = path.read_bytes()
    if path.suffix == ".json":
        return [it["title"] for it in json.loads(data)["items"]]
    root = etree.fromstring(data)
    if root.tag == "rss":
        return [el.findtext("title") or "" for el in root.iter("item")]
    return [el.findtext(f"{ATOM}title") or "" for el in root.iter(f"{ATOM}entry")]
