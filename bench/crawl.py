"""Crawl throughput: our crawler against a sequential fetch loop, same pages, same process.

A local server on several loopback addresses (each a "host" for politeness) answers every
request after a simulated latency, serving N article pages, each with a lead image. Our
side is the real `crawl()` (robots.txt, SSRF checks, per-host limits, extraction, image
validation, dedup, database writes); the baseline fetches each page and its image in turn.

Usage: python bench/crawl.py [-n 240] [--hosts 16] [--latency-ms 20]
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import re
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.crawl import crawl
from simmim import migrations
from simmim.db import make_engine, session_factory, session_scope
from simmim.models import Source, SourceKind
from simmim.settings import Settings

PARAGRAPH = (
    "Shares of the company rose in early trading after quarterly revenue beat analyst "
    "estimates and management raised its full-year guidance, citing strong demand. "
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def make_image(seed: int) -> bytes:
    image = Image.new("RGB", (320, 240), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def serve(
    hosts: int, latency: float, ports: multiprocessing.Queue, stop: multiprocessing.Event
) -> None:  # type: ignore[type-arg]
    """Runs in its own process, so serving costs none of the crawler's CPU or GIL."""
    images: dict[int, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every response

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(latency)
            status, ctype = 200, "text/html; charset=utf-8"
            if self.path == "/robots.txt":
                body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
            elif match := re.fullmatch(r"/article/(\d+)", self.path):
                i = int(match.group(1))
                body = (
                    f"<html><head><title>Story {i}</title><meta property='og:image' content='/img/{i}.jpg'>"
                    f"</head><body><article><h1>Company {i} beats estimates</h1><p>{PARAGRAPH * 8}</p>"
                    f"<p>Story number {i}.</p></article></body></html>"
                ).encode()
            elif match := re.fullmatch(r"/img/(\d+)\.jpg", self.path):
                i = int(match.group(1))
                body, ctype = images.setdefault(i, make_image(i)), "image/jpeg"
            else:
                status, body, ctype = 404, b"not found", "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = []
    for h in range(hosts):
        server = ThreadingHTTPServer((f"127.0.0.{h + 1}", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        ports.put(f"http://127.0.0.{h + 1}:{server.server_address[1]}")
    stop.wait()
    for server in servers:  # a ThreadingHTTPServer stops with shutdown(), not join()
        server.shutdown()
        server.server_close()


def baseline(urls: list[str]) -> float:
    """What a user would write first: one page, then its image, then the next page."""
    start = time.perf_counter()
    with httpx.Client(timeout=10) as client:
        for url in urls:
            page = client.get(url)
            found = re.search(r"og:image' content='([^']+)'", page.text)
            if found:
                client.get(httpx.URL(url).join(found.group(1)))
    return len(urls) / (time.perf_counter() - start)


def peer(urls: list[str], workers: int) -> tuple[float, float]:
    """trafilatura's own fetch + extract + the og:image download, on a thread pool of the
    size of our concurrency: (pages/s, CPU ms per page)."""
    from concurrent.futures import ThreadPoolExecutor
    from copy import deepcopy

    import trafilatura
    from trafilatura.settings import DEFAULT_CONFIG

    config = deepcopy(DEFAULT_CONFIG)
    config.set("DEFAULT", "SSRF_PROTECTION", "off")  # the bench's hosts are loopback ones
    failures: list[str] = []

    def one(url: str) -> None:
        html = trafilatura.fetch_url(url, config=config)
        if html is None:
            failures.append(url)
            return
        trafilatura.extract(html, url=url, with_metadata=True, config=config)
        meta = trafilatura.extract_metadata(html, default_url=url)
        if meta is not None and meta.image:
            image = trafilatura.fetch_response(str(httpx.URL(url).join(meta.image)), config=config)
            if image is None or image.status != 200:
                failures.append(meta.image)

    cpu, start = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, urls))
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    if failures:
        raise SystemExit(f"the peer failed on {len(failures)} fetch(es), e.g. {failures[0]}")
    return len(urls) / elapsed, 1000 * used / len(urls)


def ours(
    urls: list[str], data_dir: Path, interval: float | None = None
) -> tuple[float, int, float]:
    crawler: dict[str, object] = {"allow_loopback": True}
    if interval is not None:
        crawler["per_host_interval_s"] = interval
    settings = Settings(data_dir=data_dir, crawler=crawler)  # type: ignore[arg-type]
    engine = make_engine(settings.database_url)
    migrations.upgrade(engine)
    with session_scope(session_factory(engine)) as session:
        session.add_all(
            Source(name=f"s{i}", kind=SourceKind.PAGE, location=u) for i, u in enumerate(urls)
        )
    cpu, start = time.process_time(), time.perf_counter()
    outcomes = crawl(settings, engine)
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    engine.dispose()
    return len(urls) / elapsed, sum(o.new for o in outcomes), 1000 * used / len(urls)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=240)
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument(
        "--interval",
        type=float,
        help="our per-host gap between request starts (default: the setting, 0.1 s); "
        "the peer keeps none",
    )
    args = parser.parse_args()

    ports: multiprocessing.Queue[str] = multiprocessing.Queue()
    stop = multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve, args=(args.hosts, args.latency_ms / 1000, ports, stop), daemon=True
    )
    server.start()
    bases = [ports.get(timeout=30) for _ in range(args.hosts)]
    urls = [f"{bases[i % args.hosts]}/article/{i}" for i in range(args.n)]
    log(f"{args.n} pages on {args.hosts} hosts, {args.latency_ms:.0f} ms per response")
    baseline(urls[: min(4, args.n)])  # warm-up
    log("baseline: sequential fetch loop")
    base_pps = baseline(urls)
    log(f"  {base_pps:.1f} pages/s")
    log("ours: crawl()")
    with tempfile.TemporaryDirectory() as folder:  # warm-up: lazy imports, first parses
        ours([f"{bases[0]}/article/{args.n + i}" for i in range(4)], Path(folder))
    with tempfile.TemporaryDirectory() as folder:
        ours_pps, new, ours_cpu = ours(urls, Path(folder), args.interval)
    log(f"  {ours_pps:.1f} pages/s, {new} items stored, {ours_cpu:.2f} ms CPU per page")
    log("peer: trafilatura fetch + extract + og:image, same concurrency")
    crawler = Settings().crawler
    concurrency = min(crawler.concurrency, args.hosts * crawler.per_host_concurrency)
    peer(urls[: min(4, args.n)], concurrency)  # warm-up
    peer_pps, peer_cpu = peer(urls, concurrency)
    log(f"  {peer_pps:.1f} pages/s, {peer_cpu:.2f} ms CPU per page")
    stop.set()
    server.join(timeout=10)
    print(
        json.dumps(
            {
                "n": args.n,
                "hosts": args.hosts,
                "latency_ms": args.latency_ms,
                "pages_per_s": round(ours_pps, 2),
                "baseline_pages_per_s": round(base_pps, 2),
                "ratio": round(ours_pps / base_pps, 2),
                "items_stored": new,
                "cpu_ms_per_page": round(ours_cpu, 2),
                "peer_pages_per_s": round(peer_pps, 2),
                "peer_cpu_ms_per_page": round(peer_cpu, 2),
                "cpu_ratio": round(ours_cpu / peer_cpu, 2),
                "per_host_concurrency": Settings().crawler.per_host_concurrency,
                "per_host_interval_s": (
                    args.interval
                    if args.interval is not None
                    else Settings().crawler.per_host_interval_s
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
