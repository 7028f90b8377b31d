"""Local files named by JSONL and folder sources stay inside the source: a traversal table
of path forms (relative escapes, absolute, home, URL-encoded, file: URLs, symlinks out,
devices, FIFOs, folders), each refused per item with a reason while the rest goes in."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from indexer.local_files import RefusedPath, confine, read_capped
from indexer.net.errors import FetchError
from indexer.source_admin import SourceError, add_source
from simmim.db import session_factory, session_scope
from simmim.models import SourceKind
from simmim.paths import DataLayout
from tests.crawl_helpers import add, crawl_settings, items, jpeg, run


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A dump folder with one good picture, and secrets outside it to reach for."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(jpeg(7))
    (outside / "secret.txt").write_text("TOP-SECRET-CAPTION")
    dump = tmp_path / "dump"
    (dump / "images").mkdir(parents=True)
    (dump / "images" / "ok.jpg").write_bytes(jpeg(1))
    (dump / "link-in.jpg").symlink_to(dump / "images" / "ok.jpg")
    (dump / "link-out.jpg").symlink_to(outside / "secret.jpg")
    (dump / "dir-link").symlink_to(outside, target_is_directory=True)
    (dump / "loop.jpg").symlink_to(dump / "loop.jpg")
    os.mkfifo(dump / "fifo.jpg")
    return {"outside": outside, "dump": dump}


# (image value in a JSONL line, stored?) — every refused form keeps the post's text.
TRAVERSAL = [
    ("images/ok.jpg", True),
    ("link-in.jpg", True),
    ("../outside/secret.jpg", False),
    ("images/../../outside/secret.jpg", False),
    ("../../../../../../etc/passwd", False),
    ("/etc/passwd", False),
    ("/etc/shadow", False),
    ("/proc/self/environ", False),
    ("~/.bashrc", False),
    ("~root/.bashrc", False),
    ("%2e%2e/outside/secret.jpg", False),
    ("..%2Foutside%2Fsecret.jpg", False),
    ("file:///etc/passwd", False),
    ("link-out.jpg", False),
    ("dir-link/secret.jpg", False),
    ("loop.jpg", False),
    ("fifo.jpg", False),
    ("/dev/zero", False),
    ("/dev/null", False),
    ("images", False),
    ("images/ok.jpg\u0000.png", False),
    ("OUTSIDE_ABSOLUTE", False),  # the secret's absolute path
]


def test_jsonl_image_paths_stay_inside_the_dump(
    layout: dict[str, Path], engine: Engine, tmp_path: Path
) -> None:
    dump, outside = layout["dump"], layout["outside"]
    lines = []
    for n, (image, _) in enumerate(TRAVERSAL):
        value = str(outside / "secret.jpg") if image == "OUTSIDE_ABSOLUTE" else image
        lines.append(
            json.dumps({"id": n, "text": f"post number {n} about {image}", "image": value})
        )
    (dump / "posts.jsonl").write_text("\n".join(lines) + "\n")
    settings = crawl_settings(tmp_path / "data")
    sid = add(engine, str(dump / "posts.jsonl"), SourceKind.JSONL)

    outcome = run(settings, engine)[sid]
    assert outcome.ok and outcome.new == len(TRAVERSAL), outcome
    stored = {int(i.external_id or -1): i for i in items(engine)}
    secret_sha = hashlib.sha256(jpeg(7)).hexdigest()
    for n, (image, allowed) in enumerate(TRAVERSAL):
        item = stored[n]
        assert item.text and item.text.startswith(f"post number {n}"), image
        if allowed:
            assert item.image_sha256 is not None and item.error is None, image
        else:
            assert item.image_sha256 is None, f"{image!r} was read"
            assert item.error and item.error.startswith("image: "), image
            assert "TOP-SECRET" not in (item.error or "")
    images = DataLayout(settings.data_dir).images
    assert not any(p.name.startswith(secret_sha) for p in images.rglob("*"))
    assert outcome.reasons["image refused path"] >= 12
    assert outcome.examples, "failures keep examples with their reasons"


def test_folder_source_does_not_follow_links_out(
    layout: dict[str, Path], engine: Engine, tmp_path: Path
) -> None:
    dump, outside = layout["dump"], layout["outside"]
    (dump / "images" / "ok.txt").symlink_to(outside / "secret.txt")  # a sidecar reaching out
    (dump / "images" / "two.jpg").write_bytes(jpeg(2))
    (dump / "images" / "two.txt").write_text("Two, captioned")
    settings = crawl_settings(tmp_path / "data")
    sid = add(engine, str(dump), SourceKind.FOLDER)

    outcome = run(settings, engine)[sid]
    assert outcome.ok
    stored = items(engine)
    by_name = {Path(i.external_id or "").name: i for i in stored}
    assert set(by_name) == {"ok.jpg", "two.jpg"}
    assert outcome.duplicate == 1  # link-in.jpg points inside: read, and found to be ok.jpg
    assert by_name["two.jpg"].text == "Two, captioned"
    assert all("TOP-SECRET" not in (i.text or "") for i in stored)
    assert outcome.reasons["refused path"] >= 3  # link-out, loop, fifo
    assert outcome.reasons["bad sidecar"] == 1
    secret_sha = hashlib.sha256(jpeg(7)).hexdigest()
    assert all(i.image_sha256 != secret_sha for i in stored)


def test_reads_are_capped_by_bytes_read(tmp_path: Path) -> None:
    with pytest.raises(RefusedPath, match="character device"):
        read_capped(Path("/dev/zero"), 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(FetchError, match="over 1024 bytes"):
        read_capped(big, 1024)
    assert read_capped(big, 4096) == b"x" * 2048


def test_confine_honours_configured_roots(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "pic.jpg").write_bytes(b"x")
    root = tmp_path / "dump"
    root.mkdir()
    with pytest.raises(RefusedPath, match="outside"):
        confine(shared / "pic.jpg", root)
    assert confine(shared / "pic.jpg", root, [shared]) == (shared / "pic.jpg").resolve()


def test_local_sources_must_live_under_local_roots(engine: Engine, tmp_path: Path) -> None:
    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    with session_scope(session_factory(engine)) as session:
        add_source(session, str(allowed), SourceKind.FOLDER, local_roots=[allowed])
        with pytest.raises(SourceError, match="outside the configured local roots"):
            add_source(session, str(elsewhere), SourceKind.FOLDER, local_roots=[allowed])


def test_crawl_refuses_a_local_source_outside_local_roots(
    layout: dict[str, Path], engine: Engine, tmp_path: Path
) -> None:
    settings = crawl_settings(tmp_path / "data", local_roots=[str(tmp_path / "somewhere-else")])
    sid = add(engine, str(layout["dump"]), SourceKind.FOLDER)
    outcome = run(settings, engine)[sid]
    assert (
        not outcome.ok and outcome.error and "outside the configured local roots" in outcome.error
    )
