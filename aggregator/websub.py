"""WebSub: tell the hub which published feeds changed (`hub.mode=publish`). Never fatal."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import requests

from .config import Site

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
    """POST hub.mode=publish for each URL; return the failures (for the caller to report; never
    raised). A hub that cannot be reached or does not answer in `timeout` is not tried again for
    the other URLs."""
    failures = []
    for done, url in enumerate(urls):
        try:
            response = session.post(hub, data={"hub.mode": "publish", "hub.url": url}, timeout=timeout)
            if response.status_code >= 300:
                failures.append(f"{url}: hub answered HTTP {response.status_code}")
        except requests.RequestException as exc:
            failures.append(f"{url}: {type(exc).__name__}")
            if len(urls) - done > 1:  # unreachable or silent: the rest would each wait as long
                failures.append(f"{len(urls) - done - 1} more changed feeds not announced: the hub did not answer")
            break
    return failures


def announce_changes(site: Site, written: Iterable[Path], session: requests.Session | None = None) -> list[str]:
    """Tell `site.websub_hub` (if any) which of the feed files a publish `written` changed; return
    the failures. The daemon, `fetch` and `build` all announce, so subscribers hear of every change."""
    urls = changed_feed_urls(written, site.output_dir, site.url) if site.websub_hub else []
    if not urls:
        return []
    if session is not None:
        return announce(session, site.websub_hub, urls)
    with requests.Session() as own:
        return announce(own, site.websub_hub, urls)
