"""The HTTP API over a real corpus, on SQLite and PostgreSQL: every route, its auth, its
validation, its paging, and the same answers as the back-end functions the CLI calls."""

from __future__ import annotations

import base64
import io
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from app.api.tokens import Scope, create_token, revoke_token, token_hash
from indexer.index import open_stores
from indexer.search import search
from monitor.alerts import list_alerts
from monitor.trends import trends
from simmim.db import session_factory, session_scope
from simmim.models import ApiToken, Space
from tests.api_fixtures import SPIKE_BASE, ApiWorld
from tests.encoder_fixtures import picture
from tests.processes import terminate


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    picture(seed).save(buffer, format="PNG")
    return buffer.getvalue()


def test_auth_401_without_or_with_a_bad_token_403_for_the_wrong_scope(api: ApiWorld) -> None:
    c = api.client
    for headers in ({}, {"Authorization": "Bearer smm_not-a-token"}, {"Authorization": "Basic x"}):
        r = c.get("/v1/rules", headers=headers)
        assert r.status_code == 401 and r.json()["error"] in (
            "missing token",
            "unknown or revoked token",
        )
    r = c.post("/v1/alerts/1/acknowledge", headers=api.read)
    assert r.status_code == 403 and "admin" in r.json()["error"]
    assert c.get("/v1/rules", headers=api.admin).status_code == 200  # admin may read too
    revoke_token(api.engine, "reader")
    time.sleep(5.1)  # the per-process check cache
    assert c.get("/v1/rules", headers=api.read).status_code == 401


def test_tokens_are_stored_hashed_and_shown_once(api: ApiWorld) -> None:
    info, secret = create_token(api.engine, "grafana", Scope.READ)
    with session_scope(session_factory(api.engine)) as session:
        rows = list(session.scalars(select(ApiToken)))
    stored = {row.name: row for row in rows}
    assert stored["grafana"].token_sha256 == token_hash(secret)
    every_column = " ".join(
        str(getattr(row, column.name)) for row in rows for column in ApiToken.__table__.columns
    )
    assert secret not in every_column and api.read_secret not in every_column
    assert info.prefix == secret[:10]


def test_search_by_text_gives_the_back_end_results(api: ApiWorld) -> None:
    r = api.client.post(
        "/v1/search", json={"text": "central bank interest rates", "k": 5}, headers=api.read
    )
    assert r.status_code == 200, r.text
    hits = r.json()["results"]
    with closing(
        open_stores(api.settings, api.encoder.fingerprint, api.encoder.dim, read_only=True)
    ) as stores:
        direct = search(api.engine, api.encoder, stores, text="central bank interest rates", k=5)
    assert [h["id"] for h in hits] == [d.item_id for d in direct]
    assert [h["score"] for h in hits] == pytest.approx([d.score for d in direct], abs=1e-5)
    first = hits[0]
    assert first["source"]["name"].startswith("s") and "image_url" in first
    # a post's text comes with its hit (issue 35: posts had only `title: null`)
    assert [h["text"] for h in hits] == [(d.text or None) and d.text[:500] for d in direct]


