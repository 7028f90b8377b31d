from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from simmim import migrations
from simmim.db import make_engine


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("init", "db", "config"):
        assert command in out


def test_init_creates_data_dir_and_database_at_head(
    capsys: pytest.CaptureFixture[str], isolated_env: Path
) -> None:
    code, out, _ = run(capsys, "init")
    assert code == 0
    assert (isolated_env / "simmim.db").is_file()
    for folder in ("images", "indexes", "models", "outbox"):
        assert (isolated_env / folder).is_dir()
    url = f"sqlite:///{isolated_env / 'simmim.db'}"
    assert migrations.current_revision(make_engine(url)) == migrations.head_revision(url)
    assert "(created)" in out

    code, out, _ = run(capsys, "init")  # idempotent
    assert code == 0
    assert "already up to date" in out


def test_db_current_upgrade_and_downgrade(
    capsys: pytest.CaptureFixture[str], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMMIM_DATABASE__URL", db_url)
    head = migrations.head_revision(db_url)
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and "empty" in out and "simmim db upgrade" in out

    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and f"empty -> {head}" in out

    code, out, _ = run(capsys, "db", "current")
    assert f"{head} (up to date)" in out

    code, out, _ = run(capsys, "db", "downgrade", "base", "--yes")
    assert code == 0 and f"{head} -> empty" in out
    assert migrations.current_revision(make_engine(db_url)) is None


def test_config_show_prints_effective_settings_with_secrets_masked(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[smtp]\nhost = "mail.example.org"\npassword = "hunter2"\n', encoding="utf-8")
    code, out, _ = run(capsys, "--config", str(config), "config", "show")
    assert code == 0
    shown = json.loads(out)
    assert shown["smtp"]["host"] == "mail.example.org"
    assert shown["smtp"]["password"] == "**********"
    assert "hunter2" not in out


def test_errors_are_one_line_with_a_hint_and_no_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "--config", str(tmp_path / "missing.toml"), "config", "show")
    assert code == 2
    assert "missing.toml does not exist" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1

    monkeypatch.setenv(
        "SIMMIM_DATABASE__URL", "postgresql+psycopg://x@127.0.0.1:1/none?connect_timeout=2"
    )
    code, _, err = run(capsys, "db", "current")
    assert code == 2
    assert "SIMMIM_DATABASE__URL" in err and "Traceback" not in err


def test_debug_flag_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from simmim.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "--config", str(tmp_path / "missing.toml"), "config", "show"])


def test_console_script_is_installed(isolated_env: Path) -> None:
    """The same entry point a user types, through a real process."""
    script = Path(sys.executable).parent / "simmim"
    result = subprocess.run(
        [str(script), "init"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (isolated_env / "simmim.db").is_file()


def test_status_counts_sources_and_items(
    capsys: pytest.CaptureFixture[str], isolated_env: Path
) -> None:
    from simmim.db import session_factory, session_scope
    from simmim.models import Item, ItemStatus, Source, SourceKind

    code, _, err = run(capsys, "status")
    assert code == 2 and "simmim init" in err  # before init: says what to do

    run(capsys, "init")
    engine = make_engine(f"sqlite:///{isolated_env / 'simmim.db'}")
    with session_scope(session_factory(engine)) as session:
        source = Source(name="wire", kind=SourceKind.RSS, location="https://example.org/rss")
        session.add(source)
        session.add_all(
            [
                Item(source=source, title="a"),
                Item(source=source, title="b"),
                Item(source=source, title="c", status=ItemStatus.FAILED, error="corrupt image"),
            ]
        )
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert "1 (1 enabled)" in out
    assert "1 failed, 2 pending" in out
