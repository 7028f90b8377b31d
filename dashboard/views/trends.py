"""Volume, mean sentiment and negative share over time, with alert buckets marked."""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import common
from simmim.clock import utcnow

common.require_access()  # before anything else: no data without access
KINDS = {
    "topic": "Topics",
    "ticker": "Tickers",
    "query": "Saved queries",
    "source": "Sources",
    "all": "Everything",
}

st.title("Trends")
if not common.database_ready():
    st.stop()

from monitor.alerts import list_alerts  # noqa: E402
from monitor.queries import list_queries  # noqa: E402
from monitor.trends import bucket_start, hour_of, items_in  # noqa: E402

engine = common.engine()
c1, c2, c3 = st.columns([1, 3, 1])
kind = c1.selectbox("Series", list(KINDS), format_func=KINDS.__getitem__)
url = common.settings().database_url
keys = [k for k, _ in common.series_keys(url, kind)]
if not keys:
    st.info(
        "No scored items yet. Trends appear once items are crawled, indexed and scored: "
        "run `simmim monitor once` (or `simmim demo` for a sample corpus)."
    )
    st.stop()

labels: dict[str, str] = {k: k for k in keys}
if kind == "query":
    labels.update({str(q.id): q.name for q in list_queries(engine)})
elif kind == "ticker":  # typing a company's name finds its ticker series
    labels.update(common.company_labels(keys))
elif kind == "source":
    from indexer.source_admin import list_sources

    with common.session() as session:
        labels.update({str(s.id): s.name for s, _ in list_sources(session)})
chosen = c2.multiselect(
    "Show", keys, default=keys[: min(4, len(keys))], format_func=lambda k: labels.get(k, k)
)
bucket = c3.radio("Bucket", ["day", "hour"], horizontal=True)
days = st.slider("Days back", 1, 180, 30)
if not chosen:
    st.caption("Pick at least one series.")
    st.stop()

bucket_hours = 24 if bucket == "day" else 1
now = utcnow()
since = bucket_start((hour_of(now - timedelta(days=days))) // bucket_hours, bucket_hours)
until = bucket_start(hour_of(now) + 1, 1)  # whole hours: a stable cache key
frame = common.trends(url, kind, bucket_hours, since, until, tuple(chosen)).copy()
if frame.empty:
    st.info("No items in this range; widen it.")
    st.stop()
frame["series"] = frame["key"].map(lambda k: labels.get(k, k))
from monitor.export import TREND_COLUMNS, to_csv, trend_rows  # noqa: E402

st.download_button(
    "Download CSV",
    to_csv(trend_rows(frame), TREND_COLUMNS),
    file_name=f"trends-{kind}.csv",
    mime="text/csv",
    help="The buckets that hold items: volume, mean sentiment, negative share.",
)

# Alerts on these series in range: marked as rules on every chart.
marks = pd.DataFrame(
    [
        {
            "start": bucket_start(a.first_bucket, a.bucket_hours),
            "series": labels.get(a.series_key, a.series_key),
            "alert": a.summary,
        }
        for a in list_alerts(engine)
        if a.series_kind.value == kind and a.series_key in chosen and a.fired_at >= since
    ],
    columns=["start", "series", "alert"],
)


def chart(column: str, title: str, fmt: str) -> alt.LayerChart:
    base = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("start:T", title=None),
            y=alt.Y(f"{column}:Q", title=title, axis=alt.Axis(format=fmt)),
            color=alt.Color("series:N", title=None),
            tooltip=[
                "series",
                alt.Tooltip("start:T"),
                alt.Tooltip(f"{column}:Q", format=fmt),
                "volume",
            ],
        )
    )
    rules = (
        alt.Chart(marks)
        .mark_rule(color="#d62728", strokeDash=[4, 3])
        .encode(x="start:T", tooltip=["series", "alert"])
    )
    return (base + rules).properties(height=220)


st.altair_chart(chart("volume", "items", "d"), width="stretch")
left, right = st.columns(2)
with left:
    st.altair_chart(chart("mean_sentiment", "mean sentiment", "+.2f"), width="stretch")
with right:
    st.altair_chart(chart("negative_share", "negative share", ".0%"), width="stretch")
if not marks.empty:
    st.caption(f"Dashed red lines: {len(marks)} alert(s) fired on these series in range.")

st.subheader("Top items of a bucket")
busy = frame[frame["volume"] > 0].sort_values("start", ascending=False)
options = [(r.key, r.start) for r in busy.itertuples()]
pick = st.selectbox(
    "Bucket",
    options,
    format_func=lambda o: f"{labels.get(o[0], o[0])} — {o[1]:%Y-%m-%d %H:%M}",
)
order = st.radio("Order", ["most negative", "most positive"], horizontal=True)
if pick is not None:
    lo = hour_of(pick[1])
    with common.session() as session:
        rows = items_in(
            session,
            kind,
            pick[0],
            lo,
            lo + bucket_hours,
            limit=10,
            lowest_first=order == "most negative",
        )
    for row in rows:
        link = f" — [open]({row.url})" if row.url else ""
        st.markdown(f"`{row.sentiment:+.2f}` {row.title}{link}")
