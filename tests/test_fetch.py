"""The fetcher's policies: politeness, retries, caps, timeouts, SSRF, redirects."""

from __future__ import annotations

import asyncio
import ipaddress
import random
from datetime import UTC, datetime

import httpx
import pytest

from indexer.net.errors import FetchError, RefusedAddress
from indexer.net.fetcher import HTML_TYPES, IMAGE_TYPES, Fetcher, retry_after_seconds
from indexer.net.guard import AddressPolicy, embedded_ipv4
from indexer.net.politeness import HostLimiter
from indexer.urls import canonical_url
from simmim.settings import CrawlerSettings
from tests.http_server import LocalServer, Reply

TEXT = {"Content-Type": "text/html"}


def settings(**overrides: object) -> CrawlerSettings:
    base: dict[str, object] = {
        "allow_loopback": True, "per_host_interval_s": 0, "backoff_s": 0.01, "retries": 2,
        "read_timeout_s": 0.5, "connect_timeout_s": 1, "total_timeout_s": 5,
    }  # fmt: skip
    return CrawlerSettings(**{**base, **overrides})  # type: ignore[arg-type]


class FakeTime:
    """A clock that only moves when someone sleeps: schedules become exact."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


def fetch(
    url: str,
    config: CrawlerSettings | None = None,
    accept: tuple[str, ...] = HTML_TYPES,
    **kwargs: object,
) -> object:
    async def go() -> object:
        async with Fetcher(config or settings(), **kwargs) as fetcher:  # type: ignore[arg-type]
            return await fetcher.get(url, accept=accept)

    return asyncio.run(go())


def fetch_error(url: str, config: CrawlerSettings | None = None, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, config, **kwargs)
    return info.value


# ---- politeness


def test_host_limiter_spaces_requests_per_host_with_an_injected_clock() -> None:
    fake = FakeTime()
    limiter = HostLimiter(concurrency=5, interval=1.0, clock=fake.clock, sleep=fake.sleep)
    starts: dict[str, list[float]] = {"a": [], "b": []}

    async def hit(host: str) -> None:
        async with limiter.slot(host):
            starts[host].append(fake.now)

    async def main() -> None:
        await asyncio.gather(*(hit(h) for h in ["a", "a", "a", "b"]))

    asyncio.run(main())
    assert starts["a"] == [0.0, 1.0, 2.0]  # one second apart
    assert starts["b"][0] <= 2.0  # another host does not queue behind "a"'s schedule
    limiter.set_delay("a", 5.0)  # robots.txt Crawl-delay raises it
    fake.sleeps.clear()
    asyncio.run(hit("a"))
    asyncio.run(hit("a"))
    assert fake.sleeps[-1] == pytest.approx(5.0)


def test_per_host_concurrency_is_capped(http_server: LocalServer) -> None:
    http_server.routes["/slow"] = Reply(200, b"ok", TEXT, delay=0.15)

    async def go() -> None:
        async with Fetcher(settings(per_host_concurrency=2)) as fetcher:
            await asyncio.gather(
                *(fetcher.get(http_server.url("/slow"), accept=HTML_TYPES) for _ in range(6))
            )

    asyncio.run(go())
    assert http_server.count("/slow") == 6
    assert http_server.max_in_flight == 2


def test_connections_are_pooled_per_host_and_reused(http_server: LocalServer) -> None:
    """One small pool per origin (httpcore scans a whole pool on every request), and a
    host's connections are kept for its next requests."""
    from indexer.net.transport import PerHostTransport

    http_server.routes["/page"] = Reply(200, b"ok", TEXT)
    transport = PerHostTransport(per_host=3)
    other = http_server.url("/page").replace("127.0.0.1", "localhost")

    async def go() -> None:
        async with Fetcher(settings(), transport=transport) as fetcher:
            for _ in range(5):
                await fetcher.get(http_server.url("/page"), accept=HTML_TYPES)
            await fetcher.get(other, accept=HTML_TYPES)
            assert len(transport._pools) == 2  # 127.0.0.1 and localhost: two origins
            for pool in transport._pools.values():
                assert len(pool._pool.connections) == 1  # one kept-alive connection each
        assert transport._pools == {}  # closed with the fetcher

    asyncio.run(go())
    assert http_server.count("/page") == 6


