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
import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from . import forkserver
from .article import decode_page, extract_article, page_base
from .config import Rule, Source
from .errors import AggregatorError
from .models import Post
from .normalise import Normaliser
from .parse import parse_feed
from .sanitise import sanitise_html, unlazy_images

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


def extract_job(body: bytes, content_type: str, url: str, selector: str, encoding: str = "") -> str:
    """The sanitised article HTML of a page ('' when nothing was found); `encoding` is the source's."""
    page = decode_page(body, content_type, encoding)
    html = extract_article(unlazy_images(page), selector)
    return sanitise_html(html, page_base(page, url)) if html else ""


class WorkerDied(AggregatorError):
    """A worker process ended while running a job."""


class JobTimedOut(AggregatorError):
    """A job ran past the pool's time limit: its worker was stopped."""


#: seconds a job may run in a worker (parsing a feed, extracting an article) before it is given up
#: and its worker stopped. A 12 MB feed of 2,600 entries parses in 2.7 s here; a job past this is stuck in a
#: pathological input, and without a limit it would hold its worker, and a fetch thread, for good.
JOB_TIME_LIMIT = 120.0

# In a worker: the pool's board (per worker: pid, job running, when it started) and this worker's row.
_board: Any = None
_row = -1


def _start_worker(parent: int, board: Any, lock: Any) -> None:
    global _board, _row
    forkserver.follow_parent(parent)
    with lock:
        _row = next(i for i in range(0, len(board), 3) if board[i] == 0)
        board[_row] = os.getpid()
    _board = board


def _timed_call(job: int, func: Callable[..., T], *args: Any) -> T:
    """Run a job in a worker with its start on the board, for the caller's time limit."""
    _board[_row + 2] = time.monotonic()  # the same clock in every process (CLOCK_MONOTONIC)
    _board[_row + 1] = job
    try:
        return func(*args)
    finally:
        _board[_row + 1] = 0


@dataclass(eq=False)
class _Pool:
    """One process pool and its board; `stopped` once we stopped one of its workers (time limit)."""

    executor: ProcessPoolExecutor
    board: Any
    stopped: bool = False


