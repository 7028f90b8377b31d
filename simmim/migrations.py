"""Schema migrations through alembic, driven from code so the CLI and tests share one path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from simmim.db import display_url
from simmim.errors import DatabaseError

# The migration scripts live beside the packages in the checkout (the layout alembic expects).
ALEMBIC_DIR = Path(__file__).resolve().parent.parent / "alembic"


def alembic_config(url: str) -> Config:
    if not (ALEMBIC_DIR / "env.py").is_file():
        raise DatabaseError(
            f"migration scripts not found at {ALEMBIC_DIR}",
            hint="install SimMIM from its source checkout (pip install -e .)",
        )
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    # Escape % so alembic's ConfigParser does not interpolate URL-encoded passwords.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision(url: str) -> str:
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert head is not None, "alembic/versions holds no migration"
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise _unreachable(engine, exc) from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, command.downgrade, revision)


def require_head(engine: Engine) -> None:
    """Refuse to work on a database whose schema is not the one this code was written for."""
    url = engine.url.render_as_string(hide_password=False)
    current, head = current_revision(engine), head_revision(url)
    if current != head:
        state = "empty" if current is None else f"at revision {current}"
        raise DatabaseError(
            f"database {display_url(engine)} is {state}, this SimMIM needs revision {head}",
            hint="run `simmim init` (or `simmim db upgrade`)",
        )


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction, safe for SQLite's batch ALTER.

    Batch mode copies and drops tables; with foreign keys on, the drop would cascade-delete
    child rows. They are switched off for the migration and back on afterwards.
    """
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                yield connection
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def _run(engine: Engine, action: object, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    try:
        with migration_connection(engine) as connection:
            config.attributes["connection"] = connection
            action(config, revision)  # type: ignore[operator]
    except SQLAlchemyError as exc:
        raise _unreachable(engine, exc) from exc


def _unreachable(engine: Engine, exc: SQLAlchemyError) -> DatabaseError:
    cause = getattr(exc, "orig", None) or exc  # the driver's own message when there is one
    reason = (str(cause).strip().splitlines() or [type(exc).__name__])[0]
    return DatabaseError(
        f"database {display_url(engine)} failed: {reason}",
        hint="check SIMMIM_DATABASE__URL and that the server is running",
    )
