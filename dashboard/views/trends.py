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
# One x-range for every chart, fitted to the data: from the first bucket with items (a
# 30-day view of 14 days of data starts on day one of the data) to now.
filled = frame.loc[frame["volume"] > 0, "start"]
if filled.empty:
    st.info("No items in this range; widen it.")
    st.stop()
min_volume = common.settings().dashboard.trend_min_volume
frame = frame[frame["start"] >= filled.min()].assign(  # nothing drawn left of the range
    thin=lambda f: f["volume"] < min_volume
)
thin_with_items = frame["thin"] & (frame["volume"] > 0)  # drawn as faded points
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


x_scale = alt.Scale(domain=[filled.min().isoformat(), until.isoformat()])
# Distinct hues, one per series in every chart; red is kept for the alert marks.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
series_names = sorted(frame["series"].unique())
colour = alt.Color(
    "series:N",
    title=None,
    scale=alt.Scale(domain=series_names, range=PALETTE),
)


def chart(column: str, title: str, fmt: str, *, masked: bool = False) -> alt.LayerChart:
    """``masked``: a bucket with fewer than ``min_volume`` items is a faded point, not a
    point on the line, so one item's sentiment does not swing the line from -1 to +1."""
    tooltip = ["series", alt.Tooltip("start:T"), alt.Tooltip(f"{column}:Q", format=fmt), "volume"]
    x = alt.X("start:T", title=None, scale=x_scale)
    y = alt.Y(f"{column}:Q", title=title, axis=alt.Axis(format=fmt))
    solid = frame
    if masked:  # the line breaks at a thin bucket instead of joining across it
        solid = frame.copy()
        solid.loc[solid["thin"], column] = float("nan")
    layers = (
        alt.Chart(solid)
        .mark_line(point=True, invalid="break-paths-show-domains")
        .encode(x=x, y=y, color=colour, tooltip=tooltip)
    )
    if masked:
        faded = (
            alt.Chart(frame[thin_with_items])
            .mark_point(opacity=0.35, filled=False)
            .encode(x=x, y=y, color=colour, tooltip=tooltip)
        )
        layers = layers + faded
    rules = (
        alt.Chart(marks)
        .mark_rule(color="#d62728", strokeDash=[4, 3])
        .encode(x=alt.X("start:T", scale=x_scale), tooltip=["series", "alert"])
    )
    return (layers + rules).properties(height=220)


st.altair_chart(chart("volume", "items", "d"), width="stretch")
left, right = st.columns(2)
with left:
    st.altair_chart(chart("mean_sentiment", "mean sentiment", "+.2f", masked=True), width="stretch")
with right:
    st.altair_chart(chart("negative_share", "negative share", ".0%", masked=True), width="stretch")
notes = []
if thin_with_items.any():
    notes.append(
        f"Faded points: buckets with fewer than {min_volume} items (too few for a share or "
        "a mean to mean much; SIMMIM_DASHBOARD__TREND_MIN_VOLUME), left off the lines."
    )
if not marks.empty:
    notes.append(f"Dashed red lines: {len(marks)} alert(s) fired on these series in range.")
for note in notes:
    st.caption(note)

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
