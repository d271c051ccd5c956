"""One pass over sources: fetch -> parse -> normalise -> store, recording each source's outcome.

Network and parsing run in a bounded thread pool; every database write happens on the calling
thread, so SQLite never sees two writers from us at once. Each source's writes are atomic (a
savepoint); several sources share a commit (CommitBatch).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

from .articles import Article, ArticleReport, fetch_articles, owed_articles, record_articles
from .config import Config, Source
from .daemon_lock import running_daemon
from .errors import FetchError, unexpected
from .fetch import FetchLimits, HostLimits, fetch_url, make_session
from .memory import release_free_memory
from .models import FetchResult, Post, SourceOutcome
from .pass_flow import CommitBatch, Finished
from .slugs import slugify
from .store import SourceState, Store, guarded_values, to_db_time
from .workers import CpuPool, ParseJob, parse_job, shared_pool


@dataclass
class Retrieved:
    """What a worker hands back for one source: the outcome so far and the posts to store."""

    outcome: SourceOutcome
    posts: list[Post] = field(default_factory=list)
    response: FetchResult | None = None


@dataclass
class FetchReport:
    """The sum of one `fetch_sources` run."""

    outcomes: list[SourceOutcome] = field(default_factory=list)

    def count(self, result: str) -> int:
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def new(self) -> int:
        return sum(o.new for o in self.outcomes)

    @property
    def updated(self) -> int:
        return sum(o.updated for o in self.outcomes)

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.result == "error"]

    @property
    def changed_categories(self) -> set[str]:
        return {c for o in self.outcomes for c in o.changed_categories}

    @property
    def changed_tags(self) -> set[str]:
        return {t for o in self.outcomes for t in o.changed_tags}

    @property
    def changed_post_ids(self) -> list[str]:
        return [i for o in self.outcomes for i in o.changed_post_ids]


def limits_for(config: Config, source: Source | None = None) -> FetchLimits:
    d = config.defaults
    timeout = source.timeout if source is not None and source.timeout else d.timeout
    return FetchLimits(timeout=timeout, deadline=d.deadline, max_body=d.max_body)


def url_to_fetch(source: Source, state: SourceState) -> str:
    """The URL a source is fetched from: where it permanently moved to, unless the config changed."""
    if state.moved_to and state.url == source.url:
        return state.moved_to
    return source.url


def retrieve(
    config: Config, source: Source, state: SourceState, session: requests.Session, now: datetime | None = None,
    cpu: CpuPool | None = None,
    hosts: HostLimits | None = None,
) -> Retrieved:
    """Fetch one source here (holding its host's slot only while downloading), then parse and
    normalise it in a worker process (or here without `cpu`); touches no database, so any thread
    may call it."""
    now = now or datetime.now(UTC)
    outcome = SourceOutcome(source=source.name, result="error")
    url = url_to_fetch(source, state)
    same_url = state.url == source.url
    try:
        with hosts(source.host) if hosts is not None else nullcontext():
            response = fetch_url(
                session, url, etag=state.etag if same_url else "",
                last_modified=state.last_modified if same_url else "", limits=limits_for(config, source),
                headers=dict(source.headers), user_agent=source.user_agent, verify=source.verify_tls,
            )
    except FetchError as exc:
        outcome.error, outcome.http_status, outcome.retry_after = str(exc), exc.status, exc.retry_after
        return Retrieved(outcome)
    except Exception as exc:  # an answer nobody foresaw fails this source, never the whole pass
        outcome.error = unexpected(exc)
        return Retrieved(outcome)
    outcome.http_status = response.status
    outcome.url = response.url
    outcome.permanent_redirect = response.permanent_redirect
    outcome.moved_to = response.moved_to
    outcome.elapsed_ms = response.elapsed_ms
    if response.not_modified or response.body is None:
        outcome.result = "not-modified"
        return Retrieved(outcome, response=response)
    job = ParseJob(source, config.rules, config.site.timezone, response.body, response.headers, now)
    response.body = None  # parsed now: the bytes need not live as long as the outcome
    try:
        parsed = (cpu or INLINE).run(parse_job, job)
    except Exception as exc:  # WorkerDied (killed, out of memory): this source's failure, the pass goes on
        outcome.error = unexpected(exc)
        return Retrieved(outcome, response=response)
    if parsed.error:
        outcome.error = parsed.error
        return Retrieved(outcome, response=response)
    outcome.result = "ok"
    outcome.warning = parsed.warning
    return Retrieved(outcome, parsed.posts, response)


#: the longest a failing source waits between polls, and the most of a Retry-After honoured
MAX_BACKOFF = 24 * 3600


def next_due(
    source: Source, outcome: SourceOutcome, failures: int, now: datetime, rng: random.Random | None = None
) -> datetime | None:
    """When to poll a source next after `outcome`; None when it is gone (410)."""
    if outcome.http_status == 410:
        return None
    base = float(source.interval)
    delay = min(base * 2 ** min(failures, 30), MAX_BACKOFF) if outcome.result == "error" else base
    delay += (rng or random).uniform(0, 0.1 * base)
    if outcome.retry_after is not None:
        # honoured, up to the longest backoff: one answer of Retry-After: 315360000 must not
        # silence a source for ten years (the date is stored and survives restarts)
        delay = max(delay, min(outcome.retry_after, MAX_BACKOFF))
    return now + timedelta(seconds=delay)


def _schedule_after(source: Source, outcome: SourceOutcome, now: datetime) -> Callable[[int], datetime | None]:
    """When a daemon would poll `source` next, saved by a one-shot pass too: `status` shows it, and
    a daemon started later does not poll again what was just fetched."""
    return lambda failures: next_due(source, outcome, failures, now)


def retention_cutoff(config: Config, now: datetime) -> datetime | None:
    """Posts dated before this are deleted by retention, so not stored (None: no retention)."""
    days = config.site.retention_days
    if not days:
        return None
    try:
        return now - timedelta(days=days)
    except OverflowError:  # more days than the calendar holds: nothing is ever that old
        return None


def moved_to(source: Source, outcome: SourceOutcome) -> str:
    """Where a fetch says the source moved for good (the redirects it began with were permanent), or ''."""
    moved = outcome.result != "error" and outcome.moved_to and outcome.moved_to != source.url
    return outcome.moved_to if moved else ""


def record(
    store: Store, config: Config, source: Source, retrieved: Retrieved, now: datetime,
    state: SourceState | None = None, schedule: Callable[[int], datetime | None] | None = None,
) -> SourceOutcome:
    """Store the posts of one retrieved source and remember how the fetch went (`state`: the
    source's state as read before the fetch, to save reading it again; `schedule`: given the
    failures in a row after this fetch, when to poll next, saved in the same write).

    Posts and the new state are one transaction (a savepoint inside a caller's): never validators
    saved for posts that were not. Without posts it is one statement, atomic by itself.
    """
    state = state or store.source_state(source.name, counts=False)
    categories = json.dumps([c.slug for c in source.categories], ensure_ascii=False)
    # feeds.yaml gave the source other categories since its posts were stored: they follow (once
    # the source answers; recorded since schema 9, so '' is unknown rather than changed)
    moving = retrieved.outcome.result != "error" and state.categories not in ("", categories)
    with store.transaction() if retrieved.outcome.result == "ok" or moving else nullcontext():
        return _record(store, config, source, retrieved, now, state, schedule, categories, moving)


def _record(
    store: Store, config: Config, source: Source, retrieved: Retrieved, now: datetime, state: SourceState,
    schedule: Callable[[int], datetime | None] | None, categories: str, moving: bool,
) -> SourceOutcome:
    outcome = retrieved.outcome
    read_as = guarded_values(state)  # the state as read: saved over only if nobody changed it since
    if state.url != source.url and state.url:  # every item names its feed's URL: its feeds are republished
        categories_of_posts, tags_of_posts = store.source_slugs(source.name)
        outcome.changed_categories |= categories_of_posts | {c.slug for c in source.categories}
        outcome.changed_tags |= tags_of_posts | {slugify(tag) for tag in source.tags}
    if outcome.result == "ok":
        result = store.store_posts(retrieved.posts, config.categories, now, full_text=source.full_text,
                                   sources=config.source_names,
                                   not_before=retention_cutoff(config, now))
        outcome.new, outcome.updated = result.new, result.updated
        outcome.changed_categories |= result.categories
        outcome.changed_tags |= result.tags
        outcome.changed_post_ids += result.post_ids
    if moving:
        result = store.move_source_categories(source.name, json.loads(state.categories), json.loads(categories), now)
        outcome.updated += result.updated
        outcome.changed_categories |= result.categories
        outcome.changed_post_ids += result.post_ids
    new_state = _next_state(state, source, retrieved, now, schedule, categories)
    if not store.save_source_state(new_state, read_as=read_as):
        # another process saved this source meanwhile (the daemon beside a `fetch`, or `sources
        # reset`): count from its state (failures, due time), not from the one read before, which
        # would undo its write
        fresh = _next_state(store.source_state(source.name, counts=False), source, retrieved, now, schedule, categories)
        store.save_source_state(fresh)
    return outcome


def _next_state(
    state: SourceState, source: Source, retrieved: Retrieved, now: datetime,
    schedule: Callable[[int], datetime | None] | None, categories: str,
) -> SourceState:
    """`state` (changed in place) after this fetch: result, validators, failures, next due time."""
    outcome = retrieved.outcome
    if state.url != source.url:  # the config points somewhere new: forget the old URL's state
        state = SourceState(name=source.name, url=source.url, failures=state.failures, categories=state.categories)
    if outcome.result != "error":
        state.categories = categories
    state.last_fetch = to_db_time(now)
    state.result = outcome.result
    state.http_status = outcome.http_status
    state.elapsed_ms = outcome.elapsed_ms
    state.new, state.updated = outcome.new, outcome.updated
    if outcome.result == "error":
        state.error = outcome.error
        state.failures += 1
        state.gone = int(outcome.http_status == 410)
    else:
        response = retrieved.response
        if response is not None and outcome.result == "ok":
            state.etag = response.headers.get("etag", "")
            state.last_modified = response.headers.get("last-modified", "")
        state.error, state.failures, state.gone = "", 0, 0
        if outcome.result == "ok":  # after a 304 the feed is what it was: its parser warning still holds
            state.warning = outcome.warning
        state.last_success = state.last_fetch
        state.final_url = outcome.url
        state.moved_to = moved_to(source, outcome) or state.moved_to
    if schedule is not None:
        due = schedule(state.failures)
        state.next_due = to_db_time(due) if due else None
    return state


INLINE = CpuPool(processes=0)
ProgressCallback = Callable[[SourceOutcome], None]


def add_articles(outcome: SourceOutcome, report: ArticleReport) -> None:
    """Fold what the full-text stage changed into the source's outcome (for publishing). The
    article of a post this same fetch added or changed (and counted) does not count again."""
    outcome.updated += len(set(report.stored.post_ids).difference(outcome.changed_post_ids))
    outcome.articles_ok, outcome.articles_failed = report.ok, report.failed
    outcome.article_error = report.errors[-1] if report.errors else ""
    outcome.changed_categories |= report.stored.categories
    outcome.changed_tags |= report.stored.tags
    outcome.changed_post_ids += report.stored.post_ids


def sources_to_fetch(
    config: Config, known: dict[str, SourceState], sources: Iterable[Source] | None = None
) -> list[Source]:
    """The sources a pass fetches: those named, else every enabled one that is not gone (410 at its
    current URL: not polled again until its URL changes or `sources reset`, as the daemon does)."""
    if sources is not None:
        return list(sources)

    def gone(source: Source) -> bool:
        state = known.get(source.name)
        return state is not None and bool(state.gone) and state.url == source.url

    return [s for s in config.sources if s.enabled and not gone(s)]


def fetch_sources(
    config: Config,
    store: Store,
    sources: Iterable[Source] | None = None,
    *,
    workers: int | None = None,
    session: requests.Session | None = None,
    progress: ProgressCallback | None = None,
    cpu: CpuPool | None = None,
) -> FetchReport:
    """Fetch every given (default: every enabled) source once, concurrently; store what changed.

    Sources with `full_text` then fetch the articles their posts still owe (even after a 304), in
    the same pool; an article failure never makes the source fail.
    """
    known = store.source_states(counts=False)
    chosen = sources_to_fetch(config, known, sources)
    workers = workers or config.defaults.workers
    session = session or make_session(pool_size=max(workers, 4))
    hosts = HostLimits(config.defaults.per_host)
    cpu = cpu or shared_pool(config.defaults.processes)
    states = {s.name: known.get(s.name) or SourceState(name=s.name) for s in chosen}
    # a daemon running on this database keeps its own schedule (read from next_due when it starts):
    # a one-shot pass beside it must not store a time the daemon will not keep
    scheduling = running_daemon(config.site.database) is None
    report = FetchReport()
    outcomes: dict[str, SourceOutcome] = {}

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        feeds: dict[Future[Retrieved], Source] = {}
        articles: dict[Future[list[Article]], Source] = {}
        finished = Finished()
        queue = iter(chosen)

        def submit_more() -> None:
            # at most 4 x workers sources fetched but not yet stored: when storing is the slower
            # side, finished fetches would otherwise pile up (posts and all) until the pass ends
            while len(feeds) < 4 * workers and (source := next(queue, None)) is not None:
                future = pool.submit(retrieve, config, source, states[source.name], session, None, cpu, hosts)
                feeds[future] = source
                finished.watch(future)

        submit_more()
        batch = CommitBatch(store)
        try:
            while finished.pending:
                done = finished.wait(batch.time_left())
                failure: BaseException | None = None
                if done:
                    batch.begin()
                for future in done:
                    try:  # each source's writes are atomic (record; the savepoint): a failure undoes only its own
                        if future in feeds:
                            source = feeds.pop(future)  # drop the response and posts once stored
                            now = datetime.now(UTC)
                            retrieved = future.result()
                            schedule = _schedule_after(source, retrieved.outcome, now)
                            outcome = record(store, config, source, retrieved, now, states[source.name],
                                             schedule if scheduling and source.enabled else None)
                            outcomes[source.name] = outcome
                            owed = owed_articles(store, source)
                            if owed:
                                job = pool.submit(
                                    fetch_articles, session, source, owed, limits_for(config, source), hosts, cpu
                                )
                                articles[job] = source
                                finished.watch(job)
                                continue
                        else:
                            source = articles.pop(future)
                            outcome = outcomes[source.name]
                            with store.transaction():
                                add_articles(outcome, record_articles(store, source, future.result()))
                        batch.stored.append(outcome)
                    except Exception as exc:  # a bug or a broken database: keep what is stored, then stop
                        failure = exc
                        break
                if failure is not None or batch.due() or not finished.pending:
                    for outcome in batch.commit():  # reported once committed
                        report.outcomes.append(outcome)
                        if progress:
                            progress(outcome)
                if failure is not None:
                    raise failure
                submit_more()
        except BaseException:
            batch.abandon()  # interrupted: what was not committed yet is rolled back
            raise
    order = {s.name: i for i, s in enumerate(chosen)}
    report.outcomes.sort(key=lambda o: order[o.source])
    release_free_memory()  # the pass's posts are stored and freed: publishing need not sit on top of them
    return report
