"""CPU-heavy stages in worker processes: parsing and normalising feeds, extracting articles.

feedparser is pure Python and nh3/trafilatura are called from Python, so fetch threads only overlap
network waits: CPU work needs processes to use more than one core. Each job carries everything it
needs (the source, the rules, the site's zone, the bytes), so workers hold no state and a reloaded
config needs no restart of the pool. Workers are started by a forkserver (never `fork` from a
process that already runs threads) and only when the first job arrives, so a run where every
source answers 304 starts none. With `processes=0` jobs run in the calling thread instead.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from . import forkserver
from .article import decode_page, extract_article
from .config import Rule, Source
from .errors import AggregatorError
from .models import Post
from .normalise import Normaliser
from .parse import parse_feed
from .sanitise import sanitise_html

T = TypeVar("T")


@dataclass(frozen=True)
class ParseJob:
    """One feed response to turn into posts."""

    source: Source
    rules: tuple[Rule, ...]
    zone: ZoneInfo
    body: bytes
    headers: dict[str, str]
    fetched_at: datetime


@dataclass
class ParseResult:
    posts: list[Post] = field(default_factory=list)
    warning: str = ""
    error: str = ""


def parse_job(job: ParseJob) -> ParseResult:
    """Parse and normalise one response; errors come back as text, never as an exception."""
    try:
        feed = parse_feed(job.body, job.headers, job.source.encoding)
        normaliser = Normaliser(job.source, job.rules, job.zone, job.fetched_at)
        posts = normaliser.posts(feed)
    except AggregatorError as exc:
        return ParseResult(error=str(exc))
    except Exception as exc:  # a parser bug must not take the other sources down
        return ParseResult(error=f"cannot parse: {type(exc).__name__}: {exc}"[:300])
    skipped = normaliser.skipped
    note = f"{len(skipped)} entries skipped, e.g. {skipped[0]}" if skipped else ""
    return ParseResult(posts, "; ".join(w for w in (feed.warning, note) if w)[:500])


def extract_job(body: bytes, content_type: str, url: str, selector: str) -> str:
    """The sanitised article HTML of a page ('' when nothing was found)."""
    html = extract_article(decode_page(body, content_type), selector)
    return sanitise_html(html, url) if html else ""


class WorkerDied(AggregatorError):
    """A worker process ended while running a job."""


class CpuPool:
    """A lazily started process pool (or inline execution with `processes=0`)."""

    def __init__(self, processes: int | None = None):
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    self.processes, mp_context=forkserver.context(), initializer=forkserver.follow_parent,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def submit(self, func: Callable[..., T], *args: Any) -> Future[T]:
        if self.processes <= 0:
            future: Future[T] = Future()
            try:
                future.set_result(func(*args))
            except BaseException as exc:  # delivered through the future, as a pool would
                future.set_exception(exc)
            return future
        try:
            return self._pool().submit(func, *args)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start a fresh pool
            self._reset()
            return self._pool().submit(func, *args)

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func(*args)` in a worker and wait for it (from any thread).

        When the worker dies meanwhile (killed, out of memory: possibly by this very job) the job is
        not run again here, where it could take the daemon down with it: WorkerDied is raised, the
        job's source records it as its failure, and the next job gets a fresh pool.
        """
        try:
            return self.submit(func, *args).result()
        except BrokenProcessPool:
            self._reset()
            raise WorkerDied("the worker process died on this job (killed or out of memory)") from None

    def _reset(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the workers: queued jobs are dropped, running ones get `timeout` seconds to end,
        then what is left is terminated, so stopping the daemon never waits on a stuck worker."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        # the executor's own list of its processes (private, unchanged since 3.8; best effort)
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(2.0)


_shared: dict[int, CpuPool] = {}
_shared_lock = threading.Lock()


def shared_pool(processes: int | None = None) -> CpuPool:
    """One pool per process and size, reused by every run in it (the CLI, the daemon, tests)."""
    key = -1 if processes is None else processes
    with _shared_lock:
        if key not in _shared:
            _shared[key] = CpuPool(processes)
        return _shared[key]


@atexit.register
def _shutdown_shared() -> None:
    for pool in list(_shared.values()):
        pool.shutdown()
