"""The demo corpus as a web site on 127.0.0.1: RSS feeds with chart images, article pages
with lead images, and a JSONL social dump — what the real crawler reads."""

from __future__ import annotations

import json
import os
import threading
from email.utils import format_datetime
from functools import partial
from html import escape
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from app.demo.corpus import Corpus, Entry
from app.demo.pictures import price_chart, scene

FEEDS = {"wire": "Market Wire", "press": "Company Press"}


def write_site(corpus: Corpus, root: Path, base_url: str) -> dict[str, list[str]]:
    """Files under ``root``; returns {source kind: [locations]} to register."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "articles").mkdir(exist_ok=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n", encoding="utf-8")

    def picture(entry: Entry) -> str | None:
        if entry.picture is None:
            return None
        spec: dict[str, Any] = entry.picture
        if spec["kind"] == "chart":
            data = price_chart(int(spec["trend"]), int(spec["seed"]), tuple(spec["tint"]))
        else:
            number = int(entry.slug.rsplit("-", 1)[-1])
            data = scene(spec.get("scene"), str(spec.get("caption", "")), seed=number)
        name = f"img/{entry.slug}.png"
        (root / name).write_bytes(data)
        return f"{base_url}/{name}"

    locations: dict[str, list[str]] = {"rss": [], "page": [], "jsonl": []}
    for kind, title in FEEDS.items():
        items = []
        for entry in sorted(corpus.of_kind(kind), key=lambda e: e.when, reverse=True):
            link = f"{base_url}/news/{entry.slug}"
            image = picture(entry)
            enclosure = (
                f'<enclosure url="{escape(image)}" type="image/png" length="0"/>' if image else ""
            )
            items.append(
                f"<item><title>{escape(entry.title)}</title><link>{link}</link>"
                f"<guid>{link}</guid><description>{escape(entry.text)}</description>"
                f"<pubDate>{format_datetime(entry.when)}</pubDate>{enclosure}</item>"
            )
        (root / f"{kind}.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{title}</title><link>{base_url}/</link><description>{title} (SimMIM demo)</description>"
            + "".join(items)
            + "</channel></rss>",
            encoding="utf-8",
        )
        locations["rss"].append(f"{base_url}/{kind}.xml")

    for entry in corpus.of_kind("article"):
        image = picture(entry)
        paragraphs = "".join(
            f"<p>{escape(s.strip())}.</p>" for s in entry.text.split(".") if s.strip()
        )
        (root / "articles" / f"{entry.slug}.html").write_text(
            f"<!doctype html><html><head><title>{escape(entry.title)}</title>"
            f'<meta property="og:image" content="{image}">'
            f'<meta property="article:published_time" content="{entry.when.isoformat()}">'
            f"</head><body><article><h1>{escape(entry.title)}</h1>{paragraphs}</article></body></html>",
            encoding="utf-8",
        )
        locations["page"].append(f"{base_url}/articles/{entry.slug}.html")

    lines = []
    for entry in corpus.of_kind("social"):
        post: dict[str, object] = {
            "id": entry.slug,
            "text": entry.text,
            "time": entry.when.isoformat(),
            "url": f"{base_url}/social/{entry.slug}",
        }
        image = picture(entry)
        if image:
            post["image"] = image
        lines.append(json.dumps(post, ensure_ascii=False))
    (root / "social.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    locations["jsonl"].append(f"{base_url}/social.jsonl")
    return locations


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        text = str(path)
        if text.endswith(".xml"):
            return "application/rss+xml"
        if text.endswith(".jsonl"):
            return "application/x-ndjson"
        return super().guess_type(path)


class Site:
    """A static server for ``root`` on 127.0.0.1 (a free port unless given), in a thread."""

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = root
        handler = partial(_Quiet, directory=str(root))
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
