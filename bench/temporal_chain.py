"""The Temporal side of bench/peer_throughput.py: a workflow that runs N no-op HTTP activities in
sequence, and the `temporalio` worker process that hosts it.

Each activity POSTs `{"step": i}` to the benchmark's local HTTP server and returns the decoded
reply, as a Baton `http` step does; one `httpx.AsyncClient` per worker keeps its connections, as
Baton's HTTP executor does. The worker runs in its own process so that its CPU time is counted
apart from the benchmark's.

Run (the benchmark does it): python bench/temporal_chain.py --address 127.0.0.1:7233
    --task-queue chain
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx

TASK_QUEUE = "chain"
_http: httpx.AsyncClient | None = None


@activity.defn(name="post")
async def post(url: str, step: int) -> Any:
    """One no-op HTTP step: POST, fail on a non-2xx status, return the JSON body."""
    global _http  # noqa: PLW0603 - one connection pool per worker process
    if _http is None:
        _http = httpx.AsyncClient(timeout=10)
    response = await _http.post(url, json={"step": step})
    response.raise_for_status()
    return response.json()


@workflow.defn(name="Chain")
class Chain:
    """N activities one after the other, each started when the previous one completed."""

    @workflow.run
    async def run(self, url: str, steps: int) -> Any:
        result: Any = None
        for step in range(steps):
            result = await workflow.execute_activity(
                post, args=[url, step], start_to_close_timeout=timedelta(seconds=30)
            )
        return result


async def serve(address: str, task_queue: str) -> None:
    from temporalio.client import Client
    from temporalio.worker import Worker

    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[Chain], activities=[post]):
        print("worker started", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="temporalio worker for the HTTP chain")
    parser.add_argument("--address", required=True, help="host:port of the Temporal frontend")
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
