"""A real Milvus standalone server (the PyPI ``milvus`` package) reachable from loopback only.

Milvus binds its gRPC ports on every interface and advertises the machine's first
non-loopback address. So the server runs in a network namespace of its own (loopback
only, ``unshare(CLONE_NEWNET)``; needs root), and this launcher, which opened its listening
socket on the host's 127.0.0.1 *before* entering the namespace, forwards connections to it.
Run as ``python -m tests.milvus_server --data DIR``: prints ``READY <port>`` when serving.
Tests and ``bench/search.py --server`` start it with :func:`start_milvus_server` and stop
it with :func:`stop_milvus_server` (the whole process group, also when a test fails).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLONE_NEWNET = 0x40000000
START_TIMEOUT_S = 180.0


def _enter_own_network() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET): {os.strerror(err)} (run as root)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _forward(listener: socket.socket, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))

    server = await asyncio.start_server(handle, sock=listener)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))  # in the host's namespace: loopback only
    listener.listen(128)
    _enter_own_network()
    from milvus import MilvusServer, MilvusServerConfig

    server = MilvusServer(MilvusServerConfig())
    server.set_base_dir(args.data)

    def stop(*_: object) -> None:
        server.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    server.start()
    sys.stdout.write(f"READY {listener.getsockname()[1]}\n")
    sys.stdout.flush()
    asyncio.run(_forward(listener, server.listen_port))


def start_milvus_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server in its own process group; returns (process, http URI)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "launcher.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.milvus_server", "--data", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stdout is not None
    line = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(b"READY") or proc.poll() is not None:
            break
    if not line.startswith(b"READY"):
        stop_milvus_server(proc)
        detail = (data_dir / "launcher.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the Milvus server did not start: {detail}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}"


def stop_milvus_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group (launcher and milvus), SIGKILL what is left after 10 s."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            proc.poll()
            time.sleep(0.1)


if __name__ == "__main__":
    main()
