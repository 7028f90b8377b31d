"""Issue 36's findings as regressions: sources that skipped or lost records, schedules out
of range, damaged index files, secrets on every surface, formats never opened, and the
small ones. Each test names the finding it keeps fixed."""

from __future__ import annotations

import base64
import io
import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError
from sqlalchemy import Engine, update

from encoder import load_encoder
from indexer.index import IndexSet
from indexer.index.chooser import IndexPlan
from indexer.index.index_set import build_index, faiss_status
from indexer.index.store import IndexFileError, VectorIndex, _health
from indexer.pipeline.runner import run_ingest
from indexer.source_admin import SourceError, parse_every
from simmim import migrations
from simmim.clock import utcnow
from simmim.db import make_engine, session_factory, session_scope
from simmim.errors import SimmimError
from simmim.images import ImageDecodeError, open_image
from simmim.models import ItemStatus, Source, SourceKind
from simmim.paths import DataLayout
from simmim.settings import Settings
from tests.api_fixtures import ApiWorld
from tests.crawl_helpers import add, crawl_settings, items, jpeg, rss, run, source
from tests.encoder_fixtures import tiny_settings
from tests.http_server import LocalServer, Reply
from tests.test_index import seed_items

XML_TYPE = {"Content-Type": "application/rss+xml"}


def test_folder_pictures_beside_a_same_prefix_folder_all_arrive(
    engine: Engine, tmp_path: Path
) -> None:
    """Finding 2: sorted as paths, resumed as strings, ``x-1.png`` beside ``x/`` never came."""
    root = tmp_path / "pictures"
    (root / "x").mkdir(parents=True)
    (root / "2024").mkdir()
    names = ["x/0500.png", "x/0501.png", "x-1.png", "x-cover.png", "2024/a.png", "2024.png"]
    for seed, name in enumerate(names):
        (root / name).write_bytes(jpeg(seed + 40))
    settings = crawl_settings(tmp_path / "data", max_items_per_source=1)
    sid = add(engine, str(root), SourceKind.FOLDER)
    for _ in range(len(names) + 2):
        if not run(settings, engine)[sid].remaining:
            break
    stored = {Path(i.external_id or "").as_posix() for i in items(engine)}
    assert stored == set(names)


@pytest.mark.parametrize("every", ["4000000d", "367d", "1" + "0" * 20 + "d", "0s"])
def test_a_schedule_past_a_year_is_refused_at_source_add(every: str) -> None:
    """Finding 4: ``--every 4000000d`` was stored and broke every crawl after it."""
    with pytest.raises(SourceError) as refused:
        parse_every(every)
    assert "366d" in (refused.value.hint or "") or "not a duration" in refused.value.message


def test_a_stored_schedule_out_of_range_costs_no_other_source(
    engine: Engine, tmp_path: Path
) -> None:
    """Finding 4: a source stored with a huge interval (an older version, a hand edit)
    crawls, is due within a year, and every other source crawls beside it."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(jpeg(5))
    dump = tmp_path / "posts.jsonl"
    dump.write_text('{"id": 1, "text": "a post about the markets today"}\n')
    huge = add(engine, str(folder), SourceKind.FOLDER)
    other = add(engine, str(dump), SourceKind.JSONL)
    with session_scope(session_factory(engine)) as session:
        # SQLite stores what `--every 4000000d` made; PostgreSQL's integer stops at 2**31-1
        every = 4_000_000 * 86400 if engine.dialect.name == "sqlite" else 2**31 - 1
        session.execute(update(Source).where(Source.id == huge).values(every_s=every))
    outcomes = run(crawl_settings(tmp_path / "data"), engine)
    assert outcomes[huge].ok and outcomes[other].ok and len(items(engine)) == 2
    due = source(engine, huge).next_due_at
    assert due is not None and due.replace(tzinfo=UTC) <= datetime.now(UTC) + timedelta(days=367)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n0 0 moveto 16 16 lineto stroke\n%%EOF\n"


def test_eps_is_never_handed_to_ghostscript(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 11: a crawled "JPEG" that is EPS ran Ghostscript where one is installed."""
    from PIL import EpsImagePlugin

    ran: list[object] = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(EpsImagePlugin, "gs_windows_binary", "gs", raising=False)
    with pytest.raises(ImageDecodeError, match="allowed format"):
        open_image(EPS, max_pixels=10**6)
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(EPS)
    (folder / "real.jpg").write_bytes(jpeg(8))
    sid = add(engine, str(folder), SourceKind.FOLDER)
    assert run(crawl_settings(tmp_path / "data"), engine)[sid].ok
    by_name = {Path(i.external_id or "").name: i for i in items(engine)}
    assert by_name["photo.jpg"].status is ItemStatus.FAILED
    assert "allowed format" in (by_name["photo.jpg"].error or "")
    assert by_name["real.jpg"].status is not ItemStatus.FAILED
    assert ran == []


