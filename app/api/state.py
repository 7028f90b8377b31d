"""What one API process keeps: settings, engine, the model (loaded once) and the stores
(reopened when they change)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from starlette.requests import Request

from simmim.db import make_engine
from simmim.errors import SimmimError
from simmim.settings import Settings

if TYPE_CHECKING:
    from encoder import Encoder
    from indexer.index import StoreSet

STAMP_CHECK_S = 2.0  # how often a request looks whether the stores changed


class NotReady(SimmimError):
    """The model or the indexes cannot serve yet (HTTP 503)."""


class ApiState:
    def __init__(
        self, settings: Settings, *, engine: Engine | None = None, encoder: Encoder | None = None
    ) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.database_url)
        self._encoder = encoder
        self._stores: StoreSet | None = None
        self._stamp: str | None = None
        self._checked = 0.0
        # Two locks: loading the model takes seconds, and a vector search (answered on
        # the event loop) needs only the stores.
        self._encoder_lock = threading.Lock()
        self._stores_lock = threading.Lock()
        # Settings are fixed for the process: checked once, not on every search.
        from encoder.fitted import fitted_elsewhere

        foreign = fitted_elsewhere(settings)
        self.search_warnings: list[str] = [foreign] if foreign else []

    @property
    def encoder(self) -> Encoder:
        """Loaded once; its fusion follows the live index's (self-training switches it)."""
        from indexer.live_fusion import following_index

        stores = self._stores
        with self._encoder_lock:
            if self._encoder is None:
                from encoder import load_encoder

                try:
                    loaded = load_encoder(self.settings)
                except SimmimError as exc:
                    raise NotReady(f"the model cannot load: {exc.message}", hint=exc.hint) from exc
                self._encoder = following_index(
                    self.settings, loaded, stores.fingerprint if stores else None
                )
            elif stores is not None and self._encoder.fingerprint != stores.fingerprint:
                self._encoder = following_index(self.settings, self._encoder, stores.fingerprint)
            return self._encoder

    def stores(self) -> StoreSet:
        """The stores as the index holds them (its model fingerprint and dimension), so a
        query by vector needs no model; reopened after a save or a rebuild's swap."""
        from indexer.index import open_stores, stores_stamp, stores_status

        now = time.monotonic()
        with self._stores_lock:
            if self._stores is not None and now - self._checked < STAMP_CHECK_S:
                return self._stores
            stamp = stores_stamp(self.settings)
            self._checked = now
            if self._stores is not None and stamp == self._stamp:
                return self._stores
            manifests = stores_status(self.settings)
            if not manifests:
                raise NotReady(
                    "nothing is indexed yet",
                    hint="add sources and run `simmim monitor once` (or `simmim index`)",
                )
            first = next(iter(manifests.values()))
            fresh = open_stores(self.settings, first["fingerprint"], first["dim"], read_only=True)
            # The old set is not closed here: a request on another thread may still be
            # reading it; it goes when the last one lets go of it.
            self._stores, self._stamp = fresh, stamp
        return fresh

    def close(self) -> None:
        if self._stores is not None:
            self._stores.close()
        self.engine.dispose()


def api_state(request: Request) -> ApiState:
    """The process's state, as every route reaches it."""
    state: ApiState = request.app.state.api
    return state
