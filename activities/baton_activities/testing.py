"""Unit-test an activity without a worker, a server or a workflow: `ActivityTestContext`.

    from baton_activities.testing import ActivityTestContext

    def test_a_retried_import_resumes_where_the_last_attempt_stopped():
        ctx = ActivityTestContext(attempt=2, heartbeat_details={"row": 500})
        assert ctx.run(import_rows, {"file": "a.csv"}) == {"rows": 1000}
        assert ctx.heartbeats[-1] == {"row": 1000}

`run` validates the input as the worker does (an `InvalidInput` ActivityError when it does not
fit), sets the context `current()` returns, records each `heartbeat()`, and returns the output
or raises what the activity raised. `cancel()` sets `cancelled`, as a closed connection does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from baton_activities.activity import Activity
from baton_activities.context import ActivityContext, RunInfo, _current


class ActivityTestContext:
    """A task's context for tests: attempt, keys, run, the previous attempt's heartbeat
    details, and the heartbeats the activity sends (`heartbeats`)."""

    def __init__(
        self,
        *,
        attempt: int = 1,
        activity_key: str = "test-run-uid/step",
        run: RunInfo | None = None,
        heartbeat_details: Any = None,
    ) -> None:
        self.heartbeats: list[Any] = []
        self.attempt = attempt
        self.activity_key = activity_key
        self.run_info = run or RunInfo(name="test-run", namespace="default", uid="test-run-uid")
        self.heartbeat_details = heartbeat_details
        self._contexts: list[ActivityContext] = []

    def context(self, activity: str) -> ActivityContext:
        """The ActivityContext an activity named `activity` sees."""
        ctx = ActivityContext(
            activity=activity,
            idempotency_key=f"{self.activity_key}/{self.attempt}",
            attempt=self.attempt,
            run=self.run_info,
            heartbeat_details=self.heartbeat_details,
            _beat=self.heartbeats.append,
        )
        self._contexts.append(ctx)
        return ctx

    def cancel(self) -> None:
        """Set `cancelled` for the activities run with this context (call it from a test's
        other thread or task while one runs)."""
        for ctx in self._contexts:
            ctx._cancelled.set()

    async def arun(self, act: Activity[..., Any], data: Any = None) -> Any:
        """Run `act` on the step input `data` in the running event loop."""
        token = _current.set(self.context(act.name))
        try:
            return await act.run(data)
        finally:
            _current.reset(token)

    def run(self, act: Activity[..., Any], data: Any = None) -> Any:
        """Run `act` on the step input `data` in an event loop of its own."""
        return asyncio.run(self.arun(act, data))