def test_the_format_list_is_a_setting_that_never_admits_ghostscript() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="ICO")
    with pytest.raises(ImageDecodeError, match="allowed format"):
        open_image(buffer.getvalue(), max_pixels=10**6)
    settings = Settings(image_formats=["jpeg", "png", "ico"])
    assert settings.image_formats == ["ICO", "JPEG", "PNG"]
    assert open_image(buffer.getvalue(), max_pixels=10**6, formats=settings.image_formats)
    for refused in (["EPS"], ["JPEG", "ps"], []):
        with pytest.raises(ValidationError):
            Settings(image_formats=refused)


def test_the_pixel_limit_error_names_the_real_setting() -> None:
    """Finding 12: the message named SIMMIM_CRAWLER__MAX_IMAGE_PIXELS, which does not exist."""
    with pytest.raises(ImageDecodeError) as refused:
        open_image(jpeg(3, size=(200, 200)), max_pixels=100)
    assert "SIMMIM_MAX_IMAGE_PIXELS" in str(refused.value)
    assert "max_image_pixels" in Settings.model_fields


MANIFEST_DAMAGE = {
    "empty": lambda raw: b"",
    "cut": lambda raw: raw[: len(raw) // 2],
    "not utf-8": lambda raw: b"\xff\xfe" + raw,
    "a list": lambda raw: b"[1, 2, 3]",
    "a renamed key": lambda raw: raw.replace(b'"factory"', b'"factori"'),
    "a wrong type": lambda raw: raw.replace(b'"dim": ', b'"dim": "x", "_": '),
}


@pytest.mark.parametrize("damage", sorted(MANIFEST_DAMAGE))
def test_a_damaged_manifest_is_reported_and_rebuild_mends_it(
    damage: str, engine: Engine, tiny_weights: Path, tmp_path: Path
) -> None:
    """Finding 5: a damaged manifest bricked every command, ``--rebuild`` included."""
    settings = Settings(data_dir=tmp_path / "data", encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    encoder = load_encoder(settings)
    seed_items(settings, engine, n=6)
    run_ingest(settings, engine, encoder)
    live = DataLayout(settings.data_dir).indexes
    path = live / "text.json"
    path.write_bytes(MANIFEST_DAMAGE[damage](path.read_bytes()))
    with pytest.raises(IndexFileError, match=r"manifest .* is damaged") as refused:
        IndexSet(settings, encoder.fingerprint, encoder.dim, read_only=True)
    assert "--rebuild" in (refused.value.hint or "")
    status = faiss_status(settings, verify=True)
    assert (
        status["text"]["health"].startswith("DAMAGED") and "--rebuild" in status["text"]["health"]
    )
    assert status["image"]["health"] == "ok" and {"factory", "count", "bytes"} <= set(
        status["text"]
    )
    assert run_ingest(settings, engine, encoder, rebuild=True).indexed == 6
    assert all(m["health"] == "ok" for m in faiss_status(settings, verify=True).values())


def test_an_index_file_without_its_manifest_is_not_called_verified(
    engine: Engine, tiny_weights: Path, tmp_path: Path
) -> None:
    """Finding 12: ``index status`` said "checksums verified" with fused.json deleted."""
    settings = Settings(data_dir=tmp_path / "data", encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    seed_items(settings, engine, n=4)
    run_ingest(settings, engine, load_encoder(settings))
    live = DataLayout(settings.data_dir).indexes
    (live / "fused.json").unlink()
    status = faiss_status(settings, verify=True)
    assert "no manifest" in status["fused"]["health"]


def _compressed(tmp_path: Path) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, 3001, dtype=np.int64)
    index = build_index("text", IndexPlan("IVF16,PQ8", "ivf", 16, 4), ids, vectors, "fp", 0.9)
    index.manifest.refine = max(index.manifest.refine, 4)
    index.save(tmp_path)
    return ids, vectors


def test_flipped_bytes_in_the_float16_vectors_never_score(tmp_path: Path) -> None:
    """Finding 6: 2,000 flipped bytes gave a "cosine" of 22.66 at rank 1, NaNs gave no
    results, and status said the checksums were verified."""
    _, vectors = _compressed(tmp_path)
    f16 = tmp_path / "text.f16"
    data = bytearray(f16.read_bytes())
    rng = np.random.default_rng(0)
    for offset in rng.choice(len(data), 2000, replace=False):
        data[int(offset)] ^= 0xFF
    f16.write_bytes(bytes(data))
    manifest = json.loads((tmp_path / "text.json").read_text())
    assert _health(tmp_path / "text.faiss", manifest).startswith("DAMAGED")
    loaded = VectorIndex.load(tmp_path, "text", "fp", read_only=True)
    assert loaded is not None
    scores, found = loaded.search(vectors[:50], 10)
    live = found >= 0
    assert live.sum() > 0 and np.isfinite(scores[live]).all()
    assert scores[live].max() <= 1.01  # cosines, never 22


def test_a_cut_float16_file_is_found_on_load(tmp_path: Path) -> None:
    _compressed(tmp_path)
    f16 = tmp_path / "text.f16"
    f16.write_bytes(f16.read_bytes()[: f16.stat().st_size // 2])
    with pytest.raises(IndexFileError, match="cut short"):
        VectorIndex.load(tmp_path, "text", "fp")
    manifest = json.loads((tmp_path / "text.json").read_text())
    assert "cut short" in _health(tmp_path / "text.faiss", manifest)


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_api_ranges_times_cursors_and_numbers_are_422_never_500(api: ApiWorld) -> None:
    """Findings 8 and 10: an unbounded trends range took the server past 6 GB; naive or
    overflowing times, huge cursors and numbers gave 500s; a huge vector a null score."""
    c, read, admin = api.client, api.read, api.admin
    refused = [
        c.get("/v1/trends", params={"since": "1900-01-01T00:00:00Z", "bucket": "hour"}, headers=read),
        c.get("/v1/trends", params={"since": "2026-01-02", "until": "2026-01-01"}, headers=read),
        c.get("/v1/trends", params={"since": "0001-01-01T00:00:00+14:00"}, headers=read),
        c.get("/v1/series", params={"cursor": _cursor(10**30)}, headers=read),
        c.get("/v1/series", params={"cursor": "MWU0MDA"}, headers=read),  # 1e400
        c.get("/v1/alerts", params={"cursor": _cursor(["2026-01-01T00:00:00+00:00", 2**63])}, headers=read),
        c.get("/v1/alerts", params={"cursor": _cursor(["0001-01-01T00:00:00", 1])}, headers=read),
        c.get("/v1/rules", params={"cursor": _cursor(10**30)}, headers=read),
        c.post("/v1/rules", json={"name": "x", "kind": "volume_spike", "series": "all", "min_volume": 10**30}, headers=admin),
        c.post("/v1/rules", json={"name": "y", "kind": "volume_spike", "series": "all", "cooldown_s": 10**30}, headers=admin),
        c.post("/v1/sources", json={"location": "https://e.org/f", "kind": "rss", "every": "1" + "0" * 20 + "d"}, headers=admin),
        c.post("/v1/search", json={"text": "x", "filters": {"since": "0001-01-01T00:00:00+14:00"}}, headers=read),
        c.post("/v1/search", json={"vector": [0.0] * api.encoder.dim}, headers=read),
    ]  # fmt: skip
    assert [r.status_code for r in refused] == [422] * len(refused), [r.text for r in refused]
    naive = c.post(
        "/v1/search",
        json={"text": "shares", "k": 5, "filters": {"since": "2000-01-01T00:00:00"}},
        headers=read,
    )
    assert naive.status_code == 200 and naive.json()["results"]
    huge = c.post("/v1/search", json={"vector": [3e38] * api.encoder.dim, "k": 3}, headers=read)
    assert huge.status_code == 200
    assert all(-1 <= h["score"] <= 1 for h in huge.json()["results"]) and huge.json()["results"]
    wide = c.get(
        "/v1/trends", params={"since": "2020-01-01T00:00:00Z", "bucket": "day"}, headers=read
    )
    assert wide.status_code == 200


def test_a_dump_past_the_response_cap_arrives_whole_as_a_stream(
    engine: Engine, tmp_path: Path
) -> None:
    """Finding 3: a JSONL dump over 20 MiB failed whole ("too large", no setting named)."""
    dump = tmp_path / "big.jsonl"
    padding = "x" * 5000
    with dump.open("w") as handle:
        for n in range(5200):
            handle.write(json.dumps({"id": n, "text": f"post {n} on the markets", "pad": padding}))
            handle.write("\n\n" if n % 1000 == 0 else "\n")  # blank lines are not records
    assert dump.stat().st_size > 25 * 1024 * 1024
    settings = crawl_settings(tmp_path / "data", max_items_per_source=2000)
    sid = add(engine, str(dump), SourceKind.JSONL)
    seen = [run(settings, engine)[sid] for _ in range(3)]
    assert [(o.ok, o.new, o.remaining) for o in seen] == [
        (True, 2000, 3200),
        (True, 2000, 1200),
        (True, 1200, 0),
    ], [o.error for o in seen]
    assert len(items(engine)) == 5200


def test_a_line_longer_than_the_cap_costs_only_itself(engine: Engine, tmp_path: Path) -> None:
    dump = tmp_path / "posts.jsonl"
    lines = [
        json.dumps({"id": 1, "text": "first post about the markets"}),
        json.dumps({"id": 2, "text": "y" * 5000}),
        json.dumps({"id": 3, "text": "third post about the markets"}),
    ]
    dump.write_text("\n".join(lines) + "\n")
    settings = crawl_settings(tmp_path / "data", max_bytes=1000)
    sid = add(engine, str(dump), SourceKind.JSONL)
    outcome = run(settings, engine)[sid]
    assert outcome.ok and outcome.new == 2
    assert outcome.reasons["line too long"] == 1 and outcome.failed == 1


def test_time_fields_by_their_usual_names_and_lone_surrogates(
    engine: Engine, tmp_path: Path
) -> None:
    """Finding 12: a line with a lone surrogate was dropped with a traceback; and the time
    of an export under ``created_at`` (Twitter's format), ``timestamp`` (ms) or ``date``."""
    dump = tmp_path / "posts.jsonl"
    dump.write_text(
        "\n".join(
            [
                '{"id": 1, "text": "half an emoji \\ud83d here", "time": "2024-03-01T10:00:00Z"}',
                '{"id": 2, "text": "from twitter", "created_at": "Wed Oct 10 20:19:24 +0000 2018"}',
                '{"id": 3, "text": "in milliseconds", "timestamp": 1700000000000}',
                '{"id": 4, "text": "rfc 2822", "date": "Wed, 02 Oct 2002 08:00:00 GMT"}',
            ]
        )
        + "\n"
    )
    sid = add(engine, str(dump), SourceKind.JSONL)
    assert run(crawl_settings(tmp_path / "data"), engine)[sid].ok
    by_id = {i.external_id: i for i in items(engine)}
    assert by_id["1"].text == "half an emoji \ufffd here"
    when = {
        k: (v.published_at.replace(tzinfo=UTC) if v.published_at else None)
        for k, v in by_id.items()
    }
    assert when["2"] == datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)
    assert when["3"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert when["4"] == datetime(2002, 10, 2, 8, 0, tzinfo=UTC)


def _dated(n: int, server: LocalServer) -> dict[str, str]:
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=n)
    return {
        "title": f"Entry {n} of the wire",
        "link": server.url(f"/e{n}"),
        "date": when.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }


@pytest.mark.parametrize("order", ["oldest first", "newest first"])
def test_a_long_feed_arrives_whole_and_its_new_entries_too(
    engine: Engine, tmp_path: Path, http_server: LocalServer, order: str
) -> None:
    """Finding 3: a feed kept its first 500 entries and had no cursor: a 600-entry
    oldest-first feed lost every new entry."""
    http_server.routes["/robots.txt"] = Reply(404)

    def publish(count: int) -> None:
        entries = [_dated(n, http_server) for n in range(count)]
        if order == "newest first":
            entries.reverse()
        http_server.routes["/feed.xml"] = Reply(200, rss(entries), XML_TYPE)

    publish(600)
    settings = crawl_settings(tmp_path / "data", max_items_per_source=250)
    sid = add(engine, http_server.url("/feed.xml"), SourceKind.RSS)
    outcomes = [run(settings, engine)[sid] for _ in range(3)]
    assert [(o.new, o.remaining) for o in outcomes] == [(250, 350), (250, 100), (100, 0)]
    publish(650)  # 50 new ones, at whichever end the feed adds them
    total = len(items(engine))
    for _ in range(4):
        run(settings, engine)
    assert len(items(engine)) == total + 50 == 650


@pytest.mark.postgres
def test_a_dead_workers_task_is_handed_back_even_when_a_copy_waits(postgres_url: str) -> None:
    """Finding 1: a worker killed in ``write_index`` left its task "doing" for ever, holding
    the run lock: requeueing it hit the queueing lock of the waiting copy, the error was
    swallowed every round, and ``monitor status`` showed the dead task running."""
    import asyncio

    import procrastinate
    from sqlalchemy import text

    from monitor.worker.run import retry_stalled
    from monitor.worker.status import monitor_status
    from monitor.worker.tasks import conninfo

    engine = make_engine(postgres_url)
    migrations.upgrade(engine)
    with engine.begin() as connection:
        dead = connection.scalar(
            text(
                "INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '1 hour') RETURNING id"
            )
        )
        row = (
            "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock, status,"
            " worker_id, args) VALUES ('index', 'simmim.write_index', 'write_index',"
            " 'reconcile_index', :status, :worker, '{\"reconcile\": true}') RETURNING id"
        )
        stuck = connection.scalar(text(row), {"status": "doing", "worker": dead})
        waiting = connection.scalar(text(row), {"status": "todo", "worker": None})
    status = monitor_status(engine, stalled_after_s=3)
    assert status.stalled == {"index": 1} and status.live_workers(utcnow()) == 0

    async def hand_back() -> int:
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=conninfo(postgres_url))
        )
        async with app.open_async():
            return await retry_stalled(app, 3)

    assert asyncio.run(hand_back()) == 1
    with engine.connect() as connection:
        states = dict(
            connection.execute(text("SELECT id, status::text FROM procrastinate_jobs")).all()
        )
    assert states == {stuck: "aborted", waiting: "todo"}  # the copy may run: no lock held
    assert monitor_status(engine, stalled_after_s=3).stalled == {}
    engine.dispose()


def test_an_indexes_path_that_is_a_file_is_an_error_with_the_fix(
    engine: Engine, tiny_weights: Path, tmp_path: Path
) -> None:
    """Finding 12: an indexes path that is a file died with NotADirectoryError."""
    settings = Settings(data_dir=tmp_path / "data", encoder=tiny_settings(tiny_weights))  # type: ignore[arg-type]
    seed_items(settings, engine, n=3)
    live = DataLayout(settings.data_dir).indexes
    shutil.rmtree(live, ignore_errors=True)
    live.write_text("not a folder")
    with pytest.raises(SimmimError, match="is a file, not a folder") as refused:
        run_ingest(settings, engine, load_encoder(settings))
    assert str(live) in refused.value.message and "move" in (refused.value.hint or "")


def test_debug_logging_leaves_out_pillows_per_chunk_lines() -> None:
    """Finding 12: ``--debug`` with a PNG of 200,000 text chunks slowed a crawl from 38 s
    to 14 min (a debug record per chunk, each masked and formatted)."""
    from PIL import PngImagePlugin

    from simmim.logs import configure_logging

    info = PngImagePlugin.PngInfo()
    for n in range(2000):
        info.add_text(f"k{n}", "v")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    configure_logging("INFO", debug=True)
    keep = Keep(logging.DEBUG)
    logging.getLogger().addHandler(keep)
    try:
        logging.getLogger("simmim.test").debug("our own debug line")
        open_image(buffer.getvalue(), max_pixels=10**6)
    finally:
        logging.getLogger().removeHandler(keep)
        configure_logging("WARNING")
    assert [r.name for r in seen if not r.name.startswith("PIL")] == ["simmim.test"]
    assert len([r for r in seen if r.name.startswith("PIL")]) < 10
