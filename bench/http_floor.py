"""What 1,000 conditional GETs (all 304) cost through each layer of the HTTP stack, on 1 or 2 processes.

    python -m bench.http_floor [--feeds 1000] [--threads 8] [--rounds 5]

The warm scenario is 1,000 sources answering 304, and its target (5x faster than reader's warm
run) leaves ~0.45-0.5 s on this machine for everything. This prints what the HTTP alone costs, so
that the target can be judged against its floor rather than guessed at:

* `fetch_url`: our own code path (`aggregator.fetch.fetch_url`: libcurl, through pycurl);
* `fetch_url-requests`: the same with requests underneath (`make_session(use_curl=False)`: the way
  article fetches and proxied GETs go, and every GET before libcurl);
* `adapter`: requests' transport adapter with each request prepared once, beforehand;
* `urllib3`: urllib3's connection pool called directly (what requests runs on);
* `http.client`: the standard library's connection, one per thread, reused.

Each client runs with `--threads` threads in one process, then split over two processes of half
the threads each (forked before any connection is made; each makes its own client). Wall and CPU
seconds are of the whole round, every process included; the corpus server runs in its own process
on the same cores, and its CPU per request is printed too. Rounds alternate the clients, and the
best and median of `--rounds` are shown, because this machine's speed drifts by 15-30% within
minutes. Nothing here is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPConnection

import requests
import urllib3

from aggregator.fetch import USER_AGENT, fetch_url, make_session

from .corpus import build
from .corpus_server import ServerProcess, start_server

Validators = dict[str, tuple[str, str]]  # url -> (etag, last_modified)
Get = Callable[[str], int]  # one conditional GET of a URL; returns the status


def _conditional(validators: Validators, url: str) -> dict[str, str]:
    etag, modified = validators[url]
    return {"If-None-Match": etag, "If-Modified-Since": modified}


def client_fetch_url(base: str, validators: Validators, threads: int, use_curl: bool = True) -> Get:
    session = make_session(pool_size=max(threads, 4), use_curl=use_curl)

    def get(url: str) -> int:
        etag, modified = validators[url]
        return fetch_url(session, url, etag=etag, last_modified=modified).status

    return get


def client_fetch_url_requests(base: str, validators: Validators, threads: int) -> Get:
    return client_fetch_url(base, validators, threads, use_curl=False)


def client_adapter(base: str, validators: Validators, threads: int) -> Get:
    session = make_session(pool_size=max(threads, 4))
    adapter = session.get_adapter(base)
    prepared: dict[str, requests.PreparedRequest] = {}
    for url in validators:
        request = requests.PreparedRequest()
        request.prepare(method="GET", url=url, headers={**session.headers, **_conditional(validators, url)})
        prepared[url] = request

    def get(url: str) -> int:
        response = adapter.send(prepared[url], stream=True, timeout=(20, 20), verify=True)
        _ = response.content  # read (empty for a 304), so the connection goes back to the pool
        response.close()
        status: int = response.status_code
        return status

    return get


def client_urllib3(base: str, validators: Validators, threads: int) -> Get:
    host, port = base.removeprefix("http://").split(":")
    pool = urllib3.HTTPConnectionPool(host, int(port), maxsize=max(threads, 4))
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    timeout = urllib3.Timeout(connect=20, read=20)

    def get(url: str) -> int:
        response = pool.urlopen("GET", url[len(base):], headers={**headers, **_conditional(validators, url)},
                                preload_content=False, retries=False, redirect=False, timeout=timeout)
        response.drain_conn()
        response.release_conn()
        return response.status

    return get


def client_http_client(base: str, validators: Validators, threads: int) -> Get:
    host, port = base.removeprefix("http://").split(":")
    local = threading.local()
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}

    def get(url: str) -> int:
        conn = getattr(local, "conn", None) or HTTPConnection(host, int(port), timeout=20)
        local.conn = conn
        conn.request("GET", url[len(base):], headers={**headers, **_conditional(validators, url)})
        response = conn.getresponse()
        response.read()
        return response.status

    return get


CLIENTS: dict[str, Callable[[str, Validators, int], Get]] = {
    "fetch_url": client_fetch_url, "fetch_url-requests": client_fetch_url_requests, "adapter": client_adapter,
    "urllib3": client_urllib3,
    "http.client": client_http_client,
}


def run_share(make: Callable[[str, Validators, int], Get], base: str, validators: Validators, urls: list[str],
              threads: int) -> int:
    """GET `urls` on `threads` threads, each taking every n-th URL; return how many were not 304."""
    get = make(base, validators, threads)

    def stream(part: list[str]) -> int:
        return sum(get(url) != 304 for url in part)

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(stream, [urls[i::threads] for i in range(threads)]))


def one_round(name: str, base: str, validators: Validators, threads: int, processes: int) -> dict[str, float]:
    """One round of every URL through client `name`, in `processes` forked processes; wall and CPU s."""
    urls = list(validators)
    make = CLIENTS[name]
    if threading.active_count() != 1:
        raise RuntimeError("forking needs a single-threaded parent")
    go_read, go_write = os.pipe()
    pids = []
    for index in range(processes):
        pid = os.fork()
        if pid == 0:  # the child: wait for the start, run its share, exit with the count of non-304s
            os.close(go_write)
            os.read(go_read, 1)
            wrong = run_share(make, base, validators, urls[index::processes], max(1, threads // processes))
            os._exit(min(wrong, 255))
        pids.append(pid)
    os.close(go_read)
    time.sleep(0.3)  # every child imported and waiting
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    os.write(go_write, b"x" * processes)
    wrong = 0
    for pid in pids:
        _pid, status = os.waitpid(pid, 0)
        wrong += os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    os.close(go_write)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if wrong:
        raise RuntimeError(f"{name}: {wrong} answers were not 304")
    return {"wall": wall, "cpu": cpu}


def collect_validators(server: ServerProcess, paths: list[str]) -> Validators:
    """One unconditional GET per feed (in a child, so this process opens no connection)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        session = make_session()
        lines = []
        for path in paths:
            headers = fetch_url(session, server.url(path)).headers
            lines.append(f"{server.url(path)}\t{headers.get('etag', '')}\t{headers.get('last-modified', '')}")
        with os.fdopen(write, "w", encoding="utf-8") as out:
            out.write("\n".join(lines))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, encoding="utf-8") as answer:
        text = answer.read()
    os.waitpid(pid, 0)
    return {url: (etag, modified) for url, etag, modified in (line.split("\t") for line in text.splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8, help="threads in all (halved per process when split)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS), choices=list(CLIENTS))
    args = parser.parse_args()
    corpus = build(args.feeds, 3, quiet=True)  # bodies do not matter: every answer is a 304
    with start_server(corpus.root) as server:
        validators = collect_validators(server, [m.path for m in corpus.manifest.meta])
        times: dict[tuple[str, int], list[dict[str, float]]] = {}
        server_cpu: list[float] = []
        for _round in range(args.rounds):
            for name in args.clients:
                for processes in (1, 2):
                    before = server.control("stats")["cpu"]
                    times.setdefault((name, processes), []).append(
                        one_round(name, server.base, validators, args.threads, processes))
                    server_cpu.append((server.control("stats")["cpu"] - before) / len(validators))
    print(f"{len(validators):,} conditional GETs (all 304), {args.threads} threads in all, "
          f"{args.rounds} rounds; wall and CPU seconds, best / median")
    print(f"{'client':<12} {'processes':>9} {'wall best':>10} {'wall med':>9} {'CPU best':>9} {'CPU med':>8}")
    for (name, processes), runs in times.items():
        walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
        print(f"{name:<12} {processes:>9} {min(walls):>10.3f} {statistics.median(walls):>9.3f} "
              f"{min(cpus):>9.3f} {statistics.median(cpus):>8.3f}")
    print(f"corpus server: {statistics.median(server_cpu) * 1000:.3f} ms CPU per request (median of rounds)")


if __name__ == "__main__":
    main()
