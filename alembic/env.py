"""Alembic environment: the URL comes from SimMIM's settings, the schema from each models module."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from monitor import models as monitor_models  # noqa: F401  (registers the monitor tables)
from simmim import models as core_models  # noqa: F401  (registers the core tables)
from simmim.db import Base, UTCDateTime, make_engine
from simmim.migrations import migration_connection
from simmim.settings import load_settings
from simmim.task_queue_schema import is_ours

config = context.config
metadata = Base.metadata


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations stay free of app types: our UTC wrapper is a plain timezone-aware DateTime.
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        include_name=is_ours,  # the task queue's tables are Procrastinate's to manage
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs via table copy
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:  # simmim.migrations passes its own connection
        _configure(given)
        return
    engine = make_engine(_url())
    try:
        with migration_connection(engine) as connection:
            _configure(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
