"""Prometheus metrics at /metrics: requests and latency by route, search latency, and what
the database says at scrape time (items by state, task queue, last runs, alerts, outbox)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.models import Alert, AlertStatus, Notification
from monitor.worker import monitor_status
from simmim.db import session_factory, session_scope
from simmim.models import Item, ItemStatus

log = logging.getLogger(__name__)
disable_created_metrics()  # no *_created series: they double a scrape for nothing
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class DatabaseCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._collect()
        except Exception as exc:  # a scrape must answer even with the database away
            log.warning("metrics: database figures unavailable: %s", exc)
            up = GaugeMetricFamily("simmim_database_up", "The database answered the scrape.")
            up.add_metric([], 0)
            yield up

    def _collect(self) -> Iterator[GaugeMetricFamily]:
        with session_scope(session_factory(self.engine)) as session:
            by_state = dict(
                session.execute(
                    select(Item.status, func.count(Item.id)).group_by(Item.status)
                ).all()
            )
            firing = session.scalar(
                select(func.count(Alert.id)).where(Alert.status == AlertStatus.FIRING)
            )
            pending = session.scalar(
                select(func.count(Notification.id)).where(Notification.sent_at.is_(None))
            )
            failed = session.scalar(
                select(func.count(Notification.id)).where(
                    Notification.sent_at.is_(None), Notification.last_error.is_not(None)
                )
            )
        up = GaugeMetricFamily("simmim_database_up", "The database answered the scrape.")
        up.add_metric([], 1)
        yield up
        items = GaugeMetricFamily("simmim_items", "Items by state.", labels=["state"])
        for status_value in ItemStatus:
            items.add_metric([status_value.value], by_state.get(status_value, 0))
        yield items
        alerts = GaugeMetricFamily("simmim_alerts_firing", "Alerts firing now.")
        alerts.add_metric([], firing or 0)
        yield alerts
        emails = GaugeMetricFamily(
            "simmim_notifications", "Alert notifications not sent yet.", labels=["state"]
        )
        emails.add_metric(["pending"], pending or 0)
        emails.add_metric(["failed"], failed or 0)
        yield emails
        status = monitor_status(self.engine, failed_limit=0)
        last = GaugeMetricFamily(
            "simmim_step_last_finished_timestamp_seconds",
            "When each monitor step last finished.",
            labels=["step"],
        )
        ok = GaugeMetricFamily(
            "simmim_step_last_ok", "Whether its last run succeeded.", labels=["step"]
        )
        for step in status.steps:
            if step.finished_at is not None:
                last.add_metric([step.job], step.finished_at.timestamp())
                ok.add_metric([step.job], 1.0 if step.ok else 0.0)
        yield last
        yield ok
        queue = GaugeMetricFamily(
            "simmim_tasks", "Worker tasks by queue and state.", labels=["queue", "state"]
        )
        for name, counts in status.tasks.items():
            for state, count in counts.items():
                queue.add_metric([name, state], count)
        yield queue


class ApiMetrics:
    """One registry per app (so two apps in one process never share counters)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "simmim_api_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "simmim_api_request_seconds",
            "Request latency by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.search = Histogram(
            "simmim_search_seconds",
            "search() latency by space.",
            ["space"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(engine))

    def observe_search(self, space: str, seconds: float) -> None:
        self.search.labels(space).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ObserveAndLimit:
    """Pure ASGI (no per-request task switch): counts and times each request by its route
    template, and refuses bodies over the limit (413) before they are read whole."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, max_body: int) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _too_large(send, self.max_body)
            return
        started = time.perf_counter()
        status = [500]
        received = [0]

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > self.max_body:  # a chunked body that declared no length
                    raise HTTPException(413, f"request body too large (over {self.max_body} bytes)")
            return message

        async def observing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, counting_receive, observing_send)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        self.metrics.requests.labels(method, template, str(status[0])).inc()
        self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)


async def _too_large(send: Send, limit: int) -> None:
    body = (
        b'{"error":"request body too large","detail":"the limit is '
        + str(limit).encode()
        + b' bytes (api.max_body_bytes)"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
