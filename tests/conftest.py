"""Shared fixtures: an isolated environment, and databases on SQLite and real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from simmim import migrations
from simmim.db import make_engine

POSTGRES_ENV = "SIMMIM_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SIMMIM_* setting leaks in from the developer's shell; data goes to a temp dir."""
    for name in list(os.environ):
        if name.startswith("SIMMIM_") and name != POSTGRES_ENV:
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SIMMIM_DATA_DIR", str(data_dir))
    return data_dir


def _postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_ENV} is not set in CI: PostgreSQL tests must run there")
        pytest.skip(f"set {POSTGRES_ENV} to run PostgreSQL tests")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards: tests never collide."""
    base = _postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # unreachable server is a failure, never a skip
        pytest.fail(f"PostgreSQL at {base} is unreachable: {exc}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs once per supported backend."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head through the real migrations."""
    engine = make_engine(db_url)
    migrations.upgrade(engine)
    yield engine
    engine.dispose()


pytest_plugins = [
    "tests.encoder_fixtures",
    "tests.http_server",
    "tests.smtp_server",
    "tests.api_fixtures",
]


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real Milvus standalone server on loopback for the session, stopped at its end."""
    from tests.milvus_server import start_milvus_server, stop_milvus_server

    try:
        proc, uri = start_milvus_server(tmp_path_factory.mktemp("milvus-server"))
    except (ImportError, OSError, RuntimeError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the Milvus server must run in CI: {exc}")
        pytest.skip(f"no Milvus server here: {exc}")
    try:
        yield uri
    finally:
        stop_milvus_server(proc)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_weights: Path):  # type: ignore[no-untyped-def]
    """One loaded tiny encoder for the session (loading is the slow part, not encoding)."""
    from encoder import load_encoder
    from simmim.settings import Settings
    from tests.encoder_fixtures import tiny_settings

    return load_encoder(Settings(encoder=tiny_settings(tiny_weights)))  # type: ignore[arg-type]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `simmim ARGS...` in-process; returns stdout, failing the test on a non-zero exit."""
    from app.cli import main

    def run(*args: str) -> str:
        with pytest.raises(SystemExit) as info:
            main(list(args))
        out, err = capsys.readouterr()
        assert info.value.code in (0, None), err
        return out

    return run
