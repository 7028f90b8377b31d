"""An indexed corpus with scores, alerts and tokens, and a TestClient on the API over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.api.app import create_app
from app.api.state import ApiState
from app.api.tokens import Scope, create_token
from encoder import Encoder
from indexer.pipeline.runner import run_ingest
from monitor.alerts import detect
from monitor.rules import ensure_default_rules
from simmim import migrations
from simmim.db import make_engine
from simmim.settings import Settings
from tests.encoder_fixtures import tiny_settings
from tests.monitor_helpers import daily, seed
from tests.test_index import seed_items

SPIKE_BASE = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 6]


@dataclass
class ApiWorld:
    settings: Settings
    engine: Engine
    encoder: Encoder
    client: TestClient
    read: dict[str, str]
    admin: dict[str, str]
    read_secret: str


def build_world(db_url: str, data_dir: Path, weights: Path, encoder: Encoder) -> ApiWorld:
    settings = Settings(
        data_dir=data_dir,
        database={"url": db_url},  # type: ignore[arg-type]
        encoder=tiny_settings(weights),  # type: ignore[arg-type]
        api={"max_k": 50, "max_body_bytes": 2_000_000},  # type: ignore[arg-type]
    )
    engine = make_engine(db_url)
    migrations.upgrade(engine)
    seed_items(settings, engine, n=24)
    run_ingest(settings, engine, encoder)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seed(engine, daily([*SPIKE_BASE, 60], start=today - timedelta(days=len(SPIKE_BASE) + 1)))
    seed(engine, daily([*SPIKE_BASE, 50], ticker="BETA", start=today - timedelta(days=16)))
    ensure_default_rules(engine)
    assert detect(settings, engine).fired
    _, read = create_token(engine, "reader", Scope.READ)
    _, admin = create_token(engine, "admin", Scope.ADMIN)
    app = create_app(settings, state=ApiState(settings, engine=engine, encoder=encoder))
    return ApiWorld(
        settings,
        engine,
        encoder,
        TestClient(app),
        {"Authorization": f"Bearer {read}"},
        {"Authorization": f"Bearer {admin}"},
        read,
    )


@pytest.fixture
def api(
    db_url: str, tmp_path: Path, tiny_weights: Path, tiny_encoder: Encoder
) -> Iterator[ApiWorld]:
    world = build_world(db_url, tmp_path / "data", tiny_weights, tiny_encoder)
    with world.client:
        yield world
    world.engine.dispose()
