"""The run state: mutable dataclasses owned by `decide`, and their JSON form, the run's `.status`.

The state is everything the engine knows about a run; commands and due times are derived from
it (see `baton.engine.decide.pending_commands` and `next_wakeup`), never stored beside it. Times
are whole milliseconds since the epoch so that the RFC 3339 strings of the status round-trip
exactly. `state_to_status` writes camelCase JSON that `baton.api.run.WorkflowRunStatus`
describes; `state_from_status` reads it back, and the two are exact inverses.

Step instances are keyed by path: a step's name, prefixed by `forEachStep[index].` for each
forEach around it (`charges[3].charge`). Step names are unique across a definition, so this path
is unique within a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from baton.api.locks import LockKind
from baton.api.run import RunPhase, StepPhase
from baton.engine.errors import StepError, error_json

if TYPE_CHECKING:
    from baton.engine.index import Index

JSON = Any
Millis = int
"""Milliseconds since the epoch."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Ending(StrEnum):
    """How a run is ending once it stops going forward (`status.ending`): it decides whether
    the saga compensates and the final phase."""

    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timedOut"
    CONTINUED = "continued"
    """A `continueAsNew` step ended the run: nothing is compensated, the successor follows."""


class KeyRole(StrEnum):
    """What an activity key names: a step instance (`pay`, `charges[3].charge`) or a
    compensation of one (`pay/compensate`, `pay/compensate-1`)."""

    STEP = "step"
    COMPENSATION = "compensation"


_COMPENSATE = "/compensate"
"""Suffix of a compensation's key. Step names never hold a `/`, so a key holding one is a
compensation's; keys are in histories and statuses, so the form never changes."""


def key_role(key: str) -> KeyRole:
    """Whether `key` names a step instance or a compensation."""
    return KeyRole.COMPENSATION if "/" in key else KeyRole.STEP


def compensation_key(path: str, n: int) -> str:
    """The key of the `n`th compensation (from 0) of the step instance `path`."""
    return f"{path}{_COMPENSATE}" + (f"-{n}" if n else "")


@dataclass
class StepState:
    """One step instance (or one compensation): its phase, attempts and result.

    `attempt` counts every attempt this instance ever started and never goes down, so an
    (instance, attempt) pair names one activity for the whole life of the run, across retries,
    repeat iterations and redrives. `attempt_base` is where the current retry budget started.
    """

    phase: StepPhase = StepPhase.PENDING
    attempt: int = 0
    attempt_base: int = 0
    started_at: Millis | None = None
    scheduled_at: Millis | None = None
    attempt_started_at: Millis | None = None
    heartbeat_at: Millis | None = None
    heartbeat_details: JSON = None
    acknowledged: bool = False
    request: JSON = None
    finished_at: Millis | None = None
    next_attempt_at: Millis | None = None
    wake_at: Millis | None = None
    output: JSON = None
    error: StepError | None = None
    iterations: int = 0
    items: list[Any] | None = None
    recovering: int | None = None
    signal: int | None = None
    times: dict[str, float] | None = None
    """Timeouts and retry intervals computed when the current execution started (seconds by
    field, `timeout.startToClose`, `retry[0].initialInterval`); None when none is computed."""
    failures: list[int] | None = None
    """Attempts that failed per retry rule in the current budget, for a step with several
    rules; a step with one rule counts its attempts."""
    outcome: StepPhase | None = None
    """Steps with `finally`: the phase the step ended in, set while its finally steps run
    (the step is Running meanwhile) and kept once they ran, so they run once per ending."""
    memo: str | None = None
    """Memoized steps: the cache key of the current execution."""
    cached: bool | None = None
    """Memoized steps: None while the cache is read (`memo` set), then whether the output came
    from it."""
    seq: int = field(default=0, compare=False, repr=False)
    """Order of the instance in `State.steps` (numbered as added): the order commands and
    listings keep without scanning the run's instances. Not in the status."""

    def __setattr__(self, name: str, value: Any) -> None:
        # An instance a decision owns (`Steps`) reports each change to it, so the run's index
        # is brought up to date with the changed instances only (`Steps.dirty`).
        fields = self.__dict__
        fields[name] = value
        dirty = fields.get("_dirty")
        if dirty is not None:
            dirty[fields["_path"]] = None

    @property
    def attempts(self) -> int:
        """Attempts made in the current budget (what retry policies count)."""
        return self.attempt - self.attempt_base

    @property
    def awaits_attempt(self) -> bool:
        """True while the current attempt's result is awaited: the step runs, and not a catch
        clause's steps. Once a step recovers through them its failed attempt is over: none of
        its timeouts fires, no late result of it counts, a restart does not start it again. The
        same holds once a step ended and runs its `finally` steps (it has an outcome)."""
        return (
            self.phase is StepPhase.RUNNING
            and self.recovering is None
            and self.outcome is None
            and (self.memo is None or self.cached is not None)  # not `looking_up`, inlined
        )

    @property
    def looking_up(self) -> bool:
        """True while a memoized step waits for its cache lookup: no attempt of this execution
        exists yet, so no attempt result counts and no attempt timeout runs."""
        return self.memo is not None and self.cached is None and self.phase is StepPhase.RUNNING


