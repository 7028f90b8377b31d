"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from email.message import Message
from email.policy import default

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.messages: list[Message] = []
        self.delay_s = delay_s  # a slow server: the window in which a second sender could act

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.messages.append(email.message_from_bytes(envelope.content, policy=default))
        return "250 OK"


class MailServer:
    def __init__(self, port: int, *, delay_s: float = 0.0) -> None:
        self.port = port
        self.inbox = Inbox(delay_s)
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """Not started: tests start it (or leave it down) as they need."""
    server = MailServer(free_port())
    yield server
    server.stop()
