"""Jekyll export: one Markdown post per stored post, in the layout the old site used.

    DIR/_posts/YYYY-MM-DD-ID.md      (recent posts)
    DIR/old_posts/YYYY-MM-DD-ID.md   (older than jekyll.archive_after_days: moved, never copied)

The front matter must stay valid YAML whatever a title holds, so titles are written as escaped
double-quoted scalars that PyYAML (and Jekyll's Psych) read back unchanged. Files are written with
`write_if_changed`, so re-exporting unchanged posts touches nothing. Only files named like ours
(a date and a 20-hex-digit post id) are ever moved or deleted: a Jekyll site's own posts are safe.
"""

from __future__ import annotations

import os
import re
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlsplit

import yaml

from ..config import Config
from ..dates import local_time
from ..models import Post
from .atomic import inside, write_if_changed
from .filelist import FileList

POSTS = "_posts"
ARCHIVE = "old_posts"
#: where "back to category" points; {base} is site.url without its scheme (//host/path/)
DEFAULT_CATEGORY_URL = "{base}{slug}/"
_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})-(.+)\.md$")
_OUR_ID = re.compile(r"^[0-9a-f]{20}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_SIMPLE_WORD = re.compile(r"^\w[\w.+-]*$")
_NEEDS_ESCAPE = re.compile("[\x00-\x1f\"\\\\\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")
_SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}


@dataclass(frozen=True)
class JekyllSettings:
    """Everything the export needs, resolved once from the config."""

    dir: Path
    zone: tzinfo
    base: str  # //host/path/ as the old site wrote it
    category_names: Mapping[str, str]
    back_to_category: str
    back_to_home: str
    category_url: str
    archive_before: date  # posts whose local date is before this go to old_posts

    @classmethod
    def from_config(cls, config: Config, category_names: Mapping[str, str], now: datetime) -> JekyllSettings | None:
        """None when the config has no `jekyll:` section."""
        jekyll = config.jekyll
        if jekyll is None:
            return None
        parts = urlsplit(config.site.url)
        zone = config.site.timezone
        return cls(
            dir=jekyll.dir,
            zone=zone,
            base=f"//{parts.netloc}{parts.path or '/'}",
            category_names=category_names,
            back_to_category=jekyll.back_to_category,
            back_to_home=jekyll.back_to_home,
            category_url=jekyll.category_url or DEFAULT_CATEGORY_URL,
            archive_before=now.astimezone(zone).date() - timedelta(days=jekyll.archive_after_days),
        )


@dataclass
class JekyllReport:
    """What an export changed: files written or moved, files left as they were, files deleted."""

    written: FileList = field(default_factory=FileList)
    unchanged: int = 0
    removed: FileList = field(default_factory=FileList)
    skipped: list[str] = field(default_factory=list)

    def add(self, other: JekyllReport) -> None:
        """Count in what another part of the same export did."""
        self.written += other.written
        self.unchanged += other.unchanged
        self.removed += other.removed
        self.skipped += other.skipped


def yaml_quote(text: str) -> str:
    """`text` as a YAML double-quoted scalar that reads back exactly as `text`.

    Like json.dumps but keeping non-ASCII as is (the seed posts have literal Chinese titles) and
    escaping what YAML would otherwise fold or reject: C0/C1 controls, NEL, LS/PS, BOM, surrogates.
    """

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in _SHORT_ESCAPES:
            return _SHORT_ESCAPES[char]
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return '"' + _NEEDS_ESCAPE.sub(escape, text) + '"'


# libyaml's parser when PyYAML has it (the same safe constructor and resolver: the same answers),
# ~6x faster: a first export checks the tags of each of its 50,000 posts, ~20,000 distinct sets
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _reads_back(text: str) -> bool:
    """True when YAML reads `text`, written as a plain scalar, back as the same string."""
    try:
        return bool(yaml.load(text, Loader=_LOADER) == text)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return False


@lru_cache(maxsize=4096)
def _plain_ok(word: str) -> bool:
    """True when `word` can be written unquoted and YAML reads it back as the same string."""
    return bool(_SIMPLE_WORD.match(word)) and _reads_back(word)


def yaml_scalar(word: str) -> str:
    return word if _plain_ok(word) else yaml_quote(word)


