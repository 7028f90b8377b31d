"""One run at a time per step (crawl, index, score, detect), across processes and machines.

PostgreSQL: a session-level advisory lock on a connection held for the run; the server
drops it when the process dies, so a crash never leaves a stale lock. The holder is told
apart by its ``application_name`` (pid, host, start). SQLite: an exclusive ``flock`` on a
file beside the database, which the kernel likewise releases with the process; the file
holds the holder's pid, host and start for the message a second run shows.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from simmim.clock import utcnow
from simmim.errors import SimmimError


class RunInProgress(SimmimError):
    """Another process runs this step now."""

    exit_code = 3


def _holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}, since {utcnow():%Y-%m-%d %H:%M:%S} UTC"


def _busy(name: str, holder: str | None) -> RunInProgress:
    return RunInProgress(
        f"another {name} run is in progress ({holder or 'holder unknown'})",
        hint="wait for it to finish, or pass --wait to queue behind it",
    )


@contextmanager
def run_lock(
    engine: Engine, name: str, *, wait: bool = False, shared: bool = False
) -> Iterator[None]:
    """Hold the lock for step ``name`` for the block; raise RunInProgress when another
    process holds it (or wait for it with ``wait``). ``shared`` holders run beside each
    other and exclude only the exclusive ones (many index adders, one reconcile)."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, name, wait=wait, shared=shared):
            yield
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield  # a private in-memory database: nobody else can run against it
        return
    with _file_lock(Path(f"{database}.{name}.lock"), name, wait=wait, shared=shared):
        yield


def _key(connection: Connection, name: str) -> int:
    """Advisory locks are per database server: the key names the database and schema too,
    so two deployments sharing a server (or tests in their own schemas) never collide."""
    row = connection.execute(text("SELECT current_database(), current_schema()")).one()
    digest = hashlib.sha256(f"simmim:{row[0]}:{row[1]}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def _advisory_lock(engine: Engine, name: str, *, wait: bool, shared: bool) -> Iterator[None]:
    kind = "_shared" if shared else ""
    with engine.connect() as connection:
        key = _key(connection, name)
        connection.execute(
            text("SELECT set_config('application_name', :label, false)"),
            {"label": f"simmim {name}: {_holder()}"[:63]},
        )
        if wait:
            connection.execute(text(f"SELECT pg_advisory_lock{kind}(:key)"), {"key": key})
        elif not connection.scalar(text(f"SELECT pg_try_advisory_lock{kind}(:key)"), {"key": key}):
            holder = _advisory_holder(connection, key)
            connection.rollback()
            raise _busy(name, holder)
        connection.commit()  # the lock is the session's, not the transaction's
        try:
            yield
        finally:
            connection.execute(text(f"SELECT pg_advisory_unlock{kind}(:key)"), {"key": key})
            connection.execute(text("SELECT set_config('application_name', '', false)"))
            connection.commit()


def _advisory_holder(connection: Connection, key: int) -> str | None:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    label = connection.scalar(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid::bigint = :high AND l.objid::bigint = :low LIMIT 1"
        ),
        {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF},
    )
    if not label:
        return None
    return str(label).partition(": ")[2] or str(label)


@contextmanager
def _file_lock(path: Path, name: str, *, wait: bool, shared: bool) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            fcntl.flock(fd, mode | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise _busy(name, _file_holder(fd)) from None
        if not shared:  # the holder named in the file is the exclusive one
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"holder": _holder()}).encode(), 0)
        try:
            yield
        finally:
            if not shared:
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _file_holder(fd: int) -> str | None:
    try:
        data = os.pread(fd, 4096, 0)
        return str(json.loads(data.decode())["holder"]) if data else None
    except (OSError, ValueError, KeyError):
        return None
