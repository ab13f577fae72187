"""Benchmark: what the operator's HTTP limits cost, and what they buy.

1. The cost of a slot (baton.executors.limits.CallLimits): taking and giving back one with no
   contention, and handing slots on when 2,000 calls of 200 runs in 10 namespaces wait.
2. Another tenant's healthy call while one namespace has 120 calls to a server that never
   answers (each ended by a default timeout of 10 s here), through the HTTP executor with real
   local servers: with the default limits (100 connections, 25 per namespace, 10 per run), and
   with only the pool's limit of 100, where the healthy call waits, unsent, until the hung
   calls time out. (Before the limits it waited inside the pool, already counted as started,
   and timed out itself: tests/integration/test_http_limits.py.)

Run: uv run python bench/http_limits.py
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

from kubernetes_asyncio import client

from baton.engine.commands import StartActivity
from baton.engine.events import Event
from baton.executors.base import RunRef
from baton.executors.http import HttpExecutor
from baton.executors.limits import CallLimits
from baton.settings import OperatorSettings
from baton.store.kube import Kube

HUNG_TIMEOUT = 10.0
"""The default timeout that ends tenant A's hung calls in the second benchmark."""


async def uncontended(rounds: int = 20_000) -> float:
    """µs per slot taken and given back."""
    limits = CallLimits(100, per_namespace=25, per_run=10)
    started = time.perf_counter()
    for _ in range(rounds):
        async with limits.slot("shop", "run"):
            pass
    return (time.perf_counter() - started) / rounds * 1e6


async def contended(calls: int = 2_000, runs: int = 200, namespaces: int = 10) -> float:
    """µs per call, from all waiting to all done, each call holding its slot for one turn."""
    limits = CallLimits(100, per_namespace=25, per_run=10)

    async def call(n: int) -> None:
        async with limits.slot(f"ns-{n % namespaces}", f"run-{n % runs}"):
            await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(call(n) for n in range(calls)))
    return (time.perf_counter() - started) / calls * 1e6


class _Healthy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return


def _command(url: str, key: str, start_to_close: float | None) -> StartActivity:
    return StartActivity(
        key=key,
        step="call",
        kind="http",
        spec={"url": url},
        attempt=1,
        idempotency_key=f"bench/{key}/1",
        start_to_close=start_to_close,
        heartbeat=None,
    )


async def tenant_b(
    lift_limits: bool, hung_calls: int = 120, samples: int = 20
) -> tuple[int, int, str]:
    """Tenant B's healthy calls (5 s startToClose) while tenant A has 120 hung calls: how many
    were made and succeeded, and their median latency from start to answer."""
    healthy = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    healthy.daemon_threads = True
    Thread(target=healthy.serve_forever, daemon=True).start()
    hung_writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung_writers.append(writer)
        while await reader.read(65536):
            pass

    hung = await asyncio.start_server(hang, "127.0.0.1", 0)
    hung_url = f"http://127.0.0.1:{hung.sockets[0].getsockname()[1]}/"
    healthy_url = f"http://127.0.0.1:{healthy.server_address[1]}/"
    kube = Kube(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")))
    executor = HttpExecutor(kube, OperatorSettings(http_default_timeout=HUNG_TIMEOUT))
    if lift_limits:
        executor.limits = CallLimits(OperatorSettings().http_max_connections)

    async def ignore(_event: Event) -> None:
        return

    for n in range(hung_calls):
        run = RunRef(f"a-{n % 3}", "tenant-a", f"uid-a-{n % 3}")
        await executor.start(run, _command(hung_url, f"hang{n}", None), ignore)
    while len(hung_writers) < min(hung_calls, 100 if lift_limits else 25):
        await asyncio.sleep(0.01)
    latencies: list[float] = []
    made = 0
    for n in range(samples):
        made += 1
        done = asyncio.get_running_loop().create_future()

        async def report(event: Event, done: asyncio.Future[Event] = done) -> None:
            if event.type in ("ActivityCompleted", "ActivityFailed") and not done.done():
                done.set_result(event)

        started = time.perf_counter()
        run = RunRef("b", "tenant-b", "uid-b")
        await executor.start(run, _command(healthy_url, f"ok{n}", 5.0), report)
        outcome = await done
        if outcome.type == "ActivityCompleted":
            latencies.append(time.perf_counter() - started)
        if lift_limits:
            break  # one waits for the hung calls' timeout, and makes the point
    await executor.close()
    await kube.close()
    for writer in hung_writers:
        writer.close()
    hung.close()
    healthy.shutdown()
    median = f"{statistics.median(latencies) * 1000:.1f} ms" if latencies else "-"
    return made, len(latencies), median


def main() -> None:
    rows: list[tuple[str, Callable[[], Any]]] = [
        ("slot, uncontended (µs per call)", uncontended),
        ("slot, 2,000 waiting calls of 200 runs (µs per call)", contended),
    ]
    for label, bench in rows:
        print(f"{label}: {statistics.median(asyncio.run(bench()) for _ in range(5)):.1f}")
    made, ok, median = asyncio.run(tenant_b(False, hung_calls=0))
    print(f"tenant B alone: {ok}/{made} succeeded, median {median}")
    for lift in (False, True):
        made, ok, median = asyncio.run(tenant_b(lift))
        what = "only the pool limit of 100" if lift else "default limits"
        print(
            f"tenant B beside 120 hung calls of A, {what}: {ok}/{made} succeeded, median {median}"
        )


if __name__ == "__main__":
    main()
