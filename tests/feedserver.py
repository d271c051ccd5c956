"""A real HTTP server on 127.0.0.1 that serves fixture feeds with whatever behaviour a test needs.

Routes answer with a status, headers and a body, and can honour ETag/Last-Modified (304), redirect,
stall, drip a byte at a time, stream forever or gzip their body. Every request is logged with its
headers so tests can check what the client sent.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between body bytes
    endless: bool = False  # stream chunks until the client goes away
    gzip: bool = False
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


@dataclass
class LoggedRequest:
    path: str
    headers: dict[str, str]
    client_port: int = 0  # the same port on two requests: one kept-alive connection


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[LoggedRequest] = []
        self.posts: list[tuple[str, str]] = []  # (path, form body) of POST requests
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(
                    LoggedRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, self.client_address[1])
                )
                route = server.routes.get(self.path)
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.handler:
                    route.handler(self)
                    return
                if (
                    route.etag
                    and self.headers.get("If-None-Match") == route.etag
                    or (route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified)
                ):
                    self._send(304, b"", {"ETag": route.etag} if route.etag else {})
                    return
                headers = {"Content-Type": route.content_type, **route.headers}
                if route.etag:
                    headers["ETag"] = route.etag
                if route.last_modified:
                    headers["Last-Modified"] = route.last_modified
                body = route.body
                if route.gzip:
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                if route.endless:
                    self._stream_forever(headers)
                elif route.drip:
                    self._drip(route.status, body, headers, route.drip)
                else:
                    self._send(route.status, body, headers)

            def do_POST(self) -> None:  # noqa: N802  (a WebSub hub, for example)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                server.posts.append((self.path, body))
                route = server.routes.get(self.path)
                self._send(route.status if route else 404, b"", {"Content-Type": "text/plain"})

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if status != 304:
                    self.wfile.write(body)

            def _drip(self, status: int, body: bytes, headers: dict[str, str], pause: float) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for i in range(len(body)):
                        if server._stop.is_set():
                            return
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    return

            def _stream_forever(self, headers: dict[str, str]) -> None:
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"<item><title>x</title></item>" * 2000
                deadline = time.monotonic() + 60
                try:
                    self.wfile.write(b"%x\r\n<rss><channel>\r\n" % len(b"<rss><channel>"))
                    while time.monotonic() < deadline and not server._stop.is_set():
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:
                    return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.scheme = "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self, tls: ssl.SSLContext | None = None) -> FeedServer:
        """Serve in a thread; with `tls`, over HTTPS (the URLs then say https)."""
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def add(self, path: str, body: bytes | str = b"", **options: object) -> str:
        """Serve `body` at `path`; return its full URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(body=data, **options)  # type: ignore[arg-type]
        return self.url(path)

    def redirect(self, path: str, target: str, status: int = 301) -> str:
        self.routes[path] = Route(status=status, headers={"Location": target}, content_type="text/plain")
        return self.url(path)

    def hits(self, path: str) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path == path]
