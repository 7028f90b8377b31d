from __future__ import annotations


class FetchError(Exception):
    """A fetch that did not give usable content.

    ``reason`` is a short category for crawl summaries ("timeout", "http 404",
    "too large", "robots.txt", …); ``detail`` says what exactly, for the record.
    """

    def __init__(self, reason: str, detail: str, *, url: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.url = url


class RefusedAddress(FetchError):
    def __init__(self, detail: str, *, url: str = "") -> None:
        super().__init__("refused address", detail, url=url)