@dataclass
class Completion:
    """A step with a `compensate` action that succeeded, in completion order."""

    path: str
    output: JSON = None


@dataclass
class CompensationState:
    """One compensation of the saga: the compensated step instance, its output when it
    completed (`steps.<name>.output` in the compensation), the activity key, and its progress."""

    path: str
    key: str
    output: JSON = None
    run: StepState = field(default_factory=StepState)


@dataclass
class SignalRecord:
    """A signal kept until a `waitForSignal` takes it (or an out-of-order one until its turn)."""

    index: int
    name: str
    payload: JSON = None


class Steps(dict[str, StepState]):
    """The run's step instances by path, copied on write from one decision to the next.

    `State.copy` shares every instance with the state it copies (a C-level copy of the dict,
    about 50 us at 10,000 instances) instead of copying each one; `get` and `[]` hand out an
    instance this copy owns, copying a shared one the first time, so a decision changes only
    its own copies. `touched` lists the instances a decision may have changed (got, or added),
    which is all that can differ from the state it copied: the engine's work per event follows
    what changed, not the run's size. Iterating (`items`, `values`) gives the instances as they
    are, shared or not: read them, and change one only through `get` or `[]`."""

    __slots__ = ("dirty", "next_seq", "touched")

    def __init__(self, steps: Mapping[str, StepState] | Iterable[tuple[str, StepState]] = ()):
        super().__init__(steps)
        self.touched: dict[str, None] | None = None
        """Paths got or added since the copy, in that order; None: every instance is this
        state's own (read from a status, or new)."""
        self.dirty: dict[str, None] = {}
        """Paths changed or added since the index last looked (`baton.engine.index.sync`)."""
        for seq, step in enumerate(dict.values(self)):
            step.seq = seq
        self.next_seq = len(self)
        """`seq` of the next instance added (instances may be removed: an update's steps)."""

    def derive(self) -> Steps:
        """A copy sharing every instance, which copies one the first time it is got."""
        new = Steps.__new__(Steps)
        dict.update(new, self)
        new.touched = {}
        new.dirty = {}
        new.next_seq = self.next_seq
        return new

    def peek(self, path: str) -> StepState | None:
        """The instance at `path` as it is, to read only (no copy)."""
        return dict.get(self, path)

    def get(self, path: str, default: None = None) -> StepState | None:  # type: ignore[override]
        step = dict.get(self, path)
        touched = self.touched
        if step is None or touched is None or path in touched:
            return step
        touched[path] = None
        own = _shallow(step)
        own.__dict__["_dirty"] = self.dirty
        own.__dict__["_path"] = path
        dict.__setitem__(self, path, own)
        return own

    def __getitem__(self, path: str) -> StepState:
        step = self.get(path)
        if step is None:
            raise KeyError(path)
        return step

    def __setitem__(self, path: str, step: StepState) -> None:
        if path not in self:
            step.seq = self.next_seq
            self.next_seq += 1
        if self.touched is not None:
            self.touched[path] = None
            step.__dict__["_dirty"] = self.dirty
            step.__dict__["_path"] = path
        self.dirty[path] = None
        dict.__setitem__(self, path, step)

    def __delitem__(self, path: str) -> None:
        dict.__delitem__(self, path)
        if self.touched is not None:
            self.touched[path] = None
        self.dirty[path] = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (Steps, (dict(self),))


