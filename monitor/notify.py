"""The outbox: pending notifications → one digest email per run → marked sent.

Every notification gets the digest's Message-ID written to the database *before* the
SMTP transaction and ``sent_at`` right after it, so a sent notification is never sent
again, across restarts too; a failed send keeps them pending with a back-off, and the
next run retries. (A crash in the instant between the server's "250 OK" and our commit
re-sends with the same Message-ID, which mail clients fold into one.)

A send is *uncertain* when the whole message went out and no reply came (a timeout
after DATA, the connection closed before the answer): the server may have queued it.
Such a send is not retried at once; it is tried once more after ``UNCERTAIN_WAIT_S``,
and a second uncertain outcome ends it (marked sent, counted as uncertain): at most two
copies of a digest ever leave for one uncertain send.
"""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from monitor.alerts import get_alert
from monitor.chart import series_chart
from monitor.models import Alert, Notification, Rule, RuleKind, SeriesKind
from monitor.rules import RULE_KINDS
from monitor.trends import (
    BucketItem,
    Metric,
    aggregate,
    bucket_start,
    dense,
    items_in,
    metric_values,
)
from simmim.clock import Clock, utcnow
from simmim.db import session_factory, session_scope
from simmim.settings import Settings, SmtpSettings

log = logging.getLogger(__name__)
MAX_CHARTS = 10
EXAMPLES = 3
UNCERTAIN_WAIT_S = 900  # before the one retry of a send that may have been delivered
MAX_UNCERTAIN = 2


@dataclass
class NotifySummary:
    sent: int = 0  # notifications delivered
    messages: int = 0  # emails (digests)
    pending: int = 0  # every notification still owed (server down, back-off, no recipients)
    error: str | None = None
    failed: bool = False  # a delivery failed or is waiting to be retried: not "all is well"
    uncertain: int = 0  # digests sent with no reply (maybe delivered), counted apart
    message_ids: list[str] = field(default_factory=list)


def connect(config: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if config.security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout_s, context=context
        )
    else:
        server = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        if config.security == "starttls":
            server.starttls(context=context)
    if config.username:
        password = config.password.get_secret_value() if config.password else ""
        server.login(config.username, password)
    return server


def send_pending(
    settings: Settings,
    engine: Engine,
    *,
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
) -> NotifySummary:
    """Send what is due as digests. A digest's Message-ID is stored before it is sent and
    reused for every resend of the same notifications, so a mail client shows a message
    that was resent after a crash (accepted, not yet marked) once."""
    now = clock()
    summary = NotifySummary()
    factory = session_factory(engine)
    config = settings.smtp
    with session_scope(factory) as session:
        due = list(
            session.scalars(
                select(Notification)
                .where(
                    Notification.sent_at.is_(None),
                    or_(
                        Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now
                    ),
                )
                .order_by(Notification.id)
            )
        )
        if due and not config.recipients:
            summary.error = "no recipients: set SIMMIM_SMTP__RECIPIENTS to receive alert emails"
            due = []
        digests: dict[str | None, list[Notification]] = {}
        for note in due:
            digests.setdefault(note.message_id, []).append(note)
        for message_id, notes in digests.items():
            _send_digest(settings, engine, session, notes, message_id, summary, clock, sleep)
        session.flush()
        summary.pending = _unsent(session)  # in back-off too: every one still owed
        if summary.pending and config.recipients and summary.error is None:
            last = session.scalar(
                select(Notification.last_error)
                .where(Notification.sent_at.is_(None), Notification.last_error.is_not(None))
                .order_by(Notification.id.desc())
                .limit(1)
            )
            if last:
                summary.error, summary.failed = f"waiting to retry after: {last}", True
    return summary


