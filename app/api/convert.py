"""Back-end rows and results as the API's response models."""

from __future__ import annotations

import base64
import binascii
import math

from PIL import Image

from app.api.errors import ApiError
from app.api.schemas import (
    AlertOut,
    ItemOut,
    QueryOut,
    RuleOut,
    SearchHit,
    SentimentOut,
    SourceOut,
    SourceRef,
    TopicScore,
)
from indexer.search import SearchResult
from monitor.alerts import alert_state
from monitor.items import HitScores, ItemDetail
from monitor.models import Alert, Rule, SavedQuery
from simmim.images import ImageDecodeError, open_image
from simmim.models import Source
from simmim.redact import mask_url
from simmim.settings import Settings


def image_url(item_id: int, image_sha256: str | None) -> str | None:
    return f"/v1/items/{item_id}/image" if image_sha256 else None


def sentiment(scored: ItemDetail | HitScores | None) -> SentimentOut | None:
    if scored is None or scored.sentiment_label is None:
        return None
    return SentimentOut(
        label=scored.sentiment_label,
        score=float(scored.sentiment or 0.0),
        confidence=float(scored.confidence or 0.0),
    )


HIT_TEXT_CHARS = 500


def finite_score(score: float) -> float:
    """A cosine for the schema: always a number in [-1, 1]."""
    value = float(score)
    return round(min(1.0, max(-1.0, value)), 6) if math.isfinite(value) else -1.0


def hit(result: SearchResult, scores: HitScores | None) -> SearchHit:
    return SearchHit(
        id=result.item_id,
        score=finite_score(result.score),
        space=result.space,
        title=result.title,
        text=result.text[:HIT_TEXT_CHARS] if result.text else result.text,
        url=result.url,
        image_url=image_url(result.item_id, result.image_sha256),
        source=SourceRef(id=result.source_id, name=result.source_name),
        published_at=result.published_at,
        sentiment=sentiment(scores),
        topics=scores.topics if scores else [],
        tickers=scores.tickers if scores else [],
        duplicates=result.duplicates,
        also_in=result.also_in,
    )


def item(detail: ItemDetail) -> ItemOut:
    return ItemOut(
        id=detail.id,
        title=detail.title,
        text=detail.text,
        url=detail.url,
        image_url=image_url(detail.id, detail.image_sha256),
        source=SourceRef(id=detail.source_id, name=detail.source_name),
        published_at=detail.published_at,
        crawled_at=detail.crawled_at,
        status=detail.status,
        error=detail.error,
        sentiment=sentiment(detail),
        topics=[TopicScore(name=name, score=score) for name, score in detail.topics],
        tickers=detail.tickers,
    )


def alert(row: Alert) -> AlertOut:
    return AlertOut(
        id=row.id,
        rule_id=row.rule_id,
        series_kind=row.series_kind.value,
        series_key=row.series_key,
        direction=row.direction,
        status=row.status.value,
        state=alert_state(row),
        bucket_hours=row.bucket_hours,
        value=row.value,
        baseline=row.baseline,
        z=row.z,
        p_value=row.p_value,
        volume=row.volume,
        summary=row.summary,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        acknowledged_at=row.acknowledged_at,
    )


def rule(row: Rule) -> RuleOut:
    return RuleOut(
        id=row.id,
        name=row.name,
        kind=row.kind.value,
        series_kind=row.series_kind.value,
        series_key=row.series_key,
        bucket_hours=row.bucket_hours,
        window=row.window,
        min_history=row.min_history,
        min_volume=row.min_volume,
        z=row.z,
        p_value=row.p_value,
        confirm=row.confirm,
        cooldown_s=row.cooldown_s,
        repeat_s=row.repeat_s,
        enabled=row.enabled,
    )


def query(row: SavedQuery) -> QueryOut:
    return QueryOut(
        id=row.id,
        name=row.name,
        text=row.text,
        has_image=row.image_sha256 is not None,
        space=row.space,
        threshold=row.threshold,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def source(row: Source, items: int) -> SourceOut:
    return SourceOut(
        id=row.id,
        name=row.name,
        kind=row.kind.value,
        location=mask_url(row.location),  # read tokens never see a source's credentials
        enabled=row.enabled,
        every_s=row.every_s,
        items=items,
        last_success_at=row.last_success_at,
        last_error=row.last_error,
        failures=row.consecutive_failures,
        next_due_at=row.next_due_at,
    )


def decoded_image(data: str, settings: Settings) -> tuple[Image.Image, bytes]:
    """A base64 image checked (format, pixel limit) before any model sees it."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "image_base64 is not valid base64") from None
    return checked_image(raw, settings), raw


def checked_image(raw: bytes, settings: Settings) -> Image.Image:
    try:
        return open_image(raw, max_pixels=settings.max_image_pixels, formats=settings.image_formats)
    except ImageDecodeError as exc:
        raise ApiError(422, "the image cannot be used", str(exc)) from None