class UpdateOutcome(StrEnum):
    """How an update request was answered (`status.updates.<id>.outcome`)."""

    RUNNING = "Running"
    """Accepted; its handler's steps run, and the answer waits for them."""
    COMPLETED = "Completed"
    """Accepted; its handler ran and `output` is the result."""
    FAILED = "Failed"
    """Accepted, but its handler failed (`error`): none of its assignments was made."""
    REFUSED = "Refused"
    """Refused (`reason`): by its validator, or because the run cannot take it. The shell
    answers it; the engine's state never holds one."""


@dataclass
class UpdateResult:
    """The answer to one accepted update request."""

    name: str
    outcome: UpdateOutcome
    at: Millis
    output: JSON = None
    error: StepError | None = None
    payload: JSON = None
    """The request's payload (`update.payload` in its steps), kept only while it runs."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "outcome": str(self.outcome)}
        if self.output is not None:
            out["output"] = self.output
        if self.error is not None:
            out["error"] = self.error.to_json()
        if self.payload is not None:
            out["payload"] = self.payload
        out["at"] = rfc3339(self.at)
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> UpdateResult:
        error = data.get("error")
        return UpdateResult(
            name=data["name"],
            outcome=UpdateOutcome(data["outcome"]),
            at=parse_rfc3339(data["at"]),
            output=data.get("output"),
            error=StepError.from_json(error) if error else None,
            payload=data.get("payload"),
        )


@dataclass
class Successor:
    """The run a `continueAsNew` step (or `repeat.continueAsNewEvery`) asked for: its
    deterministic name, its input and the state it carries. `ready` once this run's own steps
    (and `finally`/`onExit`) ended: the shell creates it then; `created` once the shell
    reported it exists, which ends this run ContinuedAsNew."""

    name: str
    input: JSON = None
    vars: dict[str, Any] | None = None
    iterations: dict[str, int] | None = None
    ready: bool = False
    created: bool = False
    cancel: bool = False
    """A cancel came while this run was continuing: the successor starts cancelled (the
    cancel reaches the lineage's current run, as Temporal's reaches the workflow's)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "input": self.input}
        for key, value in (("vars", self.vars), ("iterations", self.iterations)):
            if value is not None:
                out[key] = value
        for key, flag in (
            ("ready", self.ready),
            ("created", self.created),
            ("cancel", self.cancel),
        ):
            if flag:
                out[key] = True
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> Successor:
        return Successor(
            name=data["name"],
            input=data.get("input"),
            vars=data.get("vars"),
            iterations=data.get("iterations"),
            ready=bool(data.get("ready")),
            created=bool(data.get("created")),
            cancel=bool(data.get("cancel")),
        )


@dataclass
class LockHold:
    """A lock a step instance (or the run, under `(run)`) asked for: what it asked for, when,
    and since when it holds it (None while it waits; `holders` are then the runs holding it,
    as the shell last reported them). `entered` says the holder went past its wait (a step's
    first execution started), so a grant is acted on once."""

    kind: LockKind
    name: str
    requested_at: Millis
    limit: int | None = None
    config_map: tuple[str, str] | None = None
    namespace: str | None = None
    """The namespace keeping the lock when not the run's own."""
    granted_at: Millis | None = None
    holders: list[str] = field(default_factory=list)
    problem: str | None = None
    entered: bool = False

    def to_json(self) -> dict[str, Any]:
        """The hold in `.status.locks`, with the `message` people read."""
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "name": self.name,
            "requestedAt": rfc3339(self.requested_at),
        }
        if self.limit is not None:
            out["limit"] = self.limit
        if self.config_map is not None:
            out["configMapKeyRef"] = {"name": self.config_map[0], "key": self.config_map[1]}
        if self.namespace is not None:
            out["namespace"] = self.namespace
        if self.granted_at is not None:
            out["grantedAt"] = rfc3339(self.granted_at)
        if self.holders:
            out["heldBy"] = list(self.holders)
        if self.problem is not None:
            out["problem"] = self.problem
        if self.entered:
            out["entered"] = True
        out["message"] = self.message
        return out

    @staticmethod
    def from_json(data: dict[str, Any]) -> LockHold:
        """Inverse of `to_json` (the message is derived, not read)."""
        ref = data.get("configMapKeyRef")
        granted = data.get("grantedAt")
        return LockHold(
            kind=LockKind(data["kind"]),
            name=data["name"],
            requested_at=parse_rfc3339(data["requestedAt"]),
            limit=data.get("limit"),
            config_map=(ref["name"], ref["key"]) if ref else None,
            namespace=data.get("namespace"),
            granted_at=parse_rfc3339(granted) if granted else None,
            holders=list(data.get("heldBy") or []),
            problem=data.get("problem"),
            entered=bool(data.get("entered")),
        )

    @property
    def message(self) -> str:
        """`waiting for mutex X held by run Y`, `semaphore X: 2/2 held by a, b`, `holds mutex X`."""
        if self.granted_at is not None:
            return f"holds {self.kind} {self.name}"
        if self.problem is not None:
            return f"waiting for {self.kind} {self.name}: {self.problem}"
        if not self.holders:
            return f"waiting for {self.kind} {self.name}"
        runs = ", ".join(self.holders)
        if self.kind is LockKind.MUTEX:
            return f"waiting for mutex {self.name} held by run {runs}"
        if self.limit is None:  # read from a ConfigMap by the shell: not known here
            return f"waiting for semaphore {self.name} held by {runs}"
        return f"waiting for semaphore {self.name}: {len(self.holders)}/{self.limit} held by {runs}"


