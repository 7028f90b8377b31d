"""One settings object for the whole system.

Values come, highest priority first, from: keyword arguments, environment variables
(``SIMMIM_`` prefix, ``__`` between nested names, e.g. ``SIMMIM_DATABASE__URL``), an
optional TOML file (``--config`` or ``SIMMIM_CONFIG``), then the defaults below. Nothing
is read at import time: call :func:`load_settings` (or the cached :func:`get_settings`)
and pass the result down.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from simmim.errors import ConfigError
from simmim.image_formats import NEVER_OPENED, SAFE_FORMATS
from simmim.redact import mask_url
from simmim.topic_defaults import DEFAULT_TOPICS, TopicSpec

CONFIG_ENV_VAR = "SIMMIM_CONFIG"
DATABASE_FILE_NAME = "simmim.db"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/simmim``, else ``~/.local/share/simmim``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "simmim"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/simmim``, else ``~/.cache/simmim``: derived files, safe to delete."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simmim"


class _Group(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Group):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means a SQLite file in the data directory.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement.")


class EncoderSettings(_Group):
    model: str = Field(default="ViT-B-32", description="open_clip architecture name.")
    pretrained: str = Field(
        default="laion2b_s34b_b79k",
        description="open_clip pretrained tag, a local weights file, or hf-hub:/local-dir:.",
    )
    fusion_checkpoint: Path | None = Field(
        default=None,
        description="Semantic Memory fusion weights (.safetensors). Set: always this one; "
        "unset: the fusion the live index was built with (self-training switches it).",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    cpu_int8: bool = Field(
        default=True,
        description="On CPU, run the towers' linear layers in int8 (~1.6x faster; cosine to "
        "fp32 >= 0.999). Training always uses fp32.",
    )
    batch_size: int = Field(default=64, ge=1)
    workers: int = Field(
        default=2, ge=0, description="Input pipeline threads (read, decode, resize, tokenise)."
    )
    gpu_decode: bool = Field(
        default=True,
        description="On CUDA, decode JPEGs on the GPU (nvJPEG); other files go the CPU way.",
    )
    cache_dir: Path | None = Field(default=None, description="open_clip / HF weights cache.")
    seed: int = Field(default=0, description="Seed for random-init weights (pretrained=none).")


class FusionSettings(_Group):
    """Self-training of the Semantic Memory fusion on the corpus's own image+text items."""

    self_train: bool = Field(
        default=True,
        description="Train the fusion periodically and switch to it when it wins on "
        "held-out items (off: the fusion changes only by hand).",
    )
    min_pairs: int = Field(
        default=200, ge=10, description="New image+text items since the last attempt."
    )
    every_s: int = Field(default=3600, ge=60, description="How often to look (scheduler/worker).")
    margin: float = Field(
        default=0.02, ge=0, le=1, description="Fused Recall@5 gain a new fusion must show."
    )
    epochs: int = Field(default=40, ge=1, description="Training epochs per attempt (at most).")


class CrawlerSettings(_Group):
    user_agent: str = "SimMIM/0.1 (+https://github.com/simmim/simmim)"
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=20.0, gt=0)
    total_timeout_s: float = Field(default=60.0, gt=0, description="Whole fetch, body included.")
    max_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="Per response.")
    jsonl_time_field: str | None = Field(
        default=None,
        description="A JSONL dump's time field when it is not one of time, created_at, "
        "timestamp, date, published, published_at; a dotted path for a nested one.",
    )
    per_host_interval_s: float = Field(
        default=0.1, ge=0, description="Minimum gap between request starts to one host."
    )
    per_host_concurrency: int = Field(default=2, ge=1)
    concurrency: int = Field(default=32, ge=1, description="Requests in flight in all.")
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=0.5, ge=0, description="First retry wait; doubles.")
    max_items_per_source: int = Field(default=500, ge=1, description="Per crawl of one source.")
    allow_private_addresses: bool = False
    allow_loopback: bool = False
    local_roots: list[Path] = Field(
        default_factory=list,
        description="Folders where local sources and the files they name may live, besides "
        "each source's own folder; when set, local sources must lie inside one of them.",
    )


