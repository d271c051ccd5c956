"""Runs that owe publishing: what a `fetch` stored and had not published when it stopped.

Posts and their sources' validators are committed together, so a `fetch` killed (or failing on a
full disk) between storing and publishing left those posts out of every output for good: the next
fetch got 304s, found nothing changed and published nothing. Each run therefore notes itself here
before it stores anything and removes its note once it has published. A note whose process is
gone means the outputs may lack what it stored, and the next run builds everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from ..processes import is_alive
from .base import Database, from_db_time, to_db_time

#: a note older than this is abandoned even if its pid is alive again (reused by another process)
ABANDONED_AFTER = timedelta(hours=6)


class RunStore(Database):
    def note_run(self) -> str:
        """Note a run of this process that is about to store posts; return its id."""
        now = datetime.now(UTC)
        run = f"{os.getpid()}-{now.timestamp():.6f}"
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO unpublished_runs (run, pid, noted) VALUES (?, ?, ?)",
                         (run, os.getpid(), to_db_time(now)))
        return run

    def abandoned_runs(self) -> list[str]:
        """Runs whose outputs may lack what they stored: their process is gone (or is this one,
        which is about to build everything), or they were noted too long ago to be running."""
        too_old = datetime.now(UTC) - ABANDONED_AFTER
        abandoned = []
        for run, pid, noted in self.conn.execute("SELECT run, pid, noted FROM unpublished_runs"):
            when = from_db_time(noted)
            if pid == os.getpid() or not is_alive(pid) or when is None or when < too_old:
                abandoned.append(run)
        return abandoned

    def forget_runs(self, runs: Iterable[str]) -> None:
        """The outputs now hold what these runs stored."""
        runs = list(runs)
        if runs:
            with self.transaction() as conn:
                conn.executemany("DELETE FROM unpublished_runs WHERE run = ?", [(run,) for run in runs])
