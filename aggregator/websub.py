"""WebSub: tell the hub which published feeds changed (`hub.mode=publish`). Never fatal."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import requests

LOG = logging.getLogger("aggregator.websub")
FEED_FILES = {"feed.xml", "atom.xml", "feed.json"}


def changed_feed_urls(written: Iterable[Path], output_dir: Path, site_url: str) -> list[str]:
    """Public URLs of the feed files among `written`."""
    urls = []
    for path in written:
        if path.name in FEED_FILES:
            try:
                relative = path.resolve().relative_to(output_dir.resolve())
            except ValueError:
                continue
            urls.append(site_url + relative.as_posix())
    return urls


def announce(session: requests.Session, hub: str, urls: list[str], timeout: float = 10.0) -> list[str]:
    """POST hub.mode=publish for each URL; return the failures (logged, never raised)."""
    failures = []
    for url in urls:
        try:
            response = session.post(hub, data={"hub.mode": "publish", "hub.url": url}, timeout=timeout)
            if response.status_code >= 300:
                failures.append(f"{url}: hub answered HTTP {response.status_code}")
        except requests.RequestException as exc:
            failures.append(f"{url}: {type(exc).__name__}")
    for failure in failures:
        LOG.warning("WebSub publish failed: %s", failure)
    return failures
