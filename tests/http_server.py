"""A real local HTTP server for crawl tests: routes are plain data or small functions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    truncate: bool = False  # declare more bytes than sent, then close


Handler = Callable[[dict[str, str], str], Reply]  # (request headers, path with query) -> reply


class LocalServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Reply | Handler | list[Reply]] = {}
        self.hits: list[tuple[str, dict[str, str], float]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with server._lock:
                    server.hits.append((self.path, headers, time.monotonic()))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server.reply_for(self.path, headers)
                    if reply.delay:
                        time.sleep(reply.delay)
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    declared = len(reply.body) + (1000 if reply.truncate else 0)
                    if "Transfer-Encoding" not in reply.headers:
                        self.send_header("Content-Length", str(declared))
                    self.end_headers()
                    if "Transfer-Encoding" in reply.headers:
                        for start in range(0, len(reply.body), 4096):
                            chunk = reply.body[start : start + 4096]
                            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.wfile.write(reply.body)
                    if reply.truncate:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.in_flight -= 1

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that hang up early are part of the tests

        self.httpd = _Server((host, 0), _Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def reply_for(self, path: str, headers: dict[str, str]) -> Reply:
        route = self.routes.get(path) or self.routes.get(path.split("?", 1)[0])
        if route is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        if isinstance(route, list):  # a sequence of replies, the last one repeating
            return route.pop(0) if len(route) > 1 else route[0]
        if callable(route):
            return route(headers, path)
        return route

    def url(self, path: str) -> str:
        return self.base + path

    def count(self, path: str) -> int:
        return sum(1 for hit, _, _ in self.hits if hit == path)

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = LocalServer().start()
    yield server
    server.stop()
