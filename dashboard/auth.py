"""Who may see the dashboard: decided in ``app.py`` before any page code runs, on every rerun.

Four modes (``DashboardSettings.auth_mode``): a trusted reverse proxy's user header, single
sign-on through Streamlit's OIDC login, a shared password, or none. Until a session is
let in, ``app.py`` registers only the login page with ``st.navigation``, so asking the
server for any other page by name gets the login page; each view also calls
:func:`require_access` first, so a view reached any other way stops before it reads data.

Password attempts are limited per client address, across its sessions (``login_attempts``
in a row, then a wait that doubles: a new session per guess gains nothing), and across the
process (``GLOBAL_FAILURES_PER_MINUTE``: past it, an address that failed in the last
minute is refused and any other waits a second per attempt, so the right password still
gets in), and every failure is logged with the session and client address, never with
what was typed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import streamlit as st

from simmim.settings import DashboardSettings

log = logging.getLogger("simmim.dashboard.auth")

SESSION_KEY = "simmim_auth"  # holds the stamp of the credential that let this session in
MAX_LOCKOUT_S = 300.0
GLOBAL_FAILURES_PER_MINUTE = 30
BUSY_PAUSE_S = 1.0  # per attempt from a fresh address while the server is under attack
MAX_TRACKED_CLIENTS = 10_000


# ---- the decision, without drawing anything


def _stamp(secret: str) -> str:
    """Changes when the password does: a session let in under an old one is out again."""
    return hashlib.sha256(b"simmim-dashboard:" + secret.encode()).hexdigest()


def _header(name: str) -> str | None:
    try:
        value = st.context.headers.get(name)
    except Exception:  # no request context (a bare script run): no header
        return None
    return value.strip() if value and value.strip() else None


def _proxy_allows(config: DashboardSettings) -> bool:
    """The reverse proxy vouches for a user, and it is one who may come in."""
    assert config.proxy_user_header is not None
    user = _header(config.proxy_user_header)
    allowed = config.proxy_allowed_users
    return user is not None and (not allowed or user in allowed)


def _logged_in() -> bool:
    """False also when Streamlit has no [auth] secrets (the app was not started by
    `simmim dashboard`): then nobody gets in, rather than everybody."""
    try:
        return bool(st.user.is_logged_in)
    except AttributeError:
        return False


def _oidc_allows(config: DashboardSettings) -> bool:
    """Signed in with the provider, with an account that may come in."""
    if not _logged_in():
        return False
    allowed = config.oidc.allowed_emails
    email = str(st.user.get("email") or "").lower()
    return not allowed or email in {a.lower() for a in allowed}


def has_access(config: DashboardSettings) -> bool:
    """True when this session may see pages: checked afresh on every rerun."""
    mode = config.auth_mode
    if mode == "none":
        return True
    if mode == "proxy":
        return _proxy_allows(config)
    if mode == "oidc":
        return _oidc_allows(config)
    assert config.password is not None
    stamp = st.session_state.get(SESSION_KEY)
    return isinstance(stamp, str) and hmac.compare_digest(
        stamp, _stamp(config.password.get_secret_value())
    )


def require_access(config: DashboardSettings) -> None:
    """First line of every view: no data for a session that is not let in."""
    if not has_access(config):
        st.stop()


# ---- attempt limits


@dataclass
class _Limiter:
    """Failed password attempts of this process: per client address (in a row, and the
    wait they earned) and all together over the last minute."""

    failures: deque[float] = field(default_factory=deque)
    clients: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # row, until, last
    lock: threading.Lock = field(default_factory=threading.Lock)

    def busy(self, now: float) -> bool:
        with self.lock:
            while self.failures and now - self.failures[0] > 60:
                self.failures.popleft()
            return len(self.failures) >= GLOBAL_FAILURES_PER_MINUTE

    def wait_left(self, client: str, now: float) -> float:
        with self.lock:
            return max(0.0, self.clients.get(client, (0, 0.0, 0.0))[1] - now)

    def failed_lately(self, client: str, now: float) -> bool:
        with self.lock:
            return now - self.clients.get(client, (0, 0.0, -1e9))[2] < 60

    def failed(self, client: str, now: float, attempts: int) -> int:
        with self.lock:
            self.failures.append(now)
            row = self.clients.get(client, (0, 0.0, 0.0))[0] + 1
            until = (
                now + min(MAX_LOCKOUT_S, 2.0 ** (row - attempts + 1)) if row >= attempts else 0.0
            )
            self.clients[client] = (row, until, now)
            if len(self.clients) > MAX_TRACKED_CLIENTS:  # forget the quietest first
                oldest = min(self.clients, key=lambda c: self.clients[c][2])
                del self.clients[oldest]
            return row

    def succeeded(self, client: str) -> None:
        with self.lock:
            self.clients.pop(client, None)


# One per process: the app script runs again on every rerun, imported modules do not.
_LIMITER = _Limiter()


def _client_key() -> str:
    """Whose attempts count together: the client address (sessions are free to open).
    Unknown addresses share one key, which is the safe side."""
    try:
        address = st.context.ip_address
    except Exception:
        address = None
    return address if isinstance(address, str) and address else "unknown address"


def _client() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return f"session {ctx.session_id if ctx else '?'} from {_client_key()}"


def _record_failure(config: DashboardSettings, now: float) -> None:
    failures = _LIMITER.failed(_client_key(), now, config.login_attempts)
    log.warning("dashboard: wrong password (%d in a row) for %s", failures, _client())


# ---- what a session that is not let in sees


def login_view(config: DashboardSettings) -> None:
    """The only page registered for a session that is not let in."""
    st.title("SimMIM")
    mode = config.auth_mode
    if mode == "proxy":
        header = config.proxy_user_header
        user = _header(header or "")
        log.warning(
            "dashboard: refused %s (%s)",
            _client(),
            f"user {user!r} not allowed" if user else f"no {header} header",
        )
        st.error(
            "Access denied: this dashboard is served behind an authenticating proxy, and "
            "this request did not come through it with an allowed user."
        )
        return
    if mode == "oidc":
        if _logged_in():
            log.warning("dashboard: refused account %s for %s", st.user.get("email"), _client())
            st.error("This account may not use the dashboard.")
            st.button("Log out", on_click=st.logout)
        else:
            st.button("Log in with single sign-on", on_click=st.login, type="primary")
        return
    _password_form(config)


def _password_form(config: DashboardSettings) -> None:
    assert config.password is not None
    entered = st.text_input("Password", type="password", key="password")
    if not entered:
        return
    if entered == st.session_state.get("simmim_auth_tried"):  # judged already: not again
        st.error(str(st.session_state.get("simmim_auth_message", "Wrong password.")))
        return
    st.session_state["simmim_auth_tried"] = entered
    limiter, client = _LIMITER, _client_key()
    now = time.monotonic()
    wait = limiter.wait_left(client, now)
    busy = limiter.busy(now)
    if wait > 0 or (busy and limiter.failed_lately(client, now)):
        log.warning("dashboard: login attempt refused while locked out, %s", _client())
        _say(
            f"Too many wrong passwords; try again in {max(1, round(wait))} s."
            if wait > 0
            else "Too many wrong passwords on this server; try again in a minute."
        )
        return
    if busy:  # many failures from elsewhere: this address may try, one a second
        time.sleep(BUSY_PAUSE_S)
        now = time.monotonic()
    secret = config.password.get_secret_value()
    if hmac.compare_digest(entered.encode(), secret.encode()):
        st.session_state[SESSION_KEY] = _stamp(secret)
        limiter.succeeded(client)
        for key in ("simmim_auth_tried", "simmim_auth_message"):
            st.session_state.pop(key, None)
        log.info("dashboard: %s logged in", _client())
        st.rerun()
    _record_failure(config, now)
    _say("Wrong password.")


def _say(message: str) -> None:
    st.session_state["simmim_auth_message"] = message
    st.error(message)
