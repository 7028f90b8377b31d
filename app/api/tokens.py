"""API tokens: created with a scope, stored as SHA-256 only, shown once, revocable.

`simmim token create|list|revoke` and the API's auth call these; a token is
``smm_<43 url-safe characters>`` (256 random bits), so a hash lookup is all a check costs.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, or_, select
from sqlalchemy.exc import IntegrityError

from simmim.clock import Clock, utcnow
from simmim.db import session_factory, session_scope
from simmim.errors import SimmimError
from simmim.models import ApiToken

TOKEN_PREFIX = "smm_"
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often


class Scope(enum.StrEnum):
    READ = "read"  # search, items, trends, alerts and every other list
    ADMIN = "admin"  # also every write: acknowledge, rules, queries, sources, runs

    def allows(self, needed: Scope) -> bool:
        return self is Scope.ADMIN or needed is Scope.READ


class TokenError(SimmimError):
    pass


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.name,
        Scope(row.scope),
        row.prefix,
        row.created_at,
        row.last_used_at,
        row.revoked_at,
    )


def create_token(engine: Engine, name: str, scope: Scope) -> tuple[TokenInfo, str]:
    """A new token; the secret is returned here and never again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError(f"token name {name!r} must be 1 to 100 characters")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name, scope=scope.value, token_sha256=token_hash(secret), prefix=secret[:10]
    )
    try:
        with session_scope(session_factory(engine)) as session:
            session.add(row)
            session.flush()
            return _info(row), secret
    except IntegrityError:
        raise TokenError(
            f"a token named {name!r} exists", hint="choose another name, or revoke that one"
        ) from None


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with session_scope(session_factory(engine)) as session:
        return [_info(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.id))]


def revoke_token(engine: Engine, ref: str, *, clock: Clock = utcnow) -> TokenInfo:
    """By name or id; a revoked token stops working at once (and stays listed)."""
    match = ApiToken.name == ref
    clause = or_(match, ApiToken.id == int(ref)) if ref.isdigit() else match
    with session_scope(session_factory(engine)) as session:
        row = session.scalars(select(ApiToken).where(clause)).first()
        if row is None:
            raise TokenError(f"no token {ref!r}", hint="see `simmim token list`")
        if row.revoked_at is None:
            row.revoked_at = clock()
        session.flush()
        return _info(row)


def check_token(engine: Engine, secret: str, *, clock: Clock = utcnow) -> TokenInfo | None:
    """The live token with this secret, or None (unknown or revoked)."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    with session_scope(session_factory(engine)) as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_hash(secret)))
        if row is None or row.revoked_at is not None:
            return None
        now = clock()
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
            row.last_used_at = now
        return _info(row)
