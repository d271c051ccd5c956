"""Load and soak of the daemon: `aggregator run` against many local feeds, measured from outside.

    python -m bench.daemon_load            # load: 1,000 sources, 60 s interval, 5 minutes, then wrk
    python -m bench.daemon_load --soak     # soak: 500 sources, 1 s interval, a third faulty, 10 minutes
    python -m bench.daemon_load --minutes 1 --sources 200   # a quick look

Prints the daemon's CPU share, peak and final RSS (and RSS after the first cycle, to show it stays
flat), how late polls started against their due time (from its /metrics histogram), fetch results,
/healthz, and the server's requests per second for a category feed with and without If-None-Match,
measured by wrk (Debian package `wrk`). It prints figures; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
CATEGORIES = 20


def start_farm(grow: float, faulty: int, stall: float) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.feed_farm", "--grow", str(grow), "--faulty", str(faulty), "--stall", str(stall)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def write_config(folder: Path, farm_port: int, port: int, sources: int, interval: int, workers: int) -> Path:
    lines = [
        "site:", "  title: load", f"  url: http://127.0.0.1:{port}/", "  output_dir: public", "  database: agg.db",
        "defaults:", f"  interval: {interval}s", f"  workers: {workers}", f"  per_host: {workers}",
        "  timeout: 5s", "  deadline: 10s", "sources:",
    ]
    for n in range(sources):
        lines += [f"  - name: feed{n}", f"    url: http://127.0.0.1:{farm_port}/feed/{n}.xml",
                  f"    category: cat{n % CATEGORIES}"]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def get(url: str, timeout: float = 5) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def histogram(metrics: str, lane: str) -> tuple[dict[float, float], float]:
    """The daemon's poll-lateness histogram for one lane ("healthy" or "failing"): buckets and sum."""
    buckets = {float(le) if le != "+Inf" else float("inf"): float(n) for le, n in re.findall(
        rf'aggregator_poll_lateness_seconds_bucket\{{lane="{lane}",le="([^"]+)"\}} ([0-9.e+]+)', metrics)}
    sum_match = re.search(rf'aggregator_poll_lateness_seconds_sum\{{lane="{lane}"\}} ([0-9.e+]+)', metrics)
    return buckets, float(sum_match.group(1)) if sum_match else 0.0


def lateness(metrics: str, lane: str, since: str = "") -> dict[str, Any]:
    """Polls and how late they started, counting only those after the `since` scrape when given."""
    buckets, total_seconds = histogram(metrics, lane)
    if since:
        earlier, earlier_seconds = histogram(since, lane)
        buckets = {le: n - earlier.get(le, 0.0) for le, n in buckets.items()}
        total_seconds -= earlier_seconds
    total = buckets.get(float("inf"), 0.0)
    over = {f">{le:g}s": int(total - n) for le, n in sorted(buckets.items()) if le in (1, 2, 5, 10)}
    return {"polls": int(total), "mean_s": total_seconds / total if total else None, "late": over}


def fetch_results(metrics: str) -> dict[str, int]:
    results: dict[str, int] = {}
    for result, count in re.findall(r'aggregator_fetches_total\{result="([^"]+)",source="[^"]+"\} ([0-9.e+]+)',
                                    metrics):
        results[result] = results.get(result, 0) + int(float(count))
    return results


def run_wrk(url: str, seconds: int, etag: str | None) -> float | None:
    if shutil.which("wrk") is None:
        return None
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", url]
    if etag:
        command[1:1] = ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run(command, capture_output=True, text=True).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(match.group(1)) if match else None


