"""What the daemon notices other processes changed: feeds.yaml, the published site, resets.

feeds.yaml is checked every few seconds and on SIGHUP; an invalid edit is logged and the last good
config kept, and what the running daemon was built on (its database, served folder, threads and
processes) stays until a restart. A deleted site is built again; `sources reset` is polled at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config, load_config
from .daemon_publish import CONTROL
from .errors import ConfigError
from .lanes import Lanes
from .store import Store

LOG = logging.getLogger("aggregator.daemon")


class ReloadMixin:
    """Reloading feeds.yaml; `Daemon` provides the attributes declared here."""

    config: Config
    config_path: Path
    scheduler: BackgroundScheduler
    _config_digest: str
    _schedule_all: Callable[..., None]
    _publish_all: Callable[[], None]
    _reschedule: Callable[[str, datetime], None]
    store: Store
    store_lock: Any  # threading.RLock
    _closed: bool
    last_publish: datetime | None
    lanes: Lanes
    summary: dict[str, tuple[str, int, bool]]
    _polling_lock: threading.Lock
    _polling: set[str]
    _poll_again: set[str]

    def _check_changes(self) -> None:
        """What other processes changed: feeds.yaml (edited), the published site (deleted), and
        sources `sources reset` asked for."""
        self._check_config()
        home = self.config.site.output_dir / "index.html"
        if self.last_publish is not None and not home.exists() and self.scheduler.get_job("build") is None:
            LOG.warning("%s is gone: building the whole site again", home)
            self.scheduler.add_job(self._publish_all, id="build", executor=CONTROL, replace_existing=True,
                                   next_run_time=datetime.now(UTC))
        if not self.store_lock.acquire(blocking=False):
            return  # a poll is storing (a big batch, the daily retention): look again next tick
        try:
            if self._closed:
                return
            names = self.store.take_source_resets()
        finally:
            self.store_lock.release()
        config = self.config
        for name in names:
            if name not in config.source_names or not config.source(name).enabled:
                continue
            self.lanes.clear(name)
            self.summary[name] = ("", 0, False)
            with self._polling_lock:
                busy = name in self._polling
                if busy:  # never two fetches of one source at once: polled again when this one ends
                    self._poll_again.add(name)
            if busy:
                LOG.info("source %s was reset: polling it again once its poll under way ends", name)
            else:
                LOG.info("source %s was reset: polling it now", name)
                self._reschedule(name, datetime.now(UTC))

    def _digest(self) -> str:
        try:
            return hashlib.sha256(self.config_path.read_bytes()).hexdigest()
        except OSError:
            return ""

    def _check_config(self) -> None:
        if self._digest() != self._config_digest:
            self.reload()

    @staticmethod
    def _keep_what_needs_a_restart(config: Config, old: Config) -> Config:
        """`config` with the settings the running daemon was built on put back, and a warning: its
        store, its served folder, its threads and processes stay as they are until a restart, and
        half-applying them (publishing into a folder that is not served, `status` reading a
        database the daemon does not write) would be worse than not applying them at all."""
        kept = {
            "site.database": (config.site.database, old.site.database),
            "site.output_dir": (config.site.output_dir, old.site.output_dir),
            "server": (config.server, old.server),
            "defaults.workers": (config.defaults.workers, old.defaults.workers),
            "defaults.processes": (config.defaults.processes, old.defaults.processes),
        }
        changed = [name for name, (new, was) in kept.items() if new != was]
        if not changed:
            return config
        LOG.warning("changes to %s need a restart to take effect; until then the old values are kept",
                    ", ".join(changed))
        site = dataclasses.replace(config.site, database=old.site.database, output_dir=old.site.output_dir)
        defaults = dataclasses.replace(config.defaults, workers=old.defaults.workers,
                                       processes=old.defaults.processes)
        return dataclasses.replace(config, site=site, defaults=defaults, server=old.server)

    def reload(self) -> None:
        """Apply an edited feeds.yaml; an invalid one is logged and the last good config kept."""
        digest = self._digest()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            self._config_digest = digest
            for problem in exc.problems:
                LOG.error("%s (keeping the last good config)", problem)
            return
        self._config_digest = digest
        old = self.config
        config = self._keep_what_needs_a_restart(config, old)
        self.config = config
        changed = config.categories != old.categories or config.site != old.site or config.jekyll != old.jekyll
        self._schedule_all(config)
        LOG.info("reloaded %s: %d sources", self.config_path, len(config.sources))
        if changed:
            self.scheduler.add_job(
                self._publish_all, id="build", replace_existing=True, next_run_time=datetime.now(UTC),
                executor=CONTROL,
            )
