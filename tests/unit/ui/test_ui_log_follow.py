"""Following a Job step's pod log (`/logs?follow=1`, baton.ui.logfollow) through the real
Kubernetes client: the log endpoint is a local HTTP server streaming like the API server's
`pods/NAME/log?follow=true` (the local control plane's kwok nodes serve no logs)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes_asyncio import client
from starlette.responses import StreamingResponse

from baton.cli.runread import pod_log
from baton.store.kube import ApiError, Kube
from baton.ui.logfollow import follow_log

LINES = [b"starting\n", b"resized 1 of 2\n", b"resized 2 of 2\n"]


class LogServer(BaseHTTPRequestHandler):
    """`pods/writer/log` writes LINES a moment apart (the first after `quiet` seconds);
    `pods/hidden/log` is refused as the API server refuses a reader without the right."""

    quiet = 0.0
    first_written: float | None = None

    def do_GET(self) -> None:
        if "/pods/hidden/log" in self.path:
            body = json.dumps(
                {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                 "message": 'pods "hidden" is forbidden: cannot get resource "pods/log"'}
            ).encode()  # fmt: skip
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        assert "follow=true" in self.path
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(self.quiet)
        LogServer.first_written = time.monotonic()
        for line in LINES:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), LogServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    LogServer.quiet = 0.0
    LogServer.first_written = None


async def read(response: StreamingResponse) -> list[bytes]:
    out = []
    async for chunk in response.body_iterator:
        out.append(chunk if isinstance(chunk, bytes) else chunk.encode())
    return out


def follow(
    api: str, pod: str, released: list[float], first_chunk_seconds: float = 2.0
) -> list[bytes]:
    """The followed log of `pod` as the view answers it; `released` gets the time its Kube was
    given back, and the answer's time goes first."""

    async def run() -> list[bytes]:
        kube = Kube(client.ApiClient(client.Configuration(host=api)))

        async def release() -> None:
            released.append(time.monotonic())
            await kube.close()

        chunks: AsyncIterator[bytes] = pod_log(kube, "team-a", pod, follow=True)
        response = await follow_log(chunks, release, f"pod {pod}", first_chunk_seconds)
        assert response.headers["X-Pod"] == f"pod {pod}"
        assert response.media_type == "text/plain; charset=utf-8"
        answered.append(time.monotonic())
        return await read(response)

    answered: list[float] = []
    try:
        return asyncio.run(run())
    finally:
        released[:0] = answered


def test_a_followed_log_streams_each_chunk_as_the_pod_writes_it(api: str) -> None:
    times: list[float] = []
    chunks = follow(api, "writer", times)
    assert b"".join(chunks) == b"".join(LINES)
    assert len(times) == 2, "answered, then released once"


def test_a_pod_that_writes_nothing_yet_does_not_hold_the_answer_back(api: str) -> None:
    LogServer.quiet = 1.0
    times: list[float] = []
    chunks = follow(api, "writer", times, first_chunk_seconds=0.1)
    assert b"".join(chunks) == b"".join(LINES)
    answered, released = times
    assert LogServer.first_written is not None
    assert answered < LogServer.first_written < released


def test_a_refused_log_is_raised_with_its_status_and_the_kube_released(api: str) -> None:
    times: list[float] = []
    with pytest.raises(ApiError) as refused:
        follow(api, "hidden", times)
    assert refused.value.status == 403
    assert "cannot get resource" in refused.value.message
    assert len(times) == 1, "released once, never answered"
