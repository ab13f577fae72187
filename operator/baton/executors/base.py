"""The contract between the run loop and the executors that perform activities.

The run loop (baton.handlers.runs) commits every decision before it acts (the outbox rule), then
hands each StartActivity to the executor of its kind. An executor performs the attempt and
reports what happened as engine events through `report`; it never touches run state itself.

Every start is idempotent for the same (run, key, attempt): after a crash the loop re-issues
what was committed but not acknowledged, and the executor must not repeat a side effect —
HTTP calls and worker tasks carry an `Idempotency-Key`, Jobs have deterministic names and a
409 adopts the existing Job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from baton.engine.commands import CancelActivity, StartActivity
from baton.engine.events import Event
from baton.store.ref import RunRef

__all__ = ["Adopting", "Executor", "HoldsOutcomes", "Report", "RunRef"]


Report = Callable[[Event], Awaitable[None]]
"""Delivers an event to the run's loop (ActivityStarted, ActivityCompleted, ActivityFailed,
ActivityHeartbeat). Safe to call from any task; events for stale attempts are ignored."""


class Executor(Protocol):
    """Performs one kind of activity (`http`, `job`, `worker`)."""

    kind: str

    async def start(self, run: RunRef, command: StartActivity, report: Report) -> None:
        """Begin the attempt (idempotently) and return; results arrive later via `report`."""

    async def cancel(self, run: RunRef, command: CancelActivity) -> None:
        """Stop the attempt if it still runs; best effort, a late result is ignored."""

    async def close(self) -> None:
        """Release clients and stop background tasks when the operator shuts down."""


@runtime_checkable
class Adopting(Protocol):
    """An executor whose attempts leave objects behind (Jobs, child runs) that a resuming run
    lists: it starts and stops their attempts under the objects' own names. Objects made before
    their names carried the run's uid (baton.api.attempts) are found so, never made twice."""

    def adopt(self, run: RunRef, objects: Iterable[Mapping[str, Any]]) -> None:
        """Remember the names of `run`'s objects that differ from today's rule, by attempt."""


@runtime_checkable
class HoldsOutcomes(Protocol):
    """An executor whose finished attempts leave objects holding their outcome (a Job's pod
    holds its output) that it keeps until the run has committed that outcome."""

    async def outcomes_committed(self, run: RunRef, events: Iterable[Event]) -> None:
        """`run` committed `events` to its history: what held their outcomes may go."""

    async def expire(self, namespace: str, names: Iterable[str]) -> None:
        """The objects `names`, whose outcomes a resumed run found committed, may go."""
