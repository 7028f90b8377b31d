"""Nothing lost: big dumps arrive whole over several crawls, one bad record never costs the
others, every failure has a reason, and pictures are stored as a viewer shows them. The
probe's cases as fixed regressions, then a fuzz suite over generated mixes of records."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import Engine

from indexer.crawl import SourceOutcome
from simmim import migrations
from simmim.db import make_engine
from simmim.images import open_image
from simmim.models import ItemStatus, SourceKind
from tests.crawl_helpers import add, crawl_settings, items, jpeg, rss, run
from tests.http_server import LocalServer, Reply

XML = {"Content-Type": "application/rss+xml"}


def post(n: int, **fields: object) -> str:
    return json.dumps({"id": n, "text": f"good post number {n} about the markets", **fields})


def test_a_big_dump_arrives_whole_over_several_crawls(engine: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "tweets.jsonl"
    dump.write_text("\n".join(post(n) for n in range(2000)) + "\n")
    settings = crawl_settings(tmp_path / "data", max_items_per_source=500)
    sid = add(engine, str(dump), SourceKind.JSONL)
    seen = []
    for _ in range(4):
        outcome = run(settings, engine)[sid]
        seen.append((outcome.new, outcome.duplicate, outcome.remaining))
    assert seen == [(500, 0, 1500), (500, 0, 1000), (500, 0, 500), (500, 0, 0)]
    assert len(items(engine)) == 2000
    again = run(settings, engine)[sid]  # a new pass from the top: all known
    assert (again.new, again.duplicate, again.remaining) == (0, 500, 1500)


def test_one_bad_jsonl_record_costs_only_itself(engine: Engine, tmp_path: Path) -> None:
    bad = [
        post(1000, time=1e20),
        post(1001, time="Infinity"),
        '{"id": 1002, "text": "infinite time for this post", "time": Infinity}',
        post(1003, time="12345678901234567890"),
        post(1004, url="http://[::1/x"),
        post(1005, url="http://example.org:99999/x"),
        "[" * 50_000 + "]" * 50_000,
        '{"id": 1007, "text": "a huge number", "likes": ' + "9" * 5000 + "}",
        "{not json at all",
        json.dumps({"id": 1009, "author": "nobody"}),
        json.dumps([1, 2, 3]),
    ]
    good = [post(n) for n in range(83)]
    lines = good[:40] + bad + good[40:]
    dump = tmp_path / "mixed.jsonl"
    dump.write_text("\n".join(lines) + "\n")
    sid = add(engine, str(dump), SourceKind.JSONL)
    outcome = run(crawl_settings(tmp_path / "data"), engine)[sid]
    assert outcome.ok, outcome.error
    stored = items(engine)
    assert sorted(int(i.external_id or -1) for i in stored) == list(range(83))
    assert outcome.failed == len(bad), outcome.reasons
    # every failure under a reason; the one note beside them says some posts had no time
    assert sum(outcome.reasons.values()) - outcome.reasons["no time field"] == len(bad)
    assert len(outcome.failures) == len(bad)  # each one kept, for `simmim source failures`
    assert all(e["reason"] and e["detail"] for e in outcome.failures)


def test_one_invalid_byte_spoils_only_its_line(engine: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "utf8.jsonl"
    dump.write_bytes(
        (post(1, title="Société Générale raises its dividend") + "\n").encode()
        + b'{"id": 2, "text": "caf\xe9 cr\xe8me, a legacy line in the dump"}\n'
        + (post(3, title="Ørsted wins the Baltic tender") + "\n").encode()
    )
    sid = add(engine, str(dump), SourceKind.JSONL)
    assert run(crawl_settings(tmp_path / "data"), engine)[sid].new == 3
    by_id = {i.external_id: i for i in items(engine)}
    assert by_id["1"].title == "Société Générale raises its dividend"
    assert by_id["3"].title == "Ørsted wins the Baltic tender"
    assert by_id["2"].text == "café crème, a legacy line in the dump"
    assert by_id["2"].extra and "Windows-1252" in by_id["2"].extra["warning"]


def test_control_characters_never_reach_the_database(engine: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "nul.jsonl"
    dump.write_text(post(1, title="Nul\u0000 byte\u0007 in a title") + "\n")
    sid = add(engine, str(dump), SourceKind.JSONL)
    assert run(crawl_settings(tmp_path / "data"), engine)[sid].new == 1
    assert items(engine)[0].title == "Nul byte in a title"


def test_feed_entries_are_isolated_and_every_failure_has_a_reason(
    http_server: LocalServer, engine: Engine, tmp_path: Path
) -> None:
    s = http_server
    feed = rss(
        [
            {"title": "Acme beats estimates on strong demand", "link": s.url("/a")},
            {"title": "Bad port in this link", "link": "http://example.org:99999/x"},
            {"title": "", "link": s.url("/only-a-link")},
            {"title": "Bolt cuts its guidance for the year", "link": s.url("/b")},
        ]
    )
    s.routes["/feed.xml"] = Reply(200, feed, XML)
    sid = add(engine, s.url("/feed.xml"), SourceKind.RSS)
    outcome = run(crawl_settings(tmp_path / "data"), engine)[sid]
    assert outcome.ok and outcome.new == 2 and outcome.failed == 2, outcome
    failed = [i for i in items(engine) if i.status is ItemStatus.FAILED]
    assert failed and all(i.error for i in failed), "a failed item says why"
    kept = outcome.examples + outcome.failures
    assert {e["reason"] for e in kept} >= {"unreadable record", "nothing to index"}


def test_a_bomb_in_a_folder_costs_only_itself(engine: Engine, tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for n in range(19):
        (folder / f"p{n:02d}.jpg").write_bytes(jpeg(n))
    buffer = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(buffer, format="PNG")  # small file, 400 Mpixels
    (folder / "bomb.png").write_bytes(buffer.getvalue())
    sid = add(engine, str(folder), SourceKind.FOLDER)
    outcome = run(crawl_settings(tmp_path / "data"), engine)[sid]
    assert outcome.ok and outcome.new == 19 and outcome.failed == 1, outcome
    assert outcome.reasons["image too large"] == 1


def test_pictures_are_upright_and_high_bit_depth_is_scaled() -> None:
    sideways = Image.new("RGB", (40, 20), "red")
    exif = sideways.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", exif=exif)
    assert open_image(buffer.getvalue(), max_pixels=10**8).size == (20, 40)

    gradient = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(gradient).save(buffer, format="PNG")  # 16-bit greyscale
    pixels = np.asarray(open_image(buffer.getvalue(), max_pixels=10**8))
    assert (pixels == 255).mean() < 0.01 and 120 < pixels.mean() < 135


# ---- fuzz: any mix of good and bad records


BAD_LINES = st.one_of(
    # a line of random bytes; not a blank one (nor a byte-order mark alone, which at the top
    # of a file is the dump's encoding mark, not a record)
    st.binary(min_size=1, max_size=40).filter(
        lambda b: b"\n" not in b and b.removeprefix(b"\xef\xbb\xbf").strip() != b""
    ),
    st.sampled_from(
        [
            b"{broken",
            b"[1, 2]",
            b'"just a string"',
            b'{"author": "no text or image"}',
            b'{"text": "bad time", "time": 1e300}',
            b'{"text": "bad time", "time": "soon"}',
            b'{"text": "bad url", "url": "http://[::1/x"}',
            b'{"text": "bad port", "url": "http://h.example:70000/"}',
            b"[" * 5000 + b"]" * 5000,
        ]
    ),
)


def _fresh_engine(folder: Path) -> Engine:
    engine = make_engine(f"sqlite:///{folder / 'fuzz.db'}")
    migrations.upgrade(engine)
    return engine


@contextmanager
def fresh_db() -> Iterator[tuple[Path, Engine]]:
    """A folder and a migrated SQLite database of their own, for one generated example."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        engine = _fresh_engine(folder)
        try:
            yield folder, engine
        finally:
            engine.dispose()


