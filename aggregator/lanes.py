"""Two lanes of polling, so a source that stalls or fails cannot starve the healthy ones.

A poll of a stalled source holds a worker thread and a slot of its host until the timeout: with
enough such sources every worker waits on them and healthy sources fall behind. The daemon therefore
polls a source with a recent record of failure in a lane of its own, with its own worker threads and
its own per-host slots. A failure gives a source `STRIKES` strikes; each success takes one away; a
source with strikes left stays in the failing lane. One bad answer from a healthy source moves it
aside for a few polls; a source that fails more often than not stays aside.

Full articles (sources with `full_text`) are fetched after the poll, in a lane of their own too:
an article site that hangs must not hold the threads and host slots the feeds' polls need.
"""

from __future__ import annotations

import threading

from .fetch import HostLimits

HEALTHY = "default"  # APScheduler's default executor is the healthy lane
FAILING = "failing"
ARTICLES = "articles"
STRIKES = 3


class Lanes:
    """Which lane each source is polled in, and the host slots of each lane."""

    def __init__(self, workers: int, per_host: int):
        self.failing_workers = self.article_workers = max(2, workers // 2)
        self.hosts = {lane: HostLimits(per_host) for lane in (HEALTHY, FAILING, ARTICLES)}
        self._strikes: dict[str, int] = {}
        self._lock = threading.Lock()

    def lane(self, name: str) -> str:
        return FAILING if self._strikes.get(name, 0) > 0 else HEALTHY

    def seed(self, name: str, failures: int) -> None:
        """Start a source already failing (from its stored state) in the failing lane."""
        if failures:
            with self._lock:
                self._strikes[name] = STRIKES

    def clear(self, name: str) -> None:
        """Forget a source's failures (`sources reset`): its next poll is in the healthy lane."""
        with self._lock:
            self._strikes.pop(name, None)

    def record(self, name: str, failed: bool) -> str:
        """Count one poll's result; return the lane of the source's next poll."""
        with self._lock:
            strikes = STRIKES if failed else max(0, self._strikes.get(name, 0) - 1)
            if strikes:
                self._strikes[name] = strikes
            else:
                self._strikes.pop(name, None)
        return FAILING if strikes else HEALTHY

    def forget(self, keep: set[str]) -> None:
        """Drop the strikes of sources no longer polled (removed from feeds.yaml or disabled)."""
        with self._lock:
            for name in [n for n in self._strikes if n not in keep]:
                del self._strikes[name]

    def failing(self) -> int:
        return len(self._strikes)
