"""Stopping processes the tests and benchmarks started: SIGTERM, a grace period, then kill."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Sequence


def terminate(
    processes: Sequence[subprocess.Popen[bytes]], timeout: float = 60
) -> list[int | None]:
    """SIGTERM every live process, wait for all within ``timeout``; the exit codes, None
    for one that had to be killed (always reaped, so nothing outlives the caller)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(deadline - time.monotonic(), 0.1)))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            codes.append(None)
    return codes
