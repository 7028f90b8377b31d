"""Trends, series, alerts, rules and saved queries: the same back-end calls as the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from app.api import convert
from app.api.auth import ADMIN, READ
from app.api.csv_out import CSV_RESPONSES, csv_response, wants_csv
from app.api.errors import ApiError
from app.api.pagination import PageParams, cursor_int, decode_cursor, encode_cursor, page_by_id
from app.api.schemas import (
    EARLIEST,
    LATEST,
    AlertOut,
    AlertPage,
    CompanyOut,
    PathId,
    QueryCreate,
    QueryOut,
    QueryPage,
    RuleCreate,
    RuleOut,
    RulePage,
    RuleSettings,
    SeriesKindName,
    SeriesOut,
    SeriesPage,
    Time,
    TrendPoint,
    TrendsOut,
)
from app.api.state import api_state
from monitor.alerts import acknowledge, get_alert, list_alerts
from monitor.companies import search_companies
from monitor.export import ALERT_COLUMNS, TREND_COLUMNS, alert_rows, to_csv, trend_rows
from monitor.models import AlertStatus, SeriesKind
from monitor.queries import list_queries, remove_query, save_query
from monitor.rules import add_rule, list_rules, update_rule
from monitor.trends import TooManyPoints, series_keys, trends
from simmim.clock import utcnow
from simmim.db import session_factory, session_scope

router = APIRouter(prefix="/v1", tags=["monitor"])
BUCKET_HOURS = {"hour": 1, "day": 24}
MAX_BUCKETS = 5000  # per series: 208 days of hours, 13 years of days
MAX_TREND_POINTS = 100_000  # per answer, over every series
MAX_SERIES_OFFSET = 10_000_000


# ---- companies


@router.get("/companies", response_model=list[CompanyOut], dependencies=[READ])
def get_companies(
    request: Request,
    q: Annotated[str, Query(max_length=100, description="name, alias or symbol")] = "",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[CompanyOut]:
    """Companies by name, alias or symbol, best match first (`simmim companies search`);
    their ``id`` is the ``key`` of ticker series."""
    return [
        CompanyOut(
            id=c.id,
            name=c.name,
            aliases=list(c.aliases),
            symbols=list(c.symbols),
            country=c.country,
            indices=list(c.indices),
            source=c.source,
        )
        for c in search_companies(api_state(request).settings, q, limit)
    ]


# ---- trends


@router.get("/trends", response_model=TrendsOut, dependencies=[READ], responses=CSV_RESPONSES)
def get_trends(
    request: Request,
    kind: SeriesKindName = "topic",
    key: Annotated[list[str] | None, Query(max_length=50)] = None,
    bucket: Literal["hour", "day"] = "day",
    days: Annotated[int, Query(ge=1, le=3660)] = 14,
    since: Time | None = None,
    until: Time | None = None,
) -> TrendsOut | Response:
    """Volume, mean sentiment and negative share per bucket: the numbers of `simmim trends`.
    Buckets without items are included (volume 0) between since and until (default: the
    last `days` days). At most MAX_BUCKETS buckets per series and MAX_TREND_POINTS points
    per answer: a wider range is refused (422) with what to narrow."""
    end = until or utcnow()
    start = since or end - timedelta(days=days)
    hours = BUCKET_HOURS[bucket]
    if start >= end:
        raise ApiError(422, "since must be before until")
    buckets = (end - start).total_seconds() / 3600 / hours
    if buckets > MAX_BUCKETS:
        raise ApiError(
            422,
            f"{int(buckets)} {bucket} buckets asked; at most {MAX_BUCKETS} per series",
            "narrow since/until or use day buckets",
        )
    try:
        frame = trends(
            api_state(request).engine,
            kind,
            bucket_hours=hours,
            since=start,
            until=until,
            keys=key or None,
            max_points=MAX_TREND_POINTS,
        )
    except TooManyPoints as exc:
        raise ApiError(422, exc.message, exc.hint) from None
    if wants_csv(request):  # the buckets that hold items, as `simmim trends --csv`
        return csv_response(to_csv(trend_rows(frame), TREND_COLUMNS), f"trends-{kind}.csv")
    points = [
        TrendPoint(
            key=str(row.key),
            start=row.start,
            volume=int(row.volume),
            mean_sentiment=None
            if row.mean_sentiment != row.mean_sentiment
            else float(row.mean_sentiment),
            negative_share=None
            if row.negative_share != row.negative_share
            else float(row.negative_share),
        )
        for row in frame.itertuples()
    ]
    return TrendsOut(kind=kind, bucket=bucket, points=points)


@router.get("/series", response_model=SeriesPage, dependencies=[READ])
def get_series(
    request: Request, page: Annotated[PageParams, Depends()], kind: SeriesKindName = "topic"
) -> SeriesPage:
    """The keys of one series kind with their total volume, busiest first."""
    state = api_state(request)
    size = page.size(state.settings.api)
    offset = cursor_int(decode_cursor(page.cursor) or 0, high=MAX_SERIES_OFFSET)
    keys = series_keys(state.engine, kind, limit=offset + size + 1)[offset:]
    more = len(keys) > size
    return SeriesPage(
        items=[SeriesOut(key=key, volume=volume) for key, volume in keys[:size]],
        next_cursor=encode_cursor(offset + size) if more else None,
    )


# ---- alerts


@router.get("/alerts", response_model=AlertPage, dependencies=[READ], responses=CSV_RESPONSES)
def get_alerts(
    request: Request,
    page: Annotated[PageParams, Depends()],
    status: Literal["firing", "resolved"] | None = None,
    series_kind: SeriesKindName | None = None,
    series_key: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertPage | Response:
    """Newest first. As CSV (``Accept: text/csv``) the page's rows, and the next page's
    cursor in the ``X-Next-Cursor`` header."""
    state = api_state(request)
    size = page.size(state.settings.api)
    position = decode_cursor(page.cursor)
    before = None
    if position is not None:
        try:
            when = datetime.fromisoformat(position[0])
            if when.tzinfo is None or not EARLIEST <= when < LATEST:
                raise ValueError(when)
            before = (when, cursor_int(position[1]))
        except (TypeError, ValueError, IndexError, KeyError, OverflowError):
            raise ApiError(422, "invalid cursor", "pass back the next_cursor of a page") from None
    rows = list_alerts(
        state.engine,
        status=AlertStatus(status) if status else None,
        limit=size + 1,
        before=before,
        series_kind=SeriesKind(series_kind) if series_kind else None,
        series_key=series_key,
    )
    shown = rows[:size]
    cursor = (
        encode_cursor([shown[-1].fired_at.isoformat(), shown[-1].id]) if len(rows) > size else None
    )
    if wants_csv(request):
        return csv_response(
            to_csv(alert_rows(shown), ALERT_COLUMNS),
            "alerts.csv",
            {"X-Next-Cursor": cursor} if cursor else None,
        )
    return AlertPage(items=[convert.alert(row) for row in shown], next_cursor=cursor)


@router.get("/alerts/{alert_id}", response_model=AlertOut, dependencies=[READ])
def get_one_alert(request: Request, alert_id: PathId) -> AlertOut:
    with session_scope(session_factory(api_state(request).engine)) as session:
        return convert.alert(get_alert(session, alert_id))


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut, dependencies=[ADMIN])
def acknowledge_alert(request: Request, alert_id: PathId) -> AlertOut:
    """Stop repeat emails for this alert (idempotent)."""
    return convert.alert(acknowledge(api_state(request).engine, alert_id))


# ---- rules


@router.get("/rules", response_model=RulePage, dependencies=[READ])
def get_rules(request: Request, page: Annotated[PageParams, Depends()]) -> RulePage:
    state = api_state(request)
    rows, cursor = page_by_id(
        list_rules(state.engine), page, page.size(state.settings.api), key=lambda r: r.id
    )
    return RulePage(items=[convert.rule(r) for r in rows], next_cursor=cursor)


@router.post("/rules", response_model=RuleOut, status_code=201, dependencies=[ADMIN])
def create_rule(request: Request, body: RuleCreate) -> RuleOut:
    settings = body.model_dump(exclude={"name", "kind", "series", "bucket"}, exclude_none=True)
    created = add_rule(
        api_state(request).engine,
        name=body.name,
        kind=body.kind,
        series=body.series,
        bucket=body.bucket,
        **settings,
    )
    return convert.rule(created)


@router.patch("/rules/{rule_id}", response_model=RuleOut, dependencies=[ADMIN])
def change_rule(request: Request, rule_id: PathId, body: RuleSettings) -> RuleOut:
    """Change thresholds, window, cooldown; {"enabled": false} disables it."""
    changes = body.model_dump(exclude_unset=True)
    return convert.rule(update_rule(api_state(request).engine, rule_id, **changes))


# ---- saved queries


@router.get("/queries", response_model=QueryPage, dependencies=[READ])
def get_queries(request: Request, page: Annotated[PageParams, Depends()]) -> QueryPage:
    state = api_state(request)
    rows, cursor = page_by_id(
        list_queries(state.engine), page, page.size(state.settings.api), key=lambda q: q.id
    )
    return QueryPage(items=[convert.query(q) for q in rows], next_cursor=cursor)


@router.post("/queries", response_model=QueryOut, status_code=201, dependencies=[ADMIN])
def create_query(request: Request, body: QueryCreate) -> QueryOut:
    """A search kept as a monitor: new items close to it join its series."""
    state = api_state(request)
    image = None
    if body.image_base64 is not None:
        _, image = convert.decoded_image(body.image_base64, state.settings)
    if not (body.text and body.text.strip()) and image is None:
        raise ApiError(422, "a saved query needs a text, an image, or both")
    saved = save_query(
        state.settings,
        state.engine,
        state.encoder,
        name=body.name,
        text=body.text,
        image=image,
        space=body.space,
        threshold=body.threshold,
        with_rule=body.with_rule,
    )
    return convert.query(saved)


@router.delete("/queries/{query_id}", status_code=204, dependencies=[ADMIN])
def delete_query(request: Request, query_id: PathId) -> Response:
    remove_query(api_state(request).engine, str(query_id))
    return Response(status_code=204)
