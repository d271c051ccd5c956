"""How a fetch pass moves finished fetches to the thread that stores them, and commits in batches.

The storing thread (the one holding the database connection) sleeps until a fetch finishes. A pass
of 1,000 sources that all answer 304 finishes a fetch every few hundred microseconds, so how it
waits matters: `concurrent.futures.wait` hangs a waiter on every pending future and takes it off
again on each call, work that grows with the futures in flight. `Finished` has each future put
itself on a queue when it is done, and the storing thread takes them off in turn.
"""

from __future__ import annotations

import queue
import sys
import time
from concurrent.futures import Future
from contextlib import ExitStack
from typing import Any

from .models import SourceOutcome
from .store import Store


class Finished:
    """The futures a pass waits for, handed over as each one finishes."""

    def __init__(self) -> None:
        self.pending = 0
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def watch(self, future: Future[Any]) -> None:
        self.pending += 1
        future.add_done_callback(self._done.put)

    def wait(self, timeout: float | None = None) -> list[Future[Any]]:
        """The futures finished so far, waiting up to `timeout` seconds (None: for ever) for one."""
        try:
            done = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.pending -= len(done)
        return done


class CommitBatch:
    """Sources stored since the last commit, committed together once there are `size` of them or
    the first is `seconds` old, or when nothing is left to wait for.

    Every commit writes its pages to the WAL again, and the full-text index gets a new segment per
    commit (the store holds a commit's full-text rows until then, see store/fts.py), which FTS5
    merges as they pile up: committing a handful of sources at a time instead of each one costs a
    tenth less to store. Holding the write lock for at most `seconds` keeps another writer (the
    daemon, a second fetch) waiting no longer than that.
    """

    def __init__(self, store: Store, size: int = 16, seconds: float = 0.5):
        self.store, self.size, self.seconds = store, size, seconds
        self.stored: list[SourceOutcome] = []
        self._stack = ExitStack()
        self._since: float | None = None

    def begin(self) -> None:
        if self._since is None:
            self._stack.enter_context(self.store.transaction())
            self._since = time.monotonic()

    def time_left(self) -> float | None:
        """How long a wait may last before this batch is due (None: no batch open)."""
        return None if self._since is None else max(0.0, self._since + self.seconds - time.monotonic())

    def due(self) -> bool:
        return self._since is not None and (len(self.stored) >= self.size or self.time_left() == 0.0)

    def commit(self) -> list[SourceOutcome]:
        """Commit; return the outcomes of the sources it stored."""
        self._stack.close()
        self._since = None
        stored, self.stored = self.stored, []
        return stored

    def abandon(self) -> None:
        """Roll back what is not committed (called while an exception is being handled)."""
        self._stack.__exit__(*sys.exc_info())
        self._since = None
