"""Profile the cold scenario once with py-spy (every thread, not only the main one) and summarise.

    python -m bench.profile_cold [--feeds 1000] [--entries 50] [--workers 8] [--rate 100]
    python -m bench.profile_cold --warm    # profile the warm run (all 304) after an unprofiled cold one

py-spy samples the scenario process and its worker processes (`--subprocesses`) from outside (it
is the scenario's parent, so its own CPU is not counted in the scenario's figures; the profiled run
is slower than an unprofiled one). Idle samples
(threads blocked in a socket read or a lock) are left out, so the shares are shares of active
Python time. C extensions (nh3, sqlite3, zlib, pyexpat) are charged to the Python function that
called them. The raw collapsed stacks and the summary land in bench/corpus/ (git-ignored):
profile-cold-NxM.raw.txt and profile-cold-NxM.txt. bench/PROFILE.md is the hand-written reading of one.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from .corpus import CORPUS_ROOT, DEFAULT_ENTRIES, DEFAULT_FEEDS, DEFAULT_SEED, build
from .corpus_server import start_server
from .run_all import base_spec, fresh_folder, run_scenario
from .workdir import write_config

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
#: (stage, function name, file path part): the first of these found walking a stack from its root names it
STAGES = (
    ("config", "load_config", "aggregator/config"),
    ("open store", "__init__", "aggregator/store"),
    ("fetch: HTTP", "fetch_url", "aggregator/fetch.py"),
    ("fetch: parse (feedparser)", "parse_feed", "aggregator/parse.py"),
    ("fetch: normalise (nh3, rules)", "Normaliser.posts", "aggregator/normalise.py"),
    ("store: posts", "store_posts", "aggregator/store"),
    ("store: source state", "source_state", "aggregator/store"),
    ("store: source state", "save_source_state", "aggregator/store"),
    ("store: articles owed", "owed_articles", "aggregator/"),
    ("publish: category feeds+pages", "category", "aggregator/publish/site.py"),
    ("publish: tag feeds", "tag", "aggregator/publish/site.py"),
    ("publish: all-categories feeds", "everything", "aggregator/publish/site.py"),
    ("publish: home page", "home", "aggregator/publish/site.py"),
    ("publish: OPML", "opml", "aggregator/publish/site.py"),
    ("publish: Jekyll export", "export_posts", "aggregator/publish/jekyll.py"),
    ("publish: setup (counts)", "__init__", "aggregator/publish/site.py"),
)


def frames(stack: str) -> list[tuple[str, str]]:
    found = []
    for part in stack.split(";"):
        match = _FRAME.match(part.strip())
        found.append((match["func"], match["file"]) if match else (part.strip(), ""))
    return found


def module_of(path: str) -> str:
    """A readable module name for a file path: package under site-packages, aggregator.x, or stdlib."""
    if "site-packages/" in path:
        path = path.split("site-packages/")[1]
    for ours in ("aggregator", "bench"):
        if path.startswith(ours + "/") or f"/{ours}/" in path:
            return ours + "." + path.split(ours + "/")[-1].removesuffix(".py").replace("/", ".")
    match = re.search(r"/lib/python3\.\d+/(.+)\.py$", path)
    if match:
        return match.group(1).replace("/", ".").removesuffix(".__init__")
    if path.startswith("<frozen "):
        return path[len("<frozen "):-1]
    return path.split("/")[0].removesuffix(".py") if path else "?"


#: leaf functions that mean "blocked", though py-spy did not see the thread as idle (a lock or
#: condition wait from Python, a select on the pool's pipes): left out of the shares
WAITING = {"Condition.wait", "Event.wait", "_PollLikeSelector.select", "Thread.join", "wait", "_wait_for_tstate_lock",
           "Connection._recv", "Connection._recv_bytes", "Connection.poll", "_poll"}
#: the psutil sampler of bench.measure (measurement overhead, reported apart)
SAMPLER = "TreeSampler._run"


def summarise(raw: Path, top: int = 25) -> str:
    stacks: Counter[str] = Counter()
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    stage: Counter[str] = Counter()
    leaf_fn: Counter[str] = Counter()
    leaf_mod: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    process: Counter[str] = Counter()
    waiting = sampler = 0
    for stack, count in stacks.items():
        chain = [(f, file) for f, file in frames(stack) if not f.startswith("process ")]
        if chain and chain[-1][0] in WAITING:
            waiting += count
            continue
        if any(f == SAMPLER for f, _file in chain):
            sampler += count
            continue
        # with --subprocesses a worker's stack starts with the main process's frame, then its own
        worker = any(p.startswith("process ") and "bench.scenarios" not in p for p in stack.split(";"))
        process["worker processes (parse, normalise)" if worker else "main process (fetch, store, publish)"] += count
        chain = [(f, file) for f, file in chain if file not in ("", "?")]
        if not chain:
            continue
        name = "other (threads, pool, waits)"
        for func, file in chain:
            hit = next((s for s, f, part in STAGES
                        if (func == f or func.endswith("." + f)) and part in file), None)
            if hit:
                name = hit
                break
        stage[name] += count
        func, file = chain[-1]
        leaf_fn[f"{func} ({module_of(file)})"] += count
        leaf_mod[module_of(file)] += count
        for key in {f"{func} ({module_of(file)})" for func, file in chain}:
            inclusive[key] += count

    total = sum(process.values()) or 1

    def block(title: str, counter: Counter[str], n: int) -> list[str]:
        lines = [title]
        lines += [f"  {100 * c / total:5.1f}%  {k}" for k, c in counter.most_common(n)]
        return lines + [""]

    out = [f"{total} active samples ({waiting} more were threads blocked in a wait, {sampler} the RSS sampler "
           "of bench.measure: both left out)", ""]
    out += block("by process:", process, 5)
    out += block("by stage (outermost aggregator step on the stack):", stage, 30)
    out += block("by module, self time (where the CPU actually is):", leaf_mod, top)
    out += block("by function, self time:", leaf_fn, top)
    out += block("by function, inclusive (on the stack):", inclusive, top)
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile the cold scenario with py-spy.")
    parser.add_argument("--feeds", type=int, default=DEFAULT_FEEDS)
    parser.add_argument("--entries", type=int, default=DEFAULT_ENTRIES)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--rate", type=int, default=100, help="samples per second (py-spy -r)")
    parser.add_argument("--summarise", type=Path, metavar="RAW", help="only summarise an existing raw stacks file")
    parser.add_argument("--warm", action="store_true", help="profile the warm scenario (after a plain cold run)")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.summarise))
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: pip install -e '.[bench]'")
    corpus = build(args.feeds, args.entries, args.seed)
    scenario = "warm" if args.warm else "cold"
    name = f"profile-{scenario}-{args.feeds}x{args.entries}"
    raw = CORPUS_ROOT / f"{name}.raw.txt"
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-profile-"))
    try:
        with start_server(corpus.root) as server:
            folder = fresh_folder(tmp, "aggregator")
            config = write_config(folder, corpus, server.base, args.workers)
            total = args.feeds * args.entries
            spec = {**base_spec(corpus, server, args.workers, folder, config), "expect": {"new": total, "posts": total}}
            command = [spy, "record", "--subprocesses", "--rate", str(args.rate), "--format", "raw",
                       "--output", str(raw), "--"]
            if args.warm:
                run_scenario("cold", spec, tmp, server)
                spec["expect"] = {"posts": total}
            result = run_scenario(scenario, spec, tmp, server, label=f"{scenario}-profiled", profile_cmd=command)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    phases = ", ".join(f"{k} {v['wall']:.2f}/{v['cpu']:.2f}" for k, v in result.get("phases", {}).items())
    head = (f"{scenario}, {args.feeds} x {args.entries}, {args.workers} workers, under py-spy at {args.rate} Hz: "
            f"{result.get('wall', 0):.2f} s wall, {result.get('cpu', 0):.2f} s CPU; phases (wall/CPU s): {phases}")
    text = head + "\n\n" + summarise(raw)
    (CORPUS_ROOT / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"\nraw stacks: {raw}\nsummary: {CORPUS_ROOT / (name + '.txt')}")
    if result.get("errors"):
        sys.exit(f"errors: {result['errors']}")


if __name__ == "__main__":
    main()
