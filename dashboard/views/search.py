"""Search by text, by image, or both; explain a match; save the query as a monitor."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import streamlit as st

from dashboard import common
from simmim.clock import utcnow
from simmim.paths import DataLayout

common.require_access()  # before anything else: no data without access
SPACE_LABELS = {
    "fused": "posts matching this (image and text together)",
    "image": "images matching this (with an uploaded image: images like it)",
    "text": "texts matching this",
}

st.title("Search")
if not common.database_ready():
    st.stop()

settings = common.settings()
engine = common.engine()
manifests = common.index_manifests()
if not any(m.get("count") for m in manifests.values()):
    st.info(
        "Nothing is indexed yet. Add a source on the **Sources** page and run "
        "`simmim monitor once` (or `simmim crawl` then `simmim index`), or try the built-in "
        "corpus with `simmim demo`."
    )
    st.stop()

from indexer.source_admin import list_sources  # noqa: E402
from monitor.export import SEARCH_COLUMNS, search_rows, to_csv  # noqa: E402
from monitor.items import hit_scores  # noqa: E402
from monitor.topics import DEFAULT_TOPICS  # noqa: E402

with common.session() as session:
    source_names = {s.id: s.name for s, _ in list_sources(session)}
topic_names = [t.name for t in settings.monitor.topics] or [t.name for t in DEFAULT_TOPICS]
# The companies the items name (busiest first), labelled so typing a name finds them.
company_ids = [key for key, _ in common.series_keys(settings.database_url, "ticker")]
company_labels = common.company_labels(company_ids)

with st.form("search"):
    left, right = st.columns([3, 2])
    text = left.text_input("Text", placeholder="e.g. bank run fears, a falling price chart")
    upload = right.file_uploader("Image", type=["png", "jpg", "jpeg", "webp", "gif"])
    space = st.radio(
        "Find",
        list(SPACE_LABELS),
        format_func=SPACE_LABELS.__getitem__,
        horizontal=True,
        key="space",
    )
    c1, c2, c3, c4 = st.columns(4)
    k = c1.slider("Results", 1, 60, 12)
    days = c2.selectbox(
        "Published",
        [None, 1, 7, 30, 90, 365],
        format_func=lambda d: "any time" if d is None else f"last {d} days",
    )
    sources = c3.multiselect("Sources", list(source_names), format_func=source_names.__getitem__)
    topics = c4.multiselect("Topics", topic_names)
    s1, s2, s3 = st.columns([2, 2, 1])
    companies = s1.multiselect(
        "Companies",
        company_ids,
        format_func=company_labels.__getitem__,
        placeholder="type a name or ticker",
        help="Only items naming these companies (as the monitor recognised them).",
    )
    sentiments = s2.multiselect("Sentiment", ["negative", "neutral", "positive"])
    collapse = s3.checkbox(
        "Fold duplicates",
        value=True,
        help="The same item from several sources (or a near-identical copy) is shown once, "
        "with 'also in'. Untick to see every copy.",
    )
    submitted = st.form_submit_button("Search", type="primary")

if submitted:
    if not text and upload is None:
        st.warning("Type a text, choose an image, or both.")
        st.stop()
    st.session_state["query"] = {
        "text": text or None,
        "image": upload.getvalue() if upload is not None else None,
        "space": space,
        "k": k,
        "since": (utcnow() - timedelta(days=days)) if days else None,
        "sources": sources,
        "topics": topics,
        "sentiments": sentiments,
        "tickers": companies,
        "collapse": collapse,
        "like": None,
    }

query: dict[str, Any] = st.session_state.get("query") or {}
if not query:
    st.caption("Results appear here, best first.")
    st.stop()

from encoder.fitted import fitted_elsewhere  # noqa: E402

foreign = fitted_elsewhere(settings)
if foreign:
    st.warning(foreign[0].upper() + foreign[1:] + ".")
encoder = common.encoder()
results = common.attempt(
    lambda: common.search(
        settings.database_url,
        common.index_stamp(),
        query["text"],
        query["image"],
        query["space"],
        query["k"],
        query["since"],
        tuple(query["sources"]),
        tuple(query["topics"]),
        tuple(query["sentiments"]),
        query.get("collapse", True),
        query.get("like"),
        tuple(query.get("tickers", ())),
    )
)
if results is None:
    st.stop()
if not results:
    st.info("No items match these filters. Widen the time range or drop a filter.")
    st.stop()

scores = hit_scores(engine, [r.item_id for r in results])
heading, download = st.columns([4, 1])
if query.get("like") is not None:
    heading.subheader(f"{len(results)} result(s) — more like item {query['like']}")
else:
    heading.subheader(f"{len(results)} result(s) — {SPACE_LABELS[query['space']]}")
download.download_button(
    "Download CSV",
    to_csv(search_rows(results, scores), SEARCH_COLUMNS),
    file_name="search.csv",
    mime="text/csv",
    help="The results with their sentiment, companies and topics (the API's columns).",
)
layout = DataLayout(settings.data_dir)


def explain(result) -> None:  # type: ignore[no-untyped-def]
    from encoder import ItemInput
    from encoder.explain import explain_fused, overlay_heatmap, text_image_map
    from simmim.models import item_text

    image = (
        layout.image_to_read(result.image_sha256, settings.thumbnail_size)
        if result.image_sha256
        else None
    )
    if result.space == "image" and image is not None and query["text"]:
        heat = text_image_map(encoder, image, query["text"])
        lo, hi = float(heat.min()), float(heat.max())
        st.image(
            overlay_heatmap(image, (heat - lo) / (hi - lo + 1e-9), size=256),
            caption="where the text matches",
        )
        return
    explanation = explain_fused(
        encoder, ItemInput(text=item_text(result.title, result.text), image=image)
    )
    if explanation.heatmap is not None and image is not None:
        st.image(
            overlay_heatmap(image, explanation.heatmap, size=256), caption="where the model looked"
        )
    if explanation.words:
        top = max(w for _, w in explanation.words) or 1.0
        spans = " ".join(
            f'<span style="background: rgba(214,39,40,{0.85 * w / top:.2f}); padding: 0 2px">{html.escape(word)}</span>'
            for word, w in explanation.words
        )
        st.markdown(spans, unsafe_allow_html=True)
        st.caption("highlighted: the words the match leaned on")


best = max((r.score for r in results), default=0.0)
SENTIMENT_MARKS = {"negative": ":red[▼ negative]", "positive": ":green[▲ positive]"}


def finance_line(item_id: int) -> str | None:
    """Sentiment (label and strength), companies, topics: what a finance reader scans."""
    scored = scores.get(item_id)
    if scored is None:
        return None
    label = SENTIMENT_MARKS.get(scored.sentiment_label, "● neutral")
    parts = [f"{label} {abs(scored.sentiment):.2f}"]
    if scored.tickers:
        parts.append(" ".join(f"`{t}`" for t in scored.tickers[:4]))
    if scored.topics:
        parts.append(", ".join(scored.topics[:3]))
    return " · ".join(parts)


def card(rank: int, result) -> None:  # type: ignore[no-untyped-def]
    picture = (
        layout.image_to_read(result.image_sha256, settings.thumbnail_size)
        if result.image_sha256
        else None
    )
    if picture is not None and picture.is_file():
        st.image(str(picture), width="stretch")  # the small copy: a grid of originals is MBs
    title = result.title or (result.text or "")[:120] or f"item {result.item_id}"
    st.markdown(f"**#{rank}** · **{html.escape(title)}**")
    if result.text and result.title:
        st.caption(result.text[:200])
    finance = finance_line(result.item_id)
    if finance:
        st.markdown(finance)
    # Cosine scores (0.3 to 0.45 is a good match for CLIP) mean little to a reader; the
    # bar says how close each result is to the best one of this search.
    share = min(max(result.score / best, 0.0), 1.0) if best > 0 else 0.0
    st.progress(share, text=f"match {share:.0%} of the best (score {result.score:.3f})")
    when = result.published_at.strftime("%Y-%m-%d %H:%M") if result.published_at else "-"
    st.caption(f"{source_names.get(result.source_id, result.source_id)} · {when}")
    if result.also_in:
        st.caption("also in: " + ", ".join(html.escape(name) for name in result.also_in))
    if result.url:
        st.markdown(f"[open]({result.url})")
    if st.button("More like this", key=f"like-{result.item_id}"):
        st.session_state["query"] = {
            **query,
            "like": result.item_id,
            "space": "fused",
            "text": None,
            "image": None,
        }
        st.rerun()
    if query.get("like") is None and st.toggle("Why this result", key=f"why-{result.item_id}"):
        explain(result)


for row_start in range(0, len(results), 3):  # rows of three: cards line up across
    columns = st.columns(3)
    for offset, result in enumerate(results[row_start : row_start + 3]):
        with columns[offset].container(border=True):
            card(row_start + offset + 1, result)

if query.get("like") is not None:
    st.stop()  # a saved monitor needs a text or an image query

with st.expander("Save as monitor"):
    st.caption(
        "Each new item this close to the query joins a series; a spike in it raises an alert."
    )
    with st.form("save-query"):
        name = st.text_input("Name", value=(query["text"] or "image query")[:60])
        threshold = st.slider("Similarity threshold (cosine)", 0.0, 1.0, 0.3, 0.01)
        if st.form_submit_button("Save as monitor"):
            from monitor.queries import save_query

            saved = common.attempt(
                lambda: save_query(
                    settings,
                    engine,
                    encoder,
                    name=name,
                    text=query["text"],
                    image=query["image"],
                    space=query["space"],
                    threshold=threshold,
                )
            )
            if saved is not None:
                st.success(f"Saved monitor {saved.name!r}; see it on the Alerts page.")