def test_search_by_vector_image_upload_and_filters(api: ApiWorld) -> None:
    c = api.client
    with closing(
        open_stores(api.settings, api.encoder.fingerprint, api.encoder.dim, read_only=True)
    ) as stores:
        vector = stores.get(Space.FUSED).vectors(np.asarray([7], np.int64))[0]
    r = c.post("/v1/search", json={"vector": vector.tolist(), "k": 3}, headers=api.read)
    assert r.status_code == 200 and r.json()["results"][0]["id"] == 7
    image = base64.b64encode(_png(3)).decode()
    r = c.post(
        "/v1/search", json={"image_base64": image, "space": "image", "k": 3}, headers=api.read
    )
    assert r.status_code == 200 and r.json()["results"]
    r = c.post(
        "/v1/search/upload",
        files={"image": ("q.png", _png(3), "image/png")},
        data={"space": "image", "k": "3"},
        headers=api.read,
    )
    assert r.status_code == 200 and r.json()["results"]
    since = datetime(2026, 3, 10, tzinfo=UTC).isoformat()
    r = c.post(
        "/v1/search",
        json={"text": "shares", "k": 30, "filters": {"since": since, "sources": [1]}},
        headers=api.read,
    )
    hits = r.json()["results"]
    assert hits and all(h["source"]["id"] == 1 for h in hits)
    assert all(h["published_at"] >= "2026-03-10" for h in hits)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"k": 0, "text": "x"}, "invalid request"),
        ({"k": 51, "text": "x"}, "k=51 is above the limit of 50"),
        ({}, "a search needs a text, an image, both, or a vector"),
        ({"text": "x" * 2001}, "the text is 2001 characters"),
        ({"image_base64": "%%%"}, "image_base64 is not valid base64"),
        ({"image_base64": base64.b64encode(b"not an image").decode()}, "the image cannot be used"),
        ({"vector": [0.1, 0.2]}, "the vector must be"),
        ({"vector": [0.1], "text": "x"}, "not both"),
        ({"text": "x", "surprise": 1}, "invalid request"),
        ({"text": "x", "space": "audio"}, "invalid request"),
    ],
)
def test_bad_search_input_is_a_json_422(api: ApiWorld, body: dict, error: str) -> None:
    r = api.client.post("/v1/search", json=body, headers=api.read)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith(error) or error in r.json()["error"]


def test_oversized_bodies_and_images_are_refused(api: ApiWorld) -> None:
    big = {"text": "x", "vector": [0.0] * 600_000}  # about 3 MB, the limit is 2
    r = api.client.post("/v1/search", json=big, headers=api.read)
    assert r.status_code == 413 and "too large" in r.json()["error"]
    huge = io.BytesIO()
    from PIL import Image

    Image.new("L", (9000, 9000)).save(huge, format="PNG")  # 81 MP: over the pixel limit
    settings_limit = api.settings.max_image_pixels
    api.settings.max_image_pixels = 10_000_000
    try:
        r = api.client.post(
            "/v1/search/upload",
            files={"image": ("big.png", huge.getvalue(), "image/png")},
            headers=api.read,
        )
    finally:
        api.settings.max_image_pixels = settings_limit
    assert r.status_code == 422 and "too large" in r.json()["detail"]


def test_items_image_explain_and_more_like_this(api: ApiWorld) -> None:
    c = api.client
    item = c.get("/v1/items/2", headers=api.read).json()
    assert item["status"] == "indexed" and item["image_url"] == "/v1/items/2/image"
    image = c.get("/v1/items/2/image", headers=api.read)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert c.get("/v1/items/1/image", headers=api.read).status_code == 404  # text only
    assert c.get("/v1/items/999999", headers=api.read).json() == {
        "error": "item 999999 not found",
        "detail": None,
    }
    explained = c.post("/v1/items/2/explain", json={}, headers=api.read).json()
    assert explained["words"][0]["word"] and base64.b64decode(
        explained["heatmap_png_base64"]
    ).startswith(b"\x89PNG")
    where = c.post("/v1/items/2/explain", json={"query": "a chart"}, headers=api.read).json()
    assert where["heatmap_png_base64"] and where["words"] == []
    similar = c.post("/v1/items/2/similar", json={"k": 4}, headers=api.read).json()["results"]
    assert len(similar) == 4 and 2 not in [h["id"] for h in similar]
    assert c.post("/v1/items/999999/similar", json={}, headers=api.read).status_code == 404
    r = c.post("/v1/items/1/similar", json={"space": "image"}, headers=api.read)
    assert r.status_code == 400 and "has no image vector" in r.json()["error"]


