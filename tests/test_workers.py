"""The worker process pool: jobs run in other processes, and stopping it is bounded."""

from __future__ import annotations

import gc
import os
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from aggregator.pipeline import fetch_sources
from aggregator.workers import CpuPool, JobTimedOut, WorkerDied, _fail_if_orphaned

from .feedserver import FeedServer
from .test_ingest import item, rss


def test_jobs_run_in_worker_processes() -> None:
    pool = CpuPool(processes=2)
    try:
        pids = {pool.run(os.getpid) for _ in range(4)}
        assert os.getpid() not in pids
    finally:
        pool.shutdown()


def test_shutdown_does_not_wait_for_a_stuck_worker() -> None:
    """A job that never ends (a pathological page, a bug) must not keep the daemon from stopping."""
    pool = CpuPool(processes=1)
    worker = pool.run(os.getpid)
    stuck = pool.submit(time.sleep, 120)
    time.sleep(0.5)  # let it start
    started = time.monotonic()
    pool.shutdown(timeout=1.0)
    assert time.monotonic() - started < 5
    assert not stuck.done() or stuck.exception() is not None
    assert_gone(worker)


def assert_gone(pid: int, seconds: float = 5.0) -> None:
    """Wait for process `pid` to be gone; fail if it is still running after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"process {pid} still running after {seconds:g} s")


def test_a_pool_can_be_used_again_after_shutdown() -> None:
    pool = CpuPool(processes=1)
    first = pool.run(os.getpid)
    pool.shutdown()
    assert pool.run(os.getpid) != first  # a fresh worker
    pool.shutdown()


def test_workers_share_the_preloaded_modules_frozen() -> None:
    """The forkserver freezes what it preloaded, so the workers' collectors never touch (and copy)
    those pages: each worker starts with the forkserver's objects in the permanent generation."""
    pool = CpuPool(processes=1)
    try:
        assert pool.run(gc.get_freeze_count) > 10_000
        assert "feedparser" in pool.run(_loaded_modules)
    finally:
        pool.shutdown()


def _loaded_modules() -> set[str]:
    return set(sys.modules)


def test_a_job_that_kills_its_worker_is_not_run_again_in_the_caller() -> None:
    """Re-running it here could take the daemon down the same way (out of memory): it fails instead,
    and the pool starts afresh for the next job."""
    pool = CpuPool(processes=1)
    try:
        with pytest.raises(WorkerDied, match="worker process died"):
            pool.run(os._exit, 3)  # would end this test's process if it ran here
        assert pool.run(os.getpid) != os.getpid()
    finally:
        pool.shutdown()


def test_a_job_handed_to_a_pool_as_it_broke_fails_instead_of_waiting_for_ever() -> None:
    """Python 3.11 can add a job to a breaking pool after it failed its pending jobs (submit and
    the manager thread's terminate_broken do not share a lock): that job's future is never
    resolved, and `run` or an export waiting on it would wait for ever. Here the pool is broken for
    real and such a future is handed to the check every submit makes."""
    pool = CpuPool(processes=1)
    try:
        worker = pool.run(os.getpid)
        broken = pool._current
        assert broken is not None
        os.kill(worker, signal.SIGKILL)
        manager = broken.executor._executor_manager_thread  # type: ignore[attr-defined]
        manager.join(10.0)
        assert not manager.is_alive()
        orphan: Future[int] = Future()  # what submit returned, added after the pending jobs were failed
        _fail_if_orphaned(orphan, broken.executor)
        with pytest.raises(BrokenProcessPool):
            orphan.result(timeout=0)
        assert pool.run(os.getpid) != worker  # and the next job gets a fresh pool
        healthy = pool._current
        assert healthy is not None
        pending: Future[int] = Future()
        _fail_if_orphaned(pending, healthy.executor)  # a pool that is not broken: left alone
        assert not pending.done()
    finally:
        pool.shutdown()


def test_a_job_past_the_time_limit_is_given_up_and_its_worker_stopped() -> None:
    pool = CpuPool(processes=1, time_limit=1.0)
    try:
        worker = pool.run(os.getpid)
        started = time.monotonic()
        with pytest.raises(JobTimedOut, match="gave up after 1 s in a worker process"):
            pool.run(time.sleep, 60)
        assert time.monotonic() - started < 10
        assert_gone(worker)  # the stuck worker was killed (SIGKILL; reaped by the pool)
        assert pool.run(os.getpid) not in (worker, os.getpid())  # a fresh pool for the next job
    finally:
        pool.shutdown()


