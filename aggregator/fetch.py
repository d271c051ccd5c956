"""HTTP retrieval of feeds: one pooled session, conditional GET, a body cap and a total deadline.

A plain GET goes through libcurl (`aggregator.curl_get`), which enforces the deadline itself; the
rest through requests (`send_get` says which). requests' `timeout` bounds the connect and each
socket read, not the whole download, so a server dripping a byte a second would never time out:
a watchdog timer shuts the socket down when the total deadline passes, which makes the blocked
read fail at once (`aggregator.deadline` does the same for the wait for the headers).
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import http.cookies
import os
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.request import getproxies

import requests
import urllib3
from requests.structures import CaseInsensitiveDict
from urllib3 import BaseHTTPResponse, HTTPHeaderDict

from . import __version__
from .addresses import allowed_kinds
from .curl_get import CurlAnswer, CurlClient, CurlHeaders, written_url
from .deadline import DeadlineAdapter, checked_headers, fetch_deadline
from .errors import FetchError
from .fetch_errors import TRANSPORT_ERRORS, broken_body, declared_over_cap, past_deadline, reason, timed_out
from .models import FetchResult

# verify_tls: false is warned about once by `check` and at start, not on every request
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

PROJECT_URL = "https://github.com/aggregator-dev/aggregator"
USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
CHUNK = 64 * 1024
PERMANENT = {301, 308}
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 10


def _netrc_exists() -> bool:
    candidates = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    return any(os.path.exists(os.path.expanduser(c)) for c in candidates)


def _ca_bundle_from_environment() -> str:
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or ""


def environment_matters() -> bool:
    """Whether requests must read the environment on every request: for proxies (which no_proxy
    exempts per URL) or a netrc file (credentials per host).

    With `trust_env`, requests walks os.environ twice for proxies and stats ~/.netrc on every
    request, a third of the CPU of a 304. When neither is there at start, the session is told not
    to look; a CA bundle named by REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is then read once instead.
    """
    return bool(getproxies()) or _netrc_exists()


class HostLimits:
    """At most `per_host` requests at once to any one host: polite to sites hosting many sources."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    def __call__(self, host: str) -> threading.BoundedSemaphore:
        with self._lock:
            if host not in self._semaphores:
                self._semaphores[host] = threading.BoundedSemaphore(self.per_host)
            return self._semaphores[host]


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much one fetch may take."""

    timeout: float = 20.0  # connect and per-read timeout, seconds
    deadline: float = 60.0  # whole request, seconds
    max_body: int = 10 * 1024 * 1024  # bytes after decompression


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """Accept and return no cookie: one feed's site must not see what another's (or a redirect) set,
    and a daemon's jar would otherwise grow for as long as it runs."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


