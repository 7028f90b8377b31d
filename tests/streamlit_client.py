"""A browser-free client of a real Streamlit server: its websocket protocol, as a probe uses it.

It asks for pages by name and sends widget values (a typed password, a button click) the
way the browser does, and returns what the server sent back, so a test can look for data
that must not be there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import ClientConnection, connect

from tests.smtp_server import free_port

FINISHED = ForwardMsg.ScriptFinishedStatus


@dataclass
class Widget:
    kind: str  # the element type: button, text_input, ...
    id: str
    label: str


@dataclass
class Render:
    """Everything the server sent for one request, up to the end of the last script run."""

    messages: list[ForwardMsg]

    @property
    def raw(self) -> bytes:
        return b"".join(m.SerializeToString() for m in self.messages)

    def shows(self, text: str) -> bool:
        return text.encode() in self.raw

    @property
    def page_not_found(self) -> bool:
        """The server said the page asked for does not exist (and ran the default one)."""
        return any(m.WhichOneof("type") == "page_not_found" for m in self.messages)

    def widgets(self) -> list[Widget]:
        found = []
        for message in self.messages:
            if message.WhichOneof("type") != "delta":
                continue
            if message.delta.WhichOneof("type") != "new_element":
                continue
            element = message.delta.new_element
            kind = element.WhichOneof("type")
            body = getattr(element, kind) if kind else None
            widget_id = getattr(body, "id", "") if body is not None else ""
            if widget_id:
                found.append(Widget(str(kind), widget_id, getattr(body, "label", "")))
        return found

    def widget(self, kind: str, label: str) -> Widget:
        for widget in self.widgets():
            if widget.kind == kind and widget.label == label:
                return widget
        raise AssertionError(f"no {kind} {label!r} among {self.widgets()}")


class StreamlitSession:
    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        ws_url = url.replace("http://", "ws://") + "/_stcore/stream"
        opening = connect(
            ws_url,
            subprotocols=["streamlit"],  # type: ignore[list-item]
            additional_headers=headers or {},
            max_size=None,
            open_timeout=30,
        )
        self.connection: ClientConnection = opening.__enter__()  # closed by close()

    def close(self) -> None:
        self.connection.close()

    def request(
        self, page: str = "", widgets: list[WidgetState] | None = None, timeout: float = 90
    ) -> Render:
        """Ask for ``page`` (a url path; "" is the default page) with ``widgets`` set."""
        back = BackMsg()
        back.rerun_script.page_name = page
        back.rerun_script.query_string = ""
        for state in widgets or []:
            back.rerun_script.widget_states.widgets.append(state)
        self.connection.send(back.SerializeToString())
        messages: list[ForwardMsg] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no end of script run for page {page!r}")
            data = self.connection.recv(timeout=left)
            message = ForwardMsg()
            message.ParseFromString(data if isinstance(data, bytes) else data.encode())
            messages.append(message)
            if (
                message.WhichOneof("type") == "script_finished"
                and message.script_finished != FINISHED.FINISHED_EARLY_FOR_RERUN
            ):
                self._drain()
                return Render(messages)

    def _drain(self) -> None:
        """Take what arrives right after a run ends (a rerun the script asked for)."""
        try:
            while True:
                self.connection.recv(timeout=0.5)
        except TimeoutError:
            return


def text_value(widget: Widget, value: str) -> WidgetState:
    return WidgetState(id=widget.id, string_value=value)


def click(widget: Widget) -> WidgetState:
    return WidgetState(id=widget.id, trigger_value=True)


def start_dashboard(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A real `simmim dashboard` on a free loopback port, in a process group of its own
    (CLI + Streamlit can be stopped at once), once it answers its health check."""
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "simmim"), "dashboard", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env if env is not None else dict(os.environ),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process_group(process)
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"dashboard did not start: {output[-2000:]}")
        time.sleep(0.3)


@contextmanager
def dashboard_process(env: dict[str, str] | None = None) -> Iterator[str]:
    """:func:`start_dashboard`, stopped (and reaped) on exit, also when the test fails."""
    process, url = start_dashboard(env)
    try:
        yield url
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # the CLI forwards it to Streamlit and waits
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # anything of the group still there
    process.wait(timeout=10)
