"""The demo's mail server: real SMTP on 127.0.0.1 (aiosmtpd), each message saved as .eml."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _ToFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.saved: list[Path] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        path = self.folder / f"{len(list(self.folder.glob('*.eml'))) + 1:03d}.eml"
        path.write_bytes(envelope.content)
        self.saved.append(path)
        return "250 OK: saved"


class OutboxServer:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.handler = _ToFiles(folder)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> OutboxServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def saved(self) -> list[Path]:
        return self.handler.saved
