"""WorkerPools over time from the operator's Prometheus metrics (`baton ui --metrics-url`).

The view samples the operator's /metrics every few seconds in the background and keeps the last
ten minutes per pool: replicas (ready and desired), backlog and tasks in flight, the gauges the
operator exports (`baton_pool_*`, baton/metrics.py). /api/pools joins them to the pools the
caller may list, so a caller sees the history of those pools only, whatever the metrics hold.
When the URL does not answer the page falls back to sampling the pools' status while it is open
(and says why).

The metrics endpoint needs no credentials (the operator serves it to Prometheus); the view only
reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

EVERY_SECONDS = 5.0
KEPT = 120
"""Samples kept per pool: ten minutes at one every five seconds."""

GAUGES = {
    "baton_pool_ready_replicas": "replicas",
    "baton_pool_desired_replicas": "desiredReplicas",
    "baton_pool_backlog": "backlog",
    "baton_pool_in_flight": "inFlight",
}
"""The operator's pool gauges (baton/metrics.py), by the name /api/pools gives each."""

PoolKey = tuple[str, str]
"""(namespace, pool)"""


def pool_values(exposition: str) -> dict[PoolKey, dict[str, float]]:
    """The pool gauges in a Prometheus text exposition, per (namespace, pool)."""
    found: dict[PoolKey, dict[str, float]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name = GAUGES.get(sample.name)
            labels = sample.labels
            if name is None or "namespace" not in labels or "pool" not in labels:
                continue
            found.setdefault((labels["namespace"], labels["pool"]), {})[name] = sample.value
    return found


@dataclass
class PoolMetrics:
    """The sampler of one metrics URL, and what it has kept."""

    url: str
    every: float = EVERY_SECONDS
    kept: int = KEPT
    error: str | None = None
    """Why the last sample failed; None after a good one."""
    sampled: bool = False
    """Whether any sample succeeded yet."""
    _history: dict[PoolKey, deque[dict[str, float]]] = field(default_factory=dict)

    async def sample(self, http: aiohttp.ClientSession) -> None:
        """Read the metrics once and keep a sample per pool (a failure is kept as `error`)."""
        try:
            timeout = aiohttp.ClientTimeout(total=self.every)
            async with http.get(self.url, timeout=timeout, raise_for_status=True) as response:
                values = pool_values(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.error = f"{self.url}: {exc or type(exc).__name__}"
            return
        self.error = None
        self.sampled = True
        now = time.time()
        for key, value in values.items():
            series = self._history.setdefault(key, deque(maxlen=self.kept))
            series.append({"t": now, **value})
        for key in set(self._history) - set(values):  # pools deleted since
            del self._history[key]

    async def run(self) -> None:
        """Sample every `every` seconds until cancelled."""
        async with aiohttp.ClientSession() as http:
            while True:
                await self.sample(http)
                await asyncio.sleep(self.every)

    def history(self, namespace: str, pool: str) -> list[dict[str, float]]:
        """The pool's samples, oldest first (`t`: seconds since the epoch)."""
        return list(self._history.get((namespace, pool), ()))

    def state(self) -> dict[str, Any]:
        """Whether the metrics answer, for the page to say where its numbers come from."""
        return {
            "url": self.url,
            "reachable": self.sampled and self.error is None,
            "error": self.error,
        }


@contextlib.asynccontextmanager
async def sampling(metrics: PoolMetrics | None) -> Any:
    """Run `metrics`' sampler in the background while the context is open."""
    if metrics is None:
        yield
        return
    task = asyncio.create_task(metrics.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def with_history(rows: Iterable[dict[str, Any]], metrics: PoolMetrics) -> None:
    """Add each listed pool's `history` from the metrics (the caller's pools only)."""
    for row in rows:
        row["history"] = metrics.history(row["namespace"], row["name"])