def _crawl_all(folder: Path, engine: Engine, sid: int) -> list[SourceOutcome]:
    settings = crawl_settings(folder / "data", max_items_per_source=7)
    outcomes = []
    for _ in range(50):  # pages of 7 until the pass is done
        outcome = run(settings, engine)[sid]
        outcomes.append(outcome)
        if not outcome.remaining:
            break
    return outcomes


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    mix=st.lists(
        st.one_of(
            st.integers(0, 10_000).map(lambda n: ("good", n)), BAD_LINES.map(lambda b: ("bad", b))
        ),
        max_size=25,
    )
)
def test_fuzz_jsonl_every_good_record_once_every_bad_with_a_reason(
    mix: list[tuple[str, object]],
) -> None:
    goods = {n for kind, n in mix if kind == "good"}
    with fresh_db() as (folder, engine):
        lines: list[bytes] = []
        bad_count = 0
        for kind, value in mix:
            if kind == "good":
                lines.append(post(int(value)).encode())  # type: ignore[call-overload]
            else:
                assert isinstance(value, bytes)
                lines.append(value)
                bad_count += 1
        (folder / "dump.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        sid = add(engine, str(folder / "dump.jsonl"), SourceKind.JSONL)
        outcomes = _crawl_all(folder, engine, sid)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        stored = [int(i.external_id or -1) for i in items(engine) if i.external_id]
        assert sorted(stored) == sorted(goods), "every good record exactly once"
        failed = sum(o.failed for o in outcomes)
        assert failed == bad_count, "every bad line is a failure of its own"
        reasons = sum(sum(o.reasons.values()) for o in outcomes)
        assert reasons >= failed, "every failure is counted under a reason"
        for o in outcomes:
            assert all(e["reason"] for e in o.examples + o.failures)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mix=st.lists(
        st.one_of(
            st.integers(0, 50).map(lambda n: ("good", n)),
            st.sampled_from(["not a picture", "", "truncated"]).map(lambda b: ("bad", b)),
        ),
        max_size=12,
    )
)
def test_fuzz_folder_every_good_picture_once_every_bad_with_a_reason(
    mix: list[tuple[str, object]],
) -> None:
    with fresh_db() as (folder, engine):
        pictures = folder / "pictures"
        pictures.mkdir()
        goods: set[int] = set()
        bad = 0
        for position, (kind, value) in enumerate(mix):
            path = pictures / f"f{position:03d}.jpg"
            if kind == "good":
                seed = int(value)  # type: ignore[call-overload]
                if seed in goods:
                    continue  # the same picture twice is a duplicate, not a new item
                goods.add(seed)
                path.write_bytes(jpeg(seed * 7 + 1))
            else:
                bad += 1
                data = {"not a picture": b"hello", "": b"", "truncated": jpeg(3)[:200]}[str(value)]
                path.write_bytes(data)
        sid = add(engine, str(pictures), SourceKind.FOLDER)
        outcomes = _crawl_all(folder, engine, sid)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes]
        stored = [i for i in items(engine) if i.status is not ItemStatus.FAILED]
        failed = [i for i in items(engine) if i.status is ItemStatus.FAILED]
        assert len({i.image_sha256 for i in stored}) == len(stored) == len(goods)
        assert len(failed) == bad and all(i.error for i in failed)