def make_session(pool_size: int = 16, use_curl: bool = True) -> requests.Session:
    """A Session with a connection pool big enough for our workers and our User-Agent; its plain
    GETs go through libcurl unless `use_curl` is false (`send_get`)."""
    session = requests.Session()
    session.trust_env = environment_matters()
    bundle = _ca_bundle_from_environment()
    if bundle and not session.trust_env:
        session.verify = bundle  # as requests would have, read once
    session.cookies.set_policy(_NoCookies())
    adapter = DeadlineAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0, use_curl=use_curl)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(
        {
            "User-Agent": USER_AGENT,
            "Accept": "application/rss+xml, application/atom+xml, application/feed+json, "
            "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
            "Accept-Encoding": "gzip, deflate",
        }
    )
    return session


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²", which isdigit() too
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _socket_of(response: BaseHTTPResponse) -> socket.socket | None:
    """The socket under a streamed response, so the watchdog can cut it (best effort)."""
    fp: Any = getattr(response, "_fp", None)
    raw = getattr(getattr(fp, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


class _Watchdog:
    """Shuts a response's socket down when the deadline passes."""

    def __init__(self, response: BaseHTTPResponse, seconds: float):
        self.fired = False
        self._response = response
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        sock = _socket_of(self._response)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                self._response.close()
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


def _read_body(response: BaseHTTPResponse | CurlAnswer, limits: FetchLimits, started: float) -> bytes:
    if isinstance(response, CurlAnswer):  # read already, within the deadline and the cap
        return response.body
    remaining = limits.deadline - (time.monotonic() - started)
    if remaining <= 0:
        raise past_deadline("no complete response", limits.deadline)
    refused = declared_over_cap(response.headers.get("content-length", ""), "content-encoding" in response.headers,
                                limits.max_body)
    if refused is not None:
        response.close()
        raise refused
    watchdog = _Watchdog(response, remaining)
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.stream(CHUNK, decode_content=True):
            size += len(chunk)
            if size > limits.max_body:
                raise FetchError(f"body is over the {limits.max_body:,}-byte cap; download stopped")
            chunks.append(chunk)
            if watchdog.fired or time.monotonic() - started > limits.deadline:
                raise past_deadline("download not finished", limits.deadline)
    except TRANSPORT_ERRORS as exc:
        if watchdog.fired:
            raise past_deadline("download not finished", limits.deadline) from None
        if timed_out(exc):
            raise FetchError("read timed out while downloading the body") from None
        raise FetchError(f"connection broke while reading: {broken_body(exc)}") from None
    finally:
        watchdog.cancel()
        response.close()
    if watchdog.fired:
        raise past_deadline("download not finished", limits.deadline)
    return b"".join(chunks)


def send_get(
    session: requests.Session, url: str, headers: dict[str, str], limits: FetchLimits, verify: bool, started: float,
) -> tuple[BaseHTTPResponse | CurlAnswer, str]:
    """One GET of `url` with `headers` on top of the session's, no redirect followed; the answer
    (urllib3's response with the body still to read, or libcurl's with a 2xx body read), with the
    URL as requests writes it (IDNA host, quoted path: what is stored and shown as where a feed
    ended up).

    When the environment matters (`session.trust_env`: proxies, a netrc file) this is `session.get`,
    which reads it. Otherwise the GET goes to libcurl (`aggregator.curl_get`: a fifth of the CPU of
    the way below), unless the thread checks addresses (article fetches) or the session has a
    client certificate; those go straight to the session's transport adapter: we follow redirects
    ourselves and keep no cookies from one feed to the next, so what `Session.request` adds
    (merging settings, cookie jars, hooks, redirect bookkeeping) buys nothing, and our adapter
    (`DeadlineAdapter.open_get`) also skips what requests would work out again for a URL it has
    seen. A CA bundle matters only to https: for http, not naming it spares a stat per request.
    """
    tls = url[:6].lower() == "https:"
    check = (session.verify if tls and session.verify is not None else True) if verify else False
    timeout = limits.timeout
    if session.trust_env or session.proxies:
        answer = session.get(url, headers=headers, timeout=(timeout, timeout), stream=True, allow_redirects=False,
                             verify=check)
        return answer.raw, answer.url
    adapter = session.get_adapter(url)
    if isinstance(adapter, DeadlineAdapter):
        if adapter.curl is not None and session.cert is None and allowed_kinds() is None:
            return _curl_get(adapter.curl, session, url, headers, limits, check, started)
        return adapter.open_get(url, headers, session.headers, timeout, check, session.cert)
    merged = CaseInsensitiveDict(session.headers)  # a session made elsewhere, with its own adapter
    merged.update(headers)
    request = requests.PreparedRequest()
    request.prepare_method("GET")
    request.prepare_url(url, None)
    request.prepare_headers(merged)
    sent = adapter.send(request, stream=True, timeout=(timeout, timeout), verify=check, cert=session.cert)
    return sent.raw, sent.url


def _curl_get(
    curl: CurlClient, session: requests.Session, url: str, headers: dict[str, str], limits: FetchLimits,
    verify: bool | str, started: float,
) -> tuple[CurlAnswer, str]:
    written = written_url(url)
    left = limits.deadline - (time.monotonic() - started)
    if left <= 0:
        raise past_deadline("no complete response", limits.deadline)
    merged = checked_headers(session.headers, headers)
    return curl.get(written, merged, limits.timeout, left, verify, limits.max_body, limits.deadline), written


def _keep_cookies(
    cookies: dict[tuple[str, str, int | None], dict[str, str]], url: str, response: BaseHTTPResponse | CurlAnswer
) -> None:
    """The cookies a redirect sets, for the rest of this one fetch's chain and only for the origin
    that set them: a cookie check (a 302 to the same page with Set-Cookie) passes, as in a browser.
    Nothing is kept once the fetch ends; at most 20 cookies of 4 KB in all per origin."""
    headers = response.headers
    values = headers.getlist("set-cookie") if isinstance(headers, HTTPHeaderDict | CurlHeaders) else []
    for value in values:
        parsed: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
        with contextlib.suppress(http.cookies.CookieError):
            parsed.load(value)
        jar = cookies.setdefault(origin_of(url), {})
        for name, morsel in parsed.items():
            if len(jar) < 20 and sum(len(k) + len(v) for k, v in jar.items()) + len(name) + len(morsel.value) < 4096:
                jar[name] = morsel.value


def origin_of(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a source's own headers (a token) may be sent. Another port of
    the same host is another server, and https to http would send them in clear."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return ("", "", None)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


def may_carry_headers(origin: tuple[str, str, int | None], target: tuple[str, str, int | None]) -> bool:
    """Whether a request to `target` may carry the headers configured for `origin`: the same origin,
    or the same host upgraded from http to https on the default ports (never the other way)."""
    return target == origin or (origin == ("http", target[1], 80) and target == ("https", origin[1], 443))


def fetch_url(
    session: requests.Session,
    url: str,
    *,
    etag: str = "",
    last_modified: str = "",
    limits: FetchLimits = FetchLimits(),  # noqa: B008 - immutable
    headers: dict[str, str] | None = None,
    user_agent: str = "",
    verify: bool = True,
) -> FetchResult:
    """GET `url` conditionally; return a FetchResult or raise FetchError with a one-line reason.

    A 304 returns a result without a body. Any status other than 200-299 and 304 raises, with the
    status and any Retry-After attached to the error. Redirects are followed here rather than by
    requests so that `headers` (which may carry a token) only ever go to the URL's own origin, and so
    we know whether every hop was permanent.
    """
    started = time.monotonic()
    with fetch_deadline(started + limits.deadline):
        return _fetch_url(session, url, etag, last_modified, limits, headers, user_agent, verify, started)


def _fetch_url(
    session: requests.Session, url: str, etag: str, last_modified: str, limits: FetchLimits,
    headers: dict[str, str] | None, user_agent: str, verify: bool, started: float,
) -> FetchResult:
    origin: tuple[str, str, int | None] | None = None  # worked out at the first redirect
    permanent, current = True, url
    leading, moved_for_good = True, ""  # the first redirects, while all are permanent, and where they end
    cookies: dict[tuple[str, str, int | None], dict[str, str]] = {}  # set by this chain's redirects
    for _hop in range(MAX_REDIRECTS + 1):
        request_headers = {"User-Agent": user_agent} if user_agent else {}
        if current == url or may_carry_headers(origin := origin or origin_of(url), origin_of(current)):
            request_headers.update(headers or {})
        if cookies and (jar := cookies.get(origin_of(current))):
            request_headers.setdefault("Cookie", "; ".join(f"{name}={value}" for name, value in jar.items()))
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        try:
            response, written = send_get(session, current, request_headers, limits, verify, started)
        except TRANSPORT_ERRORS as exc:
            if time.monotonic() - started >= limits.deadline:  # the watcher cut a server still sending headers
                raise past_deadline("no complete response", limits.deadline) from None
            raise FetchError(reason(exc)) from None
        if time.monotonic() - started > limits.deadline:  # headers cut short by the watcher read as complete
            response.close()
            raise past_deadline("no complete response", limits.deadline)
        if leading and current != url:
            moved_for_good = written
        if response.status not in REDIRECTS or "location" not in response.headers:
            break
        permanent = permanent and response.status in PERMANENT
        leading = leading and response.status in PERMANENT
        _keep_cookies(cookies, current, response)
        response.close()
        try:
            target = urljoin(current, response.headers.get("location", ""))
        except ValueError:  # e.g. "http://[::1/x": not a URL
            raise FetchError(f"redirect to an invalid URL: {response.headers.get('location', '')[:200]!r}") from None
        if urlsplit(target).scheme not in ("http", "https"):
            raise FetchError(f"redirect to a non-http(s) URL refused: {target[:200]}")
        current = target
        if time.monotonic() - started > limits.deadline:
            raise past_deadline("no complete response", limits.deadline)
    else:
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")
    moved = current != url
    status = response.status
    if status == 304:
        # a 304 has no body: consuming it hands the connection back to the pool instead of
        # close() shutting it (keep-alive). Not when it claims to be chunked: a chunked 304
        # would make the read wait for chunks that never come.
        if not getattr(response, "chunked", True):
            with contextlib.suppress(Exception):
                response.read()
        response.close()
        return _result(response, written, None, moved and permanent, started, moved_for_good)
    if not 200 <= status < 300:
        retry = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
        response.close()
        raise FetchError(f"HTTP {status} {response.reason or ''}".strip(), status=status, retry_after=retry)
    body = _read_body(response, limits, started)
    return _result(response, written, body, moved and permanent, started, moved_for_good)


def _result(
    response: BaseHTTPResponse | CurlAnswer, url: str, body: bytes | None, permanent: bool, started: float,
    moved_to: str,
) -> FetchResult:
    return FetchResult(
        status=response.status,
        body=body,
        headers={k.lower(): v for k, v in response.headers.itermerged()},  # repeated headers joined, as requests does
        url=url,
        permanent_redirect=permanent,
        moved_to=moved_to,
        elapsed_ms=int((time.monotonic() - started) * 1000),
    )
