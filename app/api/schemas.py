"""Request and response bodies: what the OpenAPI schema (at /docs) shows and checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_ID = 2**62  # every id fits a 64-bit column on each backend
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
DAY_S = 86400


def _in_utc(value: datetime) -> datetime:
    """A time without an offset is UTC; one far outside any feed's dates (or one that
    would overflow once moved to UTC, 0001-01-01+14:00) is refused, never a 500."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"give a time between {EARLIEST.year} and {LATEST.year}")
    return value


Time = Annotated[datetime, AfterValidator(_in_utc)]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID, description="The object's id.")]
Space = Literal["fused", "image", "text"]
SentimentLabel = Literal["negative", "neutral", "positive"]
SeriesKindName = Literal["all", "source", "topic", "ticker", "query"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Filters(Strict):
    since: Time | None = Field(
        default=None, description="Published at or after (ISO 8601; no offset: UTC)."
    )
    until: Time | None = Field(default=None, description="Published before.")
    sources: list[Id] = Field(default_factory=list, max_length=500, description="Source ids.")
    topics: list[str] = Field(default_factory=list, max_length=100)
    tickers: list[str] = Field(default_factory=list, max_length=100)
    sentiments: list[SentimentLabel] = Field(default_factory=list, max_length=3)


class SearchRequest(Strict):
    """A text, an image (base64), both, or a raw query vector of the space's dimension."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "bank run fears", "space": "fused", "k": 10},
                {
                    "text": "flooded factory",
                    "space": "image",
                    "k": 5,
                    "filters": {"sentiments": ["negative"]},
                },
            ]
        },
    )
    text: str | None = Field(default=None, description="Query text (max api.max_query_chars).")
    image_base64: str | None = Field(default=None, description="A PNG/JPEG/WebP/GIF image, base64.")
    vector: list[float] | None = Field(
        None, description="A query vector of the index's dimension (no model needed)."
    )
    space: Space = "fused"

    @field_validator("vector")
    @classmethod
    def _a_direction(cls, vector: list[float] | None) -> list[float] | None:
        """Finite and not all zero; scaled by its largest entry so that squaring it never
        overflows (3e38 made the score null). Only its direction counts for a cosine."""
        if vector is None:
            return None
        if not all(math.isfinite(v) for v in vector):
            raise ValueError("every entry of the vector must be a finite number")
        largest = max((abs(v) for v in vector), default=0.0)
        if largest == 0:
            raise ValueError("the vector is all zeros: it has no direction to search")
        return [v / largest for v in vector]

    k: int = Field(default=10, ge=1, le=100_000, description="Results wanted (max api.max_k).")
    filters: Filters = Field(default_factory=Filters)
    collapse: bool = Field(
        default=True,
        description="Fold identical and near-identical items into one result (its "
        "`duplicates` and `also_in` list the others); false shows every copy.",
    )


class SimilarRequest(Strict):
    space: Space = "fused"
    k: int = Field(default=10, ge=1, le=100_000)
    filters: Filters = Field(default_factory=Filters)
    collapse: bool = True


class SourceRef(BaseModel):
    id: int
    name: str


class SentimentOut(BaseModel):
    label: str
    score: float
    confidence: float


class SearchHit(BaseModel):
    id: int
    score: float
    space: str
    title: str | None
    text: str | None = Field(
        description="The item's text, cut at 500 characters (a post has no title: this is "
        "what it says); GET /v1/items/{id} has all of it."
    )
    url: str | None
    image_url: str | None = Field(description="This API's path to the item's image.")
    source: SourceRef
    published_at: datetime | None
    sentiment: SentimentOut | None
    topics: list[str]
    tickers: list[str]
    duplicates: list[int] = Field(
        default_factory=list, description="Ids of identical items folded into this one."
    )
    also_in: list[str] = Field(
        default_factory=list, description="Other sources carrying the same item."
    )


class SearchResponse(BaseModel):
    results: list[SearchHit]
    warnings: list[str] = Field(
        default_factory=list,
        description="What makes these results doubtful, e.g. a model fitted on another "
        "data dir's corpus.",
    )


class TopicScore(BaseModel):
    name: str
    score: float


class WordWeight(BaseModel):
    word: str
    weight: float


class ItemOut(BaseModel):
    id: int
    title: str | None
    text: str | None
    url: str | None
    image_url: str | None
    source: SourceRef
    published_at: datetime | None
    crawled_at: datetime
    status: str
    error: str | None
    sentiment: SentimentOut | None
    topics: list[TopicScore]
    tickers: list[str]


class ExplainRequest(Strict):
    query: str | None = Field(
        None, description="With a query text: where in the image it matches (image items)."
    )


class ExplainOut(BaseModel):
    words: list[WordWeight] = Field(description="Each word and how much the match used it.")
    heatmap_png_base64: str | None = Field(description="The image with a heatmap over it.")


class TrendPoint(BaseModel):
    key: str
    start: datetime
    volume: int
    mean_sentiment: float | None
    negative_share: float | None


class TrendsOut(BaseModel):
    kind: str
    bucket: str
    points: list[TrendPoint]


class SeriesOut(BaseModel):
    key: str
    volume: int


class CompanyOut(BaseModel):
    """A company the monitor recognises; ``id`` is its key in ticker trends and rules."""

    id: str
    name: str
    aliases: list[str]
    symbols: list[str]
    country: str
    indices: list[str]
    source: str = Field(description="listed | known | settings | user")


class Page(BaseModel):
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null: done.")


class SeriesPage(Page):
    items: list[SeriesOut]


class AlertOut(BaseModel):
    id: int
    rule_id: int
    series_kind: str
    series_key: str
    direction: str
    status: str
    state: Literal["firing", "resolved", "fired and resolved"] = Field(
        description="status in words: 'fired and resolved' for a spike that began and "
        "ended in the same detection run."
    )
    bucket_hours: int
    value: float
    baseline: float
    z: float
    p_value: float
    volume: int
    summary: str
    fired_at: datetime
    resolved_at: datetime | None
    acknowledged_at: datetime | None


class AlertPage(Page):
    items: list[AlertOut]


class RuleOut(BaseModel):
    id: int
    name: str
    kind: str
    series_kind: str
    series_key: str | None
    bucket_hours: int
    window: int
    min_history: int
    min_volume: int
    z: float
    p_value: float
    confirm: int
    cooldown_s: int
    repeat_s: int | None
    enabled: bool


class RulePage(Page):
    items: list[RuleOut]


class RuleSettings(Strict):
    window: int | None = Field(default=None, ge=2, le=10_000)
    min_history: int | None = Field(default=None, ge=1, le=10_000)
    min_volume: int | None = Field(default=None, ge=0, le=10**9)
    z: float | None = Field(default=None, gt=0, le=100)
    p_value: float | None = Field(default=None, gt=0, lt=1)
    confirm: int | None = Field(default=None, ge=1, le=1000)
    cooldown_s: int | None = Field(default=None, ge=0, le=366 * DAY_S)
    repeat_s: int | None = Field(default=None, ge=60, le=366 * DAY_S)
    enabled: bool | None = None


class RuleCreate(RuleSettings):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "acme negatives", "kind": "negative_share", "series": "ticker:ACME"}
            ]
        },
    )
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["volume_spike", "negative_share", "sentiment_drop", "source_silent"]
    series: str = Field(
        min_length=1, max_length=210, description='A series kind, optionally ":key": "ticker:ACME".'
    )
    bucket: Literal["hour", "day"] = "day"


class QueryOut(BaseModel):
    id: int
    name: str
    text: str | None
    has_image: bool
    space: str
    threshold: float
    enabled: bool
    created_at: datetime


class QueryPage(Page):
    items: list[QueryOut]


class QueryCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    text: str | None = Field(default=None, max_length=2000)
    image_base64: str | None = None
    space: Space = "fused"
    threshold: float = Field(default=0.3, ge=-1, le=1)
    with_rule: bool = Field(
        default=True, description="Also add a volume-spike rule on its matches."
    )


class SourceOut(BaseModel):
    id: int
    name: str
    kind: str
    location: str
    enabled: bool
    every_s: int
    items: int
    last_success_at: datetime | None
    last_error: str | None
    failures: int
    next_due_at: datetime | None


class SourcePage(Page):
    items: list[SourceOut]


class FailedRecordOut(BaseModel):
    where: str = Field(description='The URL, or "line N" of a dump.')
    reason: str
    detail: str
    last_seen: datetime
    times: int = Field(description="How many of the crawls read failed on it.")


class SourceFailuresOut(BaseModel):
    source: SourceRef
    records: list[FailedRecordOut]
    not_kept: int = Field(description="Failed records counted but not kept one by one.")
    runs: int = Field(description="How many recent crawls were read.")


class SourceCreate(Strict):
    location: str = Field(min_length=1, max_length=4000)
    kind: Literal["rss", "page", "folder", "jsonl"]
    name: str | None = Field(default=None, min_length=1, max_length=200)
    every: str = Field(
        default="15m", max_length=40, description="How often: 30s, 15m, 1h, 1d (at most 366d)."
    )

    @field_validator("every")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        from indexer.source_admin import SourceError, parse_every

        try:
            parse_every(value)
        except SourceError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}") from None
        return value


class Enabled(Strict):
    enabled: bool


class RunStarted(BaseModel):
    run_id: int


class RunOut(BaseModel):
    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None
    summary: dict[str, Any]
    error: str | None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    error: str
    detail: Any = None
