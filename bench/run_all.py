"""Issue 5's benchmark harness: `make bench` or `python -m bench.run_all [options]`.

Scenarios (each measured in a fresh subprocess; see bench/README.md):

  floor    bare feedparser.parse(bytes) of every feed, no HTTP, no storage
  cold     fresh database: the code path of `aggregator fetch` (fetch_sources, then publish_changed)
  warm     the same again with nothing changed (every source answers 304)
  churn    after the churn mutation (10% of feeds: 5 new + 5 edited entries), fetch again
  reader   lemon24's reader: add the same URLs, update_feeds(workers=W), cold then warm
  rebuild  full build_site of every output into a fresh folder (the incremental publish after the
           churn is reported as `rebuild-incr`, taken from the churn run's publish phase)

Options add --scaling (cold at N = 100, 1,000, 5,000) and --million (100 feeds fetched into a
database already holding 1,000,000 posts vs into an empty one). Figures go to stdout and to
bench/results.json. Correctness checks (cold stores exactly N x M posts and publishes every category,
warm is all 304, churn gives the expected new and updated posts...) make the run exit 1.
Timing targets are printed next to the figures, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .corpus import DEFAULT_ENTRIES, DEFAULT_FEEDS, DEFAULT_SEED, Corpus, build
from .corpus_server import ServerProcess, start_server, throughput
from .workdir import write_config

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
ALL = ("floor", "cold", "warm", "reader", "churn", "rebuild")
SCALING_FEEDS = (100, 1000, 5000)
MILLION = 1_000_000
MILLION_FEEDS = 100


@dataclass
class Run:
    """Everything one invocation measured, and every correctness check that failed."""

    args: argparse.Namespace
    tmp: Path
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_scenario(name: str, spec: dict[str, Any], tmp: Path, server: ServerProcess | None,
                 label: str | None = None, profile_cmd: list[str] | None = None) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter; return its result with the server's view added."""
    label = label or name
    spec_path, out_path = tmp / f"{label}.spec.json", tmp / f"{label}.out.json"
    spec_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    out_path.unlink(missing_ok=True)
    before = server.control("stats") if server else None
    load = os.getloadavg()[0]
    log(f"  {label} ...")
    command = [sys.executable, "-m", "bench.scenarios", name, str(spec_path), str(out_path)]
    proc = subprocess.run((profile_cmd or []) + command, cwd=REPO)
    result: dict[str, Any] = json.loads(out_path.read_text(encoding="utf-8")) if out_path.exists() else {}
    result.setdefault("errors", [])
    if proc.returncode != 0:
        result["errors"].append(f"{label}: subprocess exited with {proc.returncode}")
    result["loadavg_before"] = round(load, 2)
    if server and before:
        after = server.control("stats")
        result["http"] = {k: int(after[k] - before[k]) for k in ("requests", "ok", "not_modified", "other", "bytes")}
        result["server_cpu"] = round(after["cpu"] - before["cpu"], 3)
    wall = result.get("wall")
    if wall:
        log(f"    {wall:.2f} s wall, {result.get('cpu', 0):.2f} s CPU, {result.get('peak_rss_mb', 0):.0f} MB peak"
            + (f"; ERRORS: {result['errors']}" if result["errors"] else ""))
    return result


def fresh_folder(tmp: Path, name: str) -> Path:
    folder = tmp / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def base_spec(corpus: Corpus, server: ServerProcess, workers: int, folder: Path, config: Path | None) -> dict[str, Any]:
    return {"corpus_root": str(corpus.root), "base_url": server.base, "workers": workers, "workdir": str(folder),
            "config": str(config) if config else "", "feeds": corpus.manifest.feeds, "entries": corpus.manifest.entries}


def server_throughput(corpus: Corpus, server: ServerProcess) -> dict[str, Any]:
    """The corpus server's own throughput, measured once (Python client loop, and wrk if installed)."""
    paths = [m.path for m in corpus.manifest.meta]
    found: dict[str, Any] = {
        "python_200": throughput(server, paths, threads=8, seconds=2.0, max_requests=3000),
        "python_304": throughput(server, paths, threads=8, seconds=1.0, max_requests=3000, conditional=True),
    }
    wrk = shutil.which("wrk")
    if wrk:
        try:
            proc = subprocess.run(
                [wrk, "-t2", "-c8", "-d2s", "-H", "Accept-Encoding: gzip", server.url(paths[0])],
                capture_output=True, text=True, timeout=30,
            )
            line = next((x for x in proc.stdout.splitlines() if x.startswith("Requests/sec")), "")
            found["wrk_200_one_feed_requests_per_s"] = float(line.split()[-1]) if line else None
        except (subprocess.SubprocessError, ValueError, OSError) as exc:
            found["wrk_error"] = str(exc)
    server.control("reset")
    return found


