"""The operator's HTTP limits against real local servers: a default timeout for steps without
startToClose, calls over their run's or namespace's limit waiting unsent (and unacknowledged)
while holding no connection, and worker dispatch over a pool of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from executorkit import RUN, Events, PoolApi, Reply, Server, Silent, command, offline_kube

from baton.engine.commands import CancelActivity
from baton.engine.definition import RetryPolicy
from baton.engine.errors import StepError
from baton.engine.events import ActivityCompleted, ActivityFailed
from baton.engine.retry import is_retryable
from baton.executors.base import RunRef
from baton.executors.http import HttpExecutor
from baton.executors.worker import WorkerExecutor
from baton.handlers.pools import Pools
from baton.settings import OperatorSettings

pytestmark = pytest.mark.timeout(60)

OTHER = RunRef(name="audit-7", namespace="team-b", uid="0a0b0c0d-0000-4000-8000-000000000007")
"""A run of another tenant."""


def run(scenario: Callable[[HttpExecutor], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        async with offline_kube() as kube:
            executor = HttpExecutor(kube, OperatorSettings(**settings))
            try:
                await scenario(executor)
            finally:
                await executor.close()

    asyncio.run(main())


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (polling the loop) until `condition()` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def start(executor: Any, ref: RunRef, kind: str, spec: dict[str, Any], **kw: Any) -> Events:
    events = Events()
    await executor.start(ref, command(kind, spec, **kw), events)
    return events


def test_a_step_without_start_to_close_times_out_after_the_operator_default() -> None:
    async def scenario(executor: HttpExecutor) -> None:
        async with Silent() as hung:
            events = await start(executor, RUN, "http", {"url": hung.url}, start_to_close=None)
            final = await events.final()
            assert isinstance(final, ActivityFailed)
            assert final.error["type"] == "Timeout"
            assert "the operator's default timeout" in final.error["message"]
            assert "0.2s" in final.error["message"]
            policy = RetryPolicy(3, 1.0, 2.0, 100.0, 0.0, frozenset())
            assert is_retryable(policy, StepError.reported(final.error, "s"))

    run(scenario, http_default_timeout=0.2)


def test_a_call_over_its_run_limit_is_neither_sent_nor_started_until_a_slot_frees() -> None:
    async def scenario(executor: HttpExecutor) -> None:
        async with Silent() as hung:
            first = await start(executor, RUN, "http", {"url": hung.url}, key="a")
            second = await start(executor, RUN, "http", {"url": hung.url}, key="b")
            await until(lambda: hung.connections == 1)
            await first.wait_for("ActivityStarted")
            await asyncio.sleep(0.2)
            assert hung.connections == 1
            assert second.types() == []
            await executor.cancel(RUN, CancelActivity("a", "http", 1, idempotency_key=""))
            await second.wait_for("ActivityStarted")
            await until(lambda: hung.connections == 2)

    run(scenario, http_calls_per_run=1)


def test_hung_calls_of_one_namespace_leave_another_namespace_its_connections(
    server: Server,
) -> None:
    """The issue's reproduction: calls to a server that never answers, then another tenant's
    healthy call. With one shared pool of 3 and no limits, the healthy call timed out."""
    server.routes["/healthy"] = Reply(200, b'{"ok": true}')

    async def scenario(executor: HttpExecutor) -> None:
        async with Silent() as hung:
            for n in range(6):
                await start(executor, RUN, "http", {"url": hung.url}, key=f"hang{n}")
            await until(lambda: hung.connections == 3)
            events = await start(
                executor, OTHER, "http", {"url": f"{server.url}/healthy"}, start_to_close=5
            )
            final = await events.final()
            assert final == ActivityCompleted(key="reserve", attempt=1, output={"ok": True})
            # The three calls over the namespace's share wait holding no connection.
            assert hung.connections == 3
            assert executor.limits.waiting == 3

    run(scenario, http_max_connections=4, http_calls_per_namespace=3)


WorkerScenario = Callable[[Silent, HttpExecutor, WorkerExecutor], Awaitable[None]]


def with_worker(scenario: WorkerScenario, endpoint: str | None = None, **settings: Any) -> None:
    """Run `scenario` with a hung server and a worker executor whose pools are all reached at
    `endpoint` (default: the hung server)."""

    async def main() -> None:
        async with Silent() as hung, offline_kube() as kube:
            http = HttpExecutor(kube, OperatorSettings(**settings))
            pools = Pools(PoolApi(endpoint or hung.url, maxReplicas=10, tasksPerReplica=10))  # type: ignore[arg-type]
            worker = WorkerExecutor(http, pools)
            try:
                await scenario(hung, http, worker)
            finally:
                await worker.close()
                await http.close()

    asyncio.run(main())


def test_hung_http_calls_do_not_hold_back_worker_dispatch(server: Server) -> None:
    server.routes["/activities/appraise"] = Reply(200, b'{"output": 7}')

    async def scenario(hung: Silent, http: HttpExecutor, worker: WorkerExecutor) -> None:
        # Every connection of HTTP steps hangs, from two namespaces.
        await start(http, RUN, "http", {"url": hung.url}, key="a")
        await start(http, OTHER, "http", {"url": hung.url}, key="b")
        await until(lambda: hung.connections == 2)
        spec = {"pool": "appraisers", "activity": "appraise", "input": {}}
        events = await start(worker, RUN, "worker", spec, start_to_close=5)
        final = await events.final()
        assert final == ActivityCompleted(key="reserve", attempt=1, output=7)

    with_worker(scenario, server.url, http_max_connections=2, http_calls_per_namespace=1)


def test_worker_tasks_over_their_namespace_limit_wait_unsent_and_unstarted() -> None:
    spec = {"pool": "appraisers", "activity": "appraise", "input": {}}

    async def scenario(hung: Silent, http: HttpExecutor, worker: WorkerExecutor) -> None:
        first = await start(worker, RUN, "worker", spec, key="a", start_to_close=None)
        second = await start(worker, RUN, "worker", spec, key="b", start_to_close=None)
        await first.wait_for("ActivityStarted")
        await asyncio.sleep(0.2)
        assert second.types() == []
        assert hung.connections == 1
        # Another namespace's task is not held back by the first one's limit.
        third = await start(worker, OTHER, "worker", spec, key="c", start_to_close=None)
        await third.wait_for("ActivityStarted")
        await until(lambda: hung.connections == 2)

    with_worker(scenario, worker_max_connections=3, worker_calls_per_namespace=1)
