"""Network addresses: who the client is (behind trusted proxies only) and who is exempt from limits."""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=64)
def networks(spec: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR networks ("10.0.0.0/8, 127.0.0.1") as networks."""
    out: list[Network] = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def address(raw: str) -> Address | None:
    try:
        return ipaddress.ip_address(raw.strip().split("%", 1)[0])
    except ValueError:
        return None


def within(raw: str, spec: str) -> bool:
    """Whether the address `raw` is inside one of the networks of `spec`."""
    ip = address(raw)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks(spec))


def client_ip(scope: Any, trusted_proxies: str) -> str:
    """The client's address. X-Forwarded-For is believed only when the peer is a trusted proxy, and
    then only as far as the chain stays inside trusted proxies: the right-most untrusted hop is the
    client (anything to its left was written by the client itself and proves nothing)."""
    peer = scope.get("client")
    ip = str(peer[0]) if peer else ""
    if not trusted_proxies or not within(ip, trusted_proxies):
        return ip
    forwarded = ""
    for key, value in scope.get("headers", []):
        if key == b"x-forwarded-for":
            forwarded = value.decode("latin-1")
            break
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if address(hop) is None:
            return ip  # a malformed chain: keep the proxy's own address
        if not within(hop, trusted_proxies):
            return hop
        ip = hop
    return ip


def exempt(ip: str, rate_limit_exempt: str) -> bool:
    """Whether a client address is exempt from throttling (the benchmarks' own loopback)."""
    return bool(rate_limit_exempt) and within(ip, rate_limit_exempt)