class IndexSettings(_Group):
    memory_budget_mb: int = Field(default=4096, gt=0)
    recall_target: float = Field(default=0.95, gt=0, le=1)
    backend: Literal["faiss", "milvus"] = Field(
        default="faiss",
        description="Where vectors live: FAISS files in data_dir (one machine) or Milvus.",
    )
    milvus_uri: str = Field(
        default="",
        description="Milvus: http://host:19530 for a server or cluster, or a file path "
        "ending in .db for Milvus Lite (one process); empty: data_dir/milvus.db.",
    )
    milvus_token: SecretStr | None = Field(
        default=None, description="Milvus: user:password or an API token, if the server wants one."
    )
    milvus_prefix: str = Field(
        default="simmim",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="Milvus: collection name prefix, so several deployments can share a server.",
    )
    milvus_timeout_s: float = Field(default=10.0, gt=0, description="Milvus: connect/call timeout.")
    milvus_search_consistency: Literal["Strong", "Session", "Bounded", "Eventually"] = Field(
        default="Session",
        description="Milvus: consistency of search reads. Session sees this process's writes "
        "at once; Strong also other processes' (about 0.3 s per search on a server).",
    )


class SmtpSettings(_Group):
    host: str = "localhost"
    port: int = Field(default=587, gt=0, lt=65536)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = "simmim@localhost"
    recipients: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=30.0, gt=0)
    send_attempts: int = Field(default=3, ge=1, description="Tries per run before giving up.")
    retry_backoff_s: float = Field(default=2.0, ge=0, description="First retry wait; doubles.")


class MonitorSettings(_Group):
    sentiment: Literal["finance", "finance-rules", "vader", "learned", "transformers"] = Field(
        default="finance",
        description="Sentiment scorer; learned/transformers need sentiment_model.",
    )
    sentiment_model: Path | None = Field(
        default=None,
        description="Folder of a train-sentiment model (finance: empty = the shipped default) "
        "or a FinBERT-like model.",
    )
    topics: list[TopicSpec] = Field(
        default_factory=lambda: list(DEFAULT_TOPICS),
        description="Topic set ([[monitor.topics]] name, prompts, keywords in a TOML file).",
    )
    topic_model: str | None = Field(
        default=None,
        description="Topic classifier folder (`simmim topics train`); empty = the shipped "
        "20-topic default; 'none' = event topics only.",
    )
    topic_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Event topics: the evidence an item needs."
    )
    topic_vector_weight: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Trust in the CLIP (vector) evidence for event topics of items without "
        "text; 0 = none (for a model too small to know the topics' prompts).",
    )
    companies: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra ticker -> company names/aliases."
    )
    score_batch: int = Field(default=1000, ge=1)
    catch_up_buckets: int = Field(
        default=3, ge=1, description="Spikes older than this many buckets are not alerted."
    )
    crawl_every_s: int = Field(default=300, ge=1, description="Scheduler: crawl due sources.")
    index_every_s: int = Field(default=300, ge=1, description="Scheduler: encode and index.")
    score_every_s: int = Field(default=300, ge=1, description="Scheduler: score new items.")
    detect_every_s: int = Field(default=300, ge=1, description="Scheduler: detect and notify.")
    misfire_grace_s: int = Field(default=600, ge=1)
    dashboard_url: str | None = Field(
        default=None, description="Base URL of the dashboard, for links in alert emails."
    )


class WorkerSettings(_Group):
    """`simmim worker`: processes on any machine that take tasks from PostgreSQL."""

    concurrency: int = Field(default=1, ge=1, le=64, description="Tasks one worker runs at once.")
    index_batch: int = Field(
        default=256, ge=1, description="Items one encode task claims and encodes."
    )
    encode_slots: int = Field(
        default=8,
        ge=1,
        description="Encode tasks queued at once; workers beyond this many sit idle on 'index'.",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Tries of a failing task before it stays failed."
    )
    retry_wait_s: int = Field(default=10, ge=0, description="Pause before a failed task's retry.")
    heartbeat_s: float = Field(default=10.0, gt=0, description="How often a worker says it lives.")
    stalled_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A worker silent this long is dead: its running task goes to another.",
    )
    poll_s: float = Field(
        default=5.0, gt=0, description="Queue poll interval (new tasks also arrive by NOTIFY)."
    )
    keep_finished_h: int = Field(
        default=72, ge=1, description="Finished task rows older than this are deleted."
    )


