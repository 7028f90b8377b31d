"""Logging is configured once, by the entry point; library code only calls getLogger."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

from simmim.redact import install_record_masking


def configure_logging(level: str = "INFO", *, debug: bool = False) -> None:
    install_record_masking()  # no credential in a URL reaches any log record
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = RichHandler(
        console=Console(stderr=True),
        show_path=debug,
        rich_tracebacks=debug,
        markup=False,
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else level)
    # Third-party chatter stays at WARNING unless debugging.
    for noisy in ("httpx", "httpcore", "urllib3", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    # Pillow's debug lines are one per image chunk: a crafted PNG of 200,000 text chunks
    # made a --debug crawl take 14 minutes instead of 38 s. Its warnings still show.
    logging.getLogger("PIL").setLevel(logging.INFO if debug else logging.WARNING)
