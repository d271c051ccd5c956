"""The one forkserver every worker process of ours is started from, and how such a worker ends.

Worker processes are never forked from a process that already runs threads (the daemon always
does); a forkserver, started once, forks them instead. It preloads the workers' code (and freezes
it, see `worker_preload`) so that each worker starts in milliseconds and shares those pages. The
preload list is global to multiprocessing's forkserver, so every pool of ours takes its context
from here: whichever starts first, the forkserver is the same.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from multiprocessing.context import ForkServerContext

PRELOAD = ["aggregator.worker_preload"]


def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def follow_parent(pid: int) -> None:
    """Helper start-up: exit when the process that owns the pool is gone.

    A worker's parent is the forkserver, and every pool worker holds both ends of the pool's
    queues, so when the owner is killed (`kill -9`, OOM) nothing would ever tell it; this thread does.
    """

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()
