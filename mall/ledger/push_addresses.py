"""Where push receivers may be: public addresses, or hosts the platform lists (government intranets).

A receiver URL is checked when it is registered (the host resolved, every address checked) and again
whenever the deliverer connects: the deliverer's network backend resolves the name itself, checks
every address and connects to a checked address, so a name that resolves elsewhere by then (DNS
rebinding) cannot lead it to the mall's own machine, the cloud's metadata service or an intranet.
TLS still verifies the certificate for the name, and the Host header stays the name.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from mall.core.errors import InvalidInput
from mall.core.netaddr import Address, Network

_ip = ipaddress.ip_address

# AWS (IPv4 and IPv6), Alibaba Cloud. The IPv4 ones are inside refused ranges anyway; named so the
# message says what they are.
METADATA = frozenset({_ip("169.254.169.254"), _ip("fd00:ec2::254"), _ip("100.100.100.200")})

# Refused ranges, with what a person is told. Whatever else IANA marks as not globally reachable
# is refused too (see `refusal`).
REFUSED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "未指定地址"),
        ("10.0.0.0/8", "内网地址"),
        ("100.64.0.0/10", "运营商级 NAT（CGNAT）地址"),
        ("127.0.0.0/8", "本机回环地址"),
        ("169.254.0.0/16", "链路本地地址"),
        ("172.16.0.0/12", "内网地址"),
        ("192.0.0.0/24", "保留地址"),
        ("192.0.2.0/24", "文档示例地址"),
        ("192.88.99.0/24", "保留地址"),
        ("192.168.0.0/16", "内网地址"),
        ("198.18.0.0/15", "保留地址"),
        ("198.51.100.0/24", "文档示例地址"),
        ("203.0.113.0/24", "文档示例地址"),
        ("224.0.0.0/4", "组播地址"),
        ("240.0.0.0/4", "保留地址"),
        ("::/128", "未指定地址"),
        ("::1/128", "本机回环地址"),
        ("::/8", "保留地址"),  # IPv4-compatible and other reserved forms (mapped ones are unwrapped first)
        ("64:ff9b:1::/48", "内网地址"),  # local-use NAT64
        ("100::/64", "保留地址"),
        ("2001::/23", "保留地址"),  # Teredo and other protocol assignments
        ("2001:db8::/32", "文档示例地址"),
        ("3fff::/20", "文档示例地址"),
        ("fc00::/7", "内网地址"),
        ("fe80::/10", "链路本地地址"),
        ("fec0::/10", "内网地址"),
        ("ff00::/8", "组播地址"),
    )
)

NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Hosts made only of numbers (decimal, octal, hex) and dots: resolvers read "2130706433", "0x7f000001",
# "0177.0.0.1" and "127.1" as 127.0.0.1. Only the plain dotted-decimal form is accepted.
_NUMERIC_HOST = re.compile(r"\A(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?\Z", re.IGNORECASE)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), whose check it takes."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal(ip: Address) -> str | None:
    """Why a receiver may not be at this address (in Chinese), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return refusal(inner)
    if ip in METADATA:
        return "云服务元数据地址"
    for net, label in REFUSED:
        if ip.version == net.version and ip in net:
            return label
    if not ip.is_global or ip.is_multicast:
        return "保留地址"
    return None


def host_key(host: str) -> str:
    """A host name as compared with the list: lower case, no trailing dot, no brackets, ASCII."""
    key = host.strip().strip("[]").rstrip(".").lower()
    try:
        return key.encode("idna").decode("ascii")
    except UnicodeError:
        return key


@dataclass(frozen=True)
class Allowance:
    names: frozenset[str]
    networks: tuple[Network, ...]

    def covers(self, ip: Address) -> bool:
        candidates: list[Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c.version == n.version and c in n for c in candidates for n in self.networks)


@functools.lru_cache(maxsize=16)
def allowance(spec: str) -> Allowance:
    """`push_allowed_hosts`: comma-separated host names, IP addresses or CIDR networks."""
    names: set[str] = set()
    networks: list[Network] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip("[]"), strict=False))
        except ValueError:
            names.add(host_key(part))
    return Allowance(frozenset(names), tuple(networks))


def forbidden(host: str, addresses: Iterable[Address], allowed: str) -> str | None:
    """Why connecting to `host` at these addresses is refused, or None. A listed name is allowed
    whatever it resolves to; otherwise every address must be public or inside a listed network."""
    allow = allowance(allowed)
    if host_key(host) in allow.names:
        return None
    for ip in addresses:
        reason = refusal(ip)
        if reason is not None and not allow.covers(ip):
            return reason
    return None


async def resolve(host: str, port: int, within_seconds: float | None = None) -> list[Address]:
    """Every address the host resolves to, in the resolver's order (off the event loop)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(within_seconds):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[Address] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return out


def _url_refused(detail: str, code: str = "push_url_forbidden") -> InvalidInput:
    return InvalidInput(detail, code=code, field="url")


async def check_url(url: str, allowed: str, within_seconds: float) -> None:
    """Refuse (400, field `url`) a receiver URL whose host does not resolve, or resolves to any
    refused address, unless the host is listed. `url` has passed the syntax checks already."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if "%" in host:  # an IPv6 zone ("fe80::1%eth0"): only link-local addresses have one
        raise _url_refused("接收地址不能是带区域标识（%）的本地链路地址")
    if _NUMERIC_HOST.match(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _url_refused(
                "接收地址的主机应为域名或标准写法的 IP 地址（如 203.0.113.5），不接受整数、八进制或十六进制写法"
            ) from None
    if host_key(host) in allowance(allowed).names:
        return
    try:
        addresses = await resolve(host, port, within_seconds)
    except (OSError, TimeoutError, UnicodeError, ValueError):
        raise _url_refused(
            f"接收地址的主机名无法解析：{host}，请检查拼写", code="push_host_unresolvable"
        ) from None
    reason = forbidden(host, addresses, allowed)
    if reason is not None:
        raise _url_refused(
            f"接收地址指向{reason}，不能接收推送（内网、本机、云服务元数据等地址均不允许）。"
            "如接收方在政务内网，请联系平台管理员将其主机加入推送允许列表"
        )


# ---------------------------------------------------------------- at each connection


class AddressForbidden(httpcore.ConnectError):
    """The receiver's host resolved to a refused address: no connection was made."""


class HostUnresolvable(httpcore.ConnectError):
    """The receiver's host did not resolve."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks every address, then connects to a checked address itself."""

    def __init__(self, allowed: str) -> None:
        self.allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve(host, port, timeout)
        except (OSError, TimeoutError, UnicodeError, ValueError) as exc:
            raise HostUnresolvable("dns_failed") from exc
        if forbidden(host, addresses, self.allowed) is not None:
            raise AddressForbidden("address_forbidden")
        error: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None  # resolve() returns at least one address
        raise error

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on the guarded backend (httpx takes no backend)."""

    def __init__(self, allowed: str, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=10,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allowed),
        )
