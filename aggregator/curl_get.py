"""A plain GET through libcurl (pycurl): how a feed poll leaves when nothing needs requests' way.

Why: a daemon's pass over 1,000 sources is 1,000 conditional GETs, nearly all answered 304.
Through requests and urllib3 each costs 0.25-0.5 ms of CPU in Python, and the fetch threads hand
the GIL to one another at every socket call: 0.47 s for 1,000 GETs on this machine, more than the
whole pass may take (bench/PROFILE.md, passes 8 to 16). libcurl does the socket work, the HTTP
parsing, the decompression and the deadline in C with the GIL released: 0.13 s for the same GETs.

What stays with requests (`fetch.send_get` decides): proxies and netrc read from the environment,
a client certificate, a session made elsewhere, and the address check of article fetches
(`aggregator.addresses`), whose connections are vetted address by address.

The answer reads like urllib3's where `fetch` looks (status, reason, headers, `read`, `close`),
with the body already read: libcurl enforces the total deadline (TIMEOUT_MS), the per-read timeout
(LOW_SPEED_TIME: at least a byte a second, in whole seconds) and, through our write callback, the
cap on the decompressed body. Errors are `FetchError`s in the words requests' path uses.
"""

from __future__ import annotations

import errno
import functools
import math
import os
import re
import threading
from dataclasses import dataclass, field

import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from .errors import FetchError
from .fetch_errors import declared_over_cap, past_deadline

try:
    import pycurl
except ImportError:  # no wheel for this platform and no libcurl to build one: requests does it all
    pycurl = None

AVAILABLE = pycurl is not None

#: a connect's failures told apart as requests' path tells them (`fetch_errors.reason`)
_CONNECT_ERRNOS = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
_WEIRD_SERVER_REPLY = 8  # CURLE_WEIRD_SERVER_REPLY, which pycurl does not name
#: a body cut short, as libcurl 7 and 8 word it
_REMAINING = re.compile(r"(?:transfer closed with|end of response with) (\d+) bytes (?:remaining|missing)")


