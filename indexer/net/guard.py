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
        if isinstance(ip, ipaddress.IPv6Address):
            # An IPv6 address that carries an IPv4 one reaches that IPv4 host through a
            # relay or translator: judge the inner address as well as the outer one.
            for inner in embedded_ipv4(ip):
                try:
                    self._check_one(inner)
                except RefusedAddress as exc:
                    raise RefusedAddress(f"{ip} embeds {exc.detail}") from None
            if ip.ipv4_mapped is not None:
                return  # judged as IPv4 above; the outer form is not a network of its own
        self._check_one(ip)

    def _check_one(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        if ip.is_loopback:
            if not self.allow_loopback:
                raise RefusedAddress(f"{ip} is a loopback address")
            return
        if ip.is_link_local:
            raise RefusedAddress(f"{ip} is a link-local address")
        if ip.is_multicast:
            raise RefusedAddress(f"{ip} is a multicast address")
        if ip.is_unspecified or ip.is_reserved or any(ip in net for net in _SPECIAL):
            raise RefusedAddress(f"{ip} is a reserved address")
        if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
            if not self.allow_private:
                raise RefusedAddress(f"{ip} is a private address")
            return
        if not ip.is_global:
            raise RefusedAddress(f"{ip} is not a public address")


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
# Ranges some Python versions call neither private nor reserved: IPv6 site-local (RFC 3879,
# deprecated, still routed inside some networks) and IETF protocol assignments (RFC 6890).
_SPECIAL = (ipaddress.ip_network("fec0::/10"), ipaddress.ip_network("192.0.0.0/24"))
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, local-use translators
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible form


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, 6to4, Teredo (server
    and client), NAT64 (well-known and local-use prefixes) and ISATAP."""
    value = int(ip)
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _COMPATIBLE and value > 1:  # not :: or ::1, which are judged as they are
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if ip in _NAT64_LOCAL:  # a /48 prefix: bits 48-63 and 72-87 (RFC 6052 section 2.2)
        high = (value >> 64) & 0xFFFF
        low = (value >> 40) & 0xFFFF
        found.append(ipaddress.IPv4Address((high << 16) | low))
    if (value >> 32) & 0xFDFFFFFF == 0x00005EFE:  # ISATAP interface id (::0:5efe / ::200:5efe)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    return found


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
