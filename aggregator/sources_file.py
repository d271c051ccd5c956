"""Editing the sources of feeds.yaml in place, and OPML import/export of the source list.

ruamel.yaml's round-trip mode keeps the operator's comments, key order and quoting. Every edit is
validated with `load_config` before the file is replaced (atomically), so a command can never leave
an invalid or half-written feeds.yaml behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .config import Config, is_http_url, load_config, read_yaml
from .errors import AggregatorError, ConfigError


@dataclass(frozen=True)
class NewSource:
    """A source to add: what `sources add` and OPML import know about it."""

    url: str
    name: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def _write_validated(path: Path, root: Any) -> Config:
    """Write `root` to `path` if it is a valid config; the old file stays untouched otherwise.

    The new file replaces the old one atomically and keeps its permissions and owner (a daemon
    running as another user must still read it); a symlinked feeds.yaml stays a symlink.
    """
    buffer = io.StringIO()
    _yaml().dump(root, buffer)
    return _write_text_validated(path, buffer.getvalue())


def _write_text_validated(path: Path, text: str) -> Config:
    """`_write_validated` for a config already written out as text. A folder that is full or
    read-only is one line naming the file, which is left as it was."""
    try:
        return _replace_validated(path, text)
    except OSError as exc:
        raise AggregatorError(f"cannot write {path}: {exc.strerror or exc} (it is unchanged)") from None


def _replace_validated(path: Path, text: str) -> Config:
    target = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:  # line ends as given
            handle.write(text)
        _keep_mode_and_owner(target, tmp)
        try:
            load_config(Path(tmp))
        except ConfigError as exc:  # named as the file the user knows, not our temporary one
            raise ConfigError([f"{problem.replace(tmp, str(path))} (nothing was written)"
                               for problem in exc.problems]) from None
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return load_config(path)  # read as written, its relative paths from where `path` is


def _keep_mode_and_owner(original: Path, new: str) -> None:
    """Give `new` the mode and owner of `original` (mkstemp makes it 0600, owned by whoever runs us)."""
    old = original.stat()
    os.chmod(new, stat.S_IMODE(old.st_mode))
    if hasattr(os, "chown"):
        try:
            os.chown(new, old.st_uid, old.st_gid)
        except PermissionError:  # only root may give a file away; its group we may keep if we are in it
            with contextlib.suppress(PermissionError):
                os.chown(new, -1, old.st_gid)


def _sources_node(root: Any, path: Path) -> CommentedSeq:
    if root is None or not isinstance(root, CommentedMap):
        raise ConfigError([f"{path}:1: the top level must be a mapping"])
    if root.get("sources") is None:
        root["sources"] = CommentedSeq()
    if not isinstance(root["sources"], CommentedSeq):
        raise ConfigError([f"{path}: sources must be a list"])
    return root["sources"]


def _default_name(url: str) -> str:
    parts = urlsplit(url)
    return (parts.hostname or url) + (parts.path.rstrip("/") if parts.path not in ("", "/") else "")


def _free_name(name: str, taken: Container[str]) -> str:
    """`name`, or `name (2)`, `name (3)`...: the first not taken."""
    number, candidate = 2, name
    while candidate in taken:
        candidate, number = f"{name} ({number})", number + 1
    return candidate


def add_sources(
    path: Path, new: list[NewSource], *, rename_taken: bool = True
) -> tuple[Config, list[str], list[str]]:
    """Append sources to feeds.yaml; return (config, added names, skipped messages).

    A URL already configured, or not http(s), is skipped with a message saying why, not an error,
    so one bad line of an OPML file does not stop the rest. A name already taken by another URL
    (OPML exports often repeat titles such as "News") gets a number, `News (2)`, unless
    `rename_taken` is false (a name the user typed): that is a ConfigError, and nothing is written.
    """
    root = read_yaml(path)
    sources = _sources_node(root, path)
    by_name = {str(s.get("name")): str(s.get("url")) for s in sources if isinstance(s, CommentedMap)}
    by_url = {url: name for name, url in by_name.items()}
    added, skipped = [], []
    for item in new:
        name = item.name or _default_name(item.url)
        if not is_http_url(item.url):
            skipped.append(f"{name}: {item.url}: not an http(s) URL")
            continue
        if item.url in by_url:
            skipped.append(f"{name}: {item.url} is already in {path}, as {by_url[item.url]!r}")
            continue
        if name in by_name:
            if not rename_taken:
                raise ConfigError([f"{path}: a source named {name!r} already exists ({by_name[name]}); "
                                   "choose another name"])
            name = _free_name(name, by_name)
        entry = CommentedMap(name=name, url=item.url)
        if item.category:
            entry["category"] = item.category
        if item.tags:
            entry["tags"] = list(item.tags)
        sources.append(entry)
        by_name[name], by_url[item.url] = item.url, name
        added.append(name)
    config = _write_validated(path, root) if added else load_config(path)
    return config, added, skipped


def remove_source(path: Path, name: str) -> Config:
    """Remove the source called `name` from feeds.yaml; its stored posts stay in the database.

    The entry's lines are cut from the file's text, the rest kept byte for byte: ruamel hangs the
    comment lines after an entry on that entry's last node (they introduce what follows), so
    deleting the node would take them along, or move them, or leave `sources:` + comment + `[]`,
    which is not YAML.
    """
    root = read_yaml(path)
    sources = _sources_node(root, path)
    for index, item in enumerate(sources):
        if isinstance(item, CommentedMap) and str(item.get("name")) == name:
            if sources.fa.flow_style():  # `sources: [{...}]`: no lines of its own, and no comments
                del sources[index]
                return _write_validated(path, root)
            text = path.read_bytes().decode("utf-8")  # as it is: CRLF line ends stay CRLF
            cut = _without_entry(text, sources.lc.item(index)[0], root.lc.key("sources")[0])
            try:
                return _write_text_validated(path, cut)
            except ConfigError:  # a layout lines cannot be cut from (a `}` or string continued at the
                del sources[index]  # entry's indentation, an anchor used below): ruamel's way
                return _write_validated(path, root)
    raise ConfigError([f"{path}: no source named {name!r}"])


def _without_entry(text: str, first: int, key_line: int) -> str:
    """`text` without the block-list entry whose first node is on line `first` (0-based): its lines,
    the comment lines right above it at its own indentation (its heading), and not the comment
    lines after it at that indentation or less (they introduce what follows). With the list left
    empty, the `sources:` line on `key_line` becomes `sources: []`."""
    lines = re.findall(r"[^\n]*\n|[^\n]+$", text)  # not splitlines: U+2028 in a value is no line end
    dash = first
    while not lines[dash].lstrip().startswith("-"):  # `-` alone on a line, the entry below it
        dash -= 1
    column = _indent(lines[dash])
    end = dash + 1
    while end < len(lines) and (_is_blank_or_comment(lines[end]) or _indent(lines[end]) > column):
        end += 1
    while end > dash + 1 and _is_blank_or_comment(lines[end - 1]) and (
        not lines[end - 1].strip() or _indent(lines[end - 1]) <= column
    ):
        end -= 1
    start = dash
    # its heading goes with it, unless the next entry follows at once: then it heads a group
    next_is_entry = end < len(lines) and lines[end].lstrip().startswith("-") and _indent(lines[end]) == column
    while (not next_is_entry and start > key_line + 1 and lines[start - 1].strip().startswith("#")
           and _indent(lines[start - 1]) == column):
        start -= 1
    rest = lines[:start] + lines[end:]
    if _list_now_empty(rest, key_line, column):
        rest[key_line] = re.sub(r"^(\ufeff?\s*[\"']?sources[\"']?\s*:(?:\s*&\S+)?)", r"\1 []", rest[key_line], count=1)
    return "".join(rest)


def _list_now_empty(lines: list[str], key_line: int, column: int) -> bool:
    """Whether no entry of the list under `key_line` is left (the next content line is not `-`)."""
    for line in lines[key_line + 1 :]:
        if _is_blank_or_comment(line):
            continue
        return not (line.lstrip().startswith("-") and _indent(line) == column)
    return True


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_blank_or_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


def read_opml(path: Path) -> list[NewSource]:
    """The feeds listed in an OPML file; an enclosing outline's title becomes the category."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError) as exc:
        raise ConfigError([f"{path}: not a readable OPML file: {exc}"]) from None
    found: list[NewSource] = []

    def walk(node: ET.Element, category: str) -> None:
        for outline in node.findall("outline"):
            url = outline.get("xmlUrl") or ""
            title = outline.get("title") or outline.get("text") or ""
            if url:
                found.append(NewSource(url=url.strip(), name=title.strip(), category=category))
            else:
                walk(outline, title.strip() or category)

    body = tree.getroot().find("body")
    if body is None:
        raise ConfigError([f"{path}: OPML file has no <body>"])
    walk(body, "")
    return found


def sources_opml(config: Config) -> str:
    """OPML 2.0 listing the configured sources, grouped by their first category."""
    groups: dict[str, list[str]] = {}
    for src in config.sources:
        category = src.categories[0].name if src.categories else ""
        groups.setdefault(category, []).append(
            f'      <outline type="rss" text={quoteattr(src.name)} title={quoteattr(src.name)} '
            f"xmlUrl={quoteattr(src.url)}/>"
        )
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<opml version="2.0">',
        "  <head>",
        f"    <title>{_escape(config.site.title)} sources</title>",
        "  </head>",
        "  <body>",
    ]
    for category, outlines in groups.items():
        lines.append(f"    <outline text={quoteattr(category)} title={quoteattr(category)}>")
        lines.extend(outlines)
        lines.append("    </outline>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