def print_throughput(found: dict[str, Any], corpus: Corpus) -> None:
    a, b = found["python_200"], found["python_304"]
    n = corpus.manifest.feeds
    line = (f"corpus server: {a['requests_per_s']:,.0f} req/s with 200 ({a['mb_per_s']:.0f} MB/s gzip, "
            f"{a['server_cpu_ms_per_request']:.2f} ms server CPU each), {b['requests_per_s']:,.0f} req/s with 304; "
            f"serving all {n} feeds takes ~{n / a['requests_per_s']:.2f} s (client on the same cores)")
    if found.get("wrk_200_one_feed_requests_per_s"):
        line += f"; wrk, one feed: {found['wrk_200_one_feed_requests_per_s']:,.0f} req/s"
    print(line)


# -- the main scenarios ----------------------------------------------------------------------------


def main_scenarios(run: Run, corpus: Corpus) -> None:
    args = run.args
    chosen = set(args.scenarios)
    if chosen & {"warm", "churn", "rebuild"}:
        chosen.add("cold")
    m = corpus.manifest
    total = m.feeds * m.entries
    log(f"serving {corpus.root.name} ...")
    with start_server(corpus.root) as server:
        found = server_throughput(corpus, server)
        run.extra["server_throughput"] = found
        print_throughput(found, corpus)
        folder = fresh_folder(run.tmp, "aggregator")
        config = write_config(folder, corpus, server.base, args.workers)
        spec = base_spec(corpus, server, args.workers, folder, config)
        if "floor" in chosen:
            run.results["floor"] = run_scenario("floor", spec, run.tmp, None)
        if "cold" in chosen:
            run.results["cold"] = run_scenario("cold", {**spec, "expect": {"new": total, "posts": total}}, run.tmp,
                                               server)
            http = run.results["cold"].get("http", {})
            if http.get("ok") != m.feeds:
                run.results["cold"]["errors"].append(f"cold: server sent {http.get('ok')} full responses, "
                                                     f"expected {m.feeds}")
        if "warm" in chosen:
            run.results["warm"] = run_scenario("warm", {**spec, "expect": {"posts": total}}, run.tmp, server)
        if "reader" in chosen:
            reader_folder = fresh_folder(run.tmp, "reader")
            rspec = {**spec, "workdir": str(reader_folder), "expect": {"posts": total}}
            run.results["reader-cold"] = run_scenario("reader-cold", rspec, run.tmp, server)
            run.results["reader-warm"] = run_scenario("reader-warm", rspec, run.tmp, server)
        if "churn" in chosen:
            server.control("generation/1")
            expect = {"new": m.expected_churn_new, "updated": m.expected_churn_updated,
                      "posts": total + m.expected_churn_new}
            run.results["churn"] = run_scenario("churn", {**spec, "expect": expect}, run.tmp, server)
            churn = run.results["churn"]
            publish = churn.get("phases", {}).get("publish")
            if publish:
                run.results["rebuild-incr"] = {
                    **{k: v for k, v in publish.items() if k != "peak_rss_mb"},
                    "entries": churn.get("new", 0) + churn.get("updated", 0),
                    "written": churn.get("written"), "errors": [], "derived": "publish phase of churn",
                }
        if "rebuild" in chosen:
            rebuild_config = write_config(folder, corpus, server.base, args.workers, name="feeds-rebuild.yaml",
                                          output_dir="public-rebuild", jekyll_dir="jekyll-rebuild")
            run.results["rebuild"] = run_scenario("rebuild", {**spec, "config": str(rebuild_config)}, run.tmp, None)
    for result in run.results.values():
        run.errors += result.get("errors", [])


# -- scaling ---------------------------------------------------------------------------------------


