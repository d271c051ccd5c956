"""The typed, immutable settings a feeds.yaml turns into, and the small parsers they need."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

DEFAULT_INTERVAL = 30 * 60
_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


@dataclass(frozen=True)
class Category:
    name: str
    slug: str


@dataclass(frozen=True)
class Site:
    title: str
    url: str
    timezone: ZoneInfo
    output_dir: Path
    database: Path
    description: str = ""
    language: str = "zh-CN"
    feed_size: int = 50
    tag_feed_min: int = 1
    retention_days: int | None = None
    websub_hub: str = ""


@dataclass(frozen=True)
class Defaults:
    interval: int = DEFAULT_INTERVAL
    workers: int = 8
    timeout: float = 20.0
    deadline: float = 60.0
    max_body: int = 10 * 1024 * 1024
    per_host: int = 2
    max_entries: int = 1000
    processes: int | None = None  # worker processes for parsing; None: one per CPU, 0: none


@dataclass(frozen=True)
class Source:
    name: str
    url: str
    categories: tuple[Category, ...]
    tags: tuple[str, ...] = ()
    interval: int = DEFAULT_INTERVAL
    timezone: ZoneInfo | None = None
    enabled: bool = True
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    encoding: str = ""
    max_entries: int = 1000
    line: int = 0
    # full article text (issue "richer sources")
    full_text: bool = False
    full_text_max: int = 20
    full_text_retries: int = 3
    full_text_selector: str = ""
    full_text_any_address: bool = False  # articles from loopback, private, link-local addresses too
    # per-source HTTP options; header values may come from the environment (${NAME})
    headers: tuple[tuple[str, str], ...] = ()
    user_agent: str = ""
    timeout: float | None = None
    verify_tls: bool = True

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


@dataclass(frozen=True)
class Rule:
    match: re.Pattern[str]
    categories: tuple[Category, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Jekyll:
    dir: Path
    archive_after_days: int = 3
    back_to_category: str = "返回{category}"
    back_to_home: str = "返回首页"
    #: where the "back to category" link points; {base} is //HOST/PATH/ of site.url, {slug} the slug
    category_url: str = "{base}{slug}/"


@dataclass(frozen=True)
class Server:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class Config:
    path: Path
    site: Site
    defaults: Defaults
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...] = ()
    jekyll: Jekyll | None = None
    server: Server = field(default_factory=Server)

    @cached_property
    def categories(self) -> dict[str, str]:
        """Every category the config names, slug -> name, sources first, then rules.

        Worked out once (the config is frozen): storing each source's posts asks for it, and
        rebuilding it from every source each time made a fetch pass quadratic in the sources.
        Read it, do not change it."""
        names: dict[str, str] = {}
        for cat in [c for s in self.sources for c in s.categories] + [
            c for r in self.rules for c in r.categories
        ]:
            names.setdefault(cat.slug, cat.name)
        return names

    @cached_property
    def source_names(self) -> frozenset[str]:
        """The names of every configured source (worked out once, as `categories`)."""
        return frozenset(s.name for s in self.sources)

    def source(self, name: str) -> Source:
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(name)


def parse_interval(value: Any) -> int:
    """Read `30s`, `10m`, `2h`, `1d` or a plain number of seconds; raise ValueError otherwise."""
    match = _INTERVAL.match(str(value)) if not isinstance(value, bool) else None
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad interval {value!r} (use a number with s, m, h or d, e.g. 30m)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def parse_size(value: Any) -> int:
    match = _SIZE.match(str(value)) if not isinstance(value, bool) else None
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad size {value!r} (use bytes or KB/MB/GB, e.g. 10MB)")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]


def is_http_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def config_warnings(config: Config) -> list[str]:
    """Settings that are valid but risky, as `FILE:LINE: message` lines."""
    warnings = [
        f"{config.path}:{src.line}: source {src.name!r}: verify_tls is false, so its TLS certificate is not "
        "checked; use it only for a trusted internal server"
        for src in config.sources
        if not src.verify_tls
    ]
    for src in config.sources:  # `tags: a, b` is one tag "a, b" in YAML: almost always meant as a list
        for kind, names in (("tag", src.tags), ("category", [c.name for c in src.categories])):
            warnings += [f"{config.path}:{src.line}: source {src.name!r}: {kind} {name!r} has a comma; "
                         f"for several, write a list: [{', '.join(p.strip() for p in re.split('[,，]', name))}]"
                         for name in names if "," in name or "，" in name]
    if not config.sources:
        warnings.append(f"{config.path}: no sources yet: nothing will be fetched")
    return warnings