def _send_digest(
    settings: Settings,
    engine: Engine,
    session: Session,
    due: list[Notification],
    message_id: str | None,
    summary: NotifySummary,
    clock: Clock,
    sleep: Callable[[float], None],
) -> None:
    config = settings.smtp
    message = compose(settings, engine, session, due, clock(), message_id=message_id)
    if message_id is None:
        for note in due:
            note.message_id = message["Message-ID"]
        session.commit()  # the id is durable before anything leaves
    error, uncertain = None, False
    for attempt in range(config.send_attempts):
        delivery = _Delivery()
        try:
            with connect(config) as server:
                delivery.send(server, message)
            error = None
            break
        except (OSError, smtplib.SMTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if delivery.body_sent and not isinstance(exc, smtplib.SMTPResponseException):
                # Gone, unanswered: the server may have it. No retry now (that is how
                # one alert became four emails).
                uncertain = True
                error = f"uncertain: the message was sent but no reply came ({error})"
                log.warning("alert email outcome unknown: %s", error)
                break
            log.warning("alert email attempt %d failed: %s", attempt + 1, error)
            if attempt + 1 < config.send_attempts:
                sleep(config.retry_backoff_s * 2**attempt)
    sent_time = clock()
    given_up = False
    for note in due:
        note.attempts += 1
        if uncertain:
            note.uncertain += 1
        if error is None or note.uncertain >= MAX_UNCERTAIN:
            given_up = error is not None
            note.sent_at = sent_time
            if given_up:
                note.last_error = f"{error}; not retried: {MAX_UNCERTAIN} uncertain sends"
            alert = session.get(Alert, note.alert_id)
            if alert is not None:
                alert.last_notified_at = sent_time
        else:
            note.last_error = error
            backoff = config.retry_backoff_s * 2 ** min(note.attempts, 10)
            wait = max(backoff, UNCERTAIN_WAIT_S if note.uncertain else 30)
            note.next_attempt_at = sent_time + timedelta(seconds=wait)
    session.commit()  # each digest's outcome is durable before the next one is tried
    if uncertain:
        summary.uncertain += 1
    if error is None:
        summary.sent += len(due)
        summary.messages += 1
        summary.message_ids.append(str(message["Message-ID"]))
    elif given_up:
        summary.error = f"{config.host}:{config.port}: {error} (not retried again)"
    else:
        summary.error = f"{config.host}:{config.port}: {error}"
        summary.failed = True


class _Delivery:
    """One SMTP transaction that notes when the whole message has gone out (the body's
    closing ``CRLF.CRLF``): a failure after that is an unknown outcome, not a refusal."""

    def __init__(self) -> None:
        self.body_sent = False

    def send(self, server: smtplib.SMTP, message: EmailMessage) -> None:
        plain = server.send

        def noting(data: Any) -> None:
            plain(data)
            if isinstance(data, bytes) and data.endswith(b"\r\n.\r\n"):
                self.body_sent = True

        server.send = noting  # type: ignore[method-assign,assignment]
        server.send_message(message)


def _unsent(session: Session) -> int:
    return int(
        session.scalar(select(func.count(Notification.id)).where(Notification.sent_at.is_(None)))
        or 0
    )


def examples(session: Session, alert: Alert, limit: int = EXAMPLES) -> list[BucketItem]:
    """The items behind the alert, most relevant to its rule first: for a sentiment rule
    (negative share, a drop) the most negative; for a volume spike the spike's own items,
    newest first (not the most positive: a "burst" alert led with "+1.00 shares jumped").
    Copies of one text are shown once."""
    rule = session.get(Rule, alert.rule_id)
    metric = RULE_KINDS[rule.kind].metric if rule is not None else Metric.VOLUME
    volume = metric is Metric.VOLUME
    return items_in(
        session,
        alert.series_kind,
        alert.series_key,
        (alert.last_bucket if volume else alert.first_bucket) * alert.bucket_hours,
        (alert.last_bucket + 1) * alert.bucket_hours,
        limit=limit,
        lowest_first=not volume,  # every sentiment rule watches bad news
        newest_first=volume,
    )


def alert_examples(session: Session, alert_id: int, limit: int = EXAMPLES) -> list[BucketItem]:
    """The items behind an alert, for the dashboard and the API (the email uses ``examples``)."""
    return examples(session, get_alert(session, alert_id), limit)


def alert_chart(session: Session, alert_id: int) -> bytes:
    """The alert's PNG chart, as its email shows it."""
    return chart_for(session, get_alert(session, alert_id))


def chart_for(session: Session, alert: Alert) -> bytes:
    rule = session.get(Rule, alert.rule_id)
    window = rule.window if rule is not None else 14
    bh = alert.bucket_hours
    first = alert.first_bucket - window
    last = alert.last_bucket + 2
    sums = aggregate(
        session,
        alert.series_kind,
        bucket_hours=bh,
        since=bucket_start(first, bh),
        until=bucket_start(last + 1, bh),
        keys=None if alert.series_kind is SeriesKind.ALL else [alert.series_key],
    )
    frame = dense(sums, first, last)
    spec = RULE_KINDS[rule.kind if rule is not None else RuleKind.VOLUME_SPIKE]
    values, ylabel = metric_values(frame, spec.metric).fillna(0.0), spec.label
    starts = [bucket_start(b, bh) for b in frame.index]
    return series_chart(
        starts,
        list(values),
        title=f"{alert.series_kind.value} {alert.series_key}",
        ylabel=ylabel,
        highlight=(bucket_start(alert.first_bucket, bh), bucket_start(alert.last_bucket + 1, bh)),
        baseline=alert.baseline,
    )


_VERB_ORDER = ("FIRING", "STILL FIRING", "FIRED AND RESOLVED", "RESOLVED")


def _verb(events: set[str]) -> str:
    if "resolved" in events:
        return "FIRED AND RESOLVED" if "firing" in events else "RESOLVED"
    return "FIRING" if "firing" in events else "STILL FIRING"


def compose(
    settings: Settings,
    engine: Engine,
    session: Session,
    due: list[Notification],
    now: datetime,
    *,
    message_id: str | None = None,
) -> EmailMessage:
    """One digest: a section per notification, charts inline for firing ones."""
    alerts = {n.alert_id: session.get(Alert, n.alert_id) for n in due}
    # One section per alert: a spike that fired and resolved before this email went out
    # is one event ("fired and resolved"), not one firing and one resolved alert.
    events: dict[int, set[str]] = {}
    for n in due:
        events.setdefault(n.alert_id, set()).add(n.event)
    verbs = {alert_id: _verb(kinds) for alert_id, kinds in events.items()}
    counts = Counter(verbs.values())
    parts = [f"{counts[verb]} {verb.lower()}" for verb in _VERB_ORDER if counts[verb]]
    first = alerts[due[0].alert_id]
    headline = first.summary.split(":")[0] if first is not None else ""
    message = EmailMessage()
    message["Subject"] = f"[SimMIM] {', '.join(parts)}: {headline}" + (
        " and more" if len(verbs) > 1 else ""
    )
    message["From"] = settings.smtp.sender
    message["To"] = ", ".join(settings.smtp.recipients)
    message["Date"] = format_datetime(now)
    domain = settings.smtp.sender.rpartition("@")[2] or "simmim.local"
    message["Message-ID"] = message_id or make_msgid("simmim-alerts", domain=domain)

    text_lines = [f"SimMIM alert digest, {now:%Y-%m-%d %H:%M} UTC", ""]
    html_parts = [f"<h2>SimMIM alert digest</h2><p>{now:%Y-%m-%d %H:%M} UTC</p>"]
    charts: list[tuple[str, bytes]] = []
    for alert_id, verb in verbs.items():
        alert = alerts[alert_id]
        if alert is None:
            continue
        text_lines.append(f"[{verb}] alert #{alert.id}: {alert.summary}")
        html_parts.append(f"<h3>[{verb}] alert #{alert.id}</h3><p>{html.escape(alert.summary)}</p>")
        if verb != "RESOLVED":
            found = examples(session, alert)
            if found:
                text_lines.append("  Examples:")
                html_parts.append("<ul>")
                for ex in found:
                    link = ex.url or "(no link)"
                    text_lines.append(f"  - {ex.title} [{ex.sentiment:+.2f}] {link}")
                    title = html.escape(ex.title)
                    anchor = f'<a href="{html.escape(ex.url)}">{title}</a>' if ex.url else title
                    html_parts.append(
                        f"<li>{anchor} <small>sentiment {ex.sentiment:+.2f}</small></li>"
                    )
                html_parts.append("</ul>")
            if len(charts) < MAX_CHARTS:
                cid = make_msgid("chart", domain=domain)
                charts.append((cid, chart_for(session, alert)))
                html_parts.append(f'<img src="cid:{cid[1:-1]}" alt="chart for alert {alert.id}">')
        if verb in ("RESOLVED", "FIRED AND RESOLVED") and alert.resolved_at:
            text_lines.append(f"  resolved at {alert.resolved_at:%Y-%m-%d %H:%M} UTC")
        text_lines.append("")
    if settings.monitor.dashboard_url:
        text_lines.append(f"Dashboard: {settings.monitor.dashboard_url}")
        url = html.escape(settings.monitor.dashboard_url)
        html_parts.append(f'<p><a href="{url}">Open the dashboard</a></p>')
    text_lines.append("Acknowledge with: simmim alerts ack ID")

    message.set_content("\n".join(text_lines))
    message.add_alternative("<html><body>" + "".join(html_parts) + "</body></html>", subtype="html")
    html_part: Any = message.get_payload()[1]  # type: ignore[index]
    for cid, png in charts:
        html_part.add_related(
            png, maintype="image", subtype="png", cid=cid, filename=f"chart-{cid[1:9]}.png"
        )
    return message
