"""The daemon: APScheduler polls each source on its own schedule, republishes, reloads, serves.

One job per enabled source. Each run fetches the source and then moves its own job to the next due
time, which honours the interval (plus up to 10% jitter), exponential backoff after errors (capped at
24 h), Retry-After, and 410 Gone (no next run). Next-due times live in SQLite, so a restart carries on
where the last process stopped instead of hammering every source at once.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from .articles import owed_articles
from .config import Config, Source, config_warnings, load_config
from .daemon_articles import ArticlesMixin
from .daemon_lock import claim_database, release_database
from .daemon_publish import CONTROL, PublishingMixin
from .daemon_reload import ReloadMixin
from .fetch import make_session
from .lanes import ARTICLES, FAILING, Lanes
from .metrics import Metrics
from .models import SourceOutcome
from .pipeline import moved_to, next_due, record, retrieve
from .server import FeedServer, StaticSite
from .store import Store, from_db_time
from .workers import shared_pool

LOG = logging.getLogger("aggregator.daemon")
class Daemon(PublishingMixin, ArticlesMixin, ReloadMixin):
    """`aggregator run`: poll, store, republish and serve until told to stop."""

    def __init__(
        self,
        config_path: Path,
        *,
        host: str | None = None,
        port: int | None = None,
        grace: float = 10.0,
        reload_every: float = 2.0,
    ):
        self.config_path = config_path
        self.config: Config = load_config(config_path)
        self._config_digest = self._digest()
        self.grace = grace
        self.reload_every = reload_every
        self._daemon_lock = claim_database(self.config.site.database)
        self.store = Store(self.config.site.database)
        self.publish_store = Store(self.config.site.database)
        self.store_lock = threading.Lock()
        self.metrics = Metrics()
        self.lanes = Lanes(self.config.defaults.workers, self.config.defaults.per_host)
        self.session = make_session(
            pool_size=max(self.config.defaults.workers + self.lanes.failing_workers + self.lanes.article_workers, 4)
        )
        self.cpu = shared_pool(self.config.defaults.processes)
        self.scheduler = BackgroundScheduler(
            executors={
                "default": ThreadPoolExecutor(self.config.defaults.workers),
                FAILING: ThreadPoolExecutor(self.lanes.failing_workers),
                ARTICLES: ThreadPoolExecutor(self.lanes.article_workers),
                CONTROL: ThreadPoolExecutor(2),  # a publish and a config check may overlap
            },
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self._inflight = 0
        self._stopping = False
        self._inflight_cond = threading.Condition()
        self._pending_lock = threading.Lock()
        self._articles_lock = threading.Lock()
        self._articles_queued: set[str] = set()
        self._articles_again: set[str] = set()
        self._articles_runs = 0
        self._publish_lock = threading.Lock()  # one publish at a time, and none after close
        self._closed = False
        self._pending: dict[str, set[str]] = {"categories": set(), "tags": set(), "posts": set()}
        self.last_publish: datetime | None = None
        # the last error of each kind of publish ("incremental", "build") until that kind succeeds
        self.publish_errors: dict[str, str] = {}
        self.database_error = ""  # the last poll's database error (read-only, full, locked) until one stores
        self._polling_lock = threading.Lock()
        self._polling: set[str] = set()  # sources being polled now
        self._poll_again: set[str] = set()  # ... and to poll again as soon as that poll ends
        self.summary: dict[str, tuple[str, int, bool]] = {}  # name -> (result, failures, gone)
        self._due: dict[str, datetime] = {}  # name -> when its poll was due (for lateness)
        self.config.site.output_dir.mkdir(parents=True, exist_ok=True)
        app = StaticSite(self.config.site.output_dir, health=self.health, metrics=self.metrics.render)
        self.server = FeedServer(
            app, host or self.config.server.host, self.config.server.port if port is None else port
        )

    # -- life cycle ------------------------------------------------------------------------------

    def run(self) -> int:
        """Start everything, block until SIGTERM/SIGINT, stop cleanly; return the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGHUP, lambda *_: self.reload_event.set())
        self.start()
        while not self.stop_event.is_set():
            if self.reload_event.wait(timeout=0.5):
                self.reload_event.clear()
                self.reload()
        self.shutdown()
        return 0

    def start(self) -> None:
        for warning in config_warnings(self.config):
            LOG.warning(warning)
        self.scheduler.start()
        self.scheduler.add_job(self._publish_all, id="build", executor=CONTROL, next_run_time=datetime.now(UTC))
        self.scheduler.add_job(
            self._check_changes, "interval", seconds=self.reload_every, id="reload", executor=CONTROL
        )
        # retention and the Jekyll archive depend on today's date: rebuild everything once a day
        self.scheduler.add_job(self._publish_all, "interval", hours=24, id="daily-build", executor=CONTROL)
        self._schedule_all(self.config, initial=True)
        # served once the gauges are seeded from the database: a scrape at start sees them
        self.server.start()
        LOG.info(
            "serving %s on http://%s:%s/",
            self.config.site.output_dir,
            self.config.server.host if self.server.port else "?",
            self.server.port,
        )

    def shutdown(self) -> None:
        """Stop scheduling, let in-flight fetches finish within the grace period, flush, close."""
        LOG.info("stopping: waiting up to %gs for in-flight fetches", self.grace)
        self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + self.grace
        with self._inflight_cond:
            self._stopping = True  # a poll the scheduler already handed out does not start
            while self._inflight and time.monotonic() < deadline:
                self._inflight_cond.wait(timeout=max(0.0, deadline - time.monotonic()))
            unfinished = self._inflight
        if not unfinished:
            self._publish_pending()
        self.server.stop()
        if unfinished:
            LOG.warning("stopped with %d %s unfinished after the grace period", unfinished,
                        "fetch" if unfinished == 1 else "fetches")
            os._exit(0)  # the stuck threads must not hold the process; committed data is safe
        with self.store_lock, self._publish_lock:  # a publish still running finishes first
            self._closed = True
            self.store.close()
            self.publish_store.close()
        self.cpu.shutdown()
        release_database(self._daemon_lock)  # another daemon may start on this database now
        LOG.info("stopped")

    # -- scheduling ------------------------------------------------------------------------------

    def _schedule_all(self, config: Config, initial: bool = False) -> None:
        now = datetime.now(UTC)
        rng = random.Random()
        with self.store_lock:
            states = self.store.source_states()
        wanted = set()
        for src in config.sources:
            state = states.get(src.name)
            same_url = state is not None and state.url == src.url
            if state is not None:
                self.summary[src.name] = (state.result, state.failures, bool(state.gone) and same_url)
                if initial:
                    self.lanes.seed(src.name, state.failures)
            if not src.enabled or (same_url and state is not None and state.gone):
                continue
            wanted.add(src.name)
            due = from_db_time(state.next_due) if same_url and state is not None else None
            if due is None or due < now:
                due = now + timedelta(seconds=rng.uniform(0, min(5.0, 0.1 * src.interval)))
            elif state is not None and not state.failures:  # a shorter interval counts from now, not
                due = min(due, now + timedelta(seconds=src.interval))  # from the longer one's due time
            if initial and state is not None and same_url and state.last_success:
                success = from_db_time(state.last_success)  # the gauge holds across restarts
                if success is not None:
                    self.metrics.last_success.labels(src.name).set(success.timestamp())
            job = self.scheduler.get_job(f"source:{src.name}")
            if (
                job is None
                or initial
                or job.next_run_time
                and job.next_run_time > now + timedelta(seconds=src.interval)
            ):
                self._reschedule(src.name, due)
        polled = {src.name for src in config.sources if src.enabled}
        self.lanes.forget(polled)  # health() reads the config
        self.metrics.forget_sources(polled)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("source:") and job.id[7:] not in wanted:
                job.remove()
                LOG.info("source %s is no longer polled", job.id[7:])

    def _reschedule(self, name: str, when: datetime) -> None:
        self._due[name] = when
        self.scheduler.add_job(
            self._poll, args=[name], id=f"source:{name}", name=name, next_run_time=when, replace_existing=True,
            executor=self.lanes.lane(name),
        )

    def _poll(self, name: str) -> None:
        config = self.config
        try:
            source = config.source(name)
        except KeyError:
            return
        due = self._due.get(name)
        if due is not None:
            late = max(0.0, (datetime.now(UTC) - due).total_seconds())
            lane = "failing" if self.lanes.lane(name) == FAILING else "healthy"
            self.metrics.poll_lateness.labels(lane).observe(late)
        with self._polling_lock:
            if name in self._polling:  # a reset (or a lane change) ran it again while a poll is under way:
                self._poll_again.add(name)  # never two fetches of one source at once; once it ends
                return
            self._polling.add(name)
        try:
            self._poll_once(config, source)
        finally:
            with self._polling_lock:
                self._polling.discard(name)
                again = name in self._poll_again
                self._poll_again.discard(name)
            if again and not self.stop_event.is_set():
                self._reschedule(name, datetime.now(UTC))

    def _poll_once(self, config: Config, source: Source) -> None:
        name = source.name
        if not self._start_work():
            return
        try:
            self._poll_source(config, source)
        except sqlite3.DatabaseError as exc:  # the database's fault, not the source's: one line, no traceback
            self.database_error = f"{config.site.database}: {exc}"
            LOG.error("poll of %s not stored: database %s", name, self.database_error)
            if not self.stop_event.is_set():
                self._reschedule(name, datetime.now(UTC) + timedelta(seconds=source.interval))
        except Exception:
            LOG.exception("poll of %s failed unexpectedly", name)
            self.lanes.record(name, failed=True)
            # failing in /healthz too (a locked or broken database, a bug), not "ok" from the last poll
            _result, failures, gone = self.summary.get(name, ("", 0, False))
            self.summary[name] = ("error", failures + 1, gone)
            if not self.stop_event.is_set():
                self._reschedule(name, datetime.now(UTC) + timedelta(seconds=source.interval))
        finally:
            self._end_work()

    def _start_work(self) -> bool:
        """Count a poll or an article job in flight (shutdown waits for them); False when stopping."""
        with self._inflight_cond:
            if self._stopping:
                return False
            self._inflight += 1
            return True

    def _end_work(self) -> None:
        with self._inflight_cond:
            self._inflight -= 1
            self._inflight_cond.notify_all()

    def _poll_source(self, config: Config, source: Source) -> None:
        started = time.monotonic()
        with self.store_lock:
            state = self.store.source_state(source.name, counts=False)
        hosts = self.lanes.hosts[self.lanes.lane(source.name)]
        retrieved = retrieve(config, source, state, self.session, None, self.cpu, hosts)
        now = datetime.now(UTC)
        failures = 0
        due: datetime | None = None

        def schedule(failures_now: int) -> datetime | None:
            nonlocal due, failures
            failures, due = failures_now, next_due(source, retrieved.outcome, failures_now, now)
            return due

        with self.store_lock:
            # the state is read again here: `sources reset` may have changed it during the fetch
            outcome = record(self.store, config, source, retrieved, now, schedule=schedule)
            owed = bool(owed_articles(self.store, source))
        self.database_error = ""
        if owed:
            self._queue_articles(source.name)
        # a reload during the fetch may have removed (or disabled) the source: its posts are stored,
        # but it must not come back in the health summary, the metrics or the schedule
        polled = self._still_polled(source.name)
        if polled:
            self.summary[source.name] = (outcome.result, failures, outcome.http_status == 410)
            self.lanes.record(source.name, outcome.result == "error")
        self._observe(source, outcome, time.monotonic() - started, due, moved_to(source, outcome), polled)
        if outcome.changed_post_ids or outcome.changed_categories or outcome.changed_tags:  # a new URL: only feeds
            self._queue_publish(outcome)
        if due is not None and polled and not self.stop_event.is_set():
            self._reschedule(source.name, due)

    def _still_polled(self, name: str) -> bool:
        try:
            return self.config.source(name).enabled
        except KeyError:
            return False

    def _observe(
        self, source: Source, outcome: SourceOutcome, seconds: float, due: datetime | None, moved_to: str,
        polled: bool = True,
    ) -> None:
        if polled:  # labelled by source: not for one a reload has forgotten
            self.metrics.fetches.labels(source.name, outcome.result).inc()
            if outcome.result != "error":
                self.metrics.last_success.labels(source.name).set(time.time())
        self.metrics.fetch_seconds.observe(seconds)
        self.metrics.posts_new.inc(outcome.new)
        self.metrics.posts_updated.inc(outcome.updated)
        extra = {
            "source": source.name,
            "result": outcome.result,
            "http_status": outcome.http_status,
            "new": outcome.new,
            "updated": outcome.updated,
            "ms": int(seconds * 1000),
        }
        line = (
            f"fetch {source.name}: {outcome.result} http={outcome.http_status or '-'} new={outcome.new} "
            f"updated={outcome.updated} {int(seconds * 1000)}ms"
        )
        if outcome.result == "error":
            wait = f"; next try {due.isoformat(timespec='seconds')}" if due else "; gone (410), no longer polled"
            LOG.warning("%s: %s%s", line, outcome.error, wait, extra={**extra, "error": outcome.error})
        else:
            LOG.info(line, extra=extra)
        if moved_to:
            LOG.warning(
                "source %s moved permanently to %s: update its url in %s",
                source.name,
                moved_to,
                self.config_path,
                extra={"source": source.name, "moved_to": moved_to},
            )

    # -- health ----------------------------------------------------------------------------------

    def health(self) -> tuple[int, dict[str, Any]]:
        thread = getattr(self.scheduler, "_thread", None)
        alive = bool(self.scheduler.running and thread is not None and thread.is_alive())
        counts = {"ok": 0, "failing": 0, "gone": 0}
        failing = []
        # only sources polled now: a poll still running at a reload may write a removed one back
        polled = {src.name for src in self.config.sources if src.enabled}
        for name, (result, failures, gone) in sorted(self.summary.items()):
            if name not in polled:
                continue
            if gone:
                counts["gone"] += 1
            elif failures:
                counts["failing"] += 1
                failing.append(name)
            elif result:
                counts["ok"] += 1
        publish_error = "; ".join(error for _kind, error in sorted(dict(self.publish_errors).items()))
        payload = {
            "status": "ok" if alive and not failing and not publish_error and not self.database_error
            else ("degraded" if alive else "down"),
            "scheduler": "running" if alive else "stopped",
            "sources": counts,
            "failing": failing,
            "last_publish": self.last_publish.isoformat(timespec="seconds") if self.last_publish else None,
            "publish_error": publish_error or None,
            "database_error": self.database_error or None,
        }
        return (200 if alive else 503), payload
