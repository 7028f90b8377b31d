"""The task queue's tables (Procrastinate) inside our migrations, on PostgreSQL.

Procrastinate ships its schema as SQL; applying it from migration 0006 means `simmim init`
/ `simmim db upgrade` set up everything a worker needs, in the database's current schema,
and the migration's downgrade removes it again. Its objects are all named
``procrastinate_*``: the schema comparison of our models skips them (``is_ours``).
"""

from __future__ import annotations

from importlib import resources

from sqlalchemy import Connection

QUEUE_PREFIX = "procrastinate_"


def is_ours(name: str | None, type_: str, parent_names: object) -> bool:
    """alembic ``include_name``: compare our tables only, not the task queue's."""
    return not (name or "").startswith(QUEUE_PREFIX)


def create_queue_schema(connection: Connection) -> None:
    _execute_raw(
        connection,
        (resources.files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8"),
    )


def _execute_raw(connection: Connection, sql: str) -> None:
    """Through the DB-API cursor with no parameters: PL/pgSQL bodies hold % and : that a
    driver given parameters, or SQLAlchemy's text(), would take for placeholders."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def drop_queue_schema(connection: Connection) -> None:
    """Every procrastinate_* table, function and type in the current schema."""
    _execute_raw(
        connection,
        r"""
        DO $body$
        DECLARE object record;
        BEGIN
          FOR object IN SELECT c.relname FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = current_schema() AND c.relkind = 'r'
                AND c.relname LIKE 'procrastinate\_%'
          LOOP
            EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', object.relname);
          END LOOP;
          FOR object IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
              JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\_%'
          LOOP
            EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', object.signature);
          END LOOP;
          FOR object IN SELECT t.typname FROM pg_type t
              JOIN pg_namespace n ON n.oid = t.typnamespace
              WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c')
                AND t.typname LIKE 'procrastinate\_%'
          LOOP
            EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', object.typname);
          END LOOP;
        END
        $body$
        """,
    )