def test_the_time_limit_counts_from_when_a_job_starts_not_from_when_it_was_queued() -> None:
    """Two 1.2 s jobs on one worker with a 2 s limit: the second waits 1.2 s, runs 1.2 s, and is fine."""
    pool = CpuPool(processes=1, time_limit=2.0)
    try:
        pool.run(int)  # start the worker outside the timing
        with ThreadPoolExecutor(2) as threads:
            jobs = [threads.submit(pool.run, time.sleep, 1.2) for _ in range(2)]
            assert [job.result() for job in jobs] == [None, None]
    finally:
        pool.shutdown()


def test_jobs_caught_in_a_stopped_pool_run_again_and_the_stuck_one_alone_fails() -> None:
    """The stuck job is stopped at ~3 s, while a 1.2 s job started at 2.5 s is running: that one runs
    again in a fresh pool (ending after 4.2 s) instead of failing."""
    pool = CpuPool(processes=2, time_limit=3.0)
    try:
        pool.run(int)
        with ThreadPoolExecutor(2) as threads:
            started = time.monotonic()
            stuck = threads.submit(pool.run, time.sleep, 60)
            time.sleep(2.5)
            bystander = threads.submit(pool.run, time.sleep, 1.2)
            assert bystander.result(timeout=30) is None
            assert time.monotonic() - started > 4.1  # it did not end at ~3.7 s: it ran again
            with pytest.raises(JobTimedOut):
                stuck.result(timeout=30)
    finally:
        pool.shutdown()


def test_two_stuck_jobs_cost_one_time_limit_not_two() -> None:
    """The second, caught in the first one's stop, keeps the time it already ran: no fresh limit."""
    pool = CpuPool(processes=2, time_limit=2.0)
    try:
        pool.run(int)
        with ThreadPoolExecutor(2) as threads:
            started = time.monotonic()
            jobs = [threads.submit(pool.run, time.sleep, 60) for _ in range(2)]
            for job in jobs:
                with pytest.raises(JobTimedOut):
                    job.result(timeout=30)
            assert time.monotonic() - started < 3.9
        assert pool.run(os.getpid) != os.getpid()
    finally:
        pool.shutdown()


def test_many_stuck_jobs_among_quick_ones_fail_alone() -> None:
    """One job in three is stuck: the stuck ones time out, every quick one is answered, however often
    other jobs' time-outs broke the pool it was queued in."""
    pool = CpuPool(processes=2, time_limit=0.4)
    stuck_seconds, quick_seconds = 60.0, 0.01
    try:
        pool.run(int)
        with ThreadPoolExecutor(8) as threads:
            jobs = [(i % 3 == 0, threads.submit(pool.run, time.sleep, stuck_seconds if i % 3 == 0 else quick_seconds))
                    for i in range(45)]
            for stuck, job in jobs:
                if stuck:
                    with pytest.raises((JobTimedOut, WorkerDied)):
                        job.result(timeout=120)
                else:
                    assert job.result(timeout=120) is None
    finally:
        pool.shutdown()


def test_a_feed_that_parses_past_the_limit_fails_its_source_and_keeps_what_was_stored(
    server: FeedServer, make_config: Any, open_store: Any
) -> None:
    """The source's error names the limit, its stored posts stay, and the small source is parsed."""
    server.add("/big.xml", rss(item("b0", "stored before")), etag='"1"')
    server.add("/small.xml", rss(item("s1", "small")))
    config = make_config([{"name": "big", "url": server.url("/big.xml")},
                          {"name": "small", "url": server.url("/small.xml")}])
    store = open_store(config)
    pool = CpuPool(processes=1, time_limit=0.3)  # parsing 3,000 entries takes seconds
    try:
        fetch_sources(config, store, cpu=pool)
        big = "".join(item(f"b{i}", f"entry {i}", body="<p>" + "正文 " * 400 + "</p>") for i in range(3000))
        server.add("/big.xml", rss(big), etag='"2"')
        report = fetch_sources(config, store, cpu=pool)
    finally:
        pool.shutdown()
    outcomes = {o.source: o for o in report.outcomes}
    assert outcomes["big"].result == "error"
    assert outcomes["big"].error == "gave up after 0.3 s in a worker process (the worker was stopped)"
    assert outcomes["small"].result in ("ok", "not-modified")
    assert [p.title for p in store.posts(source="big")] == ["stored before"]
    assert store.source_state("big").etag == '"1"'  # the new version is fetched again next time