@dataclass
class State:
    """Everything the engine knows about one run."""

    phase: RunPhase = RunPhase.PENDING
    generation: int = 0
    run_name: str = ""
    namespace: str = ""
    uid: str = ""
    input: JSON = None
    started_at: Millis | None = None
    finished_at: Millis | None = None
    deadline: Millis | None = None
    on_cancel: str | None = None
    parallelism: int | None = None
    """The run's own bound of activities and child runs in flight (its spec's), if it has one."""
    scheduled_time: str | None = None
    """The nominal time of a run a Schedule started (RFC 3339), else None."""
    lineage: str | None = None
    """The first run of this run's continue-as-new lineage; None: this run is the first."""
    continuation: int = 0
    """Runs before this one in its lineage (0 for the first)."""
    continued_from: str | None = None
    """The run this one continues, if continue-as-new started it."""
    carried_iterations: dict[str, int] | None = None
    """Repeat iterations the predecessor carried over, by top-level step; taken by the step's
    first execution in this run."""
    successor: Successor | None = None
    """The run this one is continuing as, once a continueAsNew step asked for it."""
    vars: dict[str, Any] = field(default_factory=dict)
    signals_received: int = 0
    signals: dict[str, Any] = field(default_factory=dict)
    unclaimed: list[SignalRecord] = field(default_factory=list)
    early: list[SignalRecord] = field(default_factory=list)
    steps: Steps = field(default_factory=Steps)
    completed: list[Completion] = field(default_factory=list)
    compensations: list[CompensationState] = field(default_factory=list)
    ending: Ending | None = None
    suspended: bool = False
    exit_outcome: RunPhase | None = None
    """Runs with `onExit`: the phase the run ends in, set while the onExit steps run and kept
    once they ran, so they run once per ending (a redrive clears it)."""
    output: JSON = None
    error: StepError | None = None
    queries: dict[str, Any] = field(default_factory=dict)
    redrive: int = 0
    conditions: list[dict[str, Any]] = field(default_factory=list)
    locks: dict[str, LockHold] = field(default_factory=dict)
    """Mutexes and semaphore slots asked for, by holder key (a step path, or `(run)`)."""
    updates: dict[str, UpdateResult] = field(default_factory=dict)
    """Answers to accepted update requests by id, oldest first (the latest
    `baton.engine.updates.MAX_RESULTS`)."""
    index: Index | None = field(default=None, compare=False, repr=False)
    """Lookups derived from `steps` (`baton.engine.index`), kept current by the engine; built
    when first needed, never in the status."""

    def __post_init__(self) -> None:
        if not isinstance(self.steps, Steps):
            self.steps = Steps(self.steps)

    def copy(self) -> State:
        """A copy `decide` may change without touching this one. Every container and every
        dataclass of the state is new or copied on write; the JSON values inside them (input,
        outputs, requests, items, payloads, errors) are shared, because the engine only ever
        replaces them and never changes one in place. The step instances are copied on write
        (`Steps`): a run of thousands of forEach items copies the few an event changes."""
        new = _shallow(self)
        new.vars = dict(self.vars)
        new.signals = dict(self.signals)
        new.unclaimed = list(self.unclaimed)
        new.early = list(self.early)
        new.steps = self.steps.derive()
        new.index = self.index.copy() if self.index is not None else None
        new.completed = list(self.completed)
        new.compensations = [
            replace(compensation, run=_shallow(compensation.run))
            for compensation in self.compensations
        ]
        new.queries = dict(self.queries)
        new.conditions = list(self.conditions)
        new.updates = dict(self.updates)
        if self.successor is not None:
            new.successor = _shallow(self.successor)
        if self.locks:
            new.locks = {key: _shallow(hold) for key, hold in self.locks.items()}
        else:
            new.locks = {}
        return new


