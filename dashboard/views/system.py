"""Model, device, indexes, recent job runs, database: is everything healthy?"""

from __future__ import annotations

import streamlit as st

from dashboard import common
from simmim.clock import utcnow
from simmim.redact import mask_url

common.require_access()  # before anything else: no data without access
st.title("System")
settings = common.settings()

from encoder.fingerprint import backbone_fingerprint  # noqa: E402
from indexer.fusion_switch import fusion_status  # noqa: E402

fusion = fusion_status(settings, common.engine()) if common.database_ready() else None
c1, c2 = st.columns(2)
with c1:
    st.subheader("Model")
    st.markdown(
        f"- open_clip model **{settings.encoder.model}**, weights `{settings.encoder.pretrained}`\n"
        f"- fusion: {fusion.line() if fusion else '(database not ready)'}\n"
        f"- backbone fingerprint `{backbone_fingerprint(settings.encoder)}`\n"
        f"- device setting `{settings.encoder.device}`, int8 on CPU: {'on' if settings.encoder.cpu_int8 else 'off'}"
    )
    try:
        import torch

        device = "CUDA: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    except Exception as exc:  # a broken CUDA install should not hide the page
        device = f"unknown ({exc})"
    st.caption(f"available accelerator: {device}")
with c2:
    st.subheader("Storage")
    url = mask_url(settings.database_url)
    st.markdown(f"- database `{url}`\n- data directory `{settings.data_dir}`")


def recall_words(manifest: dict[str, object]) -> str:
    recall = manifest.get("recall_at_10")
    if isinstance(recall, int | float):
        return f"{recall:.3f}"
    if "Flat" in str(manifest.get("factory")):
        return "1 (exact search)"
    return "not measured yet"


st.subheader(f"Indexes ({settings.index.backend})")
manifests = common.index_manifests()
if manifests:
    st.dataframe(
        [
            {
                "space": space,
                "type": m["factory"],
                "vectors": m["count"],
                "size (MB)": round((m["bytes"] or 0) / 1e6, 2),
                "recall@10": recall_words(m),
                "nprobe": str(m["nprobe"]) if m.get("nprobe") else "-",
                "built": m["built_at"],
                "fingerprint": m["fingerprint"],
                "where": m.get("location") or "-",
            }
            for space, m in manifests.items()
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.info("No indexes yet: they are built by `simmim index` (part of `simmim monitor once`).")

st.subheader("Search quality on your corpus")
from encoder.train.evaluation import last_report  # noqa: E402
from encoder.train.self_training import attempts  # noqa: E402
from simmim.paths import DataLayout  # noqa: E402

layout = DataLayout(settings.data_dir)
evaluation = last_report(layout)
if evaluation is None:
    st.caption("Not measured yet: run `simmim eval retrieval`.")
else:
    st.caption(
        f"{evaluation.n} held-out items with an image and a text, {evaluation.at}; "
        f"fusion: {evaluation.fusion}"
    )
    rows = [
        {"direction": d.replace("_", " "), "model": evaluation.fusion, **m}
        for d, m in evaluation.directions.items()
    ]
    rows += [
        {"direction": d.replace("_", " "), "model": "clip-mean", **m}
        for d, m in evaluation.clip_mean.items()
        if evaluation.fusion != "clip-mean"
    ]
    st.dataframe(rows, hide_index=True, width="stretch")
tries = attempts(layout, last=10)
if tries:
    st.caption("Fusion self-training attempts (newest last)")
    st.dataframe(
        [
            {
                "at": t["at"],
                "accepted": t["accepted"],
                "in use": bool(t.get("switched")),
                "train / held-out": f"{t['train_pairs']} / {t['held_out_pairs']}",
                "why": t["reason"],
            }
            for t in tries
        ],
        hide_index=True,
        width="stretch",
    )

st.subheader("Monitor: the last run of each step")
if common.database_ready():
    from monitor.worker import monitor_status

    status = monitor_status(common.engine(), stalled_after_s=settings.worker.stalled_after_s)
    if status.steps:
        st.dataframe(
            [
                {
                    "step": r.job,
                    "last start": r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "seconds": round((r.finished_at - r.started_at).total_seconds(), 1)
                    if r.finished_at
                    else None,
                    "ok": {True: "yes", False: "failed", None: "running"}[r.ok],
                    "by": r.runner,
                    "outcome": r.outcome(),
                }
                for r in status.steps
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No monitor runs yet: `simmim monitor once`, `monitor run` or `simmim worker`.")
    if status.queue:
        st.caption(f"Workers on PostgreSQL: {status.workers_line(utcnow())}")
        if status.tasks:
            st.dataframe(
                [
                    {
                        "queue": queue,
                        "queued": counts["todo"],
                        "running": status.running(queue),
                        "of dead workers": status.stalled.get(queue, 0),
                        "failed": counts["failed"],
                        "done": counts["succeeded"],
                    }
                    for queue, counts in sorted(status.tasks.items())
                ],
                hide_index=True,
                width="stretch",
            )
        for task in status.failed:
            st.error(
                f"task {task.task} #{task.id} failed after {task.attempts} tries: "
                f"{task.error or 'no error recorded'}"
            )
    else:
        st.caption("Single process: `simmim monitor run` (no task queue).")
