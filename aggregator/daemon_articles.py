"""Full articles inside the daemon: fetched after a poll, in a lane of their own.

A source with `full_text` owes the articles of its new posts. Fetching them inside the poll held
the healthy lane's thread and the host's slot for as long as the article site took, so one hanging
article site delayed every feed on its host (polls 80 s late where 10 s were due). The poll now
only queues an article job; it runs in the articles executor with the articles lane's host slots,
one article at a time, stopping between two when the daemon stops. What is left is owed still,
and the next job picks it up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from .articles import fetch_article, owed_articles, record_articles
from .config import Config
from .lanes import ARTICLES, Lanes
from .models import SourceOutcome
from .pipeline import add_articles, limits_for
from .store import Store

LOG = logging.getLogger("aggregator.daemon")


class ArticlesMixin:
    """The daemon's article half; `Daemon` provides the attributes declared here."""

    config: Config
    scheduler: BackgroundScheduler
    store: Store
    store_lock: threading.Lock
    lanes: Lanes
    session: Any
    cpu: Any
    stop_event: threading.Event
    _closed: bool
    _articles_lock: threading.Lock
    _articles_queued: set[str]  # sources whose article job is queued or running
    _articles_again: set[str]  # ... and which a poll asked for again meanwhile
    _articles_runs: int
    _start_work: Callable[[], bool]
    _end_work: Callable[[], None]
    _queue_publish: Callable[[SourceOutcome], None]

    def _queue_articles(self, name: str) -> None:
        """Run the source's article job now; if one is queued or running, have it run once more
        when it ends (its posts owe articles that it may have read the list of too early)."""
        with self._articles_lock:
            if self.stop_event.is_set():
                return
            if name in self._articles_queued:
                self._articles_again.add(name)
                return
            self._articles_queued.add(name)
            self._articles_runs += 1
            job_id = f"articles:{name}:{self._articles_runs}"  # never the id of a job still ending
        try:
            self.scheduler.add_job(
                self._fetch_articles, args=[name], id=job_id, executor=ARTICLES, next_run_time=datetime.now(UTC)
            )
        except SchedulerNotRunningError:  # shutting down
            with self._articles_lock:
                self._articles_queued.discard(name)

    def _fetch_articles(self, name: str) -> None:
        """Fetch the full articles a source's posts owe, in the articles lane (its own threads and
        host slots), one at a time, stopping between two when the daemon stops; again while polls
        asked for more meanwhile."""
        try:
            while True:
                self._fetch_articles_now(name)
                with self._articles_lock:
                    if name not in self._articles_again or self.stop_event.is_set():
                        break
                    self._articles_again.discard(name)
        finally:
            with self._articles_lock:
                self._articles_queued.discard(name)
                self._articles_again.discard(name)

    def _fetch_articles_now(self, name: str) -> None:
        try:
            source = self.config.source(name)
        except KeyError:
            return
        if not self._start_work():
            return
        try:
            with self.store_lock:
                owed = owed_articles(self.store, source)
            limits, hosts = limits_for(self.config, source), self.lanes.hosts[ARTICLES]
            articles = []
            for post_id, link in owed:
                if self.stop_event.is_set():
                    break
                articles.append(fetch_article(self.session, source, post_id, link, limits, hosts, self.cpu))
            outcome = SourceOutcome(source=name, result="ok")
            with self.store_lock:
                if self._closed:
                    return
                add_articles(outcome, record_articles(self.store, source, articles))
            if articles:
                log = LOG.warning if outcome.articles_failed else LOG.info
                log("articles %s: %d stored, %d failed%s", name, outcome.articles_ok, outcome.articles_failed,
                    f" ({outcome.article_error})" if outcome.article_error else "",
                    extra={"source": name, "articles_ok": outcome.articles_ok,
                           "articles_failed": outcome.articles_failed})
            if outcome.changed_post_ids:
                self._queue_publish(outcome)
        except Exception:
            LOG.exception("articles of %s failed unexpectedly", name)
        finally:
            self._end_work()