def cold_only(run: Run, corpus: Corpus, label: str, prefill: Path | None = None) -> dict[str, Any]:
    """One cold fetch of the whole corpus into a fresh folder (or into a copy of the `prefill` database)."""
    m = corpus.manifest
    total = m.feeds * m.entries
    with start_server(corpus.root) as server:
        folder = fresh_folder(run.tmp, label)
        config = write_config(folder, corpus, server.base, run.args.workers)
        before = 0
        if prefill is not None:
            shutil.copyfile(prefill, folder / "aggregator.db")
            os.sync()  # the copy's gigabytes are written out before the clock starts, not during the run
            before = run.extra.get("million_posts", 0)
        expect = {"new": total, "posts": before + total}
        spec = {**base_spec(corpus, server, run.args.workers, folder, config), "expect": expect,
                "prefilled": prefill is not None}
        result = run_scenario("cold", spec, run.tmp, server, label=label)
    if prefill is not None and not run.args.keep:
        # the ~5 GB database copy goes now; the rest of the folder (and every other folder full of
        # files) stays until the run ends: on an ext4 without a journal (this machine) a new inode
        # is not taken from files deleted in the last 1-6 minutes, and each creation checks them
        # all, so deleting 250,000 files here made the next scenario's file writes several times
        # dearer (bench/README.md)
        for name in ("aggregator.db", "aggregator.db-wal", "aggregator.db-shm"):
            (folder / name).unlink(missing_ok=True)
    run.errors += result.get("errors", [])
    return result


