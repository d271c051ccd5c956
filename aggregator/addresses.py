"""Which network addresses an article fetch may connect to.

With `full_text`, the links in a feed's entries are fetched and what comes back is republished. The
entries are written by whoever runs the feed's site, so an entry linking to
http://169.254.169.254/latest/meta-data/ (a cloud's metadata service), http://127.0.0.1:8080/ or
http://0.0.0.0:6379/ would have us fetch a page from inside our own network and publish it on the
site (server-side request forgery). So an article may be fetched from a public address, or from an
address of the same kind as its feed's own (an intranet feed's articles live on the intranet), and
from nothing else unless its source says `full_text_any_address: true`.

The check is made on the addresses the connection is about to use: after DNS, once per connection,
on every redirect hop, and the socket connects to the very address that was checked (no second
lookup, so a name that resolves elsewhere the second time, DNS rebinding, gains nothing). No packet
goes to a refused address. Through an HTTP proxy the proxy makes the connection and the check is
not made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterator

from urllib3.exceptions import NewConnectionError

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


def address_kind(address: str) -> str:
    """public, loopback, link-local, private or reserved (unspecified, multicast, documentation,
    shared address space and the like). An IPv4 address mapped into IPv6 counts as itself."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_link_local:
        return LINK_LOCAL
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return RESERVED
    if ip.is_global:
        return PUBLIC
    return PRIVATE if ip.is_private else RESERVED


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


def host_kinds(host: str) -> frozenset[str]:
    """The kinds of address `host` resolves to; none if it does not resolve (then only public
    addresses are allowed beside it)."""
    try:
        return frozenset(address_kind(address) for address in resolve(host, 0))
    except (OSError, ValueError, UnicodeError):
        return frozenset()


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
