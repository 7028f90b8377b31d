"""The demo pipeline: corpus → local site and mail server → the real monitor cycle.

Everything runs through the same code as `simmim monitor once` (Runtime steps); the
demo only supplies the data, a loopback-allowed crawler, a local SMTP server and, when
no pretrained weights are available, a tiny model fitted on the demo's own pictures.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from app.demo.corpus import BURST_TICKER, COMPANIES, KNOWN_HEADLINE, TINTS, CorpusSpec, generate
from app.demo.mail import OutboxServer
from app.demo.pictures import price_chart
from app.demo.site import FEEDS, Site, write_site
from indexer.search import SearchResult
from simmim.errors import SimmimError
from simmim.paths import DataLayout
from simmim.settings import Settings, load_settings

if TYPE_CHECKING:
    from encoder.train.evaluation import RetrievalReport
    from monitor.cycle import Runtime

MARKER = ".simmim-demo"
CONFIG_NAME = "simmim-demo.toml"
TINY_CHECKPOINT = "demo-tiny.safetensors"
RECIPIENT = "analyst@demo.invalid"


class DemoError(SimmimError):
    """The demo cannot run as asked."""


@dataclass
class DemoSearch:
    label: str
    space: str
    results: list[SearchResult]


@dataclass
class DemoResult:
    data_dir: Path
    config_file: Path
    model: str
    items_by_source: dict[str, int] = field(default_factory=dict)
    failed_items: int = 0
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    topics: list[tuple[str, int]] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    emails: list[Path] = field(default_factory=list)
    searches: list[DemoSearch] = field(default_factory=list)
    steps: list[tuple[str, bool, str]] = field(default_factory=list)
    retrieval: RetrievalReport | None = None


def prepare(data_dir: Path) -> None:
    """Start clean: a previous demo directory is wiped; anything else is never touched."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).is_file():
            raise DemoError(
                f"{data_dir} is not empty and is not a demo directory",
                hint="pass --data-dir with a new or empty folder (the demo starts fresh)",
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("created by `simmim demo`; wiped by the next run\n")


@contextmanager
def _quiet_logs() -> Iterator[None]:
    root = logging.getLogger()
    level, disabled = root.level, logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(disabled)
        root.setLevel(level)


def load_pretrained(settings: Settings, say: Callable[[str], None]) -> Any | None:
    """The configured model from the cache, or downloaded when its server answers; None when
    neither works (the loader finds that out in seconds offline). The loaded encoder is
    handed on, not loaded a second time."""
    from encoder import load_encoder

    try:
        with _quiet_logs():  # open_clip logs each failed try; the demo says it once
            return load_encoder(settings)
    except Exception as exc:  # not cached offline, or a failed download: the tiny model it is
        say(
            f"pretrained weights unavailable: {exc.message if isinstance(exc, SimmimError) else exc}"
        )
        return None


def fit_tiny_model(
    settings: Settings, engine: Engine, epochs: int, say: Callable[[str], None]
) -> Path:
    """Train the tiny open_clip model on the crawled demo pictures and their captions."""
    import torch

    from encoder import load_encoder
    from encoder.train.evaluation import split_held_out
    from encoder.train.finetune import BackboneTrainConfig, fit_text_pairs, train_backbone
    from encoder.train.pairs import corpus_pairs

    layout = DataLayout(settings.data_dir)
    # The evaluation's held-out pictures stay unseen, so `simmim eval retrieval` is honest.
    # Sorted by content: crawl order (and so item ids) varies from run to run.
    train, _ = split_held_out(corpus_pairs(engine, layout))
    pairs = sorted((p.pair for p in train), key=lambda p: (p.text, str(p.image)))
    tiny = settings.model_copy(
        update={
            "encoder": settings.encoder.model_copy(
                update={"model": "simmim-tiny", "pretrained": "none", "seed": 0}
            )
        }
    )
    with _quiet_logs():  # "random weights" warnings: expected here, the model is trained next
        encoder = load_encoder(tiny, trainable=True)
    # First the language: a headline should find its article (text tower, text pairs);
    # then the pictures, towards that fixed text space (image tower only).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same model on every run: one thread, one float order
    try:
        recall = fit_text_pairs(encoder, headline_pairs(engine), epochs=epochs)
        say(
            f"fitted the tiny model's text tower on the demo headlines (held-out recall@1 {recall:.2f})"
        )
        path = layout.models / TINY_CHECKPOINT
        config = BackboneTrainConfig(
            epochs=epochs,
            batch_size=32,
            lr=1e-3,
            val_fraction=0.2,
            patience=epochs,
            seed=0,
            freeze_text=True,
        )
        report = train_backbone(encoder, pairs, path, config, fitted_on=layout.corpus_id())
    finally:
        torch.set_num_threads(threads)
    before = report.baseline.get("text_to_image", {}).get(10, 0.0)
    after = report.trained.get("text_to_image", {}).get(10, 0.0)
    say(
        f"fitted the tiny model on {len(pairs)} demo picture/caption pairs in "
        f"{report.epochs_run} epochs (held-out text→image recall@10 {before:.2f} → {after:.2f})"
    )
    return path


def headline_pairs(engine: Engine) -> list[tuple[str, str]]:
    """(title, full item text) for every item with both: what a headline search must join."""
    from simmim.db import session_factory, session_scope
    from simmim.models import Item, item_text

    with session_scope(session_factory(engine)) as session:
        rows = session.execute(select(Item.title, Item.text).where(Item.title.is_not(None))).all()
    return sorted((title, item_text(title, text) or title) for title, text in rows if title)


def write_config(result_dir: Path, settings: Settings) -> Path:
    """A TOML file that points later commands (dashboard, search) at the demo's data."""
    lines = [
        f"data_dir = {json.dumps(str(settings.data_dir))}",
        "",
        "[encoder]",
        f"model = {json.dumps(settings.encoder.model)}",
        f"pretrained = {json.dumps(str(settings.encoder.pretrained))}",
        "",
        "[index]",
        f"backend = {json.dumps(settings.index.backend)}",
        *(
            [f"milvus_uri = {json.dumps(settings.index.milvus_uri)}"]
            if settings.index.milvus_uri
            else []
        ),
        "",
        "[monitor]",
        f"topic_vector_weight = {settings.monitor.topic_vector_weight}",
        "",
        "[monitor.companies]",
    ]
    lines += [
        f"{ticker} = {json.dumps(list(aliases))}"
        for ticker, aliases in settings.monitor.companies.items()
    ]
    path = result_dir / CONFIG_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_demo(
    data_dir: Path,
    *,
    spec: CorpusSpec = CorpusSpec(),
    model: str = "auto",
    train_epochs: int = 20,
    say: Callable[[str], None] = lambda message: None,
) -> DemoResult:
    from indexer.source_admin import add_source
    from monitor.cycle import Runtime
    from monitor.steps import CYCLE
    from simmim import migrations
    from simmim.db import make_engine, session_factory, session_scope
    from simmim.models import Item, ItemStatus, Source, SourceKind

    data_dir = data_dir.expanduser().resolve()
    prepare(data_dir)
    layout = DataLayout(data_dir)
    layout.create()
    corpus = generate(spec)
    site_root = data_dir / "demo-site"
    with Site(site_root) as site, OutboxServer(layout.outbox) as mail:
        locations = write_site(corpus, site_root, site.base_url)
        settings = load_settings(
            data_dir=data_dir,
            crawler={"allow_loopback": True, "per_host_interval_s": 0.0, "per_host_concurrency": 8},
            smtp={
                "host": "127.0.0.1",
                "port": mail.port,
                "security": "none",
                "sender": "simmim-demo@localhost",
                "recipients": [RECIPIENT],
            },
            monitor={
                "companies": {t: [name] for t, (name, _) in COMPANIES.items()},
                # the port `simmim dashboard` will use here (SIMMIM_DASHBOARD__PORT)
                "dashboard_url": f"http://localhost:{load_settings().dashboard.port}",
            },
        )
        engine = make_engine(settings.database_url)
        migrations.upgrade(engine)
        with session_scope(session_factory(engine)) as session:
            for title, location in zip(FEEDS.values(), locations["rss"], strict=True):
                add_source(session, location, SourceKind.RSS, name=title, every_s=900)
            add_source(
                session, locations["jsonl"][0], SourceKind.JSONL, name="Social posts", every_s=900
            )
            for n, location in enumerate(locations["page"], start=1):
                add_source(
                    session, location, SourceKind.PAGE, name=f"Feature article {n}", every_s=86400
                )

        runtime = Runtime(settings, engine)
        crawl = runtime.run_step("crawl")
        result = DemoResult(data_dir, data_dir / CONFIG_NAME, "")
        result.steps.append(("crawl", bool(crawl.ok), json.dumps(crawl.summary)))
        if not crawl.ok:
            raise DemoError(f"the demo crawl failed: {crawl.error}")

        pretrained = load_pretrained(settings, say) if model == "auto" else None
        if model == "pretrained" or pretrained is not None:
            result.model = f"{settings.encoder.model} ({settings.encoder.pretrained})"
        else:
            if model == "auto":
                say("fitting the tiny model on the demo corpus instead")
            checkpoint = fit_tiny_model(settings, engine, train_epochs, say)
            settings = settings.model_copy(
                update={
                    "encoder": settings.encoder.model_copy(
                        update={"model": "simmim-tiny", "pretrained": str(checkpoint)}
                    ),
                    "monitor": settings.monitor.model_copy(update={"topic_vector_weight": 0.0}),
                }
            )
            result.model = (
                f"simmim-tiny, fitted on the demo corpus ({checkpoint}); topics by keywords "
                "only (too small a model for zero-shot topics)"
            )

        runtime = Runtime(settings, engine, encoder=pretrained)  # None: loads from settings
        for run in runtime.run_once(tuple(s for s in CYCLE if s != "crawl")):  # crawled above
            result.steps.append((run.job, bool(run.ok), run.error or json.dumps(run.summary)))
        _summarise(result, settings, engine, runtime, mail.saved)
        write_config(data_dir, settings)
        with session_scope(session_factory(engine)) as session:
            result.items_by_source = dict(
                session.execute(
                    select(Source.name, func.count(Item.id))
                    .join(Item, Item.source_id == Source.id)
                    .group_by(Source.name)
                ).all()
            )
            result.failed_items = (
                session.scalar(select(func.count(Item.id)).where(Item.status == ItemStatus.FAILED))
                or 0
            )
        engine.dispose()
    return result


def _summarise(
    result: DemoResult, settings: Settings, engine: Engine, runtime: Runtime, emails: list[Path]
) -> None:
    import email
    from email.policy import default

    from encoder.train.evaluation import evaluate_corpus, save_report
    from indexer.index import open_stores, stores_status
    from indexer.search import search
    from monitor.alerts import list_alerts
    from monitor.trends import series_keys

    result.indexes = stores_status(settings)
    result.topics = series_keys(engine, "topic")[:6]
    result.alerts = [a.summary for a in list_alerts(engine)]
    result.emails = list(emails)
    for path in emails:
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        result.subjects.append(str(message["Subject"]).strip())
    encoder = runtime.encoder
    indexes = open_stores(settings, encoder.fingerprint, encoder.dim, read_only=True)
    chart = price_chart(-1, seed=4242, tint=TINTS[BURST_TICKER])  # a new picture, not crawled
    for label, space, kwargs in (
        (f'text: "{KNOWN_HEADLINE}"', "text", {"text": KNOWN_HEADLINE}),
        (
            'text: "Regulators fine Nordwind Energy"',
            "text",
            {"text": "Regulators fine Nordwind Energy"},
        ),
        ("image (a new falling chart on Nordwind's colour) → posts", "fused", {"image": chart}),
    ):
        result.searches.append(
            DemoSearch(label, space, search(engine, encoder, indexes, space=space, k=3, **kwargs))
        )
    indexes.close()
    result.retrieval = evaluate_corpus(encoder, engine, DataLayout(settings.data_dir))
    save_report(DataLayout(settings.data_dir), result.retrieval)
    if settings.index.backend == "milvus":  # Milvus Lite: let the dashboard open the file next
        from indexer.index.milvus_store import release_lite

        release_lite(settings)
