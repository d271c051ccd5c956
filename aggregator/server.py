"""Serving the output folder over HTTP (waitress), with /healthz and /metrics.

The static part is a small WSGI app of our own rather than WhiteNoise: WhiteNoise reads its file list
once at start (our files change all the time) and only serves gzip from prebuilt `.gz` files. Here
every request looks at the file as it is now, validators come from the file itself, gzip bodies are
compressed on demand and cached per file version, and a path can never leave the output folder.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import waitress
from waitress.server import BaseWSGIServer, MultiSocketServer

from .errors import AggregatorError

CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}
# Our feeds have fixed names; their type is what a reader needs to recognise them.
NAMED_TYPES = {
    "feed.xml": "application/rss+xml; charset=utf-8",
    "atom.xml": "application/atom+xml; charset=utf-8",
    "feed.json": "application/feed+json; charset=utf-8",
}
COMPRESSIBLE = (
    "text/",
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/xml",
    "image/svg+xml",
)
MAX_PATH = 2048
NOT_FOUND = b"<!doctype html><title>404 Not Found</title><h1>404 Not Found</h1>\n"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
HealthProvider = Callable[[], tuple[int, dict[str, Any]]]
MetricsProvider = Callable[[], tuple[bytes, str]]


def content_type(path: Path) -> str:
    return NAMED_TYPES.get(path.name) or CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")


@dataclass
class _Cached:
    key: tuple[int, int]
    body: bytes


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header takes gzip: named (or `*`) with a q-value above 0, so that
    "gzip;q=0" (RFC 9110: not acceptable) gets the plain file."""
    header = header.lower()
    if "gzip" not in header and "*" not in header:  # the usual answer, without parsing
        return False
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = 0.0
        weights[coding.strip()] = weight
    for coding in ("gzip", "x-gzip", "*"):
        if coding in weights:
            return weights[coding] > 0
    return False