_Copied = TypeVar("_Copied")


def _shallow(obj: _Copied) -> _Copied:
    """A new dataclass instance with the same field values (what `copy.copy` does, without its
    generic protocol: a few times faster, which counts at thousands of steps per event)."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__)
    return new


# -- times ------------------------------------------------------------------------------------


def to_millis(seconds: float) -> Millis:
    """Seconds since the epoch (as the shell gives `now`) to whole milliseconds."""
    return round(seconds * 1000)


def rfc3339(ms: Millis) -> str:
    """`2026-01-02T03:04:05.678Z` (the fraction only when there is one)."""
    whole, fraction = divmod(ms, 1000)
    stamp = (_EPOCH + timedelta(seconds=whole)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:03d}Z" if fraction else f"{stamp}Z"


def parse_rfc3339(text: str) -> Millis:
    """Inverse of `rfc3339` (any RFC 3339 time is accepted; precision below 1 ms is dropped)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment - _EPOCH) // timedelta(milliseconds=1)


# -- status -----------------------------------------------------------------------------------

# (attribute, status key, is a time). Order is the order keys appear in the status.
_STEP_FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("phase", "phase", False),
    ("attempt", "attempts", False),
    ("started_at", "startedAt", True),
    ("finished_at", "finishedAt", True),
    ("next_attempt_at", "nextAttemptAt", True),
    ("wake_at", "wakeAt", True),
    ("iterations", "iterations", False),
    ("output", "output", False),
    ("error", "error", False),
    ("attempt_base", "attemptBase", False),
    ("scheduled_at", "scheduledAt", True),
    ("attempt_started_at", "attemptStartedAt", True),
    ("heartbeat_at", "heartbeatAt", True),
    ("heartbeat_details", "heartbeatDetails", False),
    ("acknowledged", "acknowledged", False),
    ("request", "request", False),
    ("items", "items", False),
    ("recovering", "recovering", False),
    ("signal", "signal", False),
    ("times", "times", False),
    ("failures", "failures", False),
    ("outcome", "outcome", False),
    ("memo", "memoKey", False),
    ("cached", "cached", False),
)
_STEP_DEFAULTS = StepState()


