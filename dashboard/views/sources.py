"""Sources with their health; add, enable, disable."""

from __future__ import annotations

import streamlit as st

from dashboard import common

common.require_access()  # before anything else: no data without access
st.title("Sources")
if not common.database_ready():
    st.stop()

from indexer.source_admin import (  # noqa: E402
    add_source,
    find_source,
    list_sources,
    parse_every,
    set_source_enabled,
    source_failures,
)
from simmim.models import SourceKind  # noqa: E402
from simmim.redact import mask_text, mask_url  # noqa: E402
from simmim.timefmt import ago  # noqa: E402

with common.session() as session:
    rows = [
        {
            "id": s.id,
            "name": s.name,
            "kind": s.kind.value,
            "location": mask_url(s.location),
            "items": count,
            "left to read": s.read_remaining or 0,
            "enabled": s.enabled,
            "last success": ago(s.last_success_at),
            "last error": mask_text(s.last_error or "")[:120],
            "failures": s.consecutive_failures,
            "next due": ago(s.next_due_at),
        }
        for s, count in list_sources(session)
    ]

if rows:
    st.dataframe(rows, hide_index=True, width="stretch")
    names = {r["id"]: r["name"] for r in rows}
    c1, c2, c3 = st.columns([3, 1, 1])
    chosen = c1.selectbox("Source", list(names), format_func=lambda i: f"{i} · {names[i]}")
    for column, label, enabled in ((c2, "Enable", True), (c3, "Disable", False)):
        if column.button(label, key=f"switch-{label}"):
            with common.session() as session:
                set_source_enabled(session, str(chosen), enabled)
            st.rerun()
    with common.session() as session:
        found = source_failures(session, find_source(session, str(chosen)))
        failed = [
            {
                "where": r.where,
                "reason": r.reason,
                "detail": r.detail,
                "last seen": ago(r.last_seen),
                "times": r.times,
            }
            for r in found.records
        ]
    with st.expander(f"Failed records of {names[chosen]} ({len(failed)})", expanded=False):
        if failed:
            st.dataframe(failed, hide_index=True, width="stretch")
        else:
            st.caption(f"No record failed in the last {found.runs} crawl(s).")
        if found.not_kept:
            st.caption(
                f"{found.not_kept} more failed record(s) were counted but not kept one by one."
            )
else:
    st.info(
        "No sources yet. Add a feed, a page, an image folder or a JSONL dump below — or run `simmim demo`."
    )

st.subheader("Add a source")
with st.form("add-source"):
    a1, a2 = st.columns([3, 1])
    location = a1.text_input("Location", placeholder="https://example.org/feed.xml or /data/images")
    kind = a2.selectbox("Kind", [k.value for k in SourceKind])
    b1, b2 = st.columns(2)
    every = b1.text_input("Every", value="15m", help="30s, 15m, 2h, 1d")
    name = b2.text_input("Name (optional)")
    if st.form_submit_button("Add source"):

        def create() -> str:
            with common.session() as session:
                source = add_source(
                    session,
                    location.strip(),
                    SourceKind(kind),
                    every_s=parse_every(every),
                    name=name.strip() or None,
                    local_roots=common.settings().crawler.local_roots,
                )
                return f"Added source {source.id} {source.name!r}; it is crawled on the next cycle."

        message = common.attempt(create)
        if message:
            st.success(message)