def test_trends_and_series_are_the_back_end_numbers(api: ApiWorld) -> None:
    r = api.client.get(
        "/v1/trends", params={"kind": "ticker", "key": "ACME", "days": 20}, headers=api.read
    )
    assert r.status_code == 200
    points = r.json()["points"]
    expected = trends(
        api.engine,
        "ticker",
        bucket_hours=24,
        since=datetime.now(UTC) - timedelta(days=20),
        keys=["ACME"],
    )
    assert (
        sum(p["volume"] for p in points)
        == int(expected["volume"].sum())
        == sum([*[6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 6], 60])
    )
    series = api.client.get("/v1/series", params={"kind": "ticker"}, headers=api.read).json()
    assert [s["key"] for s in series["items"]][:2] == ["ACME", "BETA"]
    first = api.client.get("/v1/series", params={"kind": "ticker", "limit": 1}, headers=api.read)
    second = api.client.get(
        "/v1/series",
        params={"kind": "ticker", "limit": 1, "cursor": first.json()["next_cursor"]},
        headers=api.read,
    )
    assert [s["key"] for s in first.json()["items"] + second.json()["items"]] == ["ACME", "BETA"]
    assert (
        api.client.get("/v1/trends", params={"bucket": "week"}, headers=api.read).status_code == 422
    )


def test_alerts_paged_got_and_acknowledged(api: ApiWorld) -> None:
    c = api.client
    everything = [a.id for a in list_alerts(api.engine)]
    assert len(everything) >= 2
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = c.get("/v1/alerts", params=params, headers=api.read).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything
    assert c.get("/v1/alerts", params={"cursor": "!!"}, headers=api.read).status_code == 422
    first = everything[0]
    assert c.get(f"/v1/alerts/{first}", headers=api.read).json()["id"] == first
    acked = c.post(f"/v1/alerts/{first}/acknowledge", headers=api.admin)
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]
    assert c.post("/v1/alerts/999999/acknowledge", headers=api.admin).status_code == 404
    firing = c.get("/v1/alerts", params={"status": "firing"}, headers=api.read).json()["items"]
    assert all(a["status"] == "firing" for a in firing)


def test_rules_created_changed_paged(api: ApiWorld) -> None:
    c = api.client
    made = c.post(
        "/v1/rules",
        json={
            "name": "acme negatives",
            "kind": "negative_share",
            "series": "ticker:ACME",
            "z": 2.5,
        },
        headers=api.admin,
    )
    assert made.status_code == 201 and made.json()["series_key"] == "ACME"
    rule_id = made.json()["id"]
    again = c.post(
        "/v1/rules",
        json={"name": "acme negatives", "kind": "negative_share", "series": "ticker:ACME"},
        headers=api.admin,
    )
    assert again.status_code == 400 and "exists" in again.json()["error"]
    off = c.patch(f"/v1/rules/{rule_id}", json={"enabled": False}, headers=api.admin)
    assert off.status_code == 200 and off.json()["enabled"] is False and off.json()["z"] == 2.5
    assert (
        c.patch("/v1/rules/999999", json={"enabled": False}, headers=api.admin).status_code == 404
    )
    assert c.patch(f"/v1/rules/{rule_id}", json={"z": -1}, headers=api.admin).status_code == 422
    ids, cursor = [], None
    while True:
        page = c.get(
            "/v1/rules",
            params={"limit": 2, **({"cursor": cursor} if cursor else {})},
            headers=api.read,
        ).json()
        ids += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert ids == sorted(ids) and rule_id in ids and len(ids) == len(set(ids))


