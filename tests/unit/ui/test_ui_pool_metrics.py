"""WorkerPools over time from the operator's metrics (`baton ui --metrics-url`): the operator's
real /metrics endpoint (baton.metrics.serve) on a local port, sampled by the view."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import pytest

from baton.metrics import PoolSample, serve
from baton.ui.poolmetrics import PoolMetrics, with_history


@dataclass
class Writes:
    """The operator's API request counts, as the metrics read them (none here)."""

    writes: Mapping[str, int] = field(default_factory=dict)
    reads: Mapping[str, int] = field(default_factory=dict)
    conflicts: int = 0
    write_errors: Mapping[str, int] = field(default_factory=dict)


@dataclass
class Pools:
    """What the operator knows of its pools now; tests change it between samples."""

    now: list[PoolSample]

    def samples(self) -> Iterable[PoolSample]:
        return list(self.now)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def operator_metrics() -> Iterator[tuple[str, Pools]]:
    """The operator's /metrics served on a free port, with the pools the test sets."""
    pools = Pools([PoolSample("team-a", "resize", 7, 3, 4, 2)])
    port = free_port()
    stop = serve(port, Writes(), {}, pools)
    yield f"http://127.0.0.1:{port}/metrics", pools
    stop()


def sample(metrics: PoolMetrics) -> None:
    async def once() -> None:
        async with aiohttp.ClientSession() as http:
            await metrics.sample(http)

    asyncio.run(once())


def test_each_sample_keeps_a_pools_replicas_backlog_and_tasks_in_flight(
    operator_metrics: tuple[str, Pools],
) -> None:
    url, pools = operator_metrics
    metrics = PoolMetrics(url)
    sample(metrics)
    pools.now = [PoolSample("team-a", "resize", 0, 1, 2, 2)]
    sample(metrics)
    history = metrics.history("team-a", "resize")
    assert [
        (s["replicas"], s["desiredReplicas"], s["backlog"], s["inFlight"]) for s in history
    ] == [(2, 4, 7, 3), (2, 2, 0, 1)]
    assert history[0]["t"] <= history[1]["t"]
    assert metrics.state() == {"url": url, "reachable": True, "error": None}


def test_history_is_kept_for_the_last_samples_only(operator_metrics: tuple[str, Pools]) -> None:
    url, pools = operator_metrics
    metrics = PoolMetrics(url, kept=3)
    for backlog in range(5):
        pools.now = [PoolSample("team-a", "resize", backlog, 0, 1, 1)]
        sample(metrics)
    assert [s["backlog"] for s in metrics.history("team-a", "resize")] == [2, 3, 4]


def test_a_pool_gone_from_the_metrics_loses_its_history(
    operator_metrics: tuple[str, Pools],
) -> None:
    url, pools = operator_metrics
    metrics = PoolMetrics(url)
    sample(metrics)
    pools.now = [PoolSample("team-b", "other", 1, 1, 1, 1)]
    sample(metrics)
    assert metrics.history("team-a", "resize") == []
    assert len(metrics.history("team-b", "other")) == 1


def test_metrics_that_do_not_answer_are_reported_not_kept() -> None:
    metrics = PoolMetrics(f"http://127.0.0.1:{free_port()}/metrics")
    sample(metrics)
    state = metrics.state()
    assert state["reachable"] is False
    assert state["error"].startswith(metrics.url)
    assert metrics.history("team-a", "resize") == []


def test_a_caller_gets_the_history_of_the_pools_it_listed_only(
    operator_metrics: tuple[str, Pools],
) -> None:
    url, pools = operator_metrics
    pools.now = [
        PoolSample("team-a", "resize", 1, 0, 1, 1),
        PoolSample("secret-team", "payroll", 9, 9, 9, 9),
    ]
    metrics = PoolMetrics(url)
    sample(metrics)
    rows = [{"namespace": "team-a", "name": "resize"}]
    with_history(rows, metrics)
    assert [row["namespace"] for row in rows] == ["team-a"]
    assert rows[0]["history"][0]["backlog"] == 1
