"""Who is really at the other end: client addresses and schemes behind trusted proxies.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are set by reverse proxies, and by anyone
else who wants to. They are believed only when the direct peer is a configured trusted
proxy, and then the client is the right-most address that is not itself a trusted proxy
(a client can prepend whatever it likes; it cannot remove what the proxy appended).
Without trusted proxies these headers are ignored, and first-run setup, which must come
from this machine, refuses requests that carry them: a proxy on localhost would otherwise
make every remote client look local.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDING_HEADERS = (
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-host",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
)


def parse_networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(i, strict=False) for i in items)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    t = text.strip()
    if t.startswith("[") and "]" in t:  # [v6]:port
        t = t[1 : t.index("]")]
    try:
        addr = ipaddress.ip_address(t)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_trusted(host: str, proxies: Sequence[IPNetwork]) -> bool:
    addr = _ip(host)
    return addr is not None and any(addr in net for net in proxies)


def is_loopback(host: str) -> bool:
    addr = _ip(host)
    return addr is not None and addr.is_loopback


def peer_host(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client is not None else ""


def client_ip(conn: HTTPConnection, proxies: Sequence[IPNetwork]) -> str:
    """The client's address: the peer, or (behind a trusted proxy) the right-most
    forwarded address that is not a trusted proxy."""
    peer = peer_host(conn)
    if not proxies or not is_trusted(peer, proxies):
        return peer
    header = conn.headers.get("x-forwarded-for")
    if not header:
        return peer
    current = peer
    for hop in reversed([h.strip() for h in header.split(",") if h.strip()]):
        addr = _ip(hop)
        if addr is None:
            return current  # garbage from further out: the last trusted hop is all we know
        if not is_trusted(str(addr), proxies):
            return str(addr)
        current = str(addr)
    return current


def client_scheme(conn: HTTPConnection, proxies: Sequence[IPNetwork]) -> str:
    """``https`` or ``http`` as the client sees it (``X-Forwarded-Proto`` from a trusted
    proxy that terminates TLS)."""
    if proxies and is_trusted(peer_host(conn), proxies):
        proto = conn.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    scheme = conn.url.scheme
    return "https" if scheme in ("https", "wss") else "http"


def client_host(conn: HTTPConnection, proxies: Sequence[IPNetwork]) -> str:
    """The host (and port) the client addressed, for same-origin checks."""
    if proxies and is_trusted(peer_host(conn), proxies):
        fwd = conn.headers.get("x-forwarded-host", "").split(",")[0].strip()
        if fwd:
            return fwd.lower()
    return conn.headers.get("host", "").lower()


def is_local_request(conn: HTTPConnection, proxies: Sequence[IPNetwork]) -> bool:
    """True only for requests from this machine: the (proxy-resolved) client address is a
    loopback address, and no forwarding header came from an untrusted peer."""
    peer = peer_host(conn)
    if proxies and is_trusted(peer, proxies):
        return is_loopback(client_ip(conn, proxies))
    if any(h in conn.headers for h in FORWARDING_HEADERS):
        return False
    return is_loopback(peer)
