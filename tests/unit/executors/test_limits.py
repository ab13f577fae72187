"""CallLimits: calls in flight in all, per namespace and per run; waiting calls hold nothing,
take turns between runs, and leave no slot behind when cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

import pytest

from baton.executors.limits import CallLimits

pytestmark = pytest.mark.timeout(30)


class Calls:
    """Calls through one CallLimits, each held open until released by name."""

    def __init__(self, limits: CallLimits) -> None:
        self.limits = limits
        self.started: list[str] = []
        self._release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def call(self, name: str, namespace: str, run: Hashable) -> None:
        release = self._release[name] = asyncio.Event()

        async def body() -> None:
            async with self.limits.slot(namespace, run):
                self.started.append(name)
                await release.wait()

        self.tasks[name] = asyncio.create_task(body())

    def finish(self, name: str) -> None:
        self._release[name].set()

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)


def scenario(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())


def test_a_run_at_its_limit_waits_while_another_run_goes_at_once() -> None:
    async def body() -> None:
        calls = Calls(CallLimits(10, per_namespace=5, per_run=2))
        for name in ("a1", "a2", "a3"):
            calls.call(name, "shop", "run-a")
        calls.call("b1", "shop", "run-b")
        await calls.settle()
        assert calls.started == ["a1", "a2", "b1"]
        assert calls.limits.waiting == 1
        calls.finish("a1")
        await calls.settle()
        assert calls.started == ["a1", "a2", "b1", "a3"]

    scenario(body)


def test_a_namespace_at_its_limit_leaves_the_rest_of_the_pool_to_others() -> None:
    async def body() -> None:
        calls = Calls(CallLimits(4, per_namespace=3))
        for n in range(6):
            calls.call(f"a{n}", "team-a", f"run-{n}")
        calls.call("b", "team-b", "run-b")
        await calls.settle()
        assert calls.started == ["a0", "a1", "a2", "b"]
        assert calls.limits.in_flight_of("team-a") == 3
        calls.finish("b")
        await calls.settle()
        # The free slot is team-b's share of the pool: team-a is still at its limit.
        assert calls.started == ["a0", "a1", "a2", "b"]
        calls.finish("a0")
        await calls.settle()
        assert calls.started == ["a0", "a1", "a2", "b", "a3"]

    scenario(body)


def test_freed_slots_go_to_waiting_runs_in_turn() -> None:
    async def body() -> None:
        calls = Calls(CallLimits(1))
        calls.call("first", "shop", "other")
        for n in range(3):
            calls.call(f"big{n}", "shop", "big")
        calls.call("small0", "shop", "small")
        await calls.settle()
        for name in ("first", "big0", "small0", "big1"):
            calls.finish(name)
            await calls.settle()
        assert calls.started == ["first", "big0", "small0", "big1", "big2"]

    scenario(body)


def test_a_cancelled_waiting_call_leaves_the_queue_without_a_slot() -> None:
    async def body() -> None:
        calls = Calls(CallLimits(1))
        calls.call("held", "shop", "r1")
        calls.call("gives-up", "shop", "r2")
        calls.call("next", "shop", "r3")
        await calls.settle()
        calls.tasks["gives-up"].cancel()
        await calls.settle()
        assert calls.limits.waiting == 1
        calls.finish("held")
        await calls.settle()
        assert calls.started == ["held", "next"]
        assert calls.limits.in_flight == 1

    scenario(body)


def test_a_slot_granted_to_a_call_cancelled_before_it_ran_is_handed_on() -> None:
    async def body() -> None:
        calls = Calls(CallLimits(1))
        held = calls.limits.slot("shop", "r1")
        await held.__aenter__()
        calls.call("granted", "shop", "r2")
        calls.call("next", "shop", "r3")
        await calls.settle()
        await held.__aexit__(None, None, None)  # grants "granted", which has not run yet
        calls.tasks["granted"].cancel()
        await calls.settle()
        assert calls.started == ["next"]
        assert calls.limits.in_flight == 1
        assert calls.limits.waiting == 0

    scenario(body)