def test_saved_queries_and_sources(api: ApiWorld) -> None:
    c = api.client
    q = c.post(
        "/v1/queries",
        json={"name": "rates", "text": "interest rates", "threshold": 0.2},
        headers=api.admin,
    )
    assert q.status_code == 201, q.text
    assert [x["name"] for x in c.get("/v1/queries", headers=api.read).json()["items"]] == ["rates"]
    assert c.delete(f"/v1/queries/{q.json()['id']}", headers=api.admin).status_code == 204
    assert c.delete(f"/v1/queries/{q.json()['id']}", headers=api.admin).status_code == 404
    assert c.post("/v1/queries", json={"name": "empty"}, headers=api.admin).status_code == 422

    made = c.post(
        "/v1/sources",
        json={"location": "https://example.org/feed.xml", "kind": "rss", "every": "1h"},
        headers=api.admin,
    )
    assert made.status_code == 201 and made.json()["every_s"] == 3600
    source_id = made.json()["id"]
    listed = c.get("/v1/sources", headers=api.read).json()["items"]
    assert {"last_success_at", "last_error", "failures", "next_due_at", "items"} <= set(listed[0])
    secret = c.post(
        "/v1/sources",
        json={"location": "https://ann:Pa%2Fs%23s@example.org/f.xml", "kind": "rss", "name": "s"},
        headers=api.admin,
    )
    assert secret.status_code == 201 and "Pa%2F" not in secret.text
    for headers in (api.read, api.admin):
        shown = c.get("/v1/sources", headers=headers).text
        assert "Pa%2F" not in shown and "https://ann:***@example.org/f.xml" in shown
    off = c.patch(f"/v1/sources/{source_id}", json={"enabled": False}, headers=api.admin)
    assert off.json()["enabled"] is False
    for every, says in (("soon", "not a duration"), ("4000000d", "out of range")):
        bad = c.post(
            "/v1/sources", json={"location": "x", "kind": "rss", "every": every}, headers=api.admin
        )
        assert bad.status_code == 422 and says in bad.json()["detail"][0]["msg"]
    assert c.delete(f"/v1/sources/{source_id}", headers=api.admin).status_code == 204
    assert c.delete(f"/v1/sources/{source_id}", headers=api.admin).status_code == 404


def test_a_sources_failed_records(api: ApiWorld, tmp_path: Path) -> None:
    from indexer.crawl import crawl

    c = api.client
    dump = tmp_path / "posts.jsonl"
    dump.write_text('{"id": 1, "text": "fine"}\n{nope\n')
    made = c.post(
        "/v1/sources", json={"location": str(dump), "kind": "jsonl"}, headers=api.admin
    ).json()
    empty = c.get(f"/v1/sources/{made['id']}/failures", headers=api.read).json()
    assert empty == {
        "source": {"id": made["id"], "name": made["name"]},
        "records": [],
        "not_kept": 0,
        "runs": 0,
    }
    crawl(api.settings, api.engine, source_ids=[made["id"]])
    found = c.get(f"/v1/sources/{made['id']}/failures", headers=api.read).json()
    [record] = found["records"]
    assert (record["where"], record["reason"], record["times"]) == ("line 2", "malformed JSON", 1)
    assert found["runs"] == 1
    assert c.get("/v1/sources/999999/failures", headers=api.read).status_code == 404
    assert c.get(f"/v1/sources/{made['id']}/failures?runs=0", headers=api.read).status_code == 422


def test_runs_start_and_finish(api: ApiWorld) -> None:
    c = api.client
    started = c.post("/v1/monitor/once", headers=api.admin)
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        run = c.get(f"/v1/runs/{run_id}", headers=api.read).json()
        if run["finished_at"]:
            break
        time.sleep(0.2)
    assert run["job"] == "monitor-once" and run["finished_at"], run
    steps = [s["job"] for s in run["summary"]["steps"]]
    assert steps == ["crawl", "index", "score", "detect", "notify"]
    assert c.get("/v1/runs/999999", headers=api.read).status_code == 404
    assert c.post("/v1/crawl", headers=api.read).status_code == 403


def test_health_readiness_and_metrics(api: ApiWorld) -> None:
    c = api.client
    assert c.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    c.post("/v1/search", json={"text": "oil"}, headers=api.read)
    scrape = c.get("/metrics").text
    assert 'simmim_api_requests_total{method="POST",route="/v1/search",status="200"}' in scrape
    assert "simmim_search_seconds_count" in scrape
    assert 'simmim_items{state="indexed"}' in scrape and "simmim_alerts_firing" in scrape
    api.settings.api.open_health = False
    try:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=api.read).status_code == 200
    finally:
        api.settings.api.open_health = True