class ApiSettings(_Group):
    """`simmim serve`: the HTTP API (tokens from `simmim token create`)."""

    host: str = Field(default="127.0.0.1", description="Address to bind; 0.0.0.0 for all.")
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API (none: off)."
    )
    open_health: bool = Field(
        default=True, description="/healthz and /metrics without a token (false: read scope)."
    )
    max_body_bytes: int = Field(default=20_000_000, gt=0, description="Largest request body.")
    max_k: int = Field(default=200, ge=1, description="Most results one search returns.")
    max_query_chars: int = Field(default=2000, ge=1, description="Longest search text.")
    page_size: int = Field(default=50, ge=1, description="List page size when not asked.")
    max_page_size: int = Field(default=500, ge=1)


class OidcSettings(_Group):
    """Single sign-on through Streamlit's OIDC login (``st.login``), for any OpenID provider."""

    server_metadata_url: str | None = Field(
        default=None, description="The provider's .well-known/openid-configuration URL."
    )
    client_id: str | None = None
    client_secret: SecretStr | None = None
    redirect_uri: str | None = Field(
        default=None, description="This dashboard's URL + /oauth2callback, as registered."
    )
    cookie_secret: SecretStr | None = Field(
        default=None, description="Random string that signs the login cookie."
    )
    allowed_emails: list[str] = Field(
        default_factory=list, description="Accounts let in; empty lets in every account."
    )

    @property
    def enabled(self) -> bool:
        return self.client_id is not None

    @model_validator(mode="after")
    def _complete(self) -> OidcSettings:
        if self.enabled:
            missing = [
                name
                for name in (
                    "server_metadata_url",
                    "client_secret",
                    "redirect_uri",
                    "cookie_secret",
                )
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    "dashboard.oidc needs " + ", ".join(missing) + " besides client_id "
                    "(SIMMIM_DASHBOARD__OIDC__<NAME>)"
                )
        return self


