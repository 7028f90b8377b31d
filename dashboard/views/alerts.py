"""Alerts (with chart and examples, acknowledge), rules (create, edit, disable), saved queries."""

from __future__ import annotations

from functools import partial

import streamlit as st

from dashboard import common

common.require_access()  # before anything else: no data without access
st.title("Alerts")
if not common.database_ready():
    st.stop()

from monitor.alerts import acknowledge, alert_state, list_alerts  # noqa: E402
from monitor.models import AlertStatus, RuleKind, SeriesKind  # noqa: E402
from monitor.notify import alert_examples  # noqa: E402
from monitor.queries import list_queries, remove_query  # noqa: E402
from monitor.rules import add_rule, list_rules, update_rule  # noqa: E402

engine = common.engine()
url = common.settings().database_url
alerts_tab, rules_tab, queries_tab = st.tabs(["Alerts", "Rules", "Saved queries"])

with alerts_tab:
    show = st.radio("Show", ["firing", "resolved", "all"], horizontal=True)
    status = {"firing": AlertStatus.FIRING, "resolved": AlertStatus.RESOLVED}.get(show)
    alerts = list_alerts(engine, status=status)
    if alerts:
        from monitor.export import ALERT_COLUMNS, alert_rows, to_csv

        st.download_button(
            "Download CSV",
            to_csv(alert_rows(alerts), ALERT_COLUMNS),
            file_name=f"alerts-{show}.csv",
            mime="text/csv",
        )
    else:
        st.info(
            "No alerts here. Alerts fire when a rule sees a spike in a topic, ticker, source "
            "or saved query; `simmim monitor once` runs detection."
        )
    for alert in alerts:
        state = alert_state(alert) + (" · acknowledged" if alert.acknowledged_at else "")
        with st.expander(
            f"#{alert.id} [{state}] {alert.summary}", expanded=alert.status is AlertStatus.FIRING
        ):
            st.caption(
                f"fired {alert.fired_at:%Y-%m-%d %H:%M} UTC"
                + (
                    f" · resolved {alert.resolved_at:%Y-%m-%d %H:%M} UTC"
                    if alert.resolved_at
                    else ""
                )
            )
            st.image(common.alert_chart(url, alert.id, alert.last_bucket))
            with common.session() as session:
                for ex in alert_examples(session, alert.id, limit=5):
                    link = f" — [open]({ex.url})" if ex.url else ""
                    st.markdown(f"`{ex.sentiment:+.2f}` {ex.title}{link}")
            if alert.acknowledged_at is None and st.button("Acknowledge", key=f"ack-{alert.id}"):
                common.attempt(partial(acknowledge, engine, alert.id))
                st.rerun()

with rules_tab:
    rules = list_rules(engine)
    st.dataframe(
        [
            {
                "id": r.id,
                "name": r.name,
                "kind": r.kind.value,
                "series": f"{r.series_kind.value}:{r.series_key or '*'}",
                "bucket (h)": r.bucket_hours,
                "window": r.window,
                "min volume": r.min_volume,
                "z": r.z,
                "p": r.p_value,
                "confirm": r.confirm,
                "enabled": r.enabled,
            }
            for r in rules
        ],
        hide_index=True,
        width="stretch",
    )
    st.markdown("**Edit a rule**")
    by_id = {r.id: r for r in rules}
    rule_id = st.selectbox("Rule", list(by_id), format_func=lambda i: f"{i} · {by_id[i].name}")
    if rule_id is not None:
        rule = by_id[rule_id]
        with st.form(f"edit-{rule_id}"):
            e1, e2, e3, e4 = st.columns(4)
            z = e1.number_input("z threshold", 0.5, 20.0, float(rule.z), 0.5)
            min_volume = e2.number_input("min volume", 0, 10_000, rule.min_volume)
            window = e3.number_input("window (buckets)", 2, 1000, rule.window)
            confirm = e4.number_input("confirm (buckets)", 1, 48, rule.confirm)
            enabled = st.toggle("enabled", value=rule.enabled)
            if st.form_submit_button("Save rule"):
                common.attempt(
                    lambda: update_rule(
                        engine,
                        rule_id,
                        z=float(z),
                        min_volume=int(min_volume),
                        window=int(window),
                        confirm=int(confirm),
                        enabled=enabled,
                    )
                )
                st.rerun()
    st.markdown("**New rule**")
    with st.form("new-rule"):
        n1, n2, n3 = st.columns(3)
        name = n1.text_input("Name")
        kind = n2.selectbox("Kind", [k.value for k in RuleKind])
        series_kind = n3.selectbox("Series", [k.value for k in SeriesKind])
        m1, m2, m3, m4 = st.columns(4)
        key = m1.text_input("Only this key (optional)", placeholder="e.g. ACME")
        bucket = m2.selectbox("Bucket", ["day", "hour", "6h"])
        new_z = m3.number_input("z", 0.5, 20.0, 3.0, 0.5)
        new_min = m4.number_input("min volume", 0, 10_000, 5)
        if st.form_submit_button("Add rule"):
            if not name.strip():
                st.error("Give the rule a name.")
            else:
                created = common.attempt(
                    lambda: add_rule(
                        engine,
                        name=name.strip(),
                        kind=kind,
                        series=f"{series_kind}:{key.strip()}" if key.strip() else series_kind,
                        bucket=bucket,
                        z=float(new_z),
                        min_volume=int(new_min),
                    )
                )
                if created is not None:
                    st.success(f"Added rule {created.id} {created.name!r}.")

with queries_tab:
    queries = list_queries(engine)
    if not queries:
        st.info("No saved queries. Run a search and use **Save as monitor**.")
    for q in queries:
        c1, c2 = st.columns([5, 1])
        what = q.text or "(image)"
        c1.markdown(f"**{q.name}** — {what} · {q.space} · cosine ≥ {q.threshold:g}")
        if c2.button("Remove", key=f"rm-q-{q.id}"):
            common.attempt(partial(remove_query, engine, str(q.id)))
            st.rerun()
