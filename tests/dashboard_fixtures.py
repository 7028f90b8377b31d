"""A seeded data directory for dashboard tests: items indexed by the tiny model, scored,
with a month of ACME history and a firing alert; copied fresh for each test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.encoder_fixtures import store_picture, tiny_settings

HEADLINES = [
    "Acme Corp net loss widened, shares tumble",
    "Fed raises interest rates by 25 basis points",
    "Bitcoin rallies to a record high",
    "Bolt Motors recalls 40,000 cars",
]


def build_seeded(
    root: Path, weights: Path, encoder: object, database_url: str | None = None
) -> Path:
    from monitor.cycle import Runtime
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.migrations import upgrade
    from simmim.models import Item, Source, SourceKind
    from simmim.paths import DataLayout
    from simmim.settings import Settings
    from tests.monitor_helpers import daily, seed

    settings = Settings(
        data_dir=root,
        encoder=tiny_settings(weights),  # type: ignore[arg-type]
        database={"url": database_url},  # type: ignore[arg-type]
    )
    layout = DataLayout(root)
    layout.create()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    now = datetime.now(UTC)
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=20)
    counts = [5, 6, 5, 4, 6, 5, 6, 5, 4, 6, 5, 6, 5, 4, 6, 5, 6, 5, 5, 30]  # day 19 = yesterday
    seed(
        engine,
        daily(counts, ticker="ACME", start=start, negatives=[1] * 19 + [25], topic="layoffs"),
    )
    image_sha = store_picture(layout, 3)
    with session_scope(session_factory(engine)) as session:
        source = Source(name="newswire", kind=SourceKind.RSS, location="http://news.test/feed")
        session.add(source)
        session.flush()
        for i, title in enumerate(HEADLINES):
            session.add(
                Item(
                    source_id=source.id,
                    title=title,
                    url=f"http://news.test/{i}",
                    published_at=now - timedelta(hours=i + 1),
                    image_sha256=image_sha if i == 0 else None,
                )
            )
    runtime = Runtime(settings, engine, encoder=encoder)  # type: ignore[arg-type]
    runs = runtime.run_once(("index", "score", "detect"))
    assert all(r.ok for r in runs), [r.error for r in runs]
    assert runs[-1].summary["fired"], "the seeded ACME burst must fire an alert"
    engine.dispose()
    return root


@pytest.fixture(scope="session")
def seeded_template(
    tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path, tiny_encoder
) -> Path:  # type: ignore[no-untyped-def]
    return build_seeded(tmp_path_factory.mktemp("seeded") / "data", tiny_weights, tiny_encoder)


@pytest.fixture
def seeded_env(
    seeded_template: Path, tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A private copy of the seeded data directory, named by the environment."""
    data = tmp_path / "seeded-data"
    shutil.copytree(seeded_template, data)
    monkeypatch.setenv("SIMMIM_DATA_DIR", str(data))
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    monkeypatch.setenv("SIMMIM_ENCODER__BATCH_SIZE", "8")
    yield data


@pytest.fixture
def seeded_env_pg(
    postgres_url: str,
    tmp_path: Path,
    tiny_weights: Path,
    tiny_encoder,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Path]:
    """The same seeded corpus with its database on PostgreSQL (a schema of its own)."""
    data = build_seeded(tmp_path / "seeded-pg", tiny_weights, tiny_encoder, postgres_url)
    monkeypatch.setenv("SIMMIM_DATA_DIR", str(data))
    monkeypatch.setenv("SIMMIM_DATABASE__URL", postgres_url)
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    monkeypatch.setenv("SIMMIM_ENCODER__BATCH_SIZE", "8")
    yield data
