"""Republishing inside the daemon: debounced, one at a time, never after close, retried on errors.

A burst of sources finishing together queues their changed categories, tags and posts; one publish
a moment later writes them all. A full or read-only disk is logged and retried, the old files stay.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config
from .metrics import Metrics
from .models import SourceOutcome
from .publish import PublishReport, build_site, publish_changed
from .store import Store
from .websub import announce_changes

LOG = logging.getLogger("aggregator.daemon")
PUBLISH_DEBOUNCE = 1.0
PUBLISH_RETRY = 30.0
#: the executor of the daemon's own jobs (publishing, builds, config checks): never queued behind
#: polls that wait on slow sources in the lanes' threads
CONTROL = "control"


class PublishingMixin:
    """The daemon's publishing half; `Daemon` provides the attributes declared here."""

    config: Config
    scheduler: BackgroundScheduler
    publish_store: Store
    metrics: Metrics
    session: Any
    stop_event: threading.Event
    last_publish: datetime | None
    publish_errors: dict[str, str]
    _pending_lock: threading.Lock
    _pending: dict[str, set[str]]
    _publish_lock: threading.Lock
    _closed: bool
    _stopping: bool

    def _queue_publish(self, outcome: SourceOutcome) -> None:
        with self._pending_lock:
            self._pending["categories"].update(outcome.changed_categories)
            self._pending["posts"].update(outcome.changed_post_ids)
            self._pending["tags"].update(outcome.changed_tags)
        self._schedule_publish(PUBLISH_DEBOUNCE)

    def _schedule_publish(self, delay: float) -> None:
        if self.stop_event.is_set():
            return
        with contextlib.suppress(SchedulerNotRunningError):  # shutting down
            self.scheduler.add_job(
                self._publish_pending,
                id="publish",
                executor=CONTROL,
                replace_existing=True,
                next_run_time=datetime.now(UTC) + timedelta(seconds=delay),
            )

    def _publish_pending(self) -> None:
        with self._publish_lock:
            if not self._closed:
                self._publish_pending_now()

    def _publish_pending_now(self) -> None:
        with self._pending_lock:
            pending = {k: set(v) for k, v in self._pending.items()}
            for value in self._pending.values():
                value.clear()
        if not pending["posts"] and not pending["categories"]:
            return
        started = time.monotonic()
        try:
            report = publish_changed(
                self.config, self.publish_store, pending["categories"], pending["tags"], sorted(pending["posts"])
            )
        except Exception as exc:  # a full disk, a read-only folder, or a bug: say so, keep serving
            then = ("the posts are stored: the next start publishes them" if self._stopping
                    else f"retrying in {PUBLISH_RETRY:g}s or at the next change")
            LOG.error("publish failed, old files kept, %s: %s", then, exc, exc_info=not isinstance(exc, OSError))
            self.publish_errors["incremental"] = str(exc)
            with self._pending_lock:
                for key, value in pending.items():
                    self._pending[key].update(value)
            self._schedule_publish(PUBLISH_RETRY)
            return
        self._published(started, report, "incremental")

    def _publish_all(self) -> None:
        with self._publish_lock:
            if not self._closed:
                self._publish_all_now()

    def _publish_all_now(self) -> None:
        started = time.monotonic()
        try:
            report = build_site(self.config, self.publish_store)
        except Exception as exc:
            if self._stopping:
                LOG.error("build failed, old files kept, the next start builds again: %s", exc,
                          exc_info=not isinstance(exc, OSError))
                return
            LOG.error("build failed, retrying in %ds: %s", PUBLISH_RETRY, exc, exc_info=not isinstance(exc, OSError))
            self.publish_errors["build"] = str(exc)
            self.scheduler.add_job(
                self._publish_all,
                id="build",
                executor=CONTROL,
                replace_existing=True,
                next_run_time=datetime.now(UTC) + timedelta(seconds=PUBLISH_RETRY),
            )
            return
        self._published(started, report, "build")

    def _published(self, started: float, report: PublishReport, kind: str) -> None:
        seconds = time.monotonic() - started
        self.metrics.publish_seconds.observe(seconds)
        self.metrics.posts_stored.set(self.publish_store.count_posts())
        self.last_publish = datetime.now(UTC)
        self.publish_errors.pop(kind, None)  # each kind clears its own: a failing build stays reported
        deleted = f", {report.deleted_posts} posts past retention deleted" if report.deleted_posts else ""
        LOG.info("published: %d files written in %dms%s", len(report.written), int(seconds * 1000), deleted)
        for failure in announce_changes(self.config.site, report.written, self.session):
            LOG.warning("WebSub publish failed: %s", failure)
