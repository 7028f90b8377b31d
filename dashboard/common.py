"""What every page shares: settings, cached resources, the password gate, error display.

Pages hold layout only; they call the same back-end functions as the CLI. Heavy things
(engine, encoder, indexes) live in ``st.cache_resource`` keyed by what identifies them,
so a settings change (or another test's data directory) never reuses a stale one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from simmim.db import make_engine, session_factory, session_scope
from simmim.errors import SimmimError
from simmim.settings import Settings, load_settings

if TYPE_CHECKING:
    from encoder import Encoder
    from indexer.index import StoreSet
    from indexer.search import SearchResult

T = TypeVar("T")


def settings() -> Settings:
    """Read per run (cheap), so the environment of the process decides."""
    return load_settings()


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return make_engine(url)


def engine() -> Engine:
    return _engine(settings().database_url)


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def _encoder(
    model: str, pretrained: str, fusion: str, device: str, int8: bool, indexed: str
) -> Encoder:
    from encoder import load_encoder
    from indexer.live_fusion import following_index

    return following_index(settings(), load_encoder(settings()), indexed or None)


@st.cache_data(show_spinner=False, max_entries=8)
def _indexed_fingerprint(data_dir: str, backend: str, stamp: str) -> str:
    from indexer.live_fusion import indexed_fingerprint

    return indexed_fingerprint(settings()) or ""


def encoder() -> Encoder:
    """The configured model, with the fusion the live index was built with (a switch by
    self-training loads the new one on the next page run)."""
    from indexer.index import stores_stamp

    config = settings()
    indexed = _indexed_fingerprint(str(config.data_dir), config.index.backend, stores_stamp(config))
    return _encoder(
        config.encoder.model,
        config.encoder.pretrained,
        str(config.encoder.fusion_checkpoint or ""),
        config.encoder.device,
        config.encoder.cpu_int8,
        indexed,
    )


@st.cache_resource(show_spinner="Loading the indexes…")
def _indexes(data_dir: str, backend: str, fingerprint: str, dim: int, stamp: str) -> StoreSet:
    from indexer.index import open_stores

    return open_stores(settings(), fingerprint, dim, read_only=True)


def indexes() -> StoreSet:
    """Reopened whenever the stores changed (a save or a rebuild's swap changes the stamp)."""
    from indexer.index import stores_stamp

    enc = encoder()
    config = settings()
    return _indexes(
        str(config.data_dir), config.index.backend, enc.fingerprint, enc.dim, stores_stamp(config)
    )


def index_manifests() -> dict[str, dict[str, Any]]:
    from indexer.index import stores_status

    return stores_status(settings())


@contextmanager
def session() -> Iterator[Session]:
    """One transaction for the back-end calls of a page action (committed on success)."""
    with session_scope(session_factory(engine())) as active:
        yield active


def database_ready() -> bool:
    """Show the way forward instead of a traceback when the database is not set up."""
    from simmim import migrations

    try:
        current = migrations.current_revision(engine())
    except SimmimError as exc:  # unreachable server, unreadable file
        st.error(f"Cannot open the database: {exc.message}")
        st.info("Check SIMMIM_DATABASE__URL, then run `simmim init`.")
        return False
    if current != migrations.head_revision(settings().database_url):
        st.info(
            "The database is not set up yet (or needs an upgrade). Run `simmim init` "
            "(or `simmim db upgrade`), then reload this page."
        )
        return False
    return True


def attempt(action: Callable[[], T]) -> T | None:
    """Run a back-end call; a SimmimError becomes a readable message, not a stack trace."""
    try:
        return action()
    except SimmimError as exc:
        st.error(exc.message + (f" — {exc.hint}" if exc.hint else ""))
        return None


def require_access() -> None:
    """The first call of every view: stops the script for a session that is not let in."""
    from dashboard.auth import require_access as check

    check(settings().dashboard)


@st.cache_resource(show_spinner=False)
def configure_logging_once() -> bool:
    """Our log lines (login failures among them) formatted and masked, once per process."""
    from simmim.logs import configure_logging

    configure_logging(settings().log_level)
    return True


# ---- query results: cached briefly (st.cache_data), keyed by plain values only


@st.cache_data(ttl=30, show_spinner=False)
def trends(
    url: str,
    kind: str,
    bucket_hours: int,
    since: datetime,
    until: datetime,
    keys: tuple[str, ...],
) -> pd.DataFrame:
    from monitor.trends import trends as compute

    return compute(
        _engine(url), kind, bucket_hours=bucket_hours, since=since, until=until, keys=list(keys)
    )


@st.cache_data(ttl=30, show_spinner=False)
def series_keys(url: str, kind: str) -> list[tuple[str, int]]:
    from monitor.trends import series_keys as compute

    return compute(_engine(url), kind)


@st.cache_data(ttl=30, show_spinner="Searching…", max_entries=64)
def search(
    url: str,
    stamp: str,
    text: str | None,
    image: bytes | None,
    space: str,
    k: int,
    since: datetime | None,
    sources: tuple[int, ...],
    topics: tuple[str, ...],
    sentiments: tuple[str, ...],
    collapse: bool = True,
    like: int | None = None,
    tickers: tuple[str, ...] = (),
) -> list[SearchResult]:
    """``stamp`` (the index files' mtimes) makes a re-index invalidate cached results;
    ``like``: more like this item (its own vector) instead of a text/image query."""
    from indexer.search import more_like_this
    from indexer.search import search as run
    from monitor.filters import search_filters

    filters = search_filters(
        since=since, sources=sources, topics=topics, sentiments=sentiments, tickers=tickers
    )
    if like is not None:
        return more_like_this(
            _engine(url), indexes(), like, space=space, k=k, filters=filters, collapse=collapse
        )
    return run(
        _engine(url),
        encoder(),
        indexes(),
        text=text,
        image=image,
        space=space,
        k=k,
        filters=filters,
        collapse=collapse,
        like=like,
    )


def index_stamp() -> str:
    from indexer.index import stores_stamp

    return stores_stamp(settings())


@st.cache_data(ttl=300, show_spinner=False)
def alert_chart(url: str, alert_id: int, last_bucket: int) -> bytes:
    """The alert's PNG chart (drawn once, not on every rerun); ``last_bucket`` in the key
    redraws it when the alert grows."""
    from monitor.notify import alert_chart as draw

    with session_scope(session_factory(_engine(url))) as session:
        return draw(session, alert_id)


def company_labels(keys: list[str]) -> dict[str, str]:
    """ "BARC · Barclays" for each ticker key, so typing a company's name finds it."""
    from monitor.companies import company_table

    universe = company_table(settings())
    labels = {key: key for key in keys}
    for key in keys:
        company = universe.get(key)
        if company is not None:
            labels[key] = f"{key} · {company.name}"
    return labels