def test_crawl_delay_from_robots_is_honoured(http_server: LocalServer) -> None:
    http_server.routes["/robots.txt"] = Reply(
        200, b"User-agent: *\nCrawl-delay: 3\n", {"Content-Type": "text/plain"}
    )
    http_server.routes["/p"] = Reply(200, b"ok", TEXT)
    fake = FakeTime()

    async def go() -> None:
        async with Fetcher(settings(), clock=fake.clock, sleep=fake.sleep) as fetcher:
            for _ in range(3):
                await fetcher.get(http_server.url("/p"), accept=HTML_TYPES)

    asyncio.run(go())
    assert [s for s in fake.sleeps if s > 0] == [3.0, 3.0]


# ---- retries


def test_retries_then_success(http_server: LocalServer) -> None:
    http_server.routes["/flaky"] = [Reply(503), Reply(502), Reply(200, b"finally", TEXT)]
    response = fetch(http_server.url("/flaky"))
    assert response.content == b"finally"  # type: ignore[attr-defined]
    assert http_server.count("/flaky") == 3


def test_retry_after_is_honoured_and_backoff_grows(http_server: LocalServer) -> None:
    http_server.routes["/busy"] = [
        Reply(429, headers={"Retry-After": "7"}),
        Reply(500),
        Reply(200, b"ok", TEXT),
    ]
    fake = FakeTime()
    fetch(
        http_server.url("/busy"),
        settings(backoff_s=1.0),
        clock=fake.clock,
        sleep=fake.sleep,
        rng=random.Random(0),
    )
    assert fake.sleeps[0] == 7.0  # the server's word
    assert 2.0 <= fake.sleeps[1] <= 3.0  # backoff 1 * 2**1 plus jitter below 1


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon", now) is None


def test_retries_exhausted(http_server: LocalServer) -> None:
    http_server.routes["/down"] = Reply(500, b"")
    error = fetch_error(http_server.url("/down"))
    assert error.reason == "http 500"
    assert http_server.count("/down") == 3  # 1 + 2 retries


def test_client_errors_are_not_retried(http_server: LocalServer) -> None:
    assert fetch_error(http_server.url("/missing")).reason == "http 404"
    assert http_server.count("/missing") == 1


# ---- caps and timeouts


def test_size_cap_declared_and_streamed(http_server: LocalServer) -> None:
    http_server.routes["/big"] = Reply(200, b"x" * 5000, TEXT)
    http_server.routes["/chunked"] = Reply(
        200, b"y" * 50_000, {**TEXT, "Transfer-Encoding": "chunked"}
    )
    assert fetch_error(http_server.url("/big"), settings(max_bytes=1000)).reason == "too large"
    error = fetch_error(http_server.url("/chunked"), settings(max_bytes=10_000))
    assert error.reason == "too large" and "sent more than" in error.detail


def test_read_timeout(http_server: LocalServer) -> None:
    http_server.routes["/slow"] = Reply(200, b"late", TEXT, delay=1.5)
    error = fetch_error(http_server.url("/slow"), settings(retries=0, read_timeout_s=0.3))
    assert error.reason == "timeout"


def test_truncated_body(http_server: LocalServer) -> None:
    http_server.routes["/cut"] = Reply(200, b"partial", TEXT, truncate=True)
    assert fetch_error(http_server.url("/cut"), settings(retries=1)).reason == "truncated"


def test_content_type_is_checked(http_server: LocalServer) -> None:
    http_server.routes["/page"] = Reply(200, b"<html>", TEXT)
    assert fetch(http_server.url("/page")).content == b"<html>"  # type: ignore[attr-defined]
    with pytest.raises(FetchError) as info:
        fetch(http_server.url("/page"), accept=IMAGE_TYPES)  # ... not as an image
    assert info.value.reason == "content type"


# ---- redirects and SSRF


