"""Events: the facts the shell feeds to the engine, and their JSON form in the history log.

Every event is a frozen dataclass with a `type` discriminator in its JSON form
(`to_json()` / `event_from_json()`). Events carry no time: the shell records when it delivered
each one in a `HistoryEntry`, and replaying the history passes that time back as `now`.

Activities (and compensations and child runs) are addressed by a stable key (the step's
instance path, such as `pay`, `charges[3].charge` or `pay/compensate`) plus the attempt number,
so an event for an old attempt, a duplicate, or an event for a step that has already finished is
recognised and ignored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

JSON = Any


@dataclass(frozen=True)
class Event:
    """Base of every event."""

    type: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object with its `type`; camelCase keys."""
        data = {_camel(k): v for k, v in asdict(self).items()}
        return {"type": self.type, **data}


@dataclass(frozen=True)
class RunStarted(Event):
    """The run exists: its input, identity, the Workflow generation it follows, the
    run-level overrides of its spec (`timeout` in seconds, `onCancel`, `parallelism`), and for
    a run a Schedule started, its nominal time (`run.scheduledTime`, RFC 3339)."""

    type: ClassVar[str] = "RunStarted"
    input: JSON
    run_name: str
    namespace: str
    uid: str
    generation: int = 0
    timeout: float | None = None
    on_cancel: str | None = None
    parallelism: int | None = None
    scheduled_time: str | None = None
    continuation: dict[str, Any] | None = None
    """For a run continue-as-new started: its `spec.continuation` (from, lineage, number, and
    the vars and repeat iterations carried over)."""

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        # Histories of runs without them read as before.
        for key, value in (
            ("scheduledTime", self.scheduled_time),
            ("parallelism", self.parallelism),
            ("continuation", self.continuation),
        ):
            if value is None:
                del data[key]
        return data


@dataclass(frozen=True)
class ActivityStarted(Event):
    """The shell performed a StartActivity or StartChildRun command (acknowledgement). For a
    worker task or an HTTP call it means the call got its slot (left its pool's queue, was
    within the operator's HTTP limits) and was sent: its startToClose and heartbeat clocks
    start here."""

    type: ClassVar[str] = "ActivityStarted"
    key: str
    attempt: int


@dataclass(frozen=True)
class ActivityCompleted(Event):
    """An attempt of an activity (or compensation) returned `output`."""

    type: ClassVar[str] = "ActivityCompleted"
    key: str
    attempt: int
    output: JSON = None


@dataclass(frozen=True)
class ActivityFailed(Event):
    """An attempt failed with `error` ({type, message, details}); `retry_after` is the
    server's hint in seconds (an HTTP `Retry-After`), or None."""

    type: ClassVar[str] = "ActivityFailed"
    key: str
    attempt: int
    error: dict[str, Any]
    retry_after: float | None = None


@dataclass(frozen=True)
class ActivityHeartbeat(Event):
    """A running attempt reported that it is alive; `details` (small JSON, None when it sent
    none) are what it said about its progress, handed to the step's next attempt."""

    type: ClassVar[str] = "ActivityHeartbeat"
    key: str
    attempt: int
    details: Any = None


@dataclass(frozen=True)
class TimerFired(Event):
    """A due time passed. Every deadline at or before `now` is handled on any event; this one
    only wakes the run. `timer_id` says which timer the shell thought was due, for the log."""

    type: ClassVar[str] = "TimerFired"
    timer_id: str = ""


@dataclass(frozen=True)
class SignalReceived(Event):
    """`spec.signals[index]` arrived. Each index is taken once, in index order."""

    type: ClassVar[str] = "SignalReceived"
    index: int
    name: str
    payload: JSON = None


@dataclass(frozen=True)
class UpdateAccepted(Event):
    """The update request `id` (an entry of `spec.updates`) passed its handler's validator:
    the handler runs (assigns its `vars`) and its answer is recorded, all in this event's
    decision, so the event is the commit point of both. Refused requests are never in the
    history: they change nothing (`UpdateRequested`)."""

    type: ClassVar[str] = "UpdateAccepted"
    id: str
    name: str
    payload: JSON = None


@dataclass(frozen=True)
class UpdateRequested(Event):
    """An entry of `spec.updates` the shell has not answered yet. Never decided nor recorded:
    the shell validates it (`baton.engine.updates.refusal`) and folds `UpdateAccepted`, or
    answers with the refusal and leaves the run as it is."""

    type: ClassVar[str] = "UpdateRequested"
    id: str
    name: str
    payload: JSON = None

    def accepted(self) -> UpdateAccepted:
        """The event that records this request's acceptance."""
        return UpdateAccepted(self.id, self.name, self.payload)


@dataclass(frozen=True)
class ChildFinished(Event):
    """A child run started for `key` at `attempt` ended in `phase`. `name` is the child's (its
    rule changed once, so the name is reported, not derived); None in histories recorded before
    it was reported."""

    type: ClassVar[str] = "ChildFinished"
    key: str
    attempt: int
    phase: str
    output: JSON = None
    error: dict[str, Any] | None = None
    name: str | None = None


@dataclass(frozen=True)
class MemoResolved(Event):
    """The shell looked up the memoization cache for the step instance `key` (its execution
    that started after `attempt` attempts, in repeat `iteration`) under `cache_key`: `hit`
    with the stored `output`, when it was stored (`stored_at`, RFC 3339) and by which run
    (`stored_by`); or a miss, with `reason` (`absent`, `expired`, `unavailable: ...`). The
    answer is recorded, so a replay, or a restart after the lookup, takes the same one."""

    type: ClassVar[str] = "MemoResolved"
    key: str
    attempt: int
    iteration: int
    cache_key: str
    hit: bool
    output: JSON = None
    stored_at: str | None = None
    stored_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CancelRequested(Event):
    """The user set `spec.cancel`."""

    type: ClassVar[str] = "CancelRequested"


