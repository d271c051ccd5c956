"""What went wrong with a GET, in one short line: requests' and urllib3's exceptions nest deeply
(requests -> urllib3's MaxRetryError -> the socket's error, or our AddressRefused), and a source's
error is shown in `status`, the daemon's log and /healthz."""

from __future__ import annotations

from collections.abc import Iterator

import requests
import urllib3

from .addresses import AddressRefused
from .errors import FetchError

#: what a GET may raise below us: requests' errors (the URL, a proxy), urllib3's (the connection, the
#: answer), the operating system's (a CA bundle gone since start) and the standard library's (a URL
#: urlsplit cannot take, such as "http://[fe80::1%25%5D]/")
TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: requests -> urllib3 (MaxRetryError.reason) -> socket or ours."""
    seen: BaseException | None = exc
    for _ in range(8):  # a short chain, and never a loop
        if seen is None:
            return
        yield seen
        reason = getattr(seen, "reason", None)
        if isinstance(reason, BaseException):
            seen = reason
        elif seen.args and isinstance(seen.args[0], BaseException):
            seen = seen.args[0]
        else:
            seen = seen.__context__


def timed_out(exc: BaseException) -> bool:
    """Whether `exc` is, or wraps, a socket read timeout."""
    timeouts = (requests.ReadTimeout, urllib3.exceptions.ReadTimeoutError, TimeoutError)
    return any(isinstance(seen, timeouts) for seen in _chain(exc))


def broken_body(exc: BaseException) -> str:
    """Why a body stopped: urllib3 says how ("Connection broken: IncompleteRead(10 bytes read, 990
    more expected)"), which a reason made for a failed request would reduce to "connection failed"."""
    if isinstance(exc, urllib3.exceptions.ProtocolError) and exc.args:
        return str(exc.args[0]).splitlines()[0][:200]
    return reason(exc)


def _connect_timed_out(exc: BaseException) -> bool:
    """Whether `exc` is a connect timeout (urllib3 files a refused connection under the same class)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError)


def declared_over_cap(declared: str, encoded: bool, cap: int) -> FetchError | None:
    """The error for a body whose Content-Length is over `cap` before a byte of it is read (not when
    it is compressed: the cap is on the decompressed bytes), else None."""
    if declared.isdigit() and int(declared) > cap and not encoded:
        return FetchError(f"body of {int(declared):,} bytes is over the {cap:,}-byte cap")
    return None


def past_deadline(what: str, seconds: float) -> FetchError:
    """`what` did not come within the fetch's total deadline of `seconds`."""
    return FetchError(f"{what} within the {seconds:g} s deadline")


def reason(exc: BaseException) -> str:
    """A short, one-line reason for a requests or urllib3 exception (they nest deeply)."""
    refused = next((seen for seen in _chain(exc) if isinstance(seen, AddressRefused)), None)
    if refused is not None:
        return refused.reason_text
    if _connect_timed_out(exc):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return "read timed out"
    if isinstance(exc, requests.ConnectionError | urllib3.exceptions.MaxRetryError | urllib3.exceptions.ProtocolError
                  | urllib3.exceptions.SSLError | urllib3.exceptions.ClosedPoolError | ConnectionError):
        text = str(exc)
        for marker in ("Connection refused", "Name or service not known", "nodename nor servname",
                       "Temporary failure in name resolution", "No route to host", "Network is unreachable"):
            if marker in text:
                return marker.lower()
        return "connection failed"
    if isinstance(exc, requests.TooManyRedirects):
        return "too many redirects"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