class StaticSite:
    """A WSGI app serving files under `root`, plus /healthz and /metrics when given providers."""

    def __init__(self, root: Path, health: HealthProvider | None = None, metrics: MetricsProvider | None = None):
        self.root = Path(root).resolve()
        self.health = health
        self.metrics = metrics
        self._gzip_cache: OrderedDict[Path, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = environ.get("PATH_INFO", "/")
        if method not in ("GET", "HEAD"):
            return self._plain(
                start_response, "405 Method Not Allowed", b"method not allowed\n", [("Allow", "GET, HEAD")]
            )
        if raw_path == "/healthz" and self.health:
            status, payload = self.health()
            body = json.dumps(payload, ensure_ascii=False, indent=2).encode() + b"\n"
            return self._send(
                environ,
                start_response,
                f"{status} {'OK' if status == 200 else 'Service Unavailable'}",
                body,
                [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")],
            )
        if raw_path == "/metrics" and self.metrics:
            body, ctype = self.metrics()
            return self._send(environ, start_response, "200 OK", body, [("Content-Type", ctype)])
        try:  # WSGI hands the path's bytes over as Latin-1: a Chinese file name arrives as UTF-8 bytes
            path = self.resolve(raw_path.encode("latin-1").decode("utf-8"))
        except UnicodeError:  # not UTF-8: no file of ours has such a name
            path = None
        if path is None:
            return self._plain(
                start_response,
                "404 Not Found",
                NOT_FOUND,
                [("Content-Type", "text/html; charset=utf-8")],
                head=method == "HEAD",
            )
        if not raw_path.endswith("/") and path.name == "index.html" and not raw_path.endswith("/index.html"):
            # a folder named without its slash: the page's relative links (feed.xml) would
            # resolve one level up, so send the browser to the folder itself, as web servers do
            query = environ.get("QUERY_STRING", "")
            location = quote(raw_path.encode("latin-1", "replace")) + "/" + (f"?{query}" if query else "")
            return self._plain(start_response, "301 Moved Permanently", b"moved\n",
                               [("Location", location), ("Content-Type", "text/plain")], head=method == "HEAD")
        return self._file(environ, start_response, path)

    def resolve(self, url_path: str) -> Path | None:
        """The file a URL path names, or None when it is missing or outside the root."""
        if len(url_path) > MAX_PATH or "\x00" in url_path:
            return None
        # PATH_INFO is already percent-decoded once by the server; decode again so %2e%2e and %2f
        # tricks are judged on what they mean, then reject any traversal outright.
        decoded = unquote(url_path)
        parts = [p for p in decoded.replace("\\", "/").split("/") if p not in ("", ".")]
        if any(p == ".." or p.startswith(".") or "\x00" in p for p in parts):  # %2500: a NUL once decoded
            return None
        candidate = self.root.joinpath(*parts) if parts else self.root
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            return None
        if resolved != self.root and not resolved.is_relative_to(self.root):
            return None
        if resolved.is_dir():
            resolved = resolved / "index.html"
        elif decoded.endswith("/"):  # /feed.xml/ names a folder, and there is none
            return None
        return resolved if resolved.is_file() else None

    def _file(self, environ: dict[str, Any], start_response: StartResponse, path: Path) -> Iterable[bytes]:
        try:
            stat = path.stat()
        except OSError:
            return self._plain(
                start_response, "404 Not Found", NOT_FOUND, [("Content-Type", "text/html; charset=utf-8")]
            )
        ctype = content_type(path)
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        headers = [
            ("Content-Type", ctype),
            ("Last-Modified", formatdate(stat.st_mtime, usegmt=True)),
            ("Cache-Control", "public, max-age=60"),
        ]
        compress = ctype.startswith(COMPRESSIBLE) and accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
        if ctype.startswith(COMPRESSIBLE):
            headers.append(("Vary", "Accept-Encoding"))
        if compress:
            etag = etag[:-1] + '-gz"'  # the gzip body is a different representation
        headers.append(("ETag", etag))
        if self._not_modified(environ, etag, stat.st_mtime):
            # no file read; Content-Length 0 keeps the connection open for the next request
            start_response("304 Not Modified", [*headers, ("Content-Length", "0")])
            return []
        try:
            data = path.read_bytes()
        except OSError:
            return self._plain(
                start_response, "404 Not Found", NOT_FOUND, [("Content-Type", "text/html; charset=utf-8")]
            )
        if compress:
            data = self._gzipped(path, (stat.st_size, stat.st_mtime_ns), data)
            headers.append(("Content-Encoding", "gzip"))
        return self._send(environ, start_response, "200 OK", data, headers)

    @staticmethod
    def _not_modified(environ: dict[str, Any], etag: str, mtime: float) -> bool:
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None:
            return etag in [m.strip().removeprefix("W/") for m in match.split(",")] or match.strip() == "*"
        since = environ.get("HTTP_IF_MODIFIED_SINCE")
        if since:
            try:
                return int(mtime) <= parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError):
                return False
        return False

    def _gzipped(self, path: Path, key: tuple[int, int], data: bytes) -> bytes:
        with self._lock:
            cached = self._gzip_cache.get(path)
            if cached and cached.key == key:
                self._gzip_cache.move_to_end(path)
                return cached.body
        body = gzip.compress(data, compresslevel=6, mtime=0)
        with self._lock:
            self._gzip_cache[path] = _Cached(key, body)
            while len(self._gzip_cache) > 512:
                self._gzip_cache.popitem(last=False)
        return body

    @staticmethod
    def _send(
        environ: dict[str, Any], start_response: StartResponse, status: str, body: bytes, headers: list[tuple[str, str]]
    ) -> Iterable[bytes]:
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    @staticmethod
    def _plain(
        start_response: StartResponse, status: str, body: bytes, headers: list[tuple[str, str]], head: bool = False
    ) -> Iterable[bytes]:
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b""] if head else [body]


class ServeError(AggregatorError, OSError):
    """The address cannot be served on (in use, not ours): the message names it."""

    def __str__(self) -> str:
        return str(self.strerror)


class FeedServer:
    """waitress serving a StaticSite. The socket is bound in the constructor, so a port in use is an
    error in the caller's thread, not one that dies silently in the server thread."""

    def __init__(self, app: StaticSite, host: str, port: int, threads: int = 8):
        try:
            self.server: BaseWSGIServer | MultiSocketServer = waitress.create_server(
                app,
                host=host,
                port=port,
                threads=threads,
                ident="aggregator",
                channel_timeout=15,
                connection_limit=1000,
                cleanup_interval=10,
                # GET and HEAD only: a request body is never read, so none is spooled to disk
                # (waitress would keep up to 1 GB of each); headers are bounded likewise
                max_request_body_size=0,
                max_request_header_size=64 * 1024,
            )
        except OSError as exc:
            raise ServeError(exc.errno, f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(getattr(self.server, "effective_port", 0))

    def _run(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # closed while stopping
            self.server.run()

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.server.close()


def ensure_output_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise PermissionError(f"{path}: output folder is not writable")
