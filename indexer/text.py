"""Normalised text and its hash: the same story syndicated twice is one item."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata

_URL = re.compile(r"https?://\S+")
_TAG = re.compile(r"<[^>]+>")
_NON_WORD = re.compile(r"[^\w$]+", re.UNICODE)
MIN_WORDS_FOR_DEDUP = 5  # "Read more" must not make every item a duplicate
# C0 controls but tab, newline and carriage return; DEL; C1 controls. PostgreSQL refuses
# NUL in text, and none of them carries meaning for search or scoring.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str | None) -> str | None:
    """Text as every backend can store it: control characters (NUL first) removed."""
    return None if text is None else _CONTROL.sub("", text)


def strip_html(fragment: str) -> str:
    """Feed summaries often carry markup; keep the words."""
    return " ".join(html.unescape(_TAG.sub(" ", fragment)).split())


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _URL.sub(" ", text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def content_key(title: str | None, body: str | None, image_sha256: str | None) -> str:
    """Text and image identity, the text normalised as the crawler's dedup does (case,
    spacing, punctuation, links ignored); '' when there is neither, which matches nothing."""
    words = normalise(f"{title or ''} {body or ''}")
    if not words and not image_sha256:
        return ""
    return f"{words}|{image_sha256 or ''}"


def text_sha256(title: str | None, body: str | None) -> str | None:
    """Hash of the normalised title + text, or None when too short to mean anything."""
    words = normalise(" ".join(part for part in (title, body) if part))
    if len(words.split()) < MIN_WORDS_FOR_DEDUP:
        return None
    return hashlib.sha256(words.encode("utf-8")).hexdigest()