def step_to_status(step: StepState) -> dict[str, Any]:
    """One step's status object; fields at their default are left out to keep status small."""
    out: dict[str, Any] = {}
    for attr, key, is_time in _STEP_FIELDS:
        value = getattr(step, attr)
        if attr != "phase" and value == getattr(_STEP_DEFAULTS, attr):
            continue
        if is_time:
            value = rfc3339(value)
        elif attr in ("phase", "outcome"):
            value = str(value)
        elif attr == "error":
            value = value.to_json()
        out[key] = value
    return out


def step_from_status(data: dict[str, Any]) -> StepState:
    """Inverse of `step_to_status`."""
    step = StepState()
    for attr, key, is_time in _STEP_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if is_time:
            value = parse_rfc3339(value)
        elif attr in ("phase", "outcome"):
            value = StepPhase(value)
        elif attr == "error":
            value = StepError.from_json(value)
        setattr(step, attr, value)
    return step


def state_to_status(
    state: State,
    *,
    current_step: str = "",
    progress: str = "",
    next_wakeup_at: Millis | None = None,
    item_counts: dict[str, dict[str, int]] | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The run's `.status` (see WorkflowRunStatus). The derived, display-only fields
    (`currentStep`, `progress`, `nextWakeupAt`, forEach `items` counts) are computed by
    `baton.engine.decide.status_of`, which is what the shell calls; they are ignored on the
    way back. `only` lists the step instances a summary keeps (`baton.engine.summary`)."""
    status: dict[str, Any] = {"phase": str(state.phase)}

    def put(key: str, value: Any, default: Any = None) -> None:
        if value != default:
            status[key] = value

    put("workflowGeneration", state.generation, 0)
    put("startedAt", rfc3339(state.started_at) if state.started_at is not None else None)
    put("finishedAt", rfc3339(state.finished_at) if state.finished_at is not None else None)
    put("currentStep", current_step, "")
    put("progress", progress, "")
    steps = {}
    listed = state.steps.items() if only is None else ((p, state.steps.peek(p)) for p in only)
    for path, step in listed:
        assert step is not None
        entry = step_to_status(step)
        if item_counts and path in item_counts:
            entry["itemCounts"] = item_counts[path]
        steps[path] = entry
    put("steps", steps, {})
    put("output", state.output)
    put("error", error_json(state.error))
    put("vars", state.vars, {})
    put("queries", state.queries, {})
    put("signals", state.signals, {})
    put("signalsConsumed", state.signals_received, 0)
    put("updates", {key: result.to_json() for key, result in state.updates.items()}, {})
    put(
        "compensations",
        [
            {"step": c.path, "key": c.key, **step_to_status(c.run), "stepOutput": c.output}
            if c.output is not None
            else {"step": c.path, "key": c.key, **step_to_status(c.run)}
            for c in state.compensations
        ],
        [],
    )
    put("redrive", state.redrive, 0)
    put("nextWakeupAt", rfc3339(next_wakeup_at) if next_wakeup_at is not None else None)
    put("conditions", state.conditions, [])
    run: dict[str, Any] = {"name": state.run_name, "namespace": state.namespace, "uid": state.uid}
    if state.scheduled_time is not None:
        run["scheduledTime"] = state.scheduled_time
    if state.lineage is not None:
        run["lineage"] = state.lineage
    if state.continuation:
        run["continuation"] = state.continuation
    put("run", run)
    put("continuedFrom", state.continued_from)
    put("carriedIterations", state.carried_iterations)
    if state.successor is not None:
        put("successor", state.successor.to_json())
        if state.successor.created:
            put("continuedAs", state.successor.name)
    put("input", state.input)
    put("deadline", rfc3339(state.deadline) if state.deadline is not None else None)
    put("onCancel", state.on_cancel)
    put("parallelism", state.parallelism)
    put("unclaimedSignals", [_signal_json(s) for s in state.unclaimed], [])
    put("earlySignals", [_signal_json(s) for s in state.early], [])
    put(
        "completed",
        [
            {"step": c.path, "output": c.output} if c.output is not None else {"step": c.path}
            for c in state.completed
        ],
        [],
    )
    put("ending", state.ending.value if state.ending is not None else None)
    put("suspended", state.suspended, False)
    put("exitOutcome", str(state.exit_outcome) if state.exit_outcome is not None else None)
    put("locks", {key: hold.to_json() for key, hold in state.locks.items()}, {})
    return status


SUMMARY = "summary"
"""Status key, true when the status lists only some of the run's step instances."""


class SummaryStatusError(ValueError):
    """A summary status holds too little to rebuild the state: replay the run's history."""


def state_from_status(status: dict[str, Any]) -> State:
    """Inverse of `state_to_status`: the state a status document was written from.
    SummaryStatusError for a summary (`status.summary`), which lists only part of the run."""
    if status.get(SUMMARY):
        raise SummaryStatusError(
            "the status is a summary of a large run: its state is rebuilt from its history"
        )
    run = status.get("run") or {}

    def time(key: str) -> Millis | None:
        value = status.get(key)
        return parse_rfc3339(value) if value is not None else None

    return State(
        phase=RunPhase(status.get("phase", RunPhase.PENDING)),
        generation=status.get("workflowGeneration", 0),
        run_name=run.get("name", ""),
        namespace=run.get("namespace", ""),
        uid=run.get("uid", ""),
        input=status.get("input"),
        started_at=time("startedAt"),
        finished_at=time("finishedAt"),
        deadline=time("deadline"),
        on_cancel=status.get("onCancel"),
        parallelism=status.get("parallelism"),
        scheduled_time=run.get("scheduledTime"),
        lineage=run.get("lineage"),
        continuation=run.get("continuation", 0),
        continued_from=status.get("continuedFrom"),
        carried_iterations=status.get("carriedIterations"),
        successor=(Successor.from_json(status["successor"]) if status.get("successor") else None),
        vars=dict(status.get("vars") or {}),
        signals_received=status.get("signalsConsumed", 0),
        signals=dict(status.get("signals") or {}),
        unclaimed=[_signal_from_json(s) for s in status.get("unclaimedSignals") or []],
        early=[_signal_from_json(s) for s in status.get("earlySignals") or []],
        steps=Steps((path, step_from_status(s)) for path, s in (status.get("steps") or {}).items()),
        completed=[
            Completion(path=c["step"], output=c.get("output"))
            for c in status.get("completed") or []
        ],
        compensations=[
            CompensationState(
                path=c["step"], key=c["key"], output=c.get("stepOutput"), run=step_from_status(c)
            )
            for c in status.get("compensations") or []
        ],
        ending=Ending(status["ending"]) if status.get("ending") is not None else None,
        suspended=status.get("suspended", False),
        exit_outcome=RunPhase(status["exitOutcome"]) if status.get("exitOutcome") else None,
        output=status.get("output"),
        error=StepError.from_json(status["error"]) if status.get("error") else None,
        queries=dict(status.get("queries") or {}),
        redrive=status.get("redrive", 0),
        conditions=list(status.get("conditions") or []),
        locks={key: LockHold.from_json(hold) for key, hold in (status.get("locks") or {}).items()},
        updates={
            key: UpdateResult.from_json(result)
            for key, result in (status.get("updates") or {}).items()
            if result.get("outcome") != UpdateOutcome.REFUSED
        },
    )


def _signal_json(record: SignalRecord) -> dict[str, Any]:
    return {"index": record.index, "name": record.name, "payload": record.payload}


def _signal_from_json(data: dict[str, Any]) -> SignalRecord:
    return SignalRecord(index=data["index"], name=data["name"], payload=data.get("payload"))
