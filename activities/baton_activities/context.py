"""What a running activity knows about its task: `baton_activities.current()`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    """The WorkflowRun a task belongs to."""

    name: str = ""
    namespace: str = ""
    uid: str = ""


@dataclass
class ActivityContext:
    """The task an activity is performing.

    `idempotency_key` is the key of this attempt (`<run uid>/<step key>/<attempt>`): the same
    key arrives again only when the operator re-issues the same attempt after a crash.
    `activity_key` is that key without the attempt number: the same for every retry of the
    step, the key to give a payment provider so that a charge happens once however often the
    step is retried.

    `heartbeat_details` are the details of the last heartbeat of the step's previous attempt
    (None on a first attempt, or when it never beat with details): where a retried attempt
    picks up, as with Temporal's `heartbeat_details`."""

    activity: str
    idempotency_key: str
    attempt: int
    run: RunInfo
    heartbeat_details: Any = None
    _beat: Callable[[Any], None] = field(default=lambda _details: None, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def activity_key(self) -> str:
        """The idempotency key without its `/<attempt>` suffix (stable across retries)."""
        suffix = f"/{self.attempt}"
        if self.idempotency_key.endswith(suffix):
            return self.idempotency_key[: -len(suffix)]
        return self.idempotency_key

    @property
    def cancelled(self) -> bool:
        """True once the operator stopped waiting for this task (its connection closed). Async
        activities are cancelled outright; sync ones can poll this and stop early."""
        return self._cancelled.is_set()

    def heartbeat(self, details: Any = None) -> None:
        """Tell the operator the activity is alive (resets the step's `heartbeat` timeout).
        Safe from sync activities (which run in threads) and async ones; cheap to call often:
        the worker sends at most one heartbeat per interval."""
        self._beat(details)


_current: ContextVar[ActivityContext | None] = ContextVar("baton_activity", default=None)


def current() -> ActivityContext:
    """The context of the activity running in this task or thread."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("baton_activities.current() called outside a running activity")
    return ctx


def heartbeat(details: Any = None) -> None:
    """`current().heartbeat(details)`; outside an activity (a unit test calling the function
    directly) it does nothing."""
    ctx = _current.get()
    if ctx is not None:
        ctx.heartbeat(details)


def threadsafe_beat(
    loop: asyncio.AbstractEventLoop, beat: Callable[[Any], None]
) -> Callable[[Any], None]:
    """A heartbeat callback callable from any thread that runs `beat` on `loop`."""

    def call(details: Any) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            beat(details)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is listening
                loop.call_soon_threadsafe(beat, details)

    return call
