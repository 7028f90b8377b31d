"""Nothing twice: a step runs in one process at a time (advisory lock on PostgreSQL, a file
lock on SQLite). Two `simmim monitor once` started together send one email."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from monitor.alerts import detect
from monitor.models import Notification
from monitor.rules import ensure_default_rules
from simmim.db import session_factory, session_scope
from simmim.locks import RunInProgress, run_lock
from simmim.settings import Settings
from tests.monitor_helpers import daily, seed
from tests.smtp_server import MailServer, free_port

BASE = [6, 5, 7, 6, 5, 6, 7, 5, 6, 6, 5, 7, 6, 5, 6]


def test_a_held_lock_refuses_a_second_run_and_says_who(engine: Engine) -> None:
    with run_lock(engine, "index"):
        with pytest.raises(
            RunInProgress, match=rf"another index run is in progress \(pid {os.getpid()}"
        ):
            run_lock_in_thread(engine, "index", wait=False)
        with run_lock(engine, "score"):  # another step is another lock
            pass
    with run_lock(engine, "index"):  # released on exit
        pass


def run_lock_in_thread(engine: Engine, name: str, *, wait: bool, shared: bool = False) -> None:
    """Take the lock from another thread (a connection or file handle of its own)."""
    failure: list[BaseException] = []

    def take() -> None:
        try:
            with run_lock(engine, name, wait=wait, shared=shared):
                pass
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=take)
    thread.start()
    thread.join(timeout=30)
    if failure:
        raise failure[0]


def test_wait_queues_behind_the_holder(engine: Engine) -> None:
    order: list[str] = []

    def second() -> None:
        with run_lock(engine, "detect", wait=True):
            order.append("second")

    with run_lock(engine, "detect"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        order.append("first done")
    thread.join(timeout=30)
    assert order == ["first done", "second"]


def _fire_an_alert(db_url: str, data_dir: Path) -> None:
    """A ticker whose volume spiked yesterday, detected; its email waits in the outbox."""
    from simmim.db import make_engine

    engine = make_engine(db_url)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seed(engine, daily([*BASE, 60], start=today - timedelta(days=len(BASE) + 1)))
    ensure_default_rules(engine)
    settings = Settings(data_dir=data_dir, database={"url": db_url})  # type: ignore[arg-type]
    assert detect(settings, engine).fired, "the seeded spike fires"
    with session_scope(session_factory(engine)) as session:
        assert session.scalars(select(Notification)).first() is not None
    engine.dispose()


@pytest.mark.parametrize("wait", [False, True])
def test_two_monitor_runs_at_once_send_one_email(
    db_url: str, engine: Engine, tmp_path: Path, tiny_weights: Path, wait: bool
) -> None:
    data_dir = tmp_path / "data"
    _fire_an_alert(db_url, data_dir)
    mail = MailServer(free_port(), delay_s=3.0)
    mail.start()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIMMIM_")},
        "SIMMIM_DATA_DIR": str(data_dir),
        "SIMMIM_DATABASE__URL": db_url,
        "SIMMIM_ENCODER__MODEL": "simmim-tiny",
        "SIMMIM_ENCODER__PRETRAINED": str(tiny_weights),
        "SIMMIM_ENCODER__CPU_INT8": "false",
        "SIMMIM_SMTP__HOST": "127.0.0.1",
        "SIMMIM_SMTP__PORT": str(mail.port),
        "SIMMIM_SMTP__SECURITY": "none",
        "SIMMIM_SMTP__RECIPIENTS": '["desk@example.test"]',
        "SIMMIM_SMTP__SENDER": "alerts@simmim.test",
    }
    command = [str(Path(sys.executable).parent / "simmim"), "monitor", "once"]
    if wait:
        command.append("--wait")
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=240)[0].decode() for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
        mail.stop()
    codes = [p.returncode for p in processes]
    assert len(mail.inbox.messages) == 1, (codes, outputs)
    if wait:
        assert codes == [0, 0], outputs
    else:
        assert sorted(codes)[0] == 0 and set(codes) <= {0, 3}, outputs
        if 3 in codes:
            assert "another" in outputs[codes.index(3)] and "in progress" in outputs[codes.index(3)]
    with session_scope(session_factory(engine)) as session:
        notes = list(session.scalars(select(Notification)))
        assert notes and all(n.sent_at is not None for n in notes)
        assert len({n.message_id for n in notes}) == 1


def test_shared_holders_run_together_and_keep_the_exclusive_one_out(engine: Engine) -> None:
    with run_lock(engine, "index", shared=True):
        run_lock_in_thread(engine, "index", wait=False, shared=True)  # a second adder: fine
        with pytest.raises(RunInProgress, match="another index run is in progress"):
            run_lock_in_thread(engine, "index", wait=False)  # reconcile must wait
    run_lock_in_thread(engine, "index", wait=False)  # and may go once the adders are done