def measure(args: argparse.Namespace) -> dict[str, Any]:
    faulty = int(args.sources * args.faulty_share)
    farm, farm_port = start_farm(args.grow, faulty, stall=8.0)
    folder = Path(tempfile.mkdtemp(prefix="agg-load-"))
    port = 18000 + os.getpid() % 1000
    config = write_config(folder, farm_port, port, args.sources, args.interval, args.workers)
    log = (folder / "daemon.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "-m", "aggregator", "--config", str(config), "run", "--port", str(port),
                               "--log-level", "warning"], cwd=ROOT, stderr=log)
    started = time.monotonic()
    samples: list[tuple[float, float, float]] = []  # (elapsed, cpu, rss)
    warm_up = min(60.0, args.minutes * 15)  # the first minute (a quarter of a short run) is start-up
    after_warm_up = ""
    try:
        end = started + args.minutes * 60
        while time.monotonic() < end and daemon.poll() is None:
            samples.append((time.monotonic() - started, cpu_seconds(daemon.pid), rss_mb(daemon.pid)))
            if not after_warm_up and samples[-1][0] >= warm_up:
                after_warm_up = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
            time.sleep(1)
        wall = time.monotonic() - started
        metrics = get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        health_status, health, _ = get(f"http://127.0.0.1:{port}/healthz")
        status = json.loads(subprocess.run([sys.executable, "-m", "aggregator", "--config", str(config), "status",
                                            "--format", "json"], cwd=ROOT, capture_output=True, text=True).stdout)
        status_taken = time.time()  # staleness is judged at this moment, not after wrk has run
        feed = f"http://127.0.0.1:{port}/cat0/feed.xml"
        etag = get(feed)[2].get("ETag")
        rps_plain = run_wrk(feed, args.wrk_seconds, None)
        rps_304 = run_wrk(feed, args.wrk_seconds, etag)
    finally:
        daemon.send_signal(signal.SIGTERM)
        stop_started = time.monotonic()
        code = daemon.wait(timeout=60)
        stop_seconds = time.monotonic() - stop_started
        farm.terminate()
        farm.wait()
    first_cycle = next((s for s in samples if s[0] >= args.interval + 10), samples[-1])
    warmed = next((s for s in samples if s[0] >= warm_up), samples[-1])
    healthy = [r for r in status if int(r["name"][4:]) >= faulty]
    stale = [r["name"] for r in healthy if not r["last_fetch"]
             or status_taken - time.mktime(time.strptime(r["last_fetch"], "%Y-%m-%dT%H:%M:%SZ")) + time.timezone
             > 3 * args.interval + 10]
    return {
        "sources": args.sources, "interval_s": args.interval, "minutes": args.minutes, "faulty": faulty,
        "wall_s": round(wall, 1), "cpu_s": round(samples[-1][1], 1),
        "cpu_share_of_one_core": round(samples[-1][1] / wall, 3),
        "rss_after_first_cycle_mb": round(first_cycle[2], 1),
        "rss_after_warm_up_mb": round(warmed[2], 1), "rss_end_mb": round(samples[-1][2], 1),
        "rss_peak_mb": round(max(s[2] for s in samples), 1),
        "rss_by_minute_mb": [round(s[2], 1) for s in samples[::60]],
        "poll_lateness": lateness(metrics, "healthy"),
        "warm_up_s": warm_up, "poll_lateness_after_warm_up": lateness(metrics, "healthy", after_warm_up),
        "poll_lateness_failing": lateness(metrics, "failing"), "fetch_results": fetch_results(metrics),
        "healthz": {"http": health_status, **json.loads(health)},
        "healthy_sources_stale": len(stale),
        "rps_feed": rps_plain, "rps_feed_if_none_match": rps_304,
        "sigterm_exit": code, "sigterm_seconds": round(stop_seconds, 2),
    }


def report(result: dict[str, Any]) -> None:
    late = result["poll_lateness"]
    failing = result["poll_lateness_failing"]
    steady = result["poll_lateness_after_warm_up"]
    health = result["healthz"]
    rows = [
        ("sources / interval / minutes", f"{result['sources']} / {result['interval_s']} s / {result['minutes']}"),
        ("faulty sources", result["faulty"]),
        ("daemon CPU (share of one core)", f"{result['cpu_s']} s ({result['cpu_share_of_one_core']:.1%})"),
        ("RSS after first cycle / end / peak (MB)",
         f"{result['rss_after_first_cycle_mb']} / {result['rss_end_mb']} / {result['rss_peak_mb']}"),
        ("RSS at each minute (MB)", " ".join(f"{v:g}" for v in result["rss_by_minute_mb"])),
        ("healthy lane: polls, mean lateness", f"{late['polls']}, {late['mean_s'] and round(late['mean_s'], 3)} s"),
        ("healthy lane: polls later than 1/2/5/10 s", " / ".join(str(v) for v in late["late"].values())),
        (f"  the same after the first {result['warm_up_s']:g} s",
         f"{steady['polls']}, {steady['mean_s'] and round(steady['mean_s'], 3)} s; later than 1/2/5/10 s: "
         + " / ".join(str(v) for v in steady["late"].values())),
        ("failing lane: polls, mean lateness",
         f"{failing['polls']}, {failing['mean_s'] and round(failing['mean_s'], 3)} s"),
        ("fetch results", result["fetch_results"]),
        ("/healthz", f"HTTP {health['http']}, {health['status']}, sources {health['sources']}"),
        ("healthy sources not fetched in 3 intervals", result["healthy_sources_stale"]),
        ("wrk req/s: feed, feed with If-None-Match", f"{result['rps_feed']} / {result['rps_feed_if_none_match']}"),
        ("SIGTERM: exit code, seconds", f"{result['sigterm_exit']}, {result['sigterm_seconds']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    growth = result["rss_end_mb"] / result["rss_after_first_cycle_mb"] if result["rss_after_first_cycle_mb"] else 0
    settled = result["rss_end_mb"] / result["rss_after_warm_up_mb"] if result["rss_after_warm_up_mb"] else 0
    five = late["late"].get(">5s", 0)
    steady_five = steady["late"].get(">5s", 0)
    verdict = "met" if five == 0 else f"MISSED ({five} polls; {steady_five} after the warm-up)"
    print(f"\ntargets: no poll of a healthy source more than 5 s late: {verdict}; "
          f"RSS flat (within 10%) after the first cycle: {'met' if growth <= 1.10 else 'MISSED'} (x{growth:.2f}), "
          f"after the warm-up: {'met' if settled <= 1.10 else 'MISSED'} (x{settled:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak", action="store_true", help="500 sources, 1 s interval, a third faulty, 10 min")
    parser.add_argument("--sources", type=int)
    parser.add_argument("--interval", type=int)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--faulty-share", type=float)
    parser.add_argument("--grow", type=float, help="seconds between new entries per feed")
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args()
    preset = dict(sources=500, interval=1, minutes=10, faulty_share=1 / 3, grow=5) if args.soak else dict(
        sources=1000, interval=60, minutes=5, faulty_share=0.0, grow=120)
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    result = measure(args)
    report(result)
    out = ROOT / "bench" / f"results-daemon-{'soak' if args.soak else 'load'}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
