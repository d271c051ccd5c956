"""Loading feeds.yaml and validating it into a Config, collecting every problem with its line.

Validation collects every problem rather than stopping at the first, and each problem is one line
`FILE:LINE: what is wrong`, so `aggregator check` can show an operator all their mistakes at once.
The file is read by `fastyaml` (libyaml, YAML 1.2 scalars, the line of every key); ruamel.yaml is
kept for `aggregator sources add/remove`, which rewrite the file with its comments and order intact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from .fastyaml import LinedList, LinedMap
from .model import (
    Category,
    Config,
    Defaults,
    Jekyll,
    Rule,
    Server,
    Site,
    Source,
    is_http_url,
    parse_interval,
    parse_size,
)
from .slugmemo import SlugMemo, memo_path
from .yamlfile import read_config_yaml

_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

SITE_KEYS = {
    "title", "url", "timezone", "output_dir", "database", "feed_size", "tag_feed_min",
    "retention_days", "description", "language", "websub_hub",
}
DEFAULTS_KEYS = {
    "interval", "workers", "timeout", "deadline", "max_body", "per_host", "max_entries", "processes",
}
SOURCE_KEYS = {
    "name", "url", "category", "slug", "tags", "interval", "timezone", "enabled", "include",
    "exclude", "encoding", "max_entries", "full_text", "full_text_max", "full_text_retries",
    "full_text_selector", "full_text_any_address", "headers", "user_agent", "timeout", "verify_tls",
}
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
RULE_KEYS = {"match", "categories", "tags"}
JEKYLL_KEYS = {"dir", "archive_after_days", "back_to_category", "back_to_home", "category_url"}
SERVER_KEYS = {"host", "port"}
TOP_KEYS = {"site", "defaults", "sources", "rules", "jekyll", "server"}


def load_config(path: str | Path) -> Config:
    """Load and validate a config file; raise ConfigError listing every problem found."""
    path = Path(path)
    return _Validator(path).validate(read_config_yaml(path))


class _Validator:
    """Walks the YAML tree, turning it into a Config and collecting problems with their lines."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.resolve().parent
        self.found: list[tuple[int, str]] = []

    def error(self, line: int, message: str) -> None:
        self.found.append((line, message))

    @property
    def problems(self) -> list[str]:
        """Every problem as `FILE:LINE: message`, in file order."""
        return [f"{self.path}:{line}: {message}" for line, message in sorted(self.found, key=lambda p: p[0])]

    @staticmethod
    def key_line(node: Any, key: Any, default: int = 1) -> int:
        if isinstance(node, LinedMap) and key in node:
            return node.key_line(key, default)
        if isinstance(node, LinedList) and isinstance(key, int):
            return node.item_line(key, default)
        return default

    @staticmethod
    def node_line(node: Any, default: int = 1) -> int:
        return node.line if isinstance(node, LinedMap | LinedList) else default

    def mapping(self, node: Any, where: str, allowed: set[str], line: int) -> LinedMap:
        if node is None:
            return LinedMap()
        if not isinstance(node, LinedMap):
            self.error(line, f"{where} must be a mapping")
            return LinedMap()
        for key in node:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.error(self.key_line(node, key), f"unknown key {key!r} in {where} (known: {hint})")
        return node

    def text_list(self, node: Any, key: str, line: int) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
            self.error(line, f"{key} must be a string or a list of strings")
            return ()
        return tuple(str(v).strip() for v in value if str(v).strip())

    def patterns(self, node: Any, key: str, line: int) -> tuple[re.Pattern[str], ...]:
        compiled = []
        for text in self.text_list(node, key, line):
            try:
                compiled.append(re.compile(text, re.IGNORECASE))
            except re.error as exc:
                self.error(line, f"bad regex {text!r} in {key}: {exc}")
        return tuple(compiled)

    def number(self, node: Any, key: str, default: Any, minimum: int = 0) -> Any:
        value = node.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(self.key_line(node, key), f"{key} must be a whole number >= {minimum}")
            return default
        return value

    def converted(self, node: Any, key: str, default: Any, convert: Any) -> Any:
        if key not in node or node[key] is None:
            return default
        try:
            return convert(node[key])
        except ValueError as exc:
            self.error(self.key_line(node, key), f"{key}: {exc}")
            return default

    def zone(self, node: Any, key: str) -> ZoneInfo | None:
        name = node.get(key)
        if name is None:
            return None
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            self.error(self.key_line(node, key), f"unknown time zone {name!r} (e.g. Asia/Shanghai)")
            return None

    def path_of(self, node: Any, key: str, default: str) -> Path:
        value = Path(str(node.get(key) or default)).expanduser()
        return value if value.is_absolute() else self.base / value

    def validate(self, root: Any) -> Config:
        if root is None:  # an empty file (or only comments) is a mistake, not a site without sources
            raise ConfigError([f"{self.path}:1: the file is empty; it needs at least a sources: list "
                               "(sources: [] for none yet)"])
        top = self.mapping(root, "the top level", TOP_KEYS, 1)
        site = self.site(top)
        self.slugs = SlugMemo(memo_path(site.database))
        defaults = self.defaults(top)
        categories: dict[str, tuple[str, int]] = {}  # slug -> (name, line)
        sources = self.sources(top, defaults, categories)
        rules = self.rules(top, categories)
        jekyll = self.jekyll(top)
        server = self.server(top)
        if self.problems:
            raise ConfigError(self.problems)
        self.slugs.save()
        return Config(self.path, site, defaults, tuple(sources), tuple(rules), jekyll, server)

    def site(self, top: LinedMap) -> Site:
        node = self.mapping(top.get("site"), "site", SITE_KEYS, self.key_line(top, "site"))
        url = str(node.get("url") or "http://127.0.0.1:8080/")
        if not is_http_url(url):
            self.error(self.key_line(node, "url"), f"site.url must be an http(s) URL, not {url!r}")
        retention = node.get("retention_days")
        hub = node.get("websub_hub")
        if hub and not is_http_url(hub):
            self.error(self.key_line(node, "websub_hub"), f"site.websub_hub must be an http(s) URL, not {hub!r}")
        return Site(
            title=str(node.get("title") or "aggregator"),
            url=url.rstrip("/") + "/",
            timezone=self.zone(node, "timezone") or ZoneInfo("Asia/Shanghai"),
            output_dir=self.path_of(node, "output_dir", "var/public"),
            database=self.path_of(node, "database", "var/aggregator.db"),
            description=str(node.get("description") or ""),
            language=str(node.get("language") or "zh-CN"),
            feed_size=self.number(node, "feed_size", 50, minimum=1),
            tag_feed_min=self.number(node, "tag_feed_min", 1, minimum=1),
            retention_days=None if retention is None else self.number(node, "retention_days", None, 1),
            websub_hub=str(node.get("websub_hub") or ""),
        )

    def defaults(self, top: LinedMap) -> Defaults:
        line = self.key_line(top, "defaults")
        node = self.mapping(top.get("defaults"), "defaults", DEFAULTS_KEYS, line)
        base = Defaults()
        return Defaults(
            interval=self.converted(node, "interval", base.interval, parse_interval),
            workers=self.number(node, "workers", base.workers, minimum=1),
            timeout=float(self.converted(node, "timeout", base.timeout, parse_interval)),
            deadline=float(self.converted(node, "deadline", base.deadline, parse_interval)),
            max_body=self.converted(node, "max_body", base.max_body, parse_size),
            per_host=self.number(node, "per_host", base.per_host, minimum=1),
            max_entries=self.number(node, "max_entries", base.max_entries, minimum=1),
            processes=self.number(node, "processes", None, minimum=0),
        )

    def category(self, name: str, slug: str | None, line: int, seen: dict[str, tuple[str, int]]) -> Category:
        slug = slug or self.slugs.slug(name)
        known = seen.get(slug)
        if known and known[0] != name:
            self.error(line, f"categories {known[0]!r} (line {known[1]}) and {name!r} both map to slug {slug!r}")
        seen.setdefault(slug, (name, line))
        return Category(name, slug)

    def sources(self, top: LinedMap, defaults: Defaults, seen: dict[str, tuple[str, int]]) -> list[Source]:
        node = top.get("sources")
        if node is None:
            return []
        if not isinstance(node, LinedList):
            self.error(self.key_line(top, "sources"), "sources must be a list")
            return []
        names: dict[str, int] = {}
        result = []
        for i, item in enumerate(node):
            line = self.key_line(node, i)
            src = self.source(item, line, defaults, seen)
            if src is None:
                continue
            if src.name in names:
                self.error(line, f"duplicate source name {src.name!r} (first on line {names[src.name]})")
                continue
            names[src.name] = line
            result.append(src)
        return result

    def source(self, item: Any, line: int, defaults: Defaults, seen: dict[str, tuple[str, int]]) -> Source | None:
        if not isinstance(item, LinedMap):
            self.error(line, "each source must be a mapping with at least name and url")
            return None
        self.mapping(item, "a source", SOURCE_KEYS, line)
        name = str(item.get("name") or "").strip()
        if not name:
            self.error(line, "source has no name")
        url = item.get("url")
        where = f"source {name!r}" if name else "source"
        if url is None:
            self.error(line, f"{where} has no url")
        elif not is_http_url(url):
            self.error(self.key_line(item, "url", line), f"{where}: url must be http(s)://..., not {url!r}")
        cat_line = self.key_line(item, "category", line)
        cat_names = self.text_list(item, "category", cat_line) or (name,)
        slug = item.get("slug")
        if slug is not None:
            if len(cat_names) != 1:
                self.error(self.key_line(item, "slug"), f"{where}: slug is only allowed with a single category")
                slug = None
            elif not isinstance(slug, str) or not _SLUG.match(slug) or len(slug) > 64:
                self.error(self.key_line(item, "slug"), f"{where}: slug must be lowercase a-z, 0-9 and -, not {slug!r}")
                slug = None
        cats = tuple(self.category(c, slug, cat_line, seen) for c in cat_names if c)
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            self.error(self.key_line(item, "enabled"), f"{where}: enabled must be true or false")
        encoding = str(item.get("encoding") or "")
        if encoding:
            try:
                "".encode(encoding)
            except LookupError:
                self.error(self.key_line(item, "encoding"), f"{where}: unknown encoding {encoding!r}")
        return Source(
            name=name,
            url=str(url or "").strip(),
            categories=cats,
            tags=self.text_list(item, "tags", self.key_line(item, "tags", line)),
            interval=self.converted(item, "interval", defaults.interval, parse_interval),
            timezone=self.zone(item, "timezone"),
            enabled=bool(enabled),
            include=self.patterns(item, "include", self.key_line(item, "include", line)),
            exclude=self.patterns(item, "exclude", self.key_line(item, "exclude", line)),
            encoding=encoding,
            max_entries=self.number(item, "max_entries", defaults.max_entries, minimum=1),
            line=line,
            **self.http_options(item, where, line),
            **self.full_text_options(item, where),
        )

    def boolean(self, node: Any, key: str, default: bool, where: str) -> bool:
        value = node.get(key, default)
        if not isinstance(value, bool):
            self.error(self.key_line(node, key), f"{where}: {key} must be true or false")
            return default
        return value

    def expand(self, text: str, line: int, what: str) -> str:
        """Replace ${NAME} with the environment variable's value; an unset one is an error."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                self.error(line, f"{what}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV.sub(value, text)

    def http_options(self, item: LinedMap, where: str, line: int) -> dict[str, Any]:
        headers: list[tuple[str, str]] = []
        node = item.get("headers")
        if node is not None and not isinstance(node, LinedMap):
            self.error(self.key_line(item, "headers"), f"{where}: headers must be a mapping of name: value")
        elif node is not None:
            for name, text in node.items():
                key_line = self.key_line(node, name)
                if not isinstance(text, str | int | float) or isinstance(text, bool):
                    self.error(key_line, f"{where}: header {name!r} must have a text value")
                    continue
                headers.append((str(name), self.expand(str(text), key_line, f"{where}: header {name!r}")))
        user_agent = item.get("user_agent")
        verify = self.boolean(item, "verify_tls", True, where)
        return {
            "headers": tuple(headers),
            "user_agent": self.expand(str(user_agent), self.key_line(item, "user_agent"), f"{where}: user_agent")
            if user_agent
            else "",
            "timeout": self.converted(item, "timeout", None, parse_interval),
            "verify_tls": verify,
        }

    def full_text_options(self, item: LinedMap, where: str) -> dict[str, Any]:
        selector = str(item.get("full_text_selector") or "")
        if selector:
            try:
                from cssselect import GenericTranslator, SelectorError

                GenericTranslator().css_to_xpath(selector)
            except SelectorError as exc:
                self.error(self.key_line(item, "full_text_selector"), f"{where}: bad CSS selector {selector!r}: {exc}")
        return {
            "full_text": self.boolean(item, "full_text", False, where),
            "full_text_max": self.number(item, "full_text_max", 20, minimum=1),
            "full_text_retries": self.number(item, "full_text_retries", 3, minimum=0),
            "full_text_selector": selector,
            "full_text_any_address": self.boolean(item, "full_text_any_address", False, where),
        }

    def rules(self, top: LinedMap, seen: dict[str, tuple[str, int]]) -> list[Rule]:
        node = top.get("rules")
        if node is None:
            return []
        if not isinstance(node, LinedList):
            self.error(self.key_line(top, "rules"), "rules must be a list")
            return []
        rules: list[Rule] = []
        for i, item in enumerate(node):
            line = self.key_line(node, i)
            if not isinstance(item, LinedMap):
                self.error(line, "each rule must be a mapping with match and categories and/or tags")
                continue
            self.mapping(item, "a rule", RULE_KEYS, line)
            patterns = self.patterns(item, "match", self.key_line(item, "match", line))
            if "match" not in item:
                self.error(line, "rule has no match")
            cat_line = self.key_line(item, "categories", line)
            cats = tuple(self.category(c, None, cat_line, seen) for c in self.text_list(item, "categories", cat_line))
            tags = self.text_list(item, "tags", self.key_line(item, "tags", line))
            rules.extend(Rule(p, cats, tags) for p in patterns[:1])
        return rules

    def jekyll(self, top: LinedMap) -> Jekyll | None:
        if "jekyll" not in top:
            return None
        node = self.mapping(top.get("jekyll"), "jekyll", JEKYLL_KEYS, self.key_line(top, "jekyll"))
        return Jekyll(
            dir=self.path_of(node, "dir", "var/jekyll"),
            archive_after_days=self.number(node, "archive_after_days", 3, minimum=0),
            back_to_category=str(node.get("back_to_category") or "返回{category}"),
            back_to_home=str(node.get("back_to_home") or "返回首页"),
            category_url=str(node.get("category_url") or "{base}{slug}/"),
        )

    def server(self, top: LinedMap) -> Server:
        node = self.mapping(top.get("server"), "server", SERVER_KEYS, self.key_line(top, "server"))
        port = self.number(node, "port", 8080, minimum=0)
        if port > 65535:
            self.error(self.key_line(node, "port"), "server.port must be at most 65535")
        return Server(host=str(node.get("host") or "127.0.0.1"), port=port)