class DashboardSettings(_Group):
    port: int = Field(default=8501, gt=0, lt=65536)
    password: SecretStr | None = Field(default=None, description="Required to view any page.")
    proxy_user_header: str | None = Field(
        default=None,
        description="Trust this request header (e.g. X-Forwarded-User) set by an "
        "authenticating reverse proxy; requests without it see no page.",
    )
    proxy_allowed_users: list[str] = Field(
        default_factory=list, description="With proxy_user_header: users let in (empty: all)."
    )
    oidc: OidcSettings = Field(default_factory=OidcSettings)
    login_attempts: int = Field(
        default=5, ge=1, description="Wrong passwords in a row before a session must wait."
    )
    trend_min_volume: int = Field(
        default=5,
        ge=1,
        description="Trend buckets with fewer items draw their mean sentiment and negative "
        "share as faded points, not joined: 1 to 4 items make a share of 0 or 100 %.",
    )

    @property
    def auth_mode(self) -> Literal["proxy", "oidc", "password", "none"]:
        """Which gate guards the pages; the most specific configured one wins."""
        if self.proxy_user_header:
            return "proxy"
        if self.oidc.enabled:
            return "oidc"
        if self.password is not None:
            return "password"
        return "none"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SIMMIM_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Files derived from installed models (shared by every data dir).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_image_pixels: int = Field(
        default=50_000_000, gt=0, description="Decompression-bomb limit for every image decoded."
    )
    thumbnail_size: int = Field(
        default=224,
        ge=0,
        description="Short side (px) of the copy stored beside each image at ingest, which "
        "encoding, explanations and the result grid read; at least the model's input (224 "
        "for ViT-B-32 and ViT-L-14, 336 for ViT-L-14-336: a smaller copy is not used). At "
        "exactly the input size, encoding skips resizing. 0: no copies.",
    )
    image_formats: list[str] = Field(
        default_factory=lambda: sorted(SAFE_FORMATS),
        description="Pillow format names a picture may be decoded from; every other format "
        "is refused unread (EPS, PS and PDF always: Pillow hands them to Ghostscript).",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    fusion: FusionSettings = Field(default_factory=FusionSettings)
    crawler: CrawlerSettings = Field(default_factory=CrawlerSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)

    @field_validator("image_formats")
    @classmethod
    def _safe_formats(cls, formats: list[str]) -> list[str]:
        named = sorted({f.strip().upper() for f in formats if f.strip()})
        refused = sorted(set(named) & NEVER_OPENED)
        if refused:
            raise ValueError(
                f"{', '.join(refused)} cannot be allowed: Pillow opens them with Ghostscript"
            )
        if not named:
            raise ValueError("name at least one format, e.g. JPEG")
        if set(named) - SAFE_FORMATS:
            from PIL import Image

            Image.init()
            unknown = sorted(set(named) - set(Image.OPEN))
            if unknown:
                raise ValueError(
                    f"Pillow reads no format named {', '.join(unknown)}; "
                    f"it reads {', '.join(sorted(set(Image.OPEN) - NEVER_OPENED))}"
                )
        return named

    @model_validator(mode="after")
    def _resolve_paths(self) -> Settings:
        self.data_dir = self.data_dir.expanduser()
        self.cache_dir = self.cache_dir.expanduser()
        if not self.database.url:
            self.database.url = f"sqlite:///{self.data_dir / DATABASE_FILE_NAME}"
        return self

    @property
    def database_url(self) -> str:
        assert self.database.url is not None  # filled by _resolve_paths
        return self.database.url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML source reads model_config["toml_file"], set per load by load_settings.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from overrides, the environment and an optional TOML file.

    The file is ``config_file`` if given, else ``$SIMMIM_CONFIG`` if set.
    """
    path_text = config_file if config_file is not None else os.environ.get(CONFIG_ENV_VAR)
    if not path_text:
        return _build(Settings, overrides)
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"config file {path} does not exist",
            hint=f"create it, or unset {CONFIG_ENV_VAR} / drop --config",
        )
    # A subclass carries the file name in its own model_config, so no global state changes.
    with_file = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
    )
    return _build(with_file, overrides, source=str(path))


def _build(cls: type[Settings], overrides: dict[str, Any], source: str = "") -> Settings:
    from pydantic import ValidationError

    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        origin = f" (from {source} or the environment)" if source else " (from the environment)"
        hint = f"fix it, e.g. SIMMIM_{where.upper().replace('.', '__')}=..."
        if first["type"] == "extra_forbidden":
            hint = _unknown_setting_hint([str(part) for part in first["loc"]])
        raise ConfigError(f"invalid setting {where}: {first['msg']}{origin}", hint=hint) from exc
    except ValueError as exc:  # malformed TOML
        raise ConfigError(
            f"cannot read settings from {source}: {exc}", hint="fix the file"
        ) from exc


def _unknown_setting_hint(loc: list[str]) -> str:
    """ "did you mean" for a misspelt setting: the closest names of the section it is in."""
    import difflib

    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    else:
        names = list(model.model_fields)
        close = difflib.get_close_matches(loc[-1].lower(), names, n=3, cutoff=0.6)
        env = "SIMMIM_" + "__".join(p.upper() for p in loc[:-1]) + ("__" if loc[:-1] else "")
        if close:
            return "did you mean " + " or ".join(f"{env}{c.upper()}" for c in close) + "?"
        return f"{'.'.join(loc[:-1]) or 'settings'} has: {', '.join(names)}"
    return "remove it: no such setting"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings for entry points (CLI, dashboard); deep code takes them as arguments."""
    return load_settings()


def masked_dump(settings: Settings) -> dict[str, Any]:
    """Settings as plain data with every secret (and any password in the DB URL) masked."""
    data = settings.model_dump(mode="json")  # SecretStr fields dump as "**********"
    data["database"]["url"] = mask_url(settings.database_url)
    return data
