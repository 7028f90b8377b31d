"""Secrets never shown: one helper masks credentials in URLs wherever a URL is displayed.

Sources, database and SMTP URLs may carry credentials (``https://user:pass@host``,
``?token=...``). They are stored as given, since fetching needs them, but every error, log
line, CLI table and dashboard cell shows them through :func:`mask_url` or, for free text
that may contain URLs (exception messages), :func:`mask_text`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMS = re.compile(
    r"(pass(word)?|pwd|secret|token|api[_-]?key|key|auth|sig(nature)?|credential|session)",
    re.IGNORECASE,
)
# scheme://[userinfo@]rest — also SQLAlchemy's "postgresql+psycopg://" schemes.
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>]+")
# "name:password@" anywhere, for strings that are not URLs (a mistyped database URL).
_USER_PASSWORD = re.compile(r"([^\s/:@'\"]+):([^\s/@'\"]+)@")
_SECRET_VALUE = re.compile(rf"([?&;][^=&#\s]*{SECRET_PARAMS.pattern}[^=&#\s]*=)[^&#\s'\"]*", re.I)
TOKEN_LIKE_USER = 16  # a user name this long is likely an access token (https://TOKEN@host)


def mask_url(url: str) -> str:
    """``https://user:pass@host/p?token=t`` → ``https://user:***@host/p?token=***``.

    The password is found as SQLAlchemy reads it (up to the ``@`` before the host), not by
    ``urlsplit``, which ends the host part at the first ``/``, ``?`` or ``#`` and so would
    show a password holding one of them (``postgresql://u:pa/ss@db/x``).
    """
    credentials = _credentials(url)
    if credentials is None:
        if "://" not in url:  # not a URL after all: hide anything shaped like name:password@
            return _USER_PASSWORD.sub(rf"\1:{MASK}@", url)
        return _masked_query(url)
    prefix, user, password, rest = credentials
    if password is not None:
        userinfo = f"{user}:{MASK}@"
    elif len(user) >= TOKEN_LIKE_USER:
        userinfo = f"{MASK}@"
    else:
        userinfo = f"{user}@"
    return prefix + userinfo + _masked_query(prefix + rest)[len(prefix) :]


_SCHEME_USER = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://([^:/?#@\s]*)")


def _credentials(url: str) -> tuple[str, str, str | None, str] | None:
    """(``scheme://``, user, password or None, what follows the ``@``), or None when the URL
    carries no user. A password runs to the last ``@`` before the first ``/`` that follows
    its first ``@``: ``p/s@ss`` and ``p#1`` and ``p?x`` all stay whole."""
    match = _SCHEME_USER.match(url)
    if match is None:
        return None
    prefix, user = url[: match.start(1)], match.group(1)
    after = url[match.end() :]
    if after.startswith("@"):
        return prefix, user, None, after[1:]
    if not after.startswith(":") or "@" not in after:
        return None
    body = after[1:]
    slash = body.find("/", body.find("@"))
    end = body.rfind("@", 0, slash if slash >= 0 else len(body))
    return prefix, user, body[:end], body[end + 1 :]


def _masked_query(url: str) -> str:
    """The values of secret-looking query parameters masked; the rest as given."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _SECRET_VALUE.sub(rf"\1{MASK}", url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(SECRET_PARAMS.search(name) for name, _ in pairs):
        return url
    query = urlencode(
        [(name, MASK if SECRET_PARAMS.search(name) else value) for name, value in pairs],
        safe="*",
    )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def mask_text(text: str) -> str:
    """Every URL inside ``text`` masked, and any other ``name:password@``; the rest unchanged."""
    masked = _URL.sub(lambda match: mask_url(match.group(0)), text)
    return _USER_PASSWORD.sub(rf"\1:{MASK}@", masked)


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: leave it to logging
        return
    masked = mask_text(message)
    if masked != message:
        record.msg, record.args = masked, None


_installed = False


def install_record_masking() -> None:
    """Mask URLs in every log record as it is made (third-party ones included), so no
    handler, filter or capture ever sees a credential."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def masked_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        _mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True
