"""Which network addresses an article fetch may connect to.

With `full_text`, the links in a feed's entries are fetched and what comes back is republished. The
entries are written by whoever runs the feed's site, so an entry linking to
http://169.254.169.254/latest/meta-data/ (a cloud's metadata service), http://127.0.0.1:8080/ or
http://0.0.0.0:6379/ would have us fetch a page from inside our own network and publish it on the
site (server-side request forgery). So an article may be fetched from a public address and, when
the source's feed URL is itself an IP address (http://10.0.0.5/rss, http://127.0.0.1:8080/feed),
from addresses of that same kind; from nothing else unless the source says
`full_text_any_address: true`. A feed URL with a host name gives nothing more: the name's DNS
belongs to the feed's site, which could point it anywhere to unlock our own network.

The check is made on the addresses the connection is about to use: after DNS, once per connection,
on every redirect hop, and the socket connects to the very address that was checked (no second
lookup, so a name that resolves elsewhere the second time, DNS rebinding, gains nothing). No packet
goes to a refused address. Through a proxy (HTTP or SOCKS) the proxy makes the connection and the
check is not made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator

from urllib3.connection import HTTPConnection
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import create_connection

#: what `address_kind` calls an address
PUBLIC, LOOPBACK, LINK_LOCAL, PRIVATE, RESERVED = "public", "loopback", "link-local", "private", "reserved"
_ARTICLE = {
    LOOPBACK: "a loopback address", LINK_LOCAL: "a link-local address", PRIVATE: "a private address",
    RESERVED: "a reserved address",
}

_policy = threading.local()


class AddressRefused(NewConnectionError):
    """A connection to an address its fetch may not reach (urllib3 wraps it like any failed
    connection; `fetch` finds it in the chain and reports its message)."""

    def __init__(self, conn: object, host: str, address: str, kind: str) -> None:
        self.host, self.address, self.kind = host, address, kind
        what = address if host.strip("[]") == address else f"{host} ({address})"
        self.reason_text = f"{what} is {_ARTICLE[kind]}: not fetched (full_text_any_address: true allows it)"
        super().__init__(conn, self.reason_text)  # type: ignore[arg-type]  # urllib3 only formats it

    def __reduce__(self) -> tuple[type[AddressRefused], tuple[None, str, str, str]]:  # type: ignore[override]
        return self.__class__, (None, self.host, self.address, self.kind)


_THIS_HOST = ipaddress.ip_network("0.0.0.0/8")  # 0.0.0.0 reaches this very machine on Linux
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, Tailscale: somebody's private network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _carried_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: mapped, NAT64, 6to4 or (deprecated) IPv4-compatible."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: nor ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_kind(address: str) -> str:
    """loopback (this machine, 0.0.0.0 and :: included), link-local, private (RFC 1918, unique
    local, site-local, shared address space), reserved (multicast, broadcast, future use) or
    public. An IPv6 address that carries an IPv4 one counts as that one."""
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _carried_ipv4(ip) or ip
    if ip.is_loopback or ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_HOST):
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if ip.is_multicast or ip.is_reserved:
        return RESERVED
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return PRIVATE
    if ip.is_global:
        return PUBLIC
    return PRIVATE if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED) else RESERVED


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order (an address literal: itself).
    Raises socket.gaierror like any lookup."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))]
    except ValueError:
        pass
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if sockaddr[0] not in seen:
            seen.append(str(sockaddr[0]))
    return seen


def feed_kinds(host: str) -> frozenset[str]:
    """What a feed's host lets its articles reach beside public addresses: the kind of an IP
    address (not reserved), nothing for a name (its DNS is not ours: see the module's docstring)."""
    try:
        kind = address_kind(host.strip("[]"))
    except ValueError:
        return frozenset()
    return frozenset() if kind in (PUBLIC, RESERVED) else frozenset({kind})


@contextlib.contextmanager
def reachable(kinds: frozenset[str] | None) -> Iterator[None]:
    """Within the block, this thread's connections may reach public addresses and `kinds` only
    (None: any address)."""
    outer = getattr(_policy, "kinds", None)
    _policy.kinds = kinds
    try:
        yield
    finally:
        _policy.kinds = outer


def allowed_kinds() -> frozenset[str] | None:
    """What this thread's connections may reach beside public addresses (None: anything)."""
    return getattr(_policy, "kinds", None)


def vet(conn: object, host: str, addresses: list[str], kinds: frozenset[str]) -> list[str]:
    """`addresses` if every one of them may be reached; else AddressRefused for the first that may
    not (one bad address is enough: the resolver's order is not ours to trust)."""
    for address in addresses:
        kind = address_kind(address)
        if kind != PUBLIC and kind not in kinds:
            raise AddressRefused(conn, host, address, kind)
    return addresses


def vetted_connection(conn: HTTPConnection) -> socket.socket | None:
    """The socket of a connection under the thread's address check (None: no check here, let
    urllib3 connect). Through a proxy the proxy connects, and there is nothing to check."""
    kinds = allowed_kinds()
    if kinds is None or conn.proxy is not None:
        return None
    try:
        addresses = vet(conn, conn.host, resolve(conn.host, conn.port), kinds)
    except (socket.gaierror, UnicodeError) as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc  # type: ignore[arg-type]
    failure: Exception = NewConnectionError(conn, f"{conn.host} has no address")
    for address in addresses:  # connect to what was checked: no second lookup
        try:
            return create_connection((address, conn.port), conn.timeout, source_address=conn.source_address,
                                     socket_options=conn.socket_options)
        except TimeoutError:
            failure = ConnectTimeoutError(conn, f"Connection to {conn.host} timed out")
        except OSError as exc:
            failure = NewConnectionError(conn, f"Failed to establish a new connection: {exc}")
    raise failure


def vet_reused(conn: HTTPConnection) -> None:
    """A kept-alive connection may have been opened for a feed, without the check: before it
    carries an article request, its peer must pass the thread's check too."""
    kinds = allowed_kinds()
    if kinds is None or conn.proxy is not None or conn.sock is None:
        return
    try:
        peer = str(conn.sock.getpeername()[0])
    except OSError:  # a dead socket fails on its own when used
        return
    vet(conn, conn.host, [peer], kinds)
