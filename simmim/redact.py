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
    """``https://user:pass@host/p?token=t`` → ``https://user:***@host/p?token=***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _mask_userinfo_loosely(url)
    if not parts.netloc:  # not a URL after all: hide anything shaped like name:password@
        return _USER_PASSWORD.sub(rf"\1:{MASK}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        if has_password:
            netloc = f"{user}:{MASK}@{hostport}"
        elif len(user) >= TOKEN_LIKE_USER:
            netloc = f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(SECRET_PARAMS.search(name) for name, _ in pairs):
            query = urlencode(
                [(name, MASK if SECRET_PARAMS.search(name) else value) for name, value in pairs],
                safe="*",
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask_userinfo_loosely(text: str) -> str:
    """For strings urlsplit refuses (a bad IPv6 host): still hide anything before an @ and
    the values of secret-looking parameters."""
    text = re.sub(r"(://)[^/@\s]*@", rf"\1{MASK}@", text)
    return _SECRET_VALUE.sub(rf"\1{MASK}", text)


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
