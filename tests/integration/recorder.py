"""A real HTTP service for HTTP activities in integration tests, recording every call.

It behaves as a well-built idempotent API does: the first request with an `Idempotency-Key`
applies its effect and gets the scripted response; a repeat of the key (an operator re-issuing
a call after a crash) gets the same response again without a second effect. Tests assert on
`effects` (one per key) and `calls` (every request, repeats included), and on
`max_concurrent(prefix)`: the most requests under a path prefix that were being served at once.
A client that closes its connection while a delayed reply is pending (an operator cancelling the
call) is noticed within 50 ms and recorded in `aborted`; no reply is sent to it.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY_NEVER = 600.0
"""A reply delay longer than any wait in the tests: a run that ends at all ended without it."""


@dataclass(frozen=True)
class Reply:
    """A scripted response."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Call:
    """One request the service received."""

    method: str
    path: str
    key: str | None
    body: Any
    headers: dict[str, str]
    at: float = 0.0
    """`time.monotonic()` when the request arrived."""


class Recorder:
    """The service: start it, script replies per path, read what happened."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.effects: dict[str, Call] = {}
        self.aborted: list[Call] = []
        self._scripts: dict[str, list[Reply]] = {}
        self._served: defaultdict[str, int] = defaultdict(int)
        self._replies: dict[str, Reply] = {}
        self._active: list[str] = []
        self._peaks: list[list[str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, `http://127.0.0.1:<port>`."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Recorder:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def script(self, path: str, *replies: Reply) -> None:
        """Replies for new effects on `path`, in order; the last one repeats."""
        with self._lock:
            self._scripts[path] = list(replies)

    def effects_on(self, path: str) -> list[Call]:
        """Effects applied on `path`, in order."""
        with self._lock:
            return [c for c in self.effects.values() if c.path == path]

    def calls_to(self, path: str) -> list[Call]:
        """Every request to `path`, repeats included."""
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def wait_for_calls(self, path: str, count: int, timeout: float = 30.0) -> list[Call]:
        """Wait until `path` got at least `count` requests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.calls_to(path)
            if len(calls) >= count:
                return calls
            time.sleep(0.05)
        raise TimeoutError(f"{path}: {len(self.calls_to(path))} calls, wanted {count}")

    def wait_for_abort(self, path: str, timeout: float = 30.0) -> Call:
        """Wait until a call to `path` was abandoned by its client while its reply was delayed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                aborted = [c for c in self.aborted if c.path == path]
            if aborted:
                return aborted[0]
            time.sleep(0.05)
        raise TimeoutError(f"{path}: no call was aborted by its client within {timeout}s")

    def max_concurrent(self, prefix: str) -> int:
        """The most requests to paths starting with `prefix` that were in service at once
        (from arrival to the end of the reply's delay)."""
        with self._lock:
            return max(
                (sum(p.startswith(prefix) for p in paths) for paths in self._peaks), default=0
            )

    def _enter(self, path: str) -> None:
        with self._lock:
            self._active.append(path)
            self._peaks.append(list(self._active))

    def _leave(self, path: str) -> None:
        with self._lock:
            self._active.remove(path)

    def _reply_for(self, call: Call) -> Reply:
        with self._lock:
            self.calls.append(call)
            if call.key is not None and call.key in self._replies:
                return self._replies[call.key]  # a repeat: same answer, no second effect
            script = self._scripts.get(call.path) or [Reply(body={"ok": True})]
            index = min(self._served[call.path], len(script) - 1)
            self._served[call.path] += 1
            reply = script[index]
            if call.key is not None:
                self._replies[call.key] = reply
                if reply.status < 300:
                    self.effects[call.key] = call
            return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                path = self.path.split("?")[0]
                call = Call(
                    self.command,
                    path,
                    self.headers.get("Idempotency-Key"),
                    body,
                    dict(self.headers.items()),
                    time.monotonic(),
                )
                recorder._enter(path)
                try:
                    reply = recorder._reply_for(call)
                    if reply.delay and self._client_left_within(reply.delay):
                        with recorder._lock:
                            recorder.aborted.append(call)
                        self.close_connection = True
                        return
                finally:
                    recorder._leave(path)
                # UTF-8, as most servers send JSON (escapes would triple a non-ASCII body).
                text = json.dumps(reply.body, ensure_ascii=False)
                payload = b"" if reply.body is None else text.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _client_left_within(self, delay: float) -> bool:
                """Wait `delay` seconds; True as soon as the client closes the connection."""
                deadline = time.monotonic() + delay
                while (left := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                    if readable and not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                return False

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
