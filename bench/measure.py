"""Wall time, CPU time and peak RSS of a measured region, for a process and everything it starts.

The aggregator parses in a pool of worker processes (started by a forkserver on first use and kept
until exit), so neither `RUSAGE_SELF` nor `RUSAGE_CHILDREN` (which only counts children that have
exited and been waited for) sees their work. CPU is therefore

    this process + reaped children (getrusage) + every live descendant (psutil: its own user+sys and
    that of the children it reaped), taken as a difference between the start and the end of a region;

and memory is reported twice: this process's exact peak RSS (VmHWM), and the peak of the whole
tree's PSS (proportional set size: pages shared between the forkserver and its workers are split
between them instead of counted once per process, as summing RSS would), sampled every 0.5 s by a
background thread. "peak MB" in the tables is the larger of the two. Without psutil only this
process and its reaped children are counted.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is in the bench extras
    psutil = None

SAMPLE_SECONDS = 0.5


def _descendants() -> list[Any]:
    if psutil is None:
        return []
    try:
        return list(psutil.Process().children(recursive=True))
    except psutil.Error:
        return []


def descendants_cpu() -> dict[int, float]:
    """pid -> CPU seconds (user + system, itself and its reaped children) of every live descendant."""
    found: dict[int, float] = {}
    for child in _descendants():
        try:
            t = child.cpu_times()
            found[child.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return found


def tree_pss_mb() -> float:
    """PSS (RSS where PSS is not available) of this process and all its descendants, now, in MB."""
    total = 0
    if psutil is None:
        return 0.0
    for proc in [psutil.Process(), *_descendants()]:
        try:
            info = proc.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            continue
    return total / 1024 / 1024


@dataclass(frozen=True)
class Snapshot:
    wall: float
    user: float
    sys: float
    kids: dict[int, float]

    @classmethod
    def now(cls) -> Snapshot:
        me = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(time.perf_counter(), me.ru_utime + reaped.ru_utime, me.ru_stime + reaped.ru_stime,
                   descendants_cpu())

    def since(self, start: Snapshot) -> dict[str, float]:
        user, system = self.user - start.user, self.sys - start.sys
        workers = sum(cpu - start.kids.get(pid, 0.0) for pid, cpu in self.kids.items())
        return {"wall": round(self.wall - start.wall, 4), "cpu": round(user + system + workers, 4),
                "user": round(user, 4), "sys": round(system, 4), "cpu_workers": round(workers, 4)}


def _vm_hwm_kb() -> int | None:
    """VmHWM from /proc/self/status: the peak RSS of this program only.

    ru_maxrss is not enough on Linux: it survives fork and exec, so a scenario started by a big
    parent would report the parent's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def self_peak_rss_mb() -> float:
    """The larger of this process's and its waited-for children's peak RSS, in MB (Linux: KB figures)."""
    me = _vm_hwm_kb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(me, kids) / 1024, 1)


class TreeSampler:
    """A daemon thread keeping the peak of tree_pss_mb() while it runs."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_pss_mb())
            self._stop.wait(SAMPLE_SECONDS)

    def start(self) -> None:
        if psutil is not None:
            self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self.peak = max(self.peak, tree_pss_mb())


def peak_rss_mb(sampler: TreeSampler | None = None) -> float:
    return round(max(self_peak_rss_mb(), sampler.peak if sampler else 0.0), 1)


@dataclass
class Meter:
    """Measures one scenario: the whole region from `begin()` to `end()` and named phases inside it."""

    phases: dict[str, dict[str, float]] = field(default_factory=dict)
    start: Snapshot | None = None
    total: dict[str, float] = field(default_factory=dict)
    rss_before_mb: float = 0.0
    sampler: TreeSampler | None = None

    def begin(self) -> None:
        self.rss_before_mb = self_peak_rss_mb()
        self.sampler = TreeSampler()
        self.sampler.start()
        self.start = Snapshot.now()

    def end(self) -> dict[str, float]:
        assert self.start is not None, "begin() first"
        self.total = Snapshot.now().since(self.start)
        if self.sampler:
            self.sampler.stop()
        return self.total

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = Snapshot.now()
        try:
            yield
        finally:
            self.phases[name] = {**Snapshot.now().since(start), "peak_rss_mb": peak_rss_mb(self.sampler)}

    def result(self, **extra: Any) -> dict[str, Any]:
        if not self.total:
            self.end()
        return {**self.total, "peak_rss_mb": peak_rss_mb(self.sampler), "self_peak_rss_mb": self_peak_rss_mb(),
                "tree_peak_pss_mb": round(self.sampler.peak, 1) if self.sampler else None,
                "rss_before_mb": self.rss_before_mb, "phases": self.phases, **extra}