class CurlHeaders(dict[str, str]):
    """Response headers: lower-case names, a repeated header's values joined by ", " (as requests
    joins them); `getlist` and `itermerged` as urllib3's HTTPHeaderDict has them."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: dict[str, list[str]] = {}

    def add(self, name: str, value: str) -> None:
        self.lists.setdefault(name, []).append(value)
        self[name] = f"{self[name]}, {value}" if name in self else value

    def getlist(self, name: str) -> list[str]:
        return self.lists.get(name.lower(), [])

    def itermerged(self) -> list[tuple[str, str]]:
        return list(self.items())


@dataclass
class CurlAnswer:
    """A response read to its end; `read` and `close` are there for code written for urllib3's."""

    status: int
    reason: str
    headers: CurlHeaders
    body: bytes
    chunked: bool = False

    def read(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


@dataclass
class _Reading:
    """One transfer's state, fed by libcurl's callbacks."""

    cap: int
    lines: list[bytes] = field(default_factory=list)  # raw header lines, every response of the exchange
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    response: tuple[tuple[int, str], CurlHeaders] | None = None  # parsed when the body began
    skipped: bool = False  # not a 2xx: the body was not wanted
    over: str = ""  # why the body was refused for its size

    @property
    def started(self) -> bool:
        """Whether the body began (so the headers were complete)."""
        return self.response is not None

    def write(self, data: bytes) -> int | None:
        if self.response is None:
            self.response = _final_response(self.lines)
            (status, _reason), headers = self.response
            if not 200 <= status < 300:
                self.skipped = True
                return 0
            refused = declared_over_cap(headers.get("content-length", ""), "content-encoding" in headers, self.cap)
            if refused is not None:
                self.over = str(refused)
                return 0
        self.size += len(data)
        if self.size > self.cap:
            self.over = f"body is over the {self.cap:,}-byte cap; download stopped"
            return 0
        self.chunks.append(data)
        return None

    def headers_complete(self) -> bool:
        """Whether a final (not 1xx) response's headers came to their end."""
        if self.started:
            return True
        return bool(self.lines) and self.lines[-1] in (b"\r\n", b"\n") and _final_response(self.lines)[0][0] >= 200


def _final_response(lines: list[bytes]) -> tuple[tuple[int, str], CurlHeaders]:
    """The status and headers of the last response among the raw header `lines` (libcurl hands
    over those of any 100 Continue too)."""
    start = max((i for i, line in enumerate(lines) if line.startswith(b"HTTP/")), default=-1)
    headers = CurlHeaders()
    if start < 0:
        return (0, ""), headers
    parts = lines[start].decode("latin-1").split(None, 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    reason = parts[2].strip() if len(parts) > 2 else ""
    last = ""
    for raw in lines[start + 1:]:
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            break
        if line[0] in " \t" and last:  # an obsolete folded line continues the header before it
            headers.lists[last][-1] += " " + line.strip()
            headers[last] = ", ".join(headers.lists[last])
            continue
        name, colon, value = line.partition(":")
        if colon:
            last = name.strip().lower()
            headers.add(last, value.strip())
    return (status, reason), headers


@functools.lru_cache(maxsize=4096)
def written_url(url: str) -> str:
    """`url` as requests writes it (IDNA host, quoted path), checked as requests checks a URL: what
    is sent, stored and shown, whichever client sends it. A daemon polls the same URLs all day."""
    request = requests.PreparedRequest()
    request.prepare_url(url, None)
    return request.url or url


class CurlClient:
    """Reusable curl handles, each keeping its connections alive: one per fetch thread at a time,
    at most `keep` kept between requests (the rest closed), as urllib3's pool does."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._free: list[pycurl.Curl] = []

    def _take(self) -> pycurl.Curl:
        with self._lock:
            if self._free:
                return self._free.pop()
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)  # threads: no SIGALRM for resolver timeouts
        handle.setopt(pycurl.PROXY, "")  # never a proxy from the environment (send_get's job)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)  # fetch follows redirects itself
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        return handle

    def _give(self, handle: pycurl.Curl) -> None:
        with self._lock:
            if len(self._free) < self.keep:
                self._free.append(handle)
                return
        handle.close()

    def close(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for handle in free:
            handle.close()

    def get(self, url: str, headers: dict[str, str], timeout: float, left: float, verify: bool | str,
            cap: int, deadline: float) -> CurlAnswer:
        """GET `url` (as `written_url` gave it) with `headers`; `left` seconds remain of the fetch's
        `deadline` seconds. No redirect is followed and only a 2xx body is read."""
        handle = self._take()
        try:
            return _perform(handle, url, headers, timeout, left, verify, cap, deadline)
        finally:
            self._give(handle)


def _perform(handle: pycurl.Curl, url: str, headers: dict[str, str], timeout: float, left: float,
             verify: bool | str, cap: int, deadline: float) -> CurlAnswer:
    reading = _Reading(cap)
    encoding = None
    lines = []
    for name, value in headers.items():
        if name.lower() == "accept-encoding":  # libcurl sends it and decodes what it names
            encoding = value
        else:
            lines.append(f"{name}: {value}".encode("latin-1"))
    handle.setopt(pycurl.URL, url)
    handle.setopt(pycurl.HTTPHEADER, lines)
    if encoding is None:
        handle.unsetopt(pycurl.ACCEPT_ENCODING)
    else:
        handle.setopt(pycurl.ACCEPT_ENCODING, encoding)
    handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
    handle.setopt(pycurl.TIMEOUT_MS, max(1, int(left * 1000)))
    handle.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(timeout)))
    if url[:6].lower() == "https:":
        _set_verify(handle, verify)
    handle.setopt(pycurl.HEADERFUNCTION, reading.lines.append)
    handle.setopt(pycurl.WRITEFUNCTION, reading.write)
    try:
        handle.perform()
    except pycurl.error as exc:
        code, message = exc.args
        if not (code == pycurl.E_WRITE_ERROR and reading.skipped):
            raise _failure(code, str(message), reading, handle, timeout, deadline) from None
    (status, reason), response_headers = reading.response or _final_response(reading.lines)
    return CurlAnswer(status or handle.getinfo(pycurl.RESPONSE_CODE), reason, response_headers,
                      b"".join(reading.chunks))


def _set_verify(handle: pycurl.Curl, verify: bool | str) -> None:
    """TLS checks as requests makes them: certifi's CAs unless a bundle is named; none if told so."""
    if verify is False:
        handle.setopt(pycurl.SSL_VERIFYPEER, 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 0)
        return
    handle.setopt(pycurl.SSL_VERIFYPEER, 1)
    handle.setopt(pycurl.SSL_VERIFYHOST, 2)
    bundle = verify if isinstance(verify, str) else DEFAULT_CA_BUNDLE_PATH
    if os.path.isdir(bundle):
        handle.setopt(pycurl.CAPATH, bundle)
    else:
        handle.setopt(pycurl.CAINFO, bundle)


def _failure(code: int, message: str, reading: _Reading, handle: pycurl.Curl, timeout: float,
             deadline: float) -> FetchError:
    """libcurl's error in the words of requests' path (`fetch_errors.reason`, `fetch._read_body`)."""
    if reading.over:
        return FetchError(reading.over)
    complete = reading.headers_complete()
    if code == pycurl.E_OPERATION_TIMEDOUT:
        if "too slow" in message:  # LOW_SPEED_TIME: a read waited longer than the timeout
            return FetchError("read timed out while downloading the body" if reading.started else "read timed out")
        if not handle.getinfo(pycurl.CONNECT_TIME) and "onnect" in message:
            return FetchError("connection timed out")
        return past_deadline("download not finished" if complete else "no complete response", deadline)
    if code == pycurl.E_PARTIAL_FILE:
        remaining = _REMAINING.search(message)
        if remaining:
            got = handle.getinfo(pycurl.SIZE_DOWNLOAD_T)
            return FetchError(f"connection broke while reading: Connection broken: IncompleteRead({got} bytes read, "
                              f"{remaining.group(1)} more expected)")
        return FetchError(f"connection broke while reading: {message[:200]}")
    if code == pycurl.E_RECV_ERROR and reading.started:
        return FetchError(f"connection broke while reading: {message[:200]}")
    if code == pycurl.E_COULDNT_RESOLVE_HOST:
        return FetchError("name or service not known")
    if code in (pycurl.E_COULDNT_CONNECT, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR, pycurl.E_GOT_NOTHING,
                _WEIRD_SERVER_REPLY, pycurl.E_SSL_CONNECT_ERROR, pycurl.E_PEER_FAILED_VERIFICATION):
        number = handle.getinfo(pycurl.OS_ERRNO)
        return FetchError(os.strerror(number).lower() if number in _CONNECT_ERRNOS else "connection failed")
    return FetchError(message.splitlines()[0][:200] if message else f"libcurl error {code}")
