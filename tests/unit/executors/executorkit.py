"""Helpers of the executor unit tests: a real HTTP server on 127.0.0.1 (fixture `server` in
conftest.py), and what drives an executor the way the run loop does (commands, collected
events)."""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes_asyncio import client

from baton.engine.commands import StartActivity
from baton.engine.events import Event
from baton.store.kube import Kube
from baton.store.ref import RunRef

RUN = RunRef(name="purchase-42", namespace="shop", uid="6f1c2d3e-0000-4000-8000-000000000042")


@dataclass(frozen=True)
class Reply:
    """What the server answers: status, headers, raw body, after `delay` seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Server:
    """A threaded HTTP/1.1 server answering each path with a scripted Reply."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Reply | Callable[[Request], Reply]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._scheme = "http"
        if tls is not None:  # HTTPS with that server context's certificate
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            route = self.routes.get(request.path, Reply(404, b"no route"))
        return route(request) if callable(route) else route

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._answer(Request(self.command, self.path, headers, body))
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout or a cancel under test)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Events:
    """A `report` callback that collects events, and waits for them."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    async def wait_for(self, event_type: str, timeout: float = 10.0) -> Event:
        """The first reported event of `event_type`, waiting up to `timeout` seconds for it."""

        async def first() -> Event:
            while True:
                for event in self.events:
                    if event.type == event_type:
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    async def final(self, timeout: float = 10.0) -> Event:
        """The attempt's outcome: the first ActivityCompleted or ActivityFailed."""

        async def first() -> Event:
            while True:
                for event in self.events:
                    if event.type in ("ActivityCompleted", "ActivityFailed"):
                        return event
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)


def command(
    kind: str,
    spec: dict[str, Any],
    *,
    key: str = "reserve",
    attempt: int = 1,
    start_to_close: float | None = 10.0,
) -> StartActivity:
    """A StartActivity as the engine emits it for `RUN`."""
    return StartActivity(
        key=key,
        step=key.split("/", maxsplit=1)[0].split("[", maxsplit=1)[0],
        kind=kind,
        spec=spec,
        attempt=attempt,
        idempotency_key=f"{RUN.uid}/{key}/{attempt}",
        start_to_close=start_to_close,
        heartbeat=None,
    )


@asynccontextmanager
async def offline_kube() -> AsyncIterator[Kube]:
    """A real Kube client whose API server does not exist: for executors that must not need
    one in the scenario under test (any call would fail with a connection error)."""
    configuration = client.Configuration(host="http://127.0.0.1:9")
    kube = Kube(client.ApiClient(configuration))
    try:
        yield kube
    finally:
        await kube.close()


class Silent:
    """A TCP server on 127.0.0.1 that accepts connections, reads what comes and never answers:
    a hung service. `connections` counts the connections it accepted. Use as `async with`."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while await reader.read(65536):
            pass

    async def __aenter__(self) -> Silent:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for writer in self._writers:
            writer.close()
        self._server.close()
        await self._server.wait_closed()


POOL_TOKEN = "t0ken"
"""The `current` token of every pool a PoolApi serves."""


class PoolApi:
    """Stands for the Kubernetes API: every WorkerPool is reached at `endpoint`, and owns a
    token Secret whose `current` token is POOL_TOKEN."""

    def __init__(self, endpoint: str, **spec: Any) -> None:
        self.endpoint = endpoint
        self.spec = spec

    async def get(self, path: str, **_query: str) -> dict[str, Any]:
        parts = path.split("/")
        namespace, name = parts[parts.index("namespaces") + 1], parts[-1]
        if parts[-2] == "secrets":
            owner = {"kind": "WorkerPool", "uid": "pool-uid"}
            metadata = {"name": name, "namespace": namespace, "ownerReferences": [owner]}
            encoded = base64.b64encode(POOL_TOKEN.encode()).decode()
            return {"metadata": metadata, "data": {"current": encoded}}
        return {
            "metadata": {"name": name, "namespace": namespace, "uid": "pool-uid"},
            "spec": {"endpoint": self.endpoint, **self.spec},
        }
