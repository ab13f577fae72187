"""Activities the WorkerPool integration tests run in real `baton-worker` processes. Effects
are lines in the file named by $BATON_TEST_LEDGER, keyed by the step's activity key, so a test
can count them across worker processes."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from baton_activities import Worker, activity, current, heartbeat


def _ledger() -> Path:
    return Path(os.environ["BATON_TEST_LEDGER"])


def _effect(tag: str) -> bool:
    """Record `tag` for this step once; False when it was already recorded."""
    key = f"{tag} {current().activity_key}"
    path = _ledger()
    seen = path.read_text().splitlines() if path.exists() else []
    if key in seen:
        return False
    with path.open("a") as ledger:
        ledger.write(key + "\n")
    return True


@activity
async def appraise(parcel: str, seconds: float) -> dict[str, str]:
    """A slow task: the backlog it makes scales the pool."""
    await asyncio.sleep(seconds)
    _effect("appraised")
    return {"parcel": parcel}


@activity
async def transfer(parcel: str, seconds: float) -> dict[str, object]:
    """The effect first, then a slow confirmation: a worker killed during it must not make
    the retried task transfer twice."""
    first = _effect("transferred")
    await asyncio.sleep(seconds)
    return {"parcel": parcel, "first": first}


@activity
async def survey(seconds: float) -> str:
    """A long task that heartbeats."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        heartbeat()
        await asyncio.sleep(0.1)
    return "surveyed"


@activity
async def inspect(parcel: str, seconds: float) -> dict[str, object]:
    """The effect, then a long inspection that heartbeats."""
    first = _effect("inspected")
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        heartbeat()
        await asyncio.sleep(0.1)
    return {"parcel": parcel, "first": first}


@activity
async def load(rows: int) -> dict[str, object]:
    """Reports its progress, then dies on its first attempt; the retry starts from the last
    progress reported."""
    ctx = current()
    start = (ctx.heartbeat_details or {}).get("row", 0)
    if ctx.attempt == 1:
        heartbeat({"row": rows // 2})
        await asyncio.sleep(0.5)
        raise RuntimeError("the import broke off")
    return {"from": start, "attempt": ctx.attempt}


worker = Worker([appraise, transfer, survey, inspect, load], heartbeat_interval=0.2)
