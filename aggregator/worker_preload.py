"""Imported by the forkserver alone, before it forks any worker: the workers' code, the signal
they ignore, then gc.freeze().

Each worker is forked from the forkserver and shares its memory page by page until a page is
written. CPython's cycle collector writes to the header of every object it examines, so the first
collection in a worker would copy every page of the preloaded modules (feedparser, nh3, our code)
into that worker. Frozen objects are never examined: the pages stay shared by all the workers.

The Jekyll export's parts run in the workers too (`publish.jekyll_jobs`): imported here, its
modules (the store, sqlite-utils and what they pull in, ~6 MB) are shared rather than imported
again in each worker when the first big export arrives.
"""

from __future__ import annotations

import gc
import signal

from . import workers  # noqa: F401 - imported for its side effect: the modules a worker needs
from .publish import jekyll_jobs  # noqa: F401 - likewise

# Ctrl-C reaches the whole process group: stopping is the owner's business, and a worker killed by
# it failed the fetch the daemon was letting finish and printed a KeyboardInterrupt traceback. Set
# here, before the forkserver forks anyone: it keeps it, and so does every worker. SIGTERM is left
# alone: a broken pool (a worker killed, or stopped at its time limit) ends the others with it, and
# ignored, they hung `fetch` for ever; under systemd, KillMode=mixed sends it to the daemon only.
signal.signal(signal.SIGINT, signal.SIG_IGN)

gc.freeze()
