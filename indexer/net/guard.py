"""SSRF guard: a crawled URL must not reach into the machine or its private network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from indexer.net.errors import FetchError, RefusedAddress


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False  # 10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10 …
    allow_loopback: bool = False  # 127/8, ::1

    def check(self, address: str) -> None:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            if not self.allow_loopback:
                raise RefusedAddress(f"{ip} is a loopback address")
            return
        if ip.is_link_local:
            raise RefusedAddress(f"{ip} is a link-local address")
        if ip.is_multicast:
            raise RefusedAddress(f"{ip} is a multicast address")
        if ip.is_unspecified or ip.is_reserved:
            raise RefusedAddress(f"{ip} is a reserved address")
        if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
            if not self.allow_private:
                raise RefusedAddress(f"{ip} is a private address")
            return
        if not ip.is_global:
            raise RefusedAddress(f"{ip} is not a public address")


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Resolve the URL's host and refuse it if any address it resolves to is off limits.

    Every address is checked, so a name that resolves to one public and one private
    address is refused. (A DNS answer that changes between this check and the connect is
    not caught; run the crawler behind an egress firewall where that matters.)
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedAddress(f"scheme {parts.scheme or '(none)'!r} is not http or https", url=url)
    host = parts.hostname
    if not host:
        raise RefusedAddress("URL has no host", url=url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc.strerror}", url=url) from exc
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        try:
            policy.check(address)
        except RefusedAddress as exc:
            raise RefusedAddress(f"{host} resolves to {exc.detail}", url=url) from None
