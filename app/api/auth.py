"""Bearer tokens with a scope: read for every GET and search, admin for every write."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.api.errors import ApiError
from app.api.tokens import Scope, TokenInfo, check_token

CACHE_S = 5.0  # a revoked token stops within this long on every worker process
bearer = HTTPBearer(auto_error=False, description="`simmim token create NAME --scope read|admin`")


class TokenCache:
    """Recent checks by secret, so a busy client costs one database read per few seconds."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, TokenInfo | None]] = {}

    def cached(self, secret: str) -> tuple[bool, TokenInfo | None]:
        """(known, info): known is False when the database must be asked."""
        hit = self._seen.get(secret)
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return True, hit[1]
        return False, None

    def check(self, request: Request, secret: str) -> TokenInfo | None:
        known, info = self.cached(secret)
        if known:
            return info
        now = time.monotonic()
        info = check_token(request.app.state.api.engine, secret)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[secret] = (now, info)
        return info


async def authorize(request: Request, secret: str | None, needed: Scope) -> TokenInfo:
    """The token behind ``secret`` if it may do what needs ``needed``; 401/403 otherwise.

    Async, so a cached token is checked on the event loop: a sync dependency costs every
    request a hop to a worker thread and back."""
    if not secret:
        raise ApiError(
            401, "missing token", "send Authorization: Bearer <token> (simmim token create)"
        )
    tokens: TokenCache = request.app.state.tokens
    known, info = tokens.cached(secret)
    if not known:
        info = await run_in_threadpool(tokens.check, request, secret)
    if info is None:
        raise ApiError(401, "unknown or revoked token", "create one: simmim token create")
    if not info.scope.allows(needed):
        raise ApiError(403, f"this needs an {needed} token", f"token {info.name!r} is {info.scope}")
    return info


def require(scope: Scope) -> Callable[..., Awaitable[TokenInfo]]:
    async def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> TokenInfo:
        return await authorize(request, credentials.credentials if credentials else None, scope)

    return dependency


READ = Depends(require(Scope.READ))
ADMIN = Depends(require(Scope.ADMIN))
