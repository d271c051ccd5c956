"""release_free_memory gives freed heap pages back (run in a child, whose heap the test controls)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(
    """
    import os, time
    from aggregator.memory import release_free_memory

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    # 200 MB of post-sized strings; keep one in fifty, so the freed ones lie between kept ones
    blocks = [os.urandom(4096).hex() for _ in range(25_000)]
    kept = blocks[::50]
    del blocks
    before = rss_mb()
    started = time.perf_counter()
    done = release_free_memory()
    print(done, round(before), round(rss_mb()), round((time.perf_counter() - started) * 1000, 1))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_freed_heap_pages_go_back_to_the_system() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    done, before, after, _ms = out.split()
    assert done == "True"
    assert int(before) > 150 and int(after) < int(before) - 100, out  # most of the 200 MB freed was kept until now
