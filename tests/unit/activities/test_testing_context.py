"""`ActivityTestContext`: an activity run in a unit test sees its attempt, keys and the previous
attempt's heartbeat details, its heartbeats are recorded, and its input is validated as the
worker validates it."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sdk_sample as sample
from baton_activities import ActivityError, activity, current, heartbeat
from baton_activities.testing import ActivityTestContext


@activity
async def import_rows(file: str, total: int) -> dict[str, int]:
    start = (current().heartbeat_details or {}).get("row", 0)
    for row in range(start + 250, total + 1, 250):
        heartbeat({"row": row})
    return {"from": start, "rows": total}


def test_a_retried_activity_resumes_from_the_previous_attempts_heartbeat() -> None:
    ctx = ActivityTestContext(attempt=2, heartbeat_details={"row": 500})
    assert ctx.run(import_rows, {"file": "a.csv", "total": 1000}) == {"from": 500, "rows": 1000}
    assert ctx.heartbeats == [{"row": 750}, {"row": 1000}]


def test_the_context_carries_attempt_and_keys() -> None:
    ctx = ActivityTestContext(attempt=3, activity_key="u1/charge")
    output = ctx.run(sample.whoami)
    assert output["key"] == "u1/charge/3"
    assert output["activityKey"] == "u1/charge"
    assert output["attempt"] == 3


def test_an_input_that_does_not_fit_raises_invalid_input() -> None:
    with pytest.raises(ActivityError) as raised:
        ActivityTestContext().run(sample.appraise, {"address": "a", "price": "cheap"})
    assert raised.value.type == "InvalidInput"


def test_cancel_sets_cancelled_for_a_sync_activity() -> None:
    started = threading.Event()

    @activity
    def wait_for_cancel() -> bool:
        started.set()
        while not current().cancelled:
            threading.Event().wait(0.01)
        return True

    ctx = ActivityTestContext()

    async def scenario() -> bool:
        running = asyncio.create_task(ctx.arun(wait_for_cancel))
        await asyncio.to_thread(started.wait, 10)
        ctx.cancel()
        return await running

    assert asyncio.run(scenario()) is True
