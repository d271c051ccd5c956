"""Serve a built corpus on 127.0.0.1 from its own process, with ETag/Last-Modified and 304s.

Every response is pre-rendered at start (plain and gzip bytes, strong ETag, Last-Modified), so a
request costs a dict look-up and a socket write. The server is a `ThreadingHTTPServer` speaking
HTTP/1.1 keep-alive (requests' connection pool reuses connections), and serves gzip to clients that
accept it, as real feed servers do.

Control endpoints (loopback only, used by `bench.run_all`):

* ``GET /_control/generation/N``: switch to generation N (0 = as built, 1 = after the churn);
* ``GET /_control/stats``: JSON counters (200s, 304s, bytes sent) and this process's CPU seconds;
* ``GET /_control/reset``: zero the counters.

Start it as a separate process with `start_server(corpus_dir)` (returns a `ServerProcess` with its
port), or from a shell: ``python -m bench.corpus_server bench/corpus/100x20-... --port 8099``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .corpus import BASE, Corpus, Manifest, etag_of


@dataclass(frozen=True)
class Rendered:
    body: bytes
    gz: bytes
    etag: str
    last_modified: str
    modified_at: float
    content_type: str


def load(root: Path) -> tuple[dict[str, Rendered], dict[str, Rendered]]:
    """(generation 0, generation 1) responses by URL path; generation 1 holds every path."""
    corpus = Corpus(root, Manifest.load(root / "manifest.json"))
    generations: list[dict[str, Rendered]] = [{}, {}]
    for meta in corpus.manifest.meta:
        for gen in (0, 1):
            if gen == 1 and not meta.churned:
                generations[1][meta.path] = generations[0][meta.path]
                continue
            body = corpus.path(gen, meta).read_bytes()
            gz = corpus.path(gen, meta, gz=True).read_bytes()
            # Last-Modified moves on with the generation: the churn happened "later".
            modified = BASE.timestamp() + meta.index + gen * 86_400
            stamp = format_datetime(datetime.fromtimestamp(modified, UTC), usegmt=True)
            generations[gen][meta.path] = Rendered(body, gz, etag_of(body), stamp, modified, meta.content_type)
    return generations[0], generations[1]


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = self.not_modified = self.not_found = self.bytes = self.requests = 0

    def reset(self) -> None:
        with self.lock:
            self.ok = self.not_modified = self.not_found = self.bytes = self.requests = 0

    def add(self, status: int, size: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes += size
            if status == 200:
                self.ok += 1
            elif status == 304:
                self.not_modified += 1
            else:
                self.not_found += 1


class CorpusServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # a client (wrk, a timed-out fetch) hung up
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __init__(self, address: tuple[str, int], root: Path):
        self.generations = load(root)
        self.generation = 0
        self.stats = Stats()
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: without this, 40 ms stalls
    server: CorpusServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.server.stats.add(status, len(body))

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith("/_control/"):
            self.control(self.path[len("/_control/"):])
            return
        doc = self.server.generations[self.server.generation].get(self.path.split("?")[0])
        if doc is None:
            self._send(404, b"not found\n", {"Content-Type": "text/plain"})
            return
        headers = {"ETag": doc.etag, "Last-Modified": doc.last_modified, "Cache-Control": "max-age=0"}
        if self.not_modified(doc):
            self._send(304, b"", headers)
            return
        headers["Content-Type"] = doc.content_type
        headers["Vary"] = "Accept-Encoding"
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            headers["Content-Encoding"] = "gzip"
            self._send(200, doc.gz, headers)
        else:
            self._send(200, doc.body, headers)

    def not_modified(self, doc: Rendered) -> bool:
        match = self.headers.get("If-None-Match")
        if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
            return doc.etag in [t.strip().removeprefix("W/") for t in match.split(",")] or match.strip() == "*"
        since = self.headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(since).timestamp() >= doc.modified_at
            except (TypeError, ValueError):
                return False
        return False

    def control(self, command: str) -> None:
        server = self.server
        if command.startswith("generation/"):
            server.generation = int(command.split("/")[1])
        elif command == "reset":
            server.stats.reset()
        elif command != "stats":
            self._send(404, b"unknown command\n", {"Content-Type": "text/plain"})
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats = server.stats
        data = {
            "generation": server.generation, "requests": stats.requests, "ok": stats.ok,
            "not_modified": stats.not_modified, "other": stats.not_found, "bytes": stats.bytes,
            "cpu": usage.ru_utime + usage.ru_stime, "feeds": len(server.generations[0]),
        }
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- the separate process -------------------------------------------------------------------------


class ServerProcess:
    """A corpus server running in a child process (not a child of the measured scenarios)."""

    def __init__(self, root: Path, port: int = 0):
        self.root = root
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.corpus_server", str(root), "--port", str(port)],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"corpus server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def control(self, command: str) -> dict[str, float]:
        conn = HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", f"/_control/{command}")
            data: dict[str, float] = json.loads(conn.getresponse().read())
            return data
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(root: Path, port: int = 0) -> ServerProcess:
    return ServerProcess(root, port)


def throughput(server: ServerProcess, paths: list[str], threads: int = 8, seconds: float = 2.0,
               max_requests: int = 4000, conditional: bool = False) -> dict[str, float]:
    """Hammer the server from `threads` keep-alive clients for at most `seconds` / `max_requests`.

    Returns requests/s, MB/s (gzip bytes on the wire) and the server's CPU seconds per request. The
    client runs in this process, on the same 2 cores, so the figure is a lower bound.
    """
    etags: dict[str, str] = {}
    if conditional:
        conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
        for path in paths:
            conn.request("HEAD", path)
            response = conn.getresponse()
            response.read()
            etags[path] = response.getheader("ETag") or ""
        conn.close()
    before = server.control("stats")
    deadline = time.monotonic() + seconds
    per_thread = max(1, max_requests // threads)

    def client(n: int) -> tuple[int, int]:
        conn = HTTPConnection("127.0.0.1", server.port, timeout=30)
        count = size = 0
        try:
            for i in range(per_thread):
                if time.monotonic() > deadline:
                    break
                path = paths[(n * per_thread + i) % len(paths)]
                headers = {"Accept-Encoding": "gzip"}
                if conditional:
                    headers["If-None-Match"] = etags[path]
                conn.request("GET", path, headers=headers)
                size += len(conn.getresponse().read())
                count += 1
        finally:
            conn.close()
        return count, size

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(client, range(threads)))
    elapsed = time.perf_counter() - started
    after = server.control("stats")
    count = sum(r[0] for r in results)
    size = sum(r[1] for r in results)
    return {
        "requests": count, "seconds": elapsed, "requests_per_s": count / elapsed, "mb_per_s": size / elapsed / 1e6,
        "server_cpu_ms_per_request": (after["cpu"] - before["cpu"]) * 1000 / max(1, count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a built corpus (see bench/corpus.py).")
    parser.add_argument("root", type=Path, help="a corpus folder, e.g. bench/corpus/100x20-s20260401-v1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    server = CorpusServer(("127.0.0.1", args.port), args.root)
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
