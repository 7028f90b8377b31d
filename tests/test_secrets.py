"""No secret is echoed: a run with credential-bearing URLs (database, sources, SMTP) is
grepped, every CLI output and every log record, for the secrets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import main
from simmim.redact import mask_text, mask_url
from tests.http_server import LocalServer, Reply

SECRETS = ("PW-h0rse-battery", "TOK-c0rrect-staple")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out + err


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where} shows {secret!r}: {text[-800:]}"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://bob:{SECRETS[0]}@db.internal:notaport/simmim",
        f"postgresql+psycopg//bob:{SECRETS[0]}@db.internal/simmim",
        f"nonsense bob:{SECRETS[0]}@db.internal",
        f"nosuchdriver+x://bob:{SECRETS[0]}@db.internal/simmim",
        f"postgresql+psycopg://bob:{SECRETS[0]}/x#y?z@127.0.0.1:9/simmim",  # / # ? in it
        f"postgresql+psycopg://bob:{SECRETS[0]}@x%y@127.0.0.1:9/simmim",  # @ and % in it
    ],
)
def test_bad_database_urls_are_not_echoed(
    url: str,
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIMMIM_DATABASE__URL", url)
    for command in (["status"], ["config", "show"], ["--debug", "config", "show"]):
        code, output = run(capsys, *command)
        assert_clean(output, " ".join(command))
        if command[0] == "status":
            assert code != 0 and "database" in output


def test_a_run_with_credentials_in_urls_shows_none(
    isolated_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    http_server: LocalServer,
) -> None:
    http_server.routes["/feed.xml"] = Reply(500, b"down")
    http_server.routes["/robots.txt"] = Reply(404)
    port = http_server.url("/").split(":")[-1].rstrip("/")
    feed = f"http://alice:{SECRETS[0]}@127.0.0.1:{port}/feed.xml?token={SECRETS[1]}"
    missing = f"http://bob:{SECRETS[0]}@127.0.0.1:9/gone.jsonl?api_key={SECRETS[1]}"
    for name, value in {
        "CRAWLER__ALLOW_LOOPBACK": "true",
        "CRAWLER__RETRIES": "0",
        "CRAWLER__PER_HOST_INTERVAL_S": "0",
        "SMTP__PASSWORD": SECRETS[0],
        "SMTP__USERNAME": "alerts",
    }.items():
        monkeypatch.setenv(f"SIMMIM_{name}", value)

    seen: list[logging.LogRecord] = []  # every record any logger handles, whatever its handlers
    handle = logging.Logger.handle

    def spy(self: logging.Logger, record: logging.LogRecord) -> None:
        seen.append(record)
        handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", spy)
    outputs = []
    for command in (
        ["init"],
        ["source", "add", feed, "--kind", "rss"],
        ["source", "add", missing, "--kind", "jsonl", "--name", "dump"],
        ["source", "add", f"http://[::1/x?token={SECRETS[1]}", "--kind", "rss"],
        ["-v", "crawl"],
        ["--debug", "crawl"],
        ["source", "list"],
        ["status"],
        ["config", "show"],
    ):
        code, output = run(capsys, *command)
        outputs.append((command, code, output))
    for command, _, output in outputs:
        assert_clean(output, " ".join(command))
    assert any("http 500" in out for cmd, _, out in outputs if cmd[-1] == "crawl")
    records = [r.getMessage() for r in seen]
    assert any("127.0.0.1" in m for m in records), "the debug crawl logged its requests"
    for message in records:
        assert_clean(message, "a log record")

    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import CrawlRun, Source

    engine = make_engine(f"sqlite:///{isolated_env / 'simmim.db'}")
    with session_scope(session_factory(engine)) as session:
        sources = list(session.scalars(select(Source)))
        assert len(sources) == 2 and all(s.last_error for s in sources)
        for s in sources:
            assert_clean(s.last_error or "", "last_error")
            assert SECRETS[0] in s.location  # stored as given: fetching needs it
        for crawl_run in session.scalars(select(CrawlRun)):
            assert_clean(json.dumps(crawl_run.reasons), "crawl run examples")
    engine.dispose()


def test_mask_url_forms() -> None:
    assert (
        mask_url("https://u:p@h.example/a?token=t&x=1") == "https://u:***@h.example/a?token=***&x=1"
    )
    assert mask_url("https://ghp_0123456789abcdefXYZ@h.example/") == "https://***@h.example/"
    assert mask_url("https://alice@h.example/") == "https://alice@h.example/"  # a name only
    assert mask_url("https://h.example/a?q=bank+run") == "https://h.example/a?q=bank+run"
    assert mask_url("postgresql+psycopg://u:p%40ss@db/x") == "postgresql+psycopg://u:***@db/x"
    assert mask_url("http://u:p@[::1/x?token=t") == "http://u:***@[::1/x?token=***"  # unparseable
    assert mask_url("postgresql//u:p@db/x") == "postgresql//u:***@db/x"  # not a URL at all
    assert mask_url("https://medium.com/@someone/a-post") == "https://medium.com/@someone/a-post"
    assert mask_text("GET https://u:p@h/x failed; retry http://h/y") == (
        "GET https://u:***@h/x failed; retry http://h/y"
    )


@pytest.mark.parametrize("password", ["pa/ss", "pa#ss", "pa?ss", "p/s@ss", "p%40ss", "p@ss", "p:s"])
@pytest.mark.parametrize(
    "template",
    [
        "postgresql+psycopg://bob:{}@db.internal:5432/simmim",
        "https://alice:{}@feeds.example/rss?x=1",
        "http://milvus:{}@10.0.0.5:19530",
    ],
)
def test_a_password_with_any_character_is_masked(template: str, password: str) -> None:
    """Issue 36, finding 9: the masking split at the first ``/`` and printed the rest."""
    secret = f"S3CR{password}ET"
    url = template.format(secret)
    for shown in (mask_url(url), mask_text(f"cannot connect to {url}: refused")):
        assert "S3CR" not in shown and "ET@" not in shown, shown
        assert "***@" in shown
    host = template.split("@")[1].split("/")[0].split(":")[0]
    assert host in mask_url(url)  # the user still sees where it points