class CpuPool:
    """A lazily started process pool (or inline execution with `processes=0`).

    `run` gives a job `time_limit` seconds from when a worker starts it (not from when it was
    queued): the workers write what they run, and since when, on a board in shared memory. A job
    past its limit has its worker stopped, which breaks the pool; the jobs that were in it only
    because of that are run again in a fresh one.
    """

    def __init__(self, processes: int | None = None, time_limit: float = JOB_TIME_LIMIT):
        self.processes = (os.cpu_count() or 1) if processes is None else processes
        self.time_limit = time_limit
        self._current: _Pool | None = None
        self._retired: _Pool | None = None  # stopped, kept referenced while it breaks
        self._jobs = itertools.count(1)
        self._lock = threading.Lock()

    def _pool(self) -> _Pool:
        with self._lock:
            if self._current is None:
                context = forkserver.context()
                board = context.Array("d", 3 * self.processes, lock=False)
                executor = ProcessPoolExecutor(
                    self.processes, mp_context=context, initializer=_start_worker,
                    initargs=(os.getpid(), board, context.Lock()),
                )
                self._current = _Pool(executor, board)
            return self._current

    def submit(self, func: Callable[..., T], *args: Any) -> Future[T]:
        """Run `func(*args)` in a worker, with no time limit (a part of a long export)."""
        return self._submit(func, args)[0]

    def _submit(self, func: Callable[..., T], args: tuple[Any, ...], job: int = 0) -> tuple[Future[T], _Pool | None]:
        if self.processes <= 0:
            future: Future[T] = Future()
            try:
                future.set_result(func(*args))
            except BaseException as exc:  # delivered through the future, as a pool would
                future.set_exception(exc)
            return future, None
        call: tuple[Any, ...] = (_timed_call, job, func, *args) if job else (func, *args)
        pool = self._pool()
        try:
            future = pool.executor.submit(*call)
        except (BrokenProcessPool, OSError):  # a worker died (killed, out of memory): a fresh pool
            self._reset(pool)
            pool = self._pool()
            future = pool.executor.submit(*call)
        _fail_if_orphaned(future, pool.executor)
        return future, pool

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func(*args)` in a worker and wait for it (from any thread), at most `time_limit`
        seconds once it has started (JobTimedOut).

        When the worker dies meanwhile (killed, out of memory: possibly by this very job) the job is
        not run again here, where it could take the daemon down with it: WorkerDied is raised, the
        job's source records it as its failure, and the next job gets a fresh pool. Only a job whose
        pool broke because another job's worker was stopped for its time limit is run again: as
        often as it was merely queued there, twice at most once it had started, and not at all
        once the time it ran adds up to the limit.
        """
        spent = 0.0  # seconds the job ran in pools that broke under it: the limit is for all its runs
        runs = 0  # pools that broke under it while it ran (not merely queued)
        for _ in range(10):
            job = next(self._jobs)
            future, pool = self._submit(func, args, job)
            try:
                return self._wait(future, job, pool, spent)
            except BrokenProcessPool:
                self._reset(pool)
                if pool is None:
                    raise
                ran = self._running_for(job, pool)[1]
                spent += ran
                if spent > self.time_limit:
                    raise self._timed_out() from None  # stuck too, and caught in another's stop
                if not pool.stopped:
                    raise WorkerDied("the worker process died on this job (killed or out of memory)") from None
                pool.executor.shutdown(wait=False)  # broken: let go of its pipes now, not at the next gc
                runs += ran > 0
                if runs > 2:
                    break
        raise WorkerDied("other jobs' time limits stopped the worker process under this job, again and again")

    def _wait(self, future: Future[T], job: int, pool: _Pool | None, spent: float) -> T:
        while True:
            try:
                return future.result(timeout=min(0.25, self.time_limit))  # a finished job returns at once
            except FutureTimeout:
                pass
            if pool is None:
                continue
            worker, ran = self._running_for(job, pool)
            if worker and spent + ran > self.time_limit:
                self._stop(pool, worker)
                raise self._timed_out() from None

    def _timed_out(self) -> JobTimedOut:
        return JobTimedOut(f"gave up after {self.time_limit:g} s in a worker process (the worker was stopped)")

    def _running_for(self, job: int, pool: _Pool) -> tuple[int, float]:
        """(pid, seconds) of the worker running `job` in `pool`, or (0, 0.0) if it has not started
        there. A worker killed mid-job leaves its row as it was."""
        board = pool.board
        for row in range(0, len(board), 3):
            if board[row + 1] == job:
                return int(board[row]), time.monotonic() - board[row + 2]
        return 0, 0.0

    def _stop(self, pool: _Pool, worker: int) -> None:
        """Stop a worker past its limit. Its pool is retired first, so that no job is sent to a pool
        that is breaking; the pool sees the dead worker and fails what it holds with
        BrokenProcessPool (see run). Not shut down from here: that would cancel queued jobs."""
        with self._lock:
            pool.stopped = True
            if self._current is pool:
                self._current, self._retired = None, pool
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)

    def _reset(self, pool: _Pool | None) -> None:
        """Drop `pool` if it is still the current one (another thread may have replaced it
        already: that fresh pool must be left alone)."""
        with self._lock:
            if pool is not None and self._current is pool:
                pool.executor.shutdown(wait=False, cancel_futures=True)
                self._current = None

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the workers: queued jobs are dropped, running ones get `timeout` seconds to end,
        then what is left is terminated, so stopping the daemon never waits on a stuck worker."""
        with self._lock:
            pool, self._current, self._retired = self._current, None, None
        if pool is None:
            return
        executor = pool.executor
        # the executor's own list of its processes (private, unchanged since 3.8; best effort)
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(2.0)


def _fail_if_orphaned(future: Future[Any], executor: ProcessPoolExecutor) -> None:
    """Fail `future` if it will never be resolved otherwise. Python 3.11 marks a pool broken
    without the lock `submit` holds, so a job submitted at that moment can be added after the
    manager thread failed the pending jobs: whoever waits on it (a fetch, an export) would wait for
    ever. Such a job finds the pool marked broken once submit returns: the manager thread is given
    time to fail it as usual, and what it left pending is failed here."""
    if future.done() or not getattr(executor, "_broken", False):
        return
    manager = getattr(executor, "_executor_manager_thread", None)
    if manager is not None and manager is not threading.current_thread():
        manager.join(5.0)
    if not future.done():
        with contextlib.suppress(InvalidStateError):  # resolved meanwhile after all
            future.set_exception(BrokenProcessPool("the pool broke while this job was being handed to it"))


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