def test_readyz_says_what_is_missing(db_url: str, tmp_path, tiny_weights) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from app.api.app import create_app
    from simmim import migrations
    from simmim.db import make_engine
    from simmim.settings import Settings
    from tests.encoder_fixtures import tiny_settings

    settings = Settings(
        data_dir=tmp_path / "data",
        database={"url": db_url},  # type: ignore[arg-type]
        encoder=tiny_settings(tiny_weights),  # type: ignore[arg-type]
    )
    migrations.upgrade(make_engine(db_url))
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["indexes"] == "nothing is indexed yet"
    assert r.json()["checks"]["database"] == "ok"


def test_openapi_documents_every_route_with_examples(api: ApiWorld) -> None:
    schema = api.client.get("/openapi.json").json()
    paths = set(schema["paths"])
    assert {
        "/v1/search",
        "/v1/search/upload",
        "/v1/items/{item_id}",
        "/v1/items/{item_id}/image",
        "/v1/items/{item_id}/explain",
        "/v1/items/{item_id}/similar",
        "/v1/trends",
        "/v1/series",
        "/v1/alerts",
        "/v1/alerts/{alert_id}",
        "/v1/alerts/{alert_id}/acknowledge",
        "/v1/rules",
        "/v1/rules/{rule_id}",
        "/v1/queries",
        "/v1/queries/{query_id}",
        "/v1/sources",
        "/v1/sources/{source_id}",
        "/v1/crawl",
        "/v1/monitor/once",
        "/v1/runs/{run_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= paths
    assert schema["components"]["schemas"]["SearchRequest"]["examples"]
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()
    assert api.client.get("/docs").status_code == 200


def test_a_real_serve_process_answers_over_http(api: ApiWorld, tiny_weights, db_url: str) -> None:  # type: ignore[no-untyped-def]
    """`simmim serve` on a free loopback port: search, acknowledge, scrape; stopped after."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from tests.smtp_server import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMMIM_")}
    env.update(
        {
            "SIMMIM_DATA_DIR": str(api.settings.data_dir),
            "SIMMIM_DATABASE__URL": db_url,
            "SIMMIM_ENCODER__MODEL": "simmim-tiny",
            "SIMMIM_ENCODER__PRETRAINED": str(tiny_weights),
            "SIMMIM_ENCODER__CPU_INT8": "false",
        }
    )
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "simmim"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.3)
        found = httpx.post(
            f"{base}/v1/search", json={"text": "oil tanker", "k": 3}, headers=api.read, timeout=30
        )
        assert found.status_code == 200 and len(found.json()["results"]) == 3
        alert_id = list_alerts(api.engine)[0].id
        acked = httpx.post(f"{base}/v1/alerts/{alert_id}/acknowledge", headers=api.admin)
        assert acked.status_code == 200 and acked.json()["acknowledged_at"]
        scrape = httpx.get(f"{base}/metrics").text
        assert 'route="/v1/search",status="200"' in scrape
        assert 'route="/v1/alerts/{alert_id}/acknowledge",status="200"' in scrape
    finally:
        terminate([server], timeout=30)
    output = server.stdout.read().decode() if server.stdout else ""
    # uvicorn shuts down gracefully, then re-raises SIGTERM: the exit status says so.
    assert server.returncode in (0, -signal.SIGTERM) and "Traceback" not in output, output


def test_cors_is_off_unless_origins_are_configured(api: ApiWorld) -> None:
    from fastapi.testclient import TestClient

    from app.api.app import create_app
    from app.api.state import ApiState

    asked = {"Origin": "https://desk.example", "Access-Control-Request-Method": "POST"}
    assert (
        "access-control-allow-origin" not in api.client.options("/v1/search", headers=asked).headers
    )
    settings = api.settings.model_copy(deep=True)
    settings.api.cors_origins = ["https://desk.example"]
    state = ApiState(settings, engine=api.engine, encoder=api.encoder)
    client = TestClient(create_app(settings, state=state))
    allowed = client.options("/v1/search", headers=asked)
    assert allowed.headers["access-control-allow-origin"] == "https://desk.example"


def test_companies_are_listed_by_name_alias_or_symbol(api: ApiWorld) -> None:
    from monitor.companies import add_company

    add_company(api.settings, "ACME", "Acme Widgets plc", ["Acme"])
    r = api.client.get("/v1/companies", params={"q": "acme widgets"}, headers=api.read)
    assert r.status_code == 200
    assert r.json()[0]["id"] == "ACME" and r.json()[0]["source"] == "user"
    r = api.client.get("/v1/companies", params={"q": "BARC.L"}, headers=api.read)
    assert r.json()[0]["name"] == "Barclays" and "FTSE 100" in r.json()[0]["indices"]
    assert api.client.get("/v1/companies", params={"limit": 0}, headers=api.read).status_code == 422
    assert api.client.get("/v1/companies").status_code == 401


def test_a_hit_carries_its_items_text() -> None:
    """Issue 35: API hits for posts carried no text (`title: null` and nothing else)."""
    from app.api.convert import hit
    from indexer.search import SearchResult

    post = SearchResult(1, 0.5, "text", None, "x" * 600, None, None, 2, None, "dump")
    shown = hit(post, None)
    assert shown.title is None and shown.text == "x" * 500


def test_the_docs_pages_load_their_assets_from_this_server(api: ApiWorld) -> None:
    """Issue 35: /docs was blank offline (Swagger UI came from a CDN)."""
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = api.client.get(page)
        assert html.status_code == 200 and f"/static-offline-docs/{asset}" in html.text
        assert "cdn.jsdelivr" not in html.text and "unpkg.com" not in html.text
        script = api.client.get(f"/static-offline-docs/{asset}")
        assert script.status_code == 200 and len(script.content) > 100_000


def test_tables_come_as_csv_when_asked(api: ApiWorld) -> None:
    """Issue 35: search results, trends and alerts as CSV (``Accept: text/csv``), with the
    columns of `simmim … --csv` and the dashboard's download buttons."""
    import csv
    import io

    from monitor.export import ALERT_COLUMNS, SEARCH_COLUMNS, TREND_COLUMNS

    c = api.client
    csv_accept = {**api.read, "Accept": "text/csv"}

    def table(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        return list(csv.DictReader(io.StringIO(response.text)))

    body = {"text": "central bank interest rates", "k": 5}
    as_json = c.post("/v1/search", json=body, headers=api.read).json()["results"]
    rows = table(c.post("/v1/search", json=body, headers=csv_accept))
    assert list(rows[0]) == list(SEARCH_COLUMNS)
    assert [int(r["item_id"]) for r in rows] == [h["id"] for h in as_json]
    assert [r["rank"] for r in rows] == [str(n) for n in range(1, len(rows) + 1)]

    trend = table(
        c.get(
            "/v1/trends",
            params={"kind": "ticker", "key": "ACME", "days": 20},
            headers=csv_accept,
        )
    )
    assert list(trend[0]) == list(TREND_COLUMNS) and {r["series"] for r in trend} == {"ACME"}
    assert sum(int(r["items"]) for r in trend) == sum([*SPIKE_BASE, 60])

    alerts = c.get("/v1/alerts", params={"limit": 1}, headers=csv_accept)
    [alert] = table(alerts)
    assert list(alert) == list(ALERT_COLUMNS) and alert["status"] == "firing"
    assert alerts.headers.get("x-next-cursor")  # two alerts fired: one more page

    # JSON stays the default, and wins where the client ranks it first
    ranked = {**api.read, "Accept": "application/json, text/csv;q=0.5"}
    assert c.post("/v1/search", json=body, headers=ranked).json()["results"] == as_json
    assert (
        "text/csv"
        in c.get("/openapi.json").json()["paths"]["/v1/trends"]["get"]["responses"]["200"][
            "content"
        ]
    )
