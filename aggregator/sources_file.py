"""Editing the sources of feeds.yaml in place, and OPML import/export of the source list.

ruamel.yaml's round-trip mode keeps the operator's comments, key order and quoting. Every edit is
validated with `load_config` before the file is replaced (atomically), so a command can never leave
an invalid or half-written feeds.yaml behind.
"""

from __future__ import annotations

import contextlib
import io
import os
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
from .errors import ConfigError


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
    target = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(buffer.getvalue())
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
    """Remove the source called `name` from feeds.yaml; its stored posts stay in the database."""
    root = read_yaml(path)
    sources = _sources_node(root, path)
    for index, item in enumerate(sources):
        if isinstance(item, CommentedMap) and str(item.get("name")) == name:
            _delete_source(root, sources, index)
            return _write_validated(path, root)
    raise ConfigError([f"{path}: no source named {name!r}"])


def _delete_source(root: CommentedMap, sources: CommentedSeq, index: int) -> None:
    """Delete one source, keeping the comments ruamel attaches to it that belong to what follows.

    ruamel keeps the comment lines after an entry on that entry's last key: they introduce the next
    entry (or the next section, `rules:`). They take the place of those after the entry before,
    which introduced the one deleted. With no entry left, the list is written `sources: []` (a
    block list of nothing after a comment is not YAML) with its comments around it.
    """
    following = _comment_after(sources[index])
    del sources[index]
    if sources:
        if index > 0 and following is not None:
            _set_comment_after(sources[index - 1], following)
        return
    leading = root.ca.items.pop("sources", None)
    sources.ca.comment = None
    sources.fa.set_flow_style()
    lines = [line.strip().lstrip("#").strip() for token in (leading[3] or [] if leading else []) for line in
             token.value.splitlines() if line.strip()]
    if lines:
        root.yaml_set_comment_before_after_key("sources", before="\n".join(lines))
    if following is not None:
        root.ca.items.setdefault("sources", [None, None, None, None])[2] = following


def _comment_after(item: Any) -> Any:
    if isinstance(item, CommentedMap) and item:
        slot = item.ca.items.get(list(item)[-1])
        return slot[2] if slot else None
    return None


def _set_comment_after(item: Any, comment: Any) -> None:
    if isinstance(item, CommentedMap) and item:
        item.ca.items.setdefault(list(item)[-1], [None, None, None, None])[2] = comment


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
