"""The one way the crawler talks HTTP: SSRF-checked, robots-aware, polite, bounded, retried."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from indexer.net.errors import FetchError, RefusedAddress
from indexer.net.guard import AddressPolicy, check_url
from indexer.net.politeness import Clock, HostLimiter, Sleep
from indexer.net.transport import PerHostTransport
from simmim.clock import utcnow
from simmim.settings import CrawlerSettings

log = logging.getLogger(__name__)

FEED_TYPES = (
    "application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml",
    "text/xml", "application/feed+json", "text/plain", "application/octet-stream",
)  # fmt: skip
HTML_TYPES = ("text/html", "application/xhtml+xml")
IMAGE_TYPES = ("image/",)
JSONL_TYPES = (
    "application/x-ndjson", "application/jsonl", "application/json", "text/plain",
    "application/octet-stream",
)  # fmt: skip
REDIRECTS = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
MAX_RETRY_WAIT_S = 60.0
ADDRESS_CACHE_S = 60.0


@dataclass
class Response:
    url: str  # after redirects
    status: int
    content: bytes
    content_type: str  # e.g. "text/html", "" when the server sent none
    headers: httpx.Headers = field(default_factory=httpx.Headers)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def charset(self) -> str | None:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip('"')
        return None


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Fetcher:
    """Async HTTP for one crawl run. Use as ``async with Fetcher(settings) as fetcher``."""

    def __init__(
        self,
        settings: CrawlerSettings,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_private_addresses, settings.allow_loopback)
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.limiter = HostLimiter(
            settings.per_host_concurrency, settings.per_host_interval_s, clock=clock, sleep=sleep
        )
        self.total = asyncio.Semaphore(settings.concurrency)
        self._robots: dict[str, Protego | None] = {}  # origin -> rules; None = disallow all
        self._robots_locks: dict[str, asyncio.Lock] = {}
        self._address_ok: dict[str, float] = {}  # origin -> verdict valid until (monotonic)
        self._client = httpx.AsyncClient(
            headers={"User-Agent": settings.user_agent},
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            follow_redirects=False,  # each hop is checked by hand
            transport=transport or PerHostTransport(per_host=settings.per_host_concurrency + 1),
            trust_env=False,  # a proxy from the environment would bypass the address checks
        )

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        accept: tuple[str, ...],
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        """Fetch ``url``; raises FetchError with a reason for anything unusable.

        A 304 (with ``etag``/``last_modified`` given) returns a Response whose
        ``not_modified`` is true and whose content is empty.
        """
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._follow(url, headers, accept, obey_robots=True)

    async def _follow(
        self, url: str, headers: dict[str, str], accept: tuple[str, ...], *, obey_robots: bool
    ) -> Response:
        """Redirects by hand: every hop gets the address check (and robots.txt)."""
        seen = {url}
        for _ in range(MAX_REDIRECTS + 1):
            await self._check_address(url)
            if obey_robots:
                await self._require_robots(url)
            response = await self._with_retries(url, headers, accept)
            if response.status not in REDIRECTS:
                return response
            location = response.headers.get("location")
            if not location:
                raise FetchError("bad redirect", f"{response.status} without Location", url=url)
            url = urljoin(url, location)
            if url in seen:
                raise FetchError("redirect loop", f"back to {url}", url=url)
            seen.add(url)
        raise FetchError("too many redirects", f"more than {MAX_REDIRECTS}", url=url)

    async def _check_address(self, url: str) -> None:
        """The SSRF check, with each host's verdict remembered for a minute of this run."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        now = time.monotonic()
        if self._address_ok.get(key, 0.0) > now:
            return
        await check_url(url, self.policy)
        self._address_ok[key] = now + ADDRESS_CACHE_S

    # ---- robots.txt

    async def _require_robots(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            async with self._robots_locks.setdefault(origin, asyncio.Lock()):
                if origin not in self._robots:
                    self._robots[origin] = await self._load_robots(origin)
        rules = self._robots[origin]
        if rules is None:
            raise FetchError(
                "robots.txt", f"{origin}/robots.txt could not be read: not crawling it", url=url
            )
        if not rules.can_fetch(url, self.settings.user_agent):
            raise FetchError("robots.txt", f"disallowed by {origin}/robots.txt", url=url)

    async def _load_robots(self, origin: str) -> Protego | None:
        """RFC 9309: 4xx means no rules; 5xx or unreachable means stay out for now."""
        try:  # any content type: servers label robots.txt every which way
            response = await self._follow(f"{origin}/robots.txt", {}, (), obey_robots=False)
        except FetchError as exc:
            if exc.reason.startswith("http 4"):
                return Protego.parse("")
            log.info("robots.txt of %s unavailable: %s", origin, exc)
            return None
        rules = Protego.parse(response.content.decode("utf-8", errors="replace"))
        delay = rules.crawl_delay(self.settings.user_agent)
        if delay:
            self.limiter.set_delay(urlsplit(origin).netloc, float(delay))
        return rules

    # ---- one URL, with retries

    async def _with_retries(
        self, url: str, headers: dict[str, str], accept: tuple[str, ...]
    ) -> Response:
        """``accept`` empty: any content type."""
        host = urlsplit(url).netloc
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                async with (
                    self.limiter.slot(host),
                    self.total,
                ):  # no global slot held while a host waits
                    async with asyncio.timeout(self.settings.total_timeout_s):  # no extra task
                        response = await self._once(url, headers, accept)
                if response.status < 500 and response.status != 429:
                    if response.status >= 400:
                        raise FetchError(
                            f"http {response.status}", f"{url} answered {response.status}", url=url
                        )
                    return response
                error = FetchError(
                    f"http {response.status}", f"{url} answered {response.status}", url=url
                )
                retry_after = retry_after_seconds(response.headers.get("retry-after"), utcnow())
            except (httpx.TimeoutException, TimeoutError) as exc:
                error = FetchError(
                    "timeout", f"{url}: no answer in time ({type(exc).__name__})", url=url
                )
            except httpx.RemoteProtocolError as exc:
                if str(exc).startswith("Invalid URL in location header"):
                    # e.g. an octal or hex host (0177.0.0.1 is loopback): never followed.
                    raise RefusedAddress(f"{url} redirects to {exc}", url=url) from None
                error = FetchError("truncated", f"{url}: {exc}", url=url)
            except httpx.TransportError as exc:
                error = FetchError("connection", f"{url}: {exc or type(exc).__name__}", url=url)
            if attempt == attempts - 1:
                raise error
            base = self.settings.backoff_s
            delay = (
                retry_after
                if retry_after is not None
                else base * 2**attempt + self.rng.uniform(0, base)
            )
            log.debug("retrying %s in %.2fs after %s", url, delay, error)
            await self.sleep(min(delay, MAX_RETRY_WAIT_S))
        raise AssertionError("unreachable")

    async def _once(self, url: str, headers: dict[str, str], accept: tuple[str, ...]) -> Response:
        limit = self.settings.max_bytes
        async with self._client.stream("GET", url, headers=headers) as stream:
            content_type = stream.headers.get("content-type", "").split(";")[0].strip().lower()
            if stream.status_code != 200:
                return Response(
                    str(stream.url), stream.status_code, b"", content_type, stream.headers
                )
            if accept and content_type and not content_type.startswith(accept):
                raise FetchError(
                    "content type",
                    f"{url} is {content_type}, expected {', '.join(accept)}",
                    url=url,
                )
            declared = stream.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise FetchError(
                    "too large",
                    f"{url} declares {declared} bytes, limit {limit} (SIMMIM_CRAWLER__MAX_BYTES)",
                    url=url,
                )
            body = bytearray()
            async for chunk in stream.aiter_bytes():  # decoded: the limit also bounds gzip bombs
                body += chunk
                if len(body) > limit:
                    raise FetchError(
                        "too large",
                        f"{url} sent more than {limit} bytes (SIMMIM_CRAWLER__MAX_BYTES)",
                        url=url,
                    )
            return Response(str(stream.url), 200, bytes(body), content_type, stream.headers)
