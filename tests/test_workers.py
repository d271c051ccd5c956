"""The worker process pool: jobs run in other processes, and stopping it is bounded."""

from __future__ import annotations

import gc
import os
import sys
import time

import pytest

from aggregator.workers import CpuPool, WorkerDied


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
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"worker {worker} still running after shutdown")


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