@pytest.mark.parametrize("limit", [1, 3])
def test_folder_pages_through_with_its_cursor(engine: Engine, tmp_path: Path, limit: int) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for n in range(5):
        (folder / f"p{n}.jpg").write_bytes(jpeg(n + 20))
    settings = crawl_settings(tmp_path / "data", max_items_per_source=limit)
    sid = add(engine, str(folder), SourceKind.FOLDER)
    total = 0
    for _ in range(10):
        outcome = run(settings, engine)[sid]
        total += outcome.new
        if not outcome.remaining:
            break
    assert total == 5 and len(items(engine)) == 5


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mix=st.lists(
        st.one_of(
            st.integers(0, 500).map(lambda n: ("good", n)),
            st.sampled_from(["bad port", "empty", "link only"]).map(lambda b: ("bad", b)),
        ),
        max_size=15,
    )
)
def test_fuzz_feed_every_good_entry_once_every_bad_with_a_reason(
    mix: list[tuple[str, object]],
) -> None:
    server = LocalServer().start()
    try:
        entries, goods, bad = [], set(), 0
        for position, (kind, value) in enumerate(mix):
            if kind == "good":
                n = int(value)  # type: ignore[call-overload]
                goods.add(n)
                entries.append(
                    {"title": f"Good entry number {n} on the tape", "link": server.url(f"/g{n}")}
                )
            elif value == "bad port":
                bad += 1
                entries.append(
                    {"title": f"Broken link {position}", "link": "http://h.example:99999/x"}
                )
            elif value == "link only":
                bad += 1
                entries.append({"title": "", "link": server.url(f"/only-{position}")})
            else:
                bad += 1
                entries.append({"title": "", "link": ""})
        server.routes["/feed.xml"] = Reply(200, rss(entries), XML)
        with fresh_db() as (folder, engine):
            sid = add(engine, server.url("/feed.xml"), SourceKind.RSS)
            outcome = run(crawl_settings(folder / "data"), engine)[sid]
            assert outcome.ok, outcome.error
            stored = [i for i in items(engine) if i.status is not ItemStatus.FAILED]
            assert sorted(i.url or "" for i in stored) == sorted(
                server.url(f"/g{n}") for n in goods
            )
            assert outcome.failed == bad
            assert all(i.error for i in items(engine) if i.status is ItemStatus.FAILED)
    finally:
        server.stop()