def yaml_tags(tags: Iterable[str]) -> str:
    """Jekyll's `tags:` value: space-separated words when every tag is one simple word, else a flow list."""
    return _tags_value(tuple(t for t in tags if t))


@lru_cache(maxsize=4096)
def _tags_value(tags: tuple[str, ...]) -> str:
    if not tags:
        return "[]"
    joined = " ".join(tags)
    if all(_plain_ok(t) for t in tags) and _reads_back(joined):
        return joined
    return "[" + ", ".join(yaml_scalar(t) for t in tags) + "]"


def _link_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _autolink(url: str) -> str:
    """The URL as a kramdown autolink; braces percent-encoded (the same URL to a browser) so that
    Liquid, which runs over the whole file, finds no `{{` or `{%` in it."""
    return (url.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
            .replace("{", "%7B").replace("}", "%7D"))


def render_post(post: Post, settings: JekyllSettings) -> bytes:
    """The Markdown file of one post, byte for byte in the old site's layout (no final newline)."""
    local = local_time(post.date, settings.zone)
    slug = post.categories[0] if post.categories else ""
    lines = [
        "---",
        "layout: post",
        f"title: {yaml_quote(_inert_title(post.title))}",
        f"date: {local.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"categories: {yaml_scalar(slug) if slug else '[]'}",
        f"tags: {yaml_tags(_inert_title(t) for t in post.tags)}",  # printed unescaped by layouts too
        "---",
    ]
    body = "\n".join(lines) + "\n" + _inert_body(post.content or post.summary)
    if post.link:
        body += f"\n\n<{_autolink(post.link)}>"
    home = f"[{_link_text(settings.back_to_home)}]({settings.base})"
    if slug:
        name = settings.category_names.get(slug, slug)
        text = settings.back_to_category.replace("{category}", name).replace("{source}", post.source)
        href = settings.category_url.replace("{base}", settings.base).replace("{slug}", quote(slug))
        home = f"[{_link_text(text)}]({href})｜" + home
    return (body + "\n\n" + home).encode("utf-8")


def _inert_title(title: str) -> str:
    """Layouts often insert `{{ page.title }}` (and `{{ tag }}`) unescaped: a title's or a tag's `<`
    and `>` must not become tags."""
    return title.replace("<", "&lt;").replace(">", "&gt;")


def _inert_body(html: str) -> str:
    """Sanitised HTML that Jekyll's Liquid and kramdown passes cannot turn live again.

    Jekyll runs Liquid on the body (`{{ }}`/`{% %}` would run, and one unbalanced tag breaks the
    whole build) and kramdown turns text like `[x](javascript:...)` into links. Written as character
    references, `{`, `[` and `]` display the same in HTML but mean nothing to either.
    """
    # three replace() calls: str.translate with a mapping is ~10x slower on CJK text
    return _in_block(html.replace("{", "&#123;").replace("[", "&#91;").replace("]", "&#93;"))


_BLOCK_TAG = re.compile(
    r"<(?:p|div|ul|ol|li|dl|dt|dd|table|blockquote|pre|h[1-6]|figure|figcaption|hr|section|article|aside"
    r"|details|summary|center|header|footer|nav|main|address)\b",
    re.IGNORECASE,
)


# a line indented as Markdown's code blocks are: four spaces or a tab (after a line end)
_CODE_INDENT = re.compile(r"\n(?: {4}|\t| {0,3}\t)")


def _in_block(html: str) -> str:
    """The body inside HTML block elements, which kramdown passes through untouched.

    Text outside any block is Markdown to kramdown: a plain-text summary with `_underscores_` or a
    `|` came out as emphasis or a table, a line starting with `#` as a heading, and a line indented
    by four spaces (pretty-printed HTML: full-text articles, many CMS feeds) as a code block that
    showed the article's tags. A body that starts with a block element (the usual `<p>...`, and the
    old site's posts, whose lines start with one space) and has no such indented line is left as it
    is; plain text becomes a paragraph per blank line; anything else is wrapped whole in a `<div>`,
    which kramdown reads to its end tag, blank lines and all.
    """
    text = html.strip()
    if not text or _BLOCK_TAG.match(text) and not _CODE_INDENT.search(text):
        return html
    if "<" not in text:
        return "".join(f"<p>{part.strip()}</p>" for part in re.split(r"\n\s*\n", text) if part.strip())
    return f"<div>{text}</div>"


