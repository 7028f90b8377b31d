"""`simmim worker` processes for the tests: started with one environment, always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import terminate

SIMMIM = str(Path(sys.executable).parent / "simmim")


def worker_env(db_url: str, data_dir: Path, weights: Path, **settings: object) -> dict[str, str]:
    """The process environment: our settings as SIMMIM_* variables (``a__b`` nests)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMMIM_")}
    env.update(
        {
            "SIMMIM_DATA_DIR": str(data_dir),
            "SIMMIM_DATABASE__URL": db_url,
            "SIMMIM_ENCODER__MODEL": "simmim-tiny",
            "SIMMIM_ENCODER__PRETRAINED": str(weights),
            "SIMMIM_ENCODER__CPU_INT8": "false",
            "SIMMIM_ENCODER__WORKERS": "0",
            "OMP_NUM_THREADS": "1",  # three workers on two cores: no thread oversubscription
        }
    )
    env.update({f"SIMMIM_{key.upper()}": str(value) for key, value in settings.items()})
    return env


class Workers:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115  (closed with the process)
        process = subprocess.Popen(
            [SIMMIM, "--verbose", "worker", "--name", name, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        return process

    def output(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_output(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.logs.glob("*.log"))
        )

    def terminate(self, timeout: float = 60) -> list[int | None]:
        """SIGTERM every live worker, wait; returns the exit codes (None: had to be killed)."""
        return terminate(self.processes, timeout)


@contextmanager
def running_workers(env: dict[str, str], logs: Path) -> Iterator[Workers]:
    workers = Workers(env, logs)
    try:
        yield workers
    finally:
        for process in workers.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_for(
    check: Callable[[], object], *, timeout: float, what: str, every: float = 0.2
) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