@dataclass(frozen=True)
class SuspendRequested(Event):
    """The user set `spec.suspend` to true."""

    type: ClassVar[str] = "SuspendRequested"


@dataclass(frozen=True)
class ResumeRequested(Event):
    """The user set `spec.suspend` back to false."""

    type: ClassVar[str] = "ResumeRequested"


@dataclass(frozen=True)
class RedriveRequested(Event):
    """The user bumped `spec.redrive` to `n`."""

    type: ClassVar[str] = "RedriveRequested"
    n: int


@dataclass(frozen=True)
class RunAborted(Event):
    """The shell cannot drive the run any further (its history is gone or does not verify, a
    state it cannot store, a fault that repeats on every restart): the run ends `Failed` at
    once, with `reason` as its error type and an `Aborted` condition, instead of restarting
    forever. Nothing is compensated — the state the saga would read is what is in doubt — and
    such a run cannot be redriven."""

    type: ClassVar[str] = "RunAborted"
    reason: str
    message: str


@dataclass(frozen=True)
class SuccessorCreated(Event):
    """The shell created (or found) the run `name` this run continues as; or, with `error`
    ({type, message}), could not: the name is taken by a run that is not this one's successor.
    """

    type: ClassVar[str] = "SuccessorCreated"
    name: str
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class LockAcquired(Event):
    """The lock the holder `key` asked for (a step path, or `(run)` for the run's own) is
    held: the lock object lists this run's holder as one of its holders."""

    type: ClassVar[str] = "LockAcquired"
    key: str


@dataclass(frozen=True)
class LockWaiting(Event):
    """The lock `key` asked for is held by others: `holders` are the runs holding it, as the
    lock object listed them (shown in status while the step waits)."""

    type: ClassVar[str] = "LockWaiting"
    key: str
    holders: list[str]
    problem: str | None = None
    """Why no one new can be granted the lock, when that is not its holders (a semaphore limit
    that cannot be read)."""

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if self.problem is None:
            del data["problem"]
        return data


@dataclass(frozen=True)
class LockRefused(Event):
    """The lock `key` asked for is kept in another namespace that does not let this run's
    namespace use it (or that the operator does not manage): `message` says why and the fix.
    The holder fails with a `LockRefused` error."""

    type: ClassVar[str] = "LockRefused"
    key: str
    message: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        RunStarted,
        ActivityStarted,
        ActivityCompleted,
        ActivityFailed,
        ActivityHeartbeat,
        TimerFired,
        SignalReceived,
        UpdateAccepted,
        ChildFinished,
        MemoResolved,
        CancelRequested,
        SuspendRequested,
        ResumeRequested,
        RedriveRequested,
        RunAborted,
        SuccessorCreated,
        LockAcquired,
        LockWaiting,
        LockRefused,
    )
}


def event_from_json(data: dict[str, Any]) -> Event:
    """The event whose JSON form is `data`; ValueError for an unknown `type`."""
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown event type {kind!r}")
    names = {f.name for f in fields(cls)}
    values = {_snake(k): v for k, v in data.items() if k != "type"}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"event {kind}: unknown field {unknown[0]!r}")
    return cls(**values)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a run's history: when the shell delivered the event, and the event."""

    at: float
    event: Event

    def to_json(self) -> dict[str, Any]:
        """`{"at": seconds, "type": ..., ...}`."""
        return {"at": self.at, **self.event.to_json()}

    @staticmethod
    def from_json(data: dict[str, Any]) -> HistoryEntry:
        """Inverse of `to_json`."""
        rest = {k: v for k, v in data.items() if k != "at"}
        return HistoryEntry(at=float(data["at"]), event=event_from_json(rest))


def event_step(event: Event) -> str | None:
    """The activity key an event is about (`pay`, `items[3].charge`, `pay/compensate`)."""
    key = getattr(event, "key", None)
    return key if isinstance(key, str) else None


def event_detail(event: Event) -> str:
    """What a reader needs besides type and step: the attempt, the error, the signal's name."""
    if isinstance(event, ActivityFailed):
        return f"{event.error.get('type')}: {event.error.get('message', '')}".rstrip(": ")
    if isinstance(event, SignalReceived):
        return event.name
    if isinstance(event, UpdateAccepted):
        return f"{event.name} {event.id}"
    if isinstance(event, ChildFinished):
        return event.phase
    if isinstance(event, ActivityStarted | ActivityCompleted | ActivityHeartbeat):
        return f"attempt {event.attempt}"
    if isinstance(event, MemoResolved):
        if event.hit:
            return f"cache hit {event.cache_key!r} (stored {event.stored_at} by {event.stored_by})"
        return f"cache miss {event.cache_key!r}: {event.reason}"
    if isinstance(event, RedriveRequested):
        return f"redrive {event.n}"
    if isinstance(event, RunAborted):
        return f"{event.reason}: {event.message}"
    if isinstance(event, TimerFired):
        return event.timer_id
    if isinstance(event, SuccessorCreated):
        if event.error is not None:
            return f"{event.error.get('type')}: {event.error.get('message', '')}".rstrip(": ")
        return event.name
    if isinstance(event, RunStarted) and event.continuation:
        return f"continues {event.continuation.get('from')}"
    if isinstance(event, LockWaiting):
        return "held by " + ", ".join(event.holders)
    if isinstance(event, LockRefused):
        return event.message
    if isinstance(event, RunStarted) and event.generation:
        return f"workflow generation {event.generation}"
    return ""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
