"""Activities the SDK tests serve (also run by `baton-worker` in a subprocess)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from baton_activities import ActivityError, Worker, activity, current, heartbeat
from pydantic import BaseModel


class Listing(BaseModel):
    address: str
    price: int


calls: list[str] = []
release = threading.Event()


@activity
def appraise(listing: Listing) -> dict[str, Any]:
    """Sync, one typed parameter: the whole input is a Listing."""
    return {"address": listing.address, "value": listing.price * 2}


@activity(name="add-fees")
async def add_fees(amount: int, rate: float = 0.1) -> float:
    """Async, several parameters: the input is an object of them."""
    await asyncio.sleep(0)
    return amount * (1 + rate)


@activity
def decline(amount: int) -> None:
    raise ActivityError(
        f"card declined for {amount}", type="CardDeclined", non_retryable=True, details={"n": 1}
    )


@activity
async def explode() -> None:
    raise KeyError("ledger")


@activity
def whoami() -> dict[str, Any]:
    ctx = current()
    calls.append(ctx.idempotency_key)
    return {
        "activity": ctx.activity,
        "key": ctx.idempotency_key,
        "activityKey": ctx.activity_key,
        "attempt": ctx.attempt,
        "run": ctx.run.name,
        "heartbeatDetails": ctx.heartbeat_details,
    }


@activity
async def survey(parcels: int) -> int:
    """Async, long: a heartbeat per parcel."""
    for n in range(parcels):
        heartbeat({"done": n})
        await asyncio.sleep(0.05)
    return parcels


@activity
def survey_sync(parcels: int) -> int:
    """Sync (in a thread), long: heartbeats from the thread."""
    for n in range(parcels):
        current().heartbeat(n)
        time.sleep(0.05)
    return parcels


@activity
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@activity
async def hang() -> None:
    calls.append("hang")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        calls.append("hang cancelled")
        raise


worker = Worker(
    [appraise, add_fees, decline, explode, whoami, survey, survey_sync, slow, hang],
    heartbeat_interval=0.01,
)
