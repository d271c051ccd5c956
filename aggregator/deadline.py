"""A fetch's total deadline over the wait for the response's headers.

requests' `timeout` bounds each socket read, so a server that sends its status line or headers a
byte at a time never times out: the fetch thread would wait forever, and with it every source
queued behind it. `fetch_url` names its deadline for the calling thread (`fetch_deadline`); each
connection of the session's adapter (`DeadlineAdapter`) hands its socket to one shared watcher
thread while it waits for the headers, and the watcher shuts the socket down if the deadline
passes first, which makes the blocked read fail at once. (The body has its own watchdog in
`fetch._read_body`.) One thread and a heap, not a timer per request: a pass of 1,000 conditional
GETs pays a lock and a heap push for each.

The same connections make the address check of `aggregator.addresses` when the calling thread
asks for one (article fetches): they resolve the host, vet every address, and connect to the
vetted address itself.

The adapter also sends a plain GET more cheaply than requests' `send` (`DeadlineAdapter.open_get`):
a daemon polls the same URLs all day, so where a URL leads (its pool's key, its TLS settings, its
re-quoted path) is worked out once, by requests' own code, and the answer is urllib3's response
as it comes, without the `Response` requests would build around it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import check_header_validity
from urllib3 import BaseHTTPResponse, Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

from .addresses import vet_reused, vetted_connection
from .curl_get import AVAILABLE as CURL_AVAILABLE
from .curl_get import CurlClient

_thread_deadline = threading.local()


class _Watcher:
    """Shuts down sockets still waiting when their deadline passes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._waiting: dict[int, socket.socket] = {}
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, deadline: float) -> int:
        with self._cond:
            key = next(self._keys)
            self._waiting[key] = sock
            heapq.heappush(self._heap, (deadline, key))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fetch-deadline", daemon=True)
                self._thread.start()
            if self._heap[0][1] == key:
                self._cond.notify()
            return key

    def unwatch(self, key: int) -> None:
        with self._cond:
            self._waiting.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                deadline, key = self._heap[0]
                if key not in self._waiting:  # answered in time
                    heapq.heappop(self._heap)
                    continue
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                sock = self._waiting.pop(key)
                # under the lock: once unwatch() has returned, the connection may serve another
                # request, which a late shutdown would cut
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


_WATCHER = _Watcher()


@contextlib.contextmanager
def fetch_deadline(deadline: float) -> Iterator[None]:
    """Within the block, this thread's requests give up waiting for headers at `deadline`
    (time.monotonic())."""
    outer = getattr(_thread_deadline, "at", None)
    _thread_deadline.at = deadline
    try:
        yield
    finally:
        _thread_deadline.at = outer


@contextlib.contextmanager
def _watching(sock: socket.socket | None) -> Iterator[None]:
    """While the block waits for the headers, `sock` is cut at this thread's fetch deadline."""
    deadline = getattr(_thread_deadline, "at", None)
    if deadline is None or sock is None:
        yield
        return
    key = _WATCHER.watch(sock, deadline)
    try:
        yield
    finally:
        _WATCHER.unwatch(key)


class _HTTPConnection(HTTPConnection):
    """What our connections add to urllib3's: the address check when the thread has one (article
    fetches: `aggregator.addresses`), and the deadline over the wait for the headers."""

    def _new_conn(self) -> socket.socket:
        sock = vetted_connection(self)
        return sock if sock is not None else super()._new_conn()

    def request(self, *args: Any, **kwargs: Any) -> None:
        vet_reused(self)
        super().request(*args, **kwargs)

    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 declares it
        with _watching(self.sock):
            return super().getresponse()


class _HTTPSConnection(_HTTPConnection, HTTPSConnection):  # type: ignore[misc]  # the same additions
    """The same, over TLS (the methods above call on into HTTPSConnection's)."""


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


def merge_headers(*layers: Any) -> dict[str, str]:
    """Headers of several mappings, later ones replacing earlier ones whatever the case of their
    names (a source's "user-agent" replaces the default User-Agent), as requests' case-insensitive
    dict would; a plain dict, which urllib3 and http.client walk more cheaply."""
    merged: dict[str, str] = {}
    spelled: dict[str, str] = {}  # lower-case name -> the spelling in `merged`
    for layer in layers:
        for name, value in layer.items():
            earlier = spelled.get(name.lower())
            if earlier is not None:
                del merged[earlier]
            spelled[name.lower()] = name
            merged[name] = value
    return merged


def checked_headers(defaults: Any, headers: dict[str, str]) -> dict[str, str]:
    """`headers` over `defaults` (`merge_headers`), each checked as requests checks a header: a
    value that would split the request (a line end in a source's token) is refused."""
    for header in headers.items():
        check_header_validity(header)
    return merge_headers(defaults, headers)


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections honour the thread's fetch deadline while waiting for
    headers, directly and through an HTTP proxy (a SOCKS proxy's pools are its own: there only the
    per-read timeout applies), and the thread's address check (`aggregator.addresses`)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager

    #: URLs whose way is remembered (a daemon's sources and their redirects); past this, start over
    MAX_TARGETS = 4096

    def __init__(self, *args: Any, use_curl: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._targets: dict[tuple[str, Any, Any], tuple[Any, Any, str, str]] = {}
        #: where a plain GET goes when it may (`fetch.send_get`): libcurl, if pycurl is installed
        self.curl = CurlClient(keep=kwargs.get("pool_maxsize", 16)) if use_curl and CURL_AVAILABLE else None

    def close(self) -> None:
        super().close()
        if self.curl is not None:
            self.curl.close()

    def open_get(
        self, url: str, headers: dict[str, str], defaults: Any, timeout: float, verify: bool | str, cert: Any,
    ) -> tuple[BaseHTTPResponse, str]:
        """GET `url` with `headers` over `defaults` (the session's), body not read, no redirect
        followed, no proxy: what `send` does for such a request, less rebuilding what a URL needs
        on every call and the `Response` wrapper. Returns the answer and the URL as requests
        writes it (IDNA host, quoted path). Errors are requests' (a bad URL or header) or
        urllib3's (the connection, the answer)."""
        merged = checked_headers(defaults, headers)
        key = (url, verify, cert)
        target = self._targets.get(key)
        if target is None:
            request = requests.PreparedRequest()
            request.prepare_url(url, None)  # IDNA, re-quoting, the checks of a valid URL
            host, pool_kwargs = self.build_connection_pool_key_attributes(request, verify, cert)
            if len(self._targets) >= self.MAX_TARGETS:
                self._targets.clear()
            target = self._targets[key] = (host, pool_kwargs, request.path_url or "/", request.url or url)
        host, pool_kwargs, path, prepared = target
        pool = self.poolmanager.connection_from_host(**host, pool_kwargs=pool_kwargs)
        self.cert_verify(pool, url, verify, cert)  # as send does: the CA bundle must still be there
        response = pool.urlopen(
            "GET", path, headers=merged, redirect=False, assert_same_host=False, preload_content=False,
            decode_content=False, retries=self.max_retries, timeout=Timeout(connect=timeout, read=timeout),
            chunked=False,
        )
        return response, prepared
