from __future__ import annotations

from pathlib import Path

import pytest

from simmim.errors import ConfigError
from simmim.settings import Settings, default_data_dir, load_settings, masked_dump


def test_defaults_need_no_configuration(isolated_env: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == isolated_env
    assert settings.database_url == f"sqlite:///{isolated_env / 'simmim.db'}"
    assert settings.encoder.model == "ViT-B-32"
    assert settings.encoder.pretrained == "laion2b_s34b_b79k"
    assert settings.crawler.allow_loopback is False


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "simmim"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_data_dir() == Path.home() / ".local" / "share" / "simmim"


def test_nested_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMMIM_DATABASE__URL", "postgresql+psycopg://u@db/simmim")
    monkeypatch.setenv("SIMMIM_ENCODER__BATCH_SIZE", "8")
    monkeypatch.setenv("SIMMIM_SMTP__RECIPIENTS", '["a@example.org", "b@example.org"]')
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://u@db/simmim"
    assert settings.encoder.batch_size == 8
    assert settings.smtp.recipients == ["a@example.org", "b@example.org"]


def test_toml_file_then_env_overrides_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "simmim.toml"
    config.write_text(
        '[encoder]\nmodel = "simmim-tiny"\nbatch_size = 4\n[smtp]\nport = 2525\n', encoding="utf-8"
    )
    monkeypatch.setenv("SIMMIM_ENCODER__BATCH_SIZE", "16")
    settings = load_settings(config)
    assert settings.encoder.model == "simmim-tiny"  # from the file
    assert settings.smtp.port == 2525  # from the file
    assert settings.encoder.batch_size == 16  # env beats file
    assert isinstance(settings, Settings)

    monkeypatch.setenv("SIMMIM_CONFIG", str(config))
    assert load_settings().encoder.model == "simmim-tiny"


def test_keyword_overrides_beat_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMMIM_LOG_LEVEL", "ERROR")
    assert load_settings(log_level="DEBUG").log_level == "DEBUG"


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMMIM_ENCODER__BATCH_SIZE", "0")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "encoder.batch_size" in str(info.value)
    assert "SIMMIM_ENCODER__BATCH_SIZE" in str(info.value)


def test_unknown_key_in_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[encoder]\nmodle = 'typo'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"encoder\.modle"):
        load_settings(config)


def test_malformed_toml_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[encoder\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml"):
        load_settings(config)


def test_masked_dump_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMMIM_SMTP__PASSWORD", "hunter2")
    monkeypatch.setenv("SIMMIM_DASHBOARD__PASSWORD", "letmein")
    monkeypatch.setenv("SIMMIM_DATABASE__URL", "postgresql+psycopg://bob:s3cret@db/simmim")
    settings = load_settings()
    assert settings.smtp.password is not None
    assert settings.smtp.password.get_secret_value() == "hunter2"
    dumped = repr(masked_dump(settings))
    for secret in ("hunter2", "letmein", "s3cret"):
        assert secret not in dumped
    assert masked_dump(settings)["database"]["url"] == "postgresql+psycopg://bob:***@db/simmim"


def test_a_misspelt_setting_says_what_was_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 35: the hint repeated the typo."""
    monkeypatch.setenv("SIMMIM_SMTP__RECIPENTS", '["desk@example.test"]')
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert refused.value.hint == "did you mean SIMMIM_SMTP__RECIPIENTS?"
    monkeypatch.delenv("SIMMIM_SMTP__RECIPENTS")
    monkeypatch.setenv("SIMMIM_INDEX__ZZZQQ", "1")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert (refused.value.hint or "").startswith("index has: memory_budget_mb, recall_target")
