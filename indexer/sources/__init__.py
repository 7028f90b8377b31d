"""Source kinds: one reader per kind, each turning a location into item candidates."""

from __future__ import annotations

from indexer.sources.base import SourceReader
from indexer.sources.folder import read_folder
from indexer.sources.jsonl import read_jsonl
from indexer.sources.page import read_page
from indexer.sources.rss import read_rss
from simmim.models import SourceKind

READERS: dict[SourceKind, SourceReader] = {
    SourceKind.RSS: read_rss,
    SourceKind.PAGE: read_page,
    SourceKind.FOLDER: read_folder,
    SourceKind.JSONL: read_jsonl,
}