def scaling(run: Run) -> None:
    rows = []
    for n in run.args.scaling_feeds:
        if (n == run.args.feeds and "cold" in run.results and run.results["cold"].get("wall")
                and run.args.entries == run.results["cold"].get("entries", 0) // max(1, n)):
            result = run.results["cold"]
        else:
            log(f"scaling: building or loading the {n} x {run.args.entries} corpus ...")
            corpus = build(n, run.args.entries, run.args.seed)
            result = cold_only(run, corpus, f"scaling-{n}")
        entries = n * run.args.entries
        rows.append({"feeds": n, "entries": entries, "wall": result.get("wall"), "cpu": result.get("cpu"),
                     "peak_rss_mb": result.get("peak_rss_mb"),
                     "wall_us_per_entry": round(result.get("wall", 0) * 1e6 / entries, 1),
                     "cpu_us_per_entry": round(result.get("cpu", 0) * 1e6 / entries, 1),
                     "phases": result.get("phases", {})})
    run.extra["scaling"] = rows


# -- a million posts -------------------------------------------------------------------------------


def million(run: Run) -> None:
    from .million import template

    corpus = build(MILLION_FEEDS, run.args.entries, run.args.seed)
    log(f"million: template database of {run.args.million_posts:,} posts ...")
    db, seconds = template(run.args.million_posts, corpus, run.args.seed)
    run.extra["million_posts"] = run.args.million_posts
    pairs = []
    for i in range(run.args.million_repeat):
        empty = cold_only(run, corpus, f"million-empty-{i}")
        full = cold_only(run, corpus, f"million-full-{i}", prefill=db)
        pairs.append({"empty": empty, "full": full})
    best = {k: min((p[k] for p in pairs), key=lambda r: r.get("wall") or 1e9) for k in ("empty", "full")}
    run.extra["million"] = {
        "posts_before": run.args.million_posts, "template": str(db), "template_build_seconds": seconds,
        "template_mb": round(db.stat().st_size / 1e6), "feeds": MILLION_FEEDS, "entries": run.args.entries,
        "empty": best["empty"], "full": best["full"], "repeats": run.args.million_repeat,
    }


# -- report ----------------------------------------------------------------------------------------


ORDER = ("floor", "cold", "warm", "churn", "reader-cold", "reader-warm", "rebuild", "rebuild-incr")


def fmt(value: Any, digits: int = 2) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(results: dict[str, dict[str, Any]]) -> list[str]:
    head = ("scenario", "wall s", "CPU s", "in workers", "CPU/wall", "peak MB", "main RSS", "all PSS", "RSS at start",
            "entries", "entries/s", "feeds/s", "HTTP 200/304", "server CPU s", "load before")
    rows = [head]
    for name in ORDER:
        r = results.get(name)
        if not r or r.get("wall") is None:
            continue
        wall, cpu = r["wall"], r.get("cpu", 0.0)
        entries = r.get("entries") or 0
        feeds = r.get("feeds") or 0
        http = r.get("http")
        rows.append((
            name, fmt(wall), fmt(cpu), fmt(r.get("cpu_workers")), fmt(cpu / wall if wall else None),
            fmt(r.get("peak_rss_mb"), 0) if "peak_rss_mb" in r else "(in churn)", fmt(r.get("self_peak_rss_mb"), 0),
            fmt(r.get("tree_peak_pss_mb"), 0), fmt(r.get("rss_before_mb"), 0),
            fmt(entries),
            fmt(entries / wall, 0) if entries and wall else "-",
            fmt(feeds / wall, 0) if feeds and wall else "-",
            f"{http['ok']}/{http['not_modified']}" if http else "-", fmt(r.get("server_cpu")),
            fmt(r.get("loadavg_before")),
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths,
             strict=True))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name in ORDER:
        phases = results.get(name, {}).get("phases") or {}
        if phases and name != "rebuild-incr":
            parts = ", ".join(f"{k} {v['wall']:.2f}/{v['cpu']:.2f}/{v.get('peak_rss_mb', 0):.0f}"
                              for k, v in phases.items())
            lines.append(f"  {name} phases (wall s/CPU s/peak MB so far): {parts}")
    return lines


def ratio(a: Any, b: Any) -> float | None:
    return a / b if a and b else None


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def targets(run: Run) -> list[tuple[str, str, str, str]]:
    """(what, figure, target, verdict) rows."""
    r = run.results
    wall = {k: v.get("wall") for k, v in r.items()}
    cpu = {k: v.get("cpu") for k, v in r.items()}
    rows: list[tuple[str, str, str, str]] = []

    def add(what: str, value: float | None, target: str, ok: bool | None, unit: str = "x") -> None:
        rows.append((what, "-" if value is None else f"{value:.2f}{unit}", target, verdict(ok)))

    cf = ratio(wall.get("cold"), wall.get("floor"))
    add("cold / floor, wall", cf, "<= 1.0x", None if cf is None else cf <= 1.0)
    cfc = ratio(cpu.get("cold"), cpu.get("floor"))
    add("cold / floor, CPU", cfc, "(info)", None)
    cr = ratio(wall.get("cold"), wall.get("reader-cold"))
    add("cold / reader-cold, wall", cr, "<= 0.5x", None if cr is None else cr <= 0.5)
    crc = ratio(cpu.get("cold"), cpu.get("reader-cold"))
    add("cold / reader-cold, CPU", crc, "(info)", None)
    feeds = r.get("warm", {}).get("feeds")
    warm = wall.get("warm")
    note = "" if feeds in (None, 1000) else f" ({feeds} sources; the target is for 1,000)"
    add(f"warm wall{note}", warm, "< 1 s", None if warm is None else warm < 1.0, unit=" s")
    wr = ratio(wall.get("warm"), wall.get("reader-warm"))
    add("warm / reader-warm, wall", wr, "<= 0.2x (5x faster)", None if wr is None else wr <= 0.2)
    wrc = ratio(cpu.get("warm"), cpu.get("reader-warm"))
    add("warm / reader-warm, CPU", wrc, "(info)", None)
    rss = r.get("cold", {}).get("peak_rss_mb")
    add("cold peak memory (main RSS or all-process PSS)", rss, "<= 200 MB", None if rss is None else rss <= 200,
        unit=" MB")
    scaling_rows = run.extra.get("scaling")
    if scaling_rows:
        first, last = scaling_rows[0], scaling_rows[-1]
        for key in ("wall_us_per_entry", "cpu_us_per_entry"):
            s = ratio(last[key], first[key])
            add(f"per-entry cost at {last['feeds']} / at {first['feeds']} feeds ({key.split('_')[0]})", s, "<= 1.2x",
                None if s is None else s <= 1.2)
    mil = run.extra.get("million")
    if mil:
        for key in ("wall", "cpu"):
            s = ratio(mil["full"].get(key), mil["empty"].get(key))
            add(f"fetch {mil['feeds']} feeds into {mil['posts_before']:,}-post DB / into empty ({key})", s, "<= 1.2x",
                None if s is None else s <= 1.2)
    return rows


def report(run: Run) -> None:
    if run.results:
        print()
        print(f"== figures: {run.args.feeds} feeds x {run.args.entries} entries, {run.args.workers} workers ==")
        for line in table(run.results):
            print(line)
    rows = [row for row in targets(run) if row[1] != "-"]  # only what this run measured
    if rows:
        print()
        print("== ratios and targets (printed, not asserted) ==")
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            print("  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w)
                            for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    if run.extra.get("scaling"):
        print()
        print("== scaling: cold fetch ==")
        print("feeds  entries   wall s    CPU s  wall us/entry  CPU us/entry     peak MB")
        for s in run.extra["scaling"]:
            print(f"{s['feeds']:>5}  {s['entries']:>7}  {s['wall']:>7.2f}  {s['cpu']:>7.2f}  "
                  f"{s['wall_us_per_entry']:>13.1f}"
                  f"  {s['cpu_us_per_entry']:>12.1f}  {s['peak_rss_mb']:>11.0f}")
    mil = run.extra.get("million")
    if mil:
        print()
        print(f"== {mil['feeds']} feeds x {mil['entries']} entries: cold fetch into an empty database vs into one "
              f"holding {mil['posts_before']:,} posts (best of {mil['repeats']}) ==")
        for key in ("empty", "full"):
            r = mil[key]
            phases = ", ".join(f"{k} {v['wall']:.2f}/{v['cpu']:.2f}" for k, v in r.get("phases", {}).items())
            print(f"{key:>5}: {r.get('wall', 0):.2f} s wall, {r.get('cpu', 0):.2f} s CPU, "
                  f"{r.get('peak_rss_mb', 0):.0f} MB peak; phases (wall/CPU s): {phases}")
    if run.errors:
        print()
        print("== FAILED CHECKS ==")
        for e in run.errors:
            print(f"  {e}")


def write_results(run: Run) -> None:
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "args": {k: v for k, v in vars(run.args).items() if k != "json"},
        "results": run.results,
        "targets": [dict(zip(("what", "figure", "target", "verdict"), row, strict=True)) for row in targets(run)],
        "errors": run.errors,
        **run.extra,
    }
    path = Path(run.args.json)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nresults written to {path}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("--feeds", type=int, help=f"number of feeds N (default {DEFAULT_FEEDS}; --quick: 100)")
    parser.add_argument("--entries", type=int, help=f"entries per feed M (default {DEFAULT_ENTRIES}; --quick: 20)")
    parser.add_argument("--workers", type=int, default=8, help="fetch workers, ours and reader's (default 8)")
    parser.add_argument("--quick", action="store_true", help="a 100 x 20 corpus")
    parser.add_argument("--scenarios", nargs="+", default=list(ALL), metavar="NAME",
                        help=f"any of {', '.join(ALL)}, or none (default all; warm, churn and rebuild imply cold)")
    parser.add_argument("--scaling", action="store_true", help="also cold at N = 100, 1,000 and 5,000 feeds")
    parser.add_argument("--scaling-feeds", type=int, nargs="+", default=list(SCALING_FEEDS), metavar="N",
                        help="the N of --scaling (default 100 1000 5000)")
    parser.add_argument("--million", action="store_true",
                        help="also fetch 100 feeds into a database already holding 1,000,000 posts vs an empty one")
    parser.add_argument("--million-posts", type=int, default=MILLION, help=argparse.SUPPRESS)
    parser.add_argument("--million-repeat", type=int, default=2, help="runs of each --million side (best kept)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--keep", action="store_true", help="keep the temporary working folders")
    parser.add_argument("--json", default=str(RESULTS), help="where to write the results (default bench/results.json)")
    args = parser.parse_args(argv)
    args.scenarios = [s for item in args.scenarios for s in item.split(",") if s and s != "none"]
    unknown = set(args.scenarios) - set(ALL)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))} (known: {', '.join(ALL)})")
    if args.feeds is None:
        args.feeds = 100 if args.quick else DEFAULT_FEEDS
    if args.entries is None:
        args.entries = 20 if args.quick else DEFAULT_ENTRIES
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "reader" in args.scenarios:
        try:
            import reader  # noqa: F401
        except ImportError:
            log("reader is not installed: pip install -e '.[bench]'; skipping the reader scenario")
            args.scenarios.remove("reader")
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    run = Run(args, tmp)
    started = time.perf_counter()
    try:
        log(f"corpus {args.feeds} x {args.entries} (seed {args.seed}) ...")
        corpus = build(args.feeds, args.entries, args.seed)
        run.extra["corpus"] = {
            "root": str(corpus.root), "bytes": corpus.manifest.bytes_g0, "bytes_gzip": corpus.manifest.bytes_g0_gz,
            "entries": corpus.manifest.entries_g0, "churned_feeds": len(corpus.manifest.churned),
            "build_seconds": corpus.manifest.seconds_to_build,
        }
        m = corpus.manifest
        print(f"corpus: {m.feeds} feeds x {m.entries} entries = {m.entries_g0:,} entries, {m.bytes_g0 / 1e6:.1f} MB "
              f"({m.bytes_g0_gz / 1e6:.1f} MB gzip on the wire) in {corpus.root}")
        if args.scenarios:
            main_scenarios(run, corpus)
        if args.scaling:
            scaling(run)
        if args.million:
            million(run)
    finally:
        if args.keep:
            log(f"working folders kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    run.extra["total_seconds"] = round(time.perf_counter() - started, 1)
    report(run)
    write_results(run)
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
