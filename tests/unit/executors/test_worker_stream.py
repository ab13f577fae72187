"""The worker executor against a worker written with the activities SDK and served by uvicorn
on 127.0.0.1: outputs and typed errors, and heartbeat streams reported as ActivityHeartbeat."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from baton_activities import ActivityError, Worker, activity, heartbeat
from executorkit import POOL_TOKEN, RUN, Events, PoolApi, Reply, Server, command, offline_kube

from baton.engine.events import ActivityCompleted, ActivityFailed, ActivityHeartbeat
from baton.executors.http import HttpExecutor
from baton.executors.worker import WorkerExecutor, dispatch_request
from baton.handlers.pools import Pools
from baton.settings import OperatorSettings

pytestmark = pytest.mark.timeout(60)


@activity
async def survey(parcels: int) -> int:
    for n in range(parcels):
        heartbeat({"done": n})
        await asyncio.sleep(0.05)
    return parcels


@activity
def refund(amount: int) -> None:
    raise ActivityError("already refunded", type="AlreadyRefunded", non_retryable=True)


WORKER = Worker([survey, refund], heartbeat_interval=0.01)


@pytest.fixture(scope="module")
def worker_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(WORKER, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


def perform(endpoint: str, activity_name: str, data: Any) -> Events:
    async def main() -> Events:
        async with offline_kube() as kube:
            http = HttpExecutor(kube, OperatorSettings())
            pools = Pools(PoolApi(endpoint))  # type: ignore[arg-type]
            executor = WorkerExecutor(http, pools)
            events = Events()
            spec = {"pool": "appraisers", "activity": activity_name, "input": data}
            try:
                await executor.start(RUN, command("worker", spec), events)
                await events.final()
            finally:
                await executor.close()
                await http.close()
            return events

    return asyncio.run(main())


def test_heartbeat_lines_are_reported_then_the_result(worker_url: str) -> None:
    events = perform(worker_url, "survey", {"parcels": 4})
    assert events.types()[0] == "ActivityStarted"
    beats = [e for e in events.events if isinstance(e, ActivityHeartbeat)]
    assert beats
    assert all(b.key == "reserve" and b.attempt == 1 for b in beats)
    final = events.events[-1]
    assert isinstance(final, ActivityCompleted)
    assert final.output == 4


def test_a_typed_error_of_an_sdk_worker_is_the_step_error(worker_url: str) -> None:
    final = perform(worker_url, "refund", {"amount": 10}).events[-1]
    assert isinstance(final, ActivityFailed)
    assert final.error["type"] == "AlreadyRefunded"
    assert final.error["message"] == "already refunded"


def test_a_plain_json_answer_still_works(server: Server) -> None:
    server.routes["/activities/charge"] = Reply(200, b'{"output": {"id": "tx"}}')
    final = perform(server.url, "charge", {}).events[-1]
    assert isinstance(final, ActivityCompleted)
    assert final.output == {"id": "tx"}
    assert server.requests_to("/activities/charge")[0].headers["accept"].count("ndjson") == 1


def test_a_stream_without_a_result_line_is_a_protocol_error(server: Server) -> None:
    server.routes["/activities/charge"] = Reply(
        200,
        b'{"heartbeat": null}\n{"heartbeat": 1}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    events = perform(server.url, "charge", {})
    assert events.types().count("ActivityHeartbeat") == 2
    final = events.events[-1]
    assert isinstance(final, ActivityFailed)
    assert final.error["type"] == "WorkerProtocolError"


def test_a_stream_line_after_heartbeats_is_the_result(server: Server) -> None:
    server.routes["/activities/charge"] = Reply(
        200,
        b'{"heartbeat": 0}\n{"error": {"type": "CardDeclined", "message": "no"}}',
        headers={"Content-Type": "application/x-ndjson; charset=utf-8"},
    )
    final = perform(server.url, "charge", {}).events[-1]
    assert isinstance(final, ActivityFailed)
    assert final.error["type"] == "CardDeclined"


def test_a_task_carries_the_pool_token_as_a_bearer_header(server: Server) -> None:
    server.routes["/activities/charge"] = Reply(200, b'{"output": 1}')
    perform(server.url, "charge", {})
    sent = server.requests_to("/activities/charge")[0]
    assert sent.headers["authorization"] == f"Bearer {POOL_TOKEN}"


def test_a_worker_refusing_the_token_is_a_retryable_worker_unauthorized(server: Server) -> None:
    server.routes["/activities/charge"] = Reply(401, b'{"error": {"type": "Unauthorized"}}')
    final = perform(server.url, "charge", {}).events[-1]
    assert isinstance(final, ActivityFailed)
    assert final.error["type"] == "WorkerUnauthorized"
    assert not final.error.get("details", {}).get("nonRetryable")


def test_heartbeat_details_are_reported_and_oversized_ones_dropped(server: Server) -> None:
    big = "x" * 2000
    server.routes["/activities/charge"] = Reply(
        200,
        b'{"heartbeat": {"row": 5}}\n{"heartbeat": "' + big.encode() + b'"}\n{"output": 1}\n',
        headers={"Content-Type": "application/x-ndjson"},
    )
    beats = [
        e for e in perform(server.url, "charge", {}).events if isinstance(e, ActivityHeartbeat)
    ]
    assert [b.details for b in beats] == [{"row": 5}, None]


def test_a_retried_task_carries_the_previous_attempts_heartbeat_details() -> None:
    start = dataclasses.replace(
        command("worker", {"pool": "p", "activity": "a", "input": 1}, attempt=2),
        heartbeat_details={"row": 5},
    )
    assert dispatch_request(RUN, start)["heartbeatDetails"] == {"row": 5}
    first = command("worker", {"pool": "p", "activity": "a", "input": 1})
    assert "heartbeatDetails" not in dispatch_request(RUN, first)
