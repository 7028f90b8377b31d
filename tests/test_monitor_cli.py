"""The monitor's commands end to end on a JSONL source and the tiny model."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.cli import main


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_weights: Path) -> Path:
    data = tmp_path / "data"
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps table cells at 80
    monkeypatch.setenv("SIMMIM_DATA_DIR", str(data))
    monkeypatch.setenv("SIMMIM_ENCODER__MODEL", "simmim-tiny")
    monkeypatch.setenv("SIMMIM_ENCODER__PRETRAINED", str(tiny_weights))
    monkeypatch.setenv("SIMMIM_ENCODER__CPU_INT8", "false")
    posts = tmp_path / "posts.jsonl"
    now = datetime.now(UTC)
    lines = []
    for day in range(20, 0, -1):
        for i in range(3):
            at = now - timedelta(days=day, hours=i)
            lines.append(
                {
                    "id": f"{day}-{i}",
                    "text": f"$ACME ships widgets, order {day}-{i}",
                    "time": at.isoformat(),
                }
            )
    lines.append(
        {
            "id": "bad",
            "text": "Acme Corp profit fell sharply; $ACME plunges",
            "time": (now - timedelta(days=1)).isoformat(),
        }
    )
    posts.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    return posts


def test_monitor_once_rules_queries_alerts_trends(cli, env: Path) -> None:  # type: ignore[no-untyped-def]
    cli("init")
    cli("source", "add", str(env), "--kind", "jsonl", "--name", "posts")
    out = cli("monitor", "once")
    for step in ("crawl", "index", "score", "detect"):
        assert step in out
    assert "NO" not in out and '"new": 61' in out

    rules = cli("rules", "list")
    assert "ticker volume spike" in rules and "source silent" in rules
    assert "added rule" in cli(
        "rules",
        "add",
        "acme hourly",
        "--kind",
        "volume_spike",
        "--series",
        "ticker:ACME",
        "--bucket",
        "hour",
        "--window",
        "48",
    )
    assert "disabled" in cli("rules", "disable", "acme hourly")
    assert "ticker:ACME" in cli("rules", "list")

    saved = cli("queries", "save", "widgets", "--text", "widget shipments", "--threshold", "0.2")
    assert "saved query 1 'widgets'" in saved
    listed = cli("queries", "list")
    assert "widget shipments" in listed
    assert "query widgets: volume spike" in cli("rules", "list")
    assert "removed saved query 'widgets'" in cli("queries", "remove", "widgets")
    assert "query widgets" not in cli("rules", "list")

    trends = cli("trends", "ticker", "--days", "30")
    assert "ACME" in trends and re.search(r"[+-]0\.\d\d", trends)  # quiet days: near zero
    movers = cli("trends", "ticker", "--days", "30", "--top", "3", "--sort", "volume")
    assert "ACME" in movers and "usual per day" in movers and "series shown" in movers
    assert "no alerts" in cli("alerts", "list")
    # A second cycle: nothing new to crawl or score.
    again = cli("monitor", "once")
    assert '"scored": 0' in again

    # Search rows show the finance fields, and the CLI filters as the API does (issue 35).
    found = cli("search", "acme profit", "--space", "text", "-k", "5", "--sentiment", "negative")
    rows = [line for line in found.splitlines() if re.match(r"\s*│\s*\d+\s*│", line)]
    assert rows and all("negative -" in row and "ACME" in row for row in rows)
    assert "profit fell sharply" in found
    assert "profit fell sharply" not in cli("search", "acme profit", "--sentiment", "positive")
    none = cli("search", "acme", "--space", "text", "--ticker", "NOSUCH")
    assert "0 result(s)" in none

    # CSV of the same tables (issue 35): the columns of the API and the dashboard.
    sheet = list(csv.DictReader(io.StringIO(cli("search", "acme profit", "--csv", "-k", "3"))))
    assert len(sheet) == 3 and sheet[0]["rank"] == "1" and sheet[0]["source"] == "posts"
    assert any(row["companies"] == "ACME" for row in sheet)
    trend_sheet = list(csv.DictReader(io.StringIO(cli("trends", "ticker", "--csv"))))
    assert {"series", "bucket_start", "items"} <= set(trend_sheet[0])
    assert any(row["series"] == "ACME" for row in trend_sheet)
    movers_sheet = cli("trends", "ticker", "--top", "2", "--sort", "volume", "--csv")
    assert movers_sheet.startswith("series,items,mean_sentiment")
    assert cli("alerts", "list", "--all", "--csv").startswith("id,status,series")


def test_rule_errors_are_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["init"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["rules", "add", "x", "--kind", "spiky", "--series", "topic"])
    assert info.value.code == 2
    assert "unknown rule kind 'spiky'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["alerts", "ack", "99"])
    assert info.value.code == 2 and "no alert with id 99" in capsys.readouterr().err


def _labelled_csv(tmp_path: Path) -> Path:
    rows = ["text,label"]
    good = ["profit rose", "shares soar on record sales", "upgraded to buy", "beats estimates"]
    bad = ["profit fell", "shares plunge on weak sales", "downgraded to sell", "misses estimates"]
    flat = [
        "meeting on monday",
        "company names new cfo",
        "results due next week",
        "annual report out",
    ]
    for i in range(12):
        rows += (
            [f"{t} {i},1" for t in good]
            + [f"{t} {i},0" for t in bad]
            + [f"{t} {i},2" for t in flat]
        )
    data = tmp_path / "labelled.csv"
    data.write_text("\n".join(rows), encoding="utf-8")
    return data


@pytest.mark.parametrize(
    "how", [["--kind", "learned"], ["--from-default"], ["--from-scratch"]], ids=" ".join
)
def test_train_sentiment(cli, env: Path, tmp_path: Path, how: list[str]) -> None:  # type: ignore[no-untyped-def]
    from monitor.sentiment import make_scorer
    from simmim.settings import Settings

    kind = "learned" if "learned" in how else "finance"
    folder = tmp_path / "model"
    out = cli(
        "train-sentiment",
        "--data",
        str(_labelled_csv(tmp_path)),
        "--label-map",
        "0=negative,1=positive,2=neutral",
        "--out",
        str(folder),
        *how,
    )
    assert "trained on" in out and "held-out" in out
    assert f"SIMMIM_MONITOR__SENTIMENT={kind}" in out
    model = make_scorer(kind, model=folder, cache_dir=Settings().cache_dir)
    if kind == "finance":
        assert "ECE" in out
        assert (model.base is not None) == ("--from-default" in how)  # type: ignore[attr-defined]
    labels = [
        s.label
        for s in model.score(["profit fell 99", "upgraded to buy 42", "meeting on monday 7"])
    ]
    assert labels == ["negative", "positive", "neutral"]


def test_train_sentiment_compares_each_domain_with_the_shipped_model(
    cli, env: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    plain = _labelled_csv(tmp_path).read_text(encoding="utf-8").splitlines()
    rows = ["text,label,domain"] + [
        f"{line},{'news' if n % 2 else 'posts'}" for n, line in enumerate(plain[1:])
    ]
    data = tmp_path / "domains.csv"
    data.write_text("\n".join(rows), encoding="utf-8")
    out = cli(
        "train-sentiment",
        "--data",
        str(data),
        "--label-map",
        "0=negative,1=positive,2=neutral",
        "--out",
        str(tmp_path / "model"),
        "--kind",
        "learned",
    )
    table = out[out.index("held out") :]
    for domain in ("all", "news", "posts"):
        assert domain in table
    assert "shipped macro-F1" in table and ("better" in table)


def test_train_sentiment_rejects_unknown_labels(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nhello,maybe\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["train-sentiment", "--data", str(data)])
    assert info.value.code == 2
    assert "line 2: label 'maybe'" in capsys.readouterr().err


def test_companies_commands(cli, env: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert "BARC.L" in cli("companies", "search", "barclays")
    assert re.search(r"\d{2} of \d{4} companies", cli("companies", "list", "--index", "FTSE 100"))
    assert "added ACME" in cli("companies", "add", "acme", "--name", "Acme Widgets plc")
    mine = tmp_path / "mine.csv"
    mine.write_text("ticker,name,aliases\nZED.L,Zedland Mining,Zed Mining\n", encoding="utf-8")
    assert "imported 1 company" in cli("companies", "import", str(mine))
    listed = cli("companies", "list", "--source", "user")
    assert "ACME" in listed and "ZED.L" in listed and "2 of" in listed


def test_a_wrong_query_image_is_said_before_the_model_loads(
    cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Issue 35: an image-path error came only after a 7.6 s model load."""
    from app.cli import index_cmd, main

    def no_model(*args: object) -> None:
        raise AssertionError("the model was loaded before the image was checked")

    monkeypatch.setattr(index_cmd, "serving_encoder", no_model)
    cli("init")
    (tmp_path / "not-a-picture.jpg").write_text("hello")
    for path, says in (
        (tmp_path / "missing.jpg", "No such file"),
        (tmp_path / "not-a-picture.jpg", "not-a-picture.jpg"),
    ):
        with pytest.raises(SystemExit) as done:
            main(["search", "--image", str(path), "--space", "image"])
        err = " ".join(capsys.readouterr().err.split())
        assert done.value.code == 2 and says in err, err


def test_a_cycle_says_what_is_left_to_read(cli, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 35: the first cycle stored 499 of 2,388 posts and said nothing of the rest."""
    monkeypatch.setenv("SIMMIM_CRAWLER__MAX_ITEMS_PER_SOURCE", "20")
    cli("init")
    cli("source", "add", str(env), "--kind", "jsonl", "--name", "posts")
    out = cli("monitor", "once")
    assert '"records_left": 41' in out
    assert "41 record(s) left to read" in " ".join(out.split())
    assert "simmim crawl --until-done" in out
