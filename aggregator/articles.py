"""The full-text stage: fetch the articles a source's posts still owe and store them.

Network and extraction run in worker threads without touching the database; storing runs on the
thread that owns the store. A failure never loses the entry: the post keeps the feed's content, the
failure is recorded on the source, and the page is tried again on later polls up to
`full_text_retries` more times.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

from .addresses import feed_kinds, reachable
from .config import Source
from .errors import FetchError, unexpected
from .fetch import FetchLimits, HostLimits, fetch_url, may_carry_headers, origin_of
from .store import Store, StoreResult
from .workers import CpuPool, extract_job


@dataclass
class Article:
    post_id: str
    link: str
    content: str = ""
    error: str = ""


@dataclass
class ArticleReport:
    ok: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    stored: StoreResult = field(default_factory=StoreResult)


def owed_articles(store: Store, source: Source) -> list[tuple[str, str]]:
    """(post id, link) of the articles to fetch on this poll, newest first, at most full_text_max."""
    if not source.full_text:
        return []
    return store.pending_articles(source.name, source.full_text_max, 1 + source.full_text_retries)


def article_addresses(source: Source) -> frozenset[str] | None:
    """What kinds of address beside public ones `source`'s articles may be fetched from: the kind of
    its feed's address when the feed URL is an IP address (an intranet feed's articles are on the
    intranet), or any with `full_text_any_address` (None). See `aggregator.addresses` for why."""
    return None if source.full_text_any_address else feed_kinds(source.host)


def fetch_article(
    session: requests.Session, source: Source, post_id: str, link: str, limits: FetchLimits,
    hosts: HostLimits | None = None, cpu: CpuPool | None = None,
) -> Article:
    """Fetch one article here and extract it in a worker process (thread-safe, no database)."""
    article = Article(post_id, link)
    own_host = may_carry_headers(origin_of(source.url), origin_of(link))
    polite = hosts(urlsplit(link).hostname or "") if hosts is not None else nullcontext()
    try:
        with polite, reachable(article_addresses(source)):
            response = fetch_url(
                session, link, limits=limits, headers=dict(source.headers) if own_host else None,
                user_agent=source.user_agent, verify=source.verify_tls,
            )
        content_type = response.headers.get("content-type", "")
        job = (response.body or b"", content_type, response.url, source.full_text_selector, source.encoding)
        article.content = cpu.run(extract_job, *job) if cpu is not None else extract_job(*job)
    except FetchError as exc:
        article.error = str(exc)
        return article
    except Exception as exc:  # a page nobody foresaw fails this article (tried again later), nothing else
        article.error = unexpected(exc)
        return article
    if not article.content:
        article.error = "no article text found on the page"
    return article


def fetch_articles(
    session: requests.Session, source: Source, owed: list[tuple[str, str]], limits: FetchLimits,
    hosts: HostLimits | None = None, cpu: CpuPool | None = None,
) -> list[Article]:
    return [fetch_article(session, source, post_id, link, limits, hosts, cpu) for post_id, link in owed]


def record_articles(
    store: Store, source: Source, articles: list[Article], now: datetime | None = None
) -> ArticleReport:
    """Store fetched articles and count failures; the source's article_error says the last one."""
    now = now or datetime.now(UTC)
    report = ArticleReport()
    for article in articles:
        if article.content:
            store.save_article(article.post_id, article.content, now, report.stored)
            report.ok += 1
        else:
            store.article_failed(article.post_id, 1 + source.full_text_retries)
            report.failed += 1
            report.errors.append(f"{article.link}: {article.error}")
    if articles:
        store.set_article_error(source.name, report.errors[-1] if report.errors else "")
    return report