def test_redirects_followed_and_loops_refused(http_server: LocalServer) -> None:
    s = http_server
    s.routes.update(
        {
            "/old": Reply(301, headers={"Location": "/new"}),
            "/new": Reply(200, b"moved", TEXT),
            "/loop1": Reply(302, headers={"Location": "/loop2"}),
            "/loop2": Reply(302, headers={"Location": "/loop1"}),
        }
    )
    response = fetch(s.url("/old"))
    assert response.content == b"moved" and response.url == s.url("/new")  # type: ignore[attr-defined]
    assert fetch_error(s.url("/loop1")).reason == "redirect loop"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"),
        ("100.64.0.1", "private"), ("fc00::1", "private"), ("127.0.0.1", "loopback"),
        ("::1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"), ("0.0.0.0", "reserved"), ("240.0.0.1", "reserved"),
        ("::ffff:10.0.0.1", "private"), ("fec0::1", "reserved"), ("192.0.0.8", "reserved"),
        ("192.0.0.255", "reserved"),
    ],
)  # fmt: skip
def test_address_policy_refuses(address: str, why: str) -> None:
    with pytest.raises(RefusedAddress, match=why):
        AddressPolicy().check(address)


@pytest.mark.parametrize(
    ("address", "inner", "why"),
    [
        ("2002:a9fe:a9fe::1", "169.254.169.254", "link-local"),  # 6to4
        ("2002:7f00:1::", "127.0.0.1", "loopback"),
        ("2002:c0a8:101::1", "192.168.1.1", "private"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254", "link-local"),  # NAT64, well-known prefix
        ("64:ff9b::7f00:1", "127.0.0.1", "loopback"),
        ("64:ff9b:1:a9fe:a9:fe00::", "169.254.169.254", "link-local"),  # NAT64, local /48
        ("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254", "link-local"),  # Teredo
        ("::a9fe:a9fe", "169.254.169.254", "link-local"),  # IPv4-compatible
        ("::7f00:1", "127.0.0.1", "loopback"),
        ("::ffff:a9fe:a9fe", "169.254.169.254", "link-local"),  # IPv4-mapped
        ("2001:db8::5efe:a9fe:a9fe", "169.254.169.254", "link-local"),  # ISATAP
        ("2606:4700::200:5efe:a00:1", "10.0.0.1", "private"),  # ISATAP, global prefix
    ],
)  # fmt: skip
def test_embedded_ipv4_is_checked_too(address: str, inner: str, why: str) -> None:
    assert ipaddress.ip_address(inner) in embedded_ipv4(ipaddress.IPv6Address(address))
    with pytest.raises(RefusedAddress, match=why):
        AddressPolicy().check(address)


def test_embedded_public_ipv4_behind_a_public_prefix_passes() -> None:
    AddressPolicy().check("2002:0808:0808::1")  # 6to4 of 8.8.8.8
    AddressPolicy().check("2606:4700::5efe:808:808")  # ISATAP-shaped, 8.8.8.8 inside


def test_address_policy_allows_public_and_what_settings_permit() -> None:
    AddressPolicy().check("93.184.216.34")
    AddressPolicy().check("2606:2800:220:1:248:1893:25c8:1946")
    AddressPolicy(allow_loopback=True).check("127.0.0.1")
    AddressPolicy(allow_private=True).check("192.168.1.1")
    with pytest.raises(RefusedAddress):
        AddressPolicy(allow_loopback=True).check("10.0.0.1")


def test_redirect_into_the_private_network_is_refused() -> None:
    """A public page that redirects to loopback or a metadata address is stopped at the hop."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if request.url.path == "/robots.txt":
            return httpx.Response(404)
        target = {
            "/to-loopback": "http://127.0.0.1:9/admin",
            "/to-metadata": "http://169.254.169.254/latest",
            "/to-octal": "http://0177.0.0.1:9/admin",
        }
        return httpx.Response(302, headers={"Location": target[request.url.path]})

    transport = httpx.MockTransport(handler)
    for path, why in (
        ("/to-loopback", "loopback"),
        ("/to-metadata", "link-local"),
        ("/to-octal", "Invalid IPv4 address"),
    ):
        error = fetch_error(
            f"http://93.184.216.34{path}", settings(allow_loopback=False), transport=transport
        )
        assert isinstance(error, RefusedAddress) and why in error.detail
    assert not any("127.0.0.1" in url or "169.254" in url for url in asked)


def test_non_http_schemes_are_refused() -> None:
    assert isinstance(fetch_error("file:///etc/passwd"), RefusedAddress)


def test_canonical_url() -> None:
    assert (
        canonical_url("HTTP://Example.COM:80/a?utm_source=x&b=2&a=1#frag")
        == "http://example.com/a?a=1&b=2"
    )
    assert canonical_url("https://example.com:8443/?fbclid=1") == "https://example.com:8443/"