# The crawl and the loop watcher, in a process that is only that: in the test process,
# threads and heap left by earlier tests (servers, browsers, models) can stall any loop.
_WATCH_THE_LOOP = """
import asyncio, json, sys, time
from pathlib import Path
from indexer.crawl import crawl_async
from simmim.db import make_engine
from tests.crawl_helpers import crawl_settings

db, data, source_id = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])

async def crawl_and_watch_the_loop():
    gaps = []

    async def ticker():
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    engine = make_engine(db)
    settings = crawl_settings(data, max_items_per_source=20)
    outcomes = await crawl_async(settings, engine, source_ids=[source_id])
    task.cancel()
    engine.dispose()
    return max(gaps), outcomes[0].ok and outcomes[0].new == 20

longest, ok = asyncio.run(crawl_and_watch_the_loop())
print(json.dumps({"longest": longest, "ok": ok}))
"""


def test_a_huge_feed_is_parsed_off_the_event_loop(http_server: LocalServer, tmp_path: Path) -> None:
    """While a feed of 15,000 entries is parsed, the crawl's event loop keeps turning (other
    sources' fetches and timeouts go on; a blocked loop made their 500s look like timeouts).
    SQLite only: the point is the event loop, not the database."""
    import subprocess
    import sys

    s = http_server
    entries = [
        {"title": f"Entry {n} of the long feed", "link": s.url(f"/e{n}")} for n in range(15_000)
    ]
    s.routes["/huge.xml"] = Reply(200, rss(entries), XML)
    engine = _fresh_engine(tmp_path)
    huge = add(engine, s.url("/huge.xml"), SourceKind.RSS)
    engine.dispose()
    watched = subprocess.run(
        [
            sys.executable,
            "-c",
            _WATCH_THE_LOOP,
            f"sqlite:///{tmp_path / 'fuzz.db'}",
            str(tmp_path / "data"),
            str(huge),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert watched.returncode == 0, watched.stderr[-2000:]
    found = json.loads(watched.stdout.strip().splitlines()[-1])
    longest = found["longest"]
    assert found["ok"]
    assert longest < 1.5, f"the event loop stood still for {longest:.1f} s"