def file_name(post: Post, zone: tzinfo) -> str:
    return f"{local_time(post.date, zone).strftime('%Y-%m-%d')}-{post.id}.md"


def _existing(settings: JekyllSettings, wanted: Container[str] | None = None) -> dict[str, list[str]]:
    """Post id -> the export files already on disk for it, in either folder (one directory scan);
    with `wanted`, only those posts' files. Paths are kept as text: an incremental export of a few
    posts into a folder of 50,000 files would otherwise build (and hold) a `Path` for every file."""
    found: dict[str, list[str]] = {}
    for folder in (POSTS, ARCHIVE):
        path = inside(settings.dir, folder)
        if not path.is_dir():
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                match = _FILE.match(entry.name)
                if match and (wanted is None or match.group(2) in wanted) and entry.is_file():
                    found.setdefault(match.group(2), []).append(entry.path)
    return found


def export_posts(
    posts: Iterable[Post], settings: JekyllSettings, report: JekyllReport, ids: Iterable[str] | None = None
) -> None:
    """Write each post to its file, moving or replacing any older file of the same post (`ids`: the
    ids of `posts`, when known, so that only their older files are looked for)."""
    existing = _existing(settings, None if ids is None else set(ids))
    # the folders are resolved and checked once; a file name (a date, a checked id, .md) cannot
    # leave its folder, and os.replace swaps a symlink planted there rather than following it
    folders = {POSTS: inside(settings.dir, POSTS), ARCHIVE: inside(settings.dir, ARCHIVE)}
    for post in posts:
        if not _SAFE_ID.match(post.id):
            report.skipped.append(post.id)
            continue
        local_day = local_time(post.date, settings.zone).date()
        target = folders[ARCHIVE if local_day < settings.archive_before else POSTS] / file_name(post, settings.zone)
        found = existing.get(post.id, [])
        olds = [p for p in found if p != os.fspath(target)]
        if _write_post(target, render_post(post, settings), olds, absent=not found):
            report.written.append(target)
        else:
            report.unchanged += 1
        report.removed.extend(olds)


def _write_post(target: Path, data: bytes, olds: list[str], absent: bool = False) -> bool:
    """Write one post's file (or move its older copy into place), deleting the rest of `olds`
    (which then lists what was deleted); True when the file was written or moved. `absent`: no
    file of the post was found, so a first export does not ask about each file before creating it."""
    if olds and not target.exists() and Path(olds[0]).read_bytes() == data:  # no stat without an older copy
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(olds.pop(0), target)  # aged into old_posts: moved, mtime kept
        written = True
    else:
        written = write_if_changed(target, data, absent=absent)
    for old in olds:
        Path(old).unlink(missing_ok=True)
    return written


def remove_posts(post_ids: Iterable[str], settings: JekyllSettings, report: JekyllReport) -> None:
    """Delete the export files of posts that no longer exist."""
    wanted = set(post_ids)
    if not wanted:  # the usual case: no folder scan
        return
    for paths in _existing(settings, wanted).values():
        for path in paths:
            Path(path).unlink(missing_ok=True)
            report.removed.append(path)


def archive_old(settings: JekyllSettings, report: JekyllReport) -> None:
    """Move our files in _posts dated before the archive date into old_posts (cheap: names only)."""
    posts = settings.dir / POSTS
    if not posts.is_dir():
        return
    for entry in sorted(os.scandir(posts), key=lambda e: e.name):
        match = _FILE.match(entry.name)
        if not match or not _OUR_ID.match(match.group(2)):
            continue
        if date.fromisoformat(match.group(1)) < settings.archive_before:
            target = inside(settings.dir, ARCHIVE, entry.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(entry.path, target)
            report.written.append(target)


def prune(keep: set[str], settings: JekyllSettings, report: JekyllReport) -> None:
    """Delete our files whose post is gone from the database (retention, deleted posts)."""
    for post_id, paths in _existing(settings).items():
        if post_id in keep or not _OUR_ID.match(post_id):
            continue
        for path in paths:
            Path(path).unlink(missing_ok=True)
            report.removed.append(path)
