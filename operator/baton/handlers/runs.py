"""The run loop: one asyncio task per active WorkflowRun, folding events through the engine.

Each loop owns its run's state. Events reach it through an inbox (executor results, child run
results, spec changes the user made, and its own wake-up); the loop takes every event waiting,
folds them with `decide`, and commits the batch before acting on it — the outbox rule:

  1. append the batch to the history ConfigMaps (the write-ahead log): the commit point,
  2. write `.status` (the snapshot, with large outputs offloaded) when it is due (below),
  3. perform the commands, each idempotent (keyed Jobs, idempotency keys, deterministic names).

The status is a projection of the history, not part of the commit: it is written at once when
something a user watches changes (`_watched`: the phase, a step that starts to wait, fails or
backs off, the run's error, conditions or suspension, a spec change to acknowledge with
`observedGeneration`), and otherwise at most once per `status_interval` seconds per run (a
write falls due while the loop waits, too), so a chain of quick steps costs one write per step
(the history append) instead of two. A crash leaves history ahead of status, by one batch or by
several: on start the loop folds that tail again, whatever its length. A crash after 1 leaves
commands committed but maybe not performed: on start the loop performs `pending_commands`
(everything in flight) again, and idempotency makes that harmless. Stops (cancel an attempt,
terminate a child run) are not in flight, so nothing re-issues them: they are performed between
1 and 2, and a resumed run stops what it owns that its state has moved past
(baton.handlers.stale).

Acknowledgements (ActivityStarted) and heartbeats alone do not cause a write: they are folded at
once and committed with the next batch that matters, since losing one to a crash only means the
activity is re-issued, which is idempotent anyway. That keeps API writes at one per step. The
exception is a heartbeat timeout: a restart resumes from the committed state, whose last
heartbeat must not be so old that the timeout fires before the re-issued attempt can beat
again. So heartbeats are committed once the committed due time is less than half as far away
as the live one: about one write per half heartbeat timeout, however often the worker beats.

A run that cannot go on ends instead of restarting forever: a history or snapshot that is gone
or does not verify (`HistoryCorruptError`), a batch no ConfigMap can hold, or the same kind of
unexpected error on `MAX_FAULTS` restarts in a row, restarts the loop once more to fold
`RunAborted` — through the engine and the history like any event — which ends the run `Failed`
with an `Aborted` condition and a Warning Event. Errors of the API server's availability
(connection failures, 429, 5xx, 401/403 while RBAC settles) and fencing conflicts are transient:
retried forever, with backoff.

Time comes from `time.time()` here and only here; due times come from `next_wakeup`, and
waiting for them is a `wait_for` on the inbox — asyncio's own timer heap, one for all runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from pydantic import ValidationError

from baton import metrics
from baton.api.conditions import ConditionType, condition_is, set_condition
from baton.api.duration import DurationError, parse_duration
from baton.api.labels import (
    LINEAGE,
    PARENT_UID,
    PHASE,
    ROOT_UID,
    RUN_UID,
    SHARD,
    WORKFLOW,
    label_value,
    run_labels,
    scheduled_time,
)
from baton.api.resources import first_problem
from baton.api.run import (
    MAX_RUN_NAME_LENGTH,
    RunPhase,
    StepPhase,
    WorkflowRunSpec,
    outcome_message,
    run_outcome,
)
from baton.api.workflow import WorkflowSpec
from baton.engine import (
    CancelActivity,
    Command,
    ContinueAsNew,
    Definition,
    DefinitionError,
    FinishRun,
    LookupMemo,
    StartActivity,
    StartChildRun,
    StepKind,
    StoreMemo,
    TerminateChild,
    compile_definition,
    deadlines,
    decide,
    initial_state,
    next_wakeup,
    pending_commands,
    replay,
    status_of,
)
from baton.engine.commands import AcquireLock, ReleaseLock
from baton.engine.errors import error_json
from baton.engine.events import (
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    Event,
    HistoryEntry,
    RedriveRequested,
    ResumeRequested,
    RunAborted,
    RunStarted,
    SignalReceived,
    SuspendRequested,
    TimerFired,
    UpdateRequested,
)
from baton.engine.limits import input_problem
from baton.engine.locks import holder_id
from baton.engine.state import (
    SUMMARY,
    Ending,
    State,
    StepState,
    parse_rfc3339,
    state_from_status,
)
from baton.executors import podpolicy
from baton.executors.base import Adopting, Executor, HoldsOutcomes
from baton.executors.child import ChildExecutor, child_result, finished, owner_reference
from baton.executors.locks import LockExecutor
from baton.executors.successor import SuccessorCreator
from baton.failpoints import failpoint
from baton.handlers import updates
from baton.handlers.resumes import ResumeQueue
from baton.handlers.stale import committed_jobs, stale_stops
from baton.settings import OperatorSettings
from baton.store.history import (
    DEFINITION_IN_CHUNK_BYTES,
    HistoryConflictError,
    HistoryCorruptError,
    HistoryLog,
    HistoryLostError,
    HistoryPosition,
    HistoryTooLargeError,
    chunk_name,
)
from baton.store.journal import Journals
from baton.store.kube import ApiError, Kube, batch_path, path_of
from baton.store.locks import LockRecordError
from baton.store.memo import MemoCache
from baton.store.objects import NameTakenError, post_event, timestamp
from baton.store.ref import RunRef
from baton.store.snapshots import SnapshotLostError, Snapshots, compact_json
from baton.store.startup import ConfigMapIndex, list_runs

log = logging.getLogger("baton.runs")

SHELL_STATUS_KEYS = frozenset(
    {"history", "definition", "observedGeneration", "expiresAt", "updatesSeen"}
)
"""Status fields the shell owns; the rest is the engine's state (but for the refused entries
of `updates`, which the shell answers: `baton.handlers.updates`)."""
SHELL_CONDITIONS = frozenset(
    {ConditionType.SUCCEEDED, ConditionType.COMPLETED, ConditionType.INVALID}
)
"""Condition types the shell derives or sets; the engine's own (SignalHandlerFailed) are state."""


def split_status(status: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run's status as the engine's part (what `state_from_status` reads, and what replaying
    the history gives) and the conditions the shell owns."""
    engine_status = {k: v for k, v in status.items() if k not in SHELL_STATUS_KEYS}
    if accepted := updates.accepted_answers(status):
        engine_status["updates"] = accepted
    else:
        engine_status.pop("updates", None)
    conditions = list(status.get("conditions") or [])
    shell = [c for c in conditions if c.get("type") in SHELL_CONDITIONS]
    engine_status.pop("conditions", None)
    if own := [c for c in conditions if c not in shell]:
        engine_status["conditions"] = own  # absent when empty, as status_of writes it
    return engine_status, shell


_QUIET_EVENTS = (ActivityStarted, ActivityHeartbeat)
_WATCHED_STEP_PHASES = frozenset({StepPhase.WAITING, StepPhase.BACKOFF, StepPhase.FAILED})
"""Step phases a user watches for: a wait beginning, a retry pending, a failure."""
_OFFLOAD_ALL_BYTES = 128
"""Outputs below this stay inline even in an oversized status: a reference is about as long."""
_RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)
MAX_FAULTS = 3
"""Restarts a run loop gets after unexpected errors that are not the API server's
availability; the next one of them ends the run (`RepeatedFault`). One or two may be a race with
another writer; the same fault three times is the run's own."""
_TRANSIENT_STATUSES = frozenset({0, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504})
"""API answers retried forever: unavailability, throttling, RBAC or objects being set up, and
races with other writers. Others (400, 413, 422) say the request itself is refused."""
_TOO_LARGE = ("request is too large", "ResourceExhausted", "larger than max")
"""How the API server words a write over etcd's limits (with status 500)."""
_MESSAGE_LIMIT = 1000


class InvalidRunError(Exception):
    """A run that cannot start; the message becomes its `Invalid` condition."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass
class Shell:
    """What every run loop shares: the API client, executors, settings and the registry."""

    kube: Kube
    settings: OperatorSettings
    executors: Mapping[str, Executor]
    registry: Registry = field(init=False)
    children: ChildExecutor = field(init=False)
    """Starts and terminates child runs (`workflow` steps), as `executors` do activities."""
    successors: SuccessorCreator = field(init=False)
    """Creates the runs continue-as-new continues runs as."""
    locks: LockExecutor = field(init=False)
    """Acquires and releases mutexes and semaphores (`synchronization`)."""
    memo: MemoCache = field(init=False)
    """Looks up and stores memoized steps' outputs (`memoize`)."""
    configmaps: ConfigMapIndex = field(init=False)
    """Run ConfigMaps read in pages while the operator starts (baton.store.startup)."""
    journals: Journals = field(init=False)
    """Each namespace's history journal and its writer (baton.store.journal)."""

    def __post_init__(self) -> None:
        self.registry = Registry(self)
        self.children = ChildExecutor(self.kube, self.settings)
        self.successors = SuccessorCreator(self.kube, self.settings)
        self.locks = LockExecutor(
            self.kube,
            self.settings.created_labels,
            self.registry.deliver,
            namespaces=self.settings.namespaces,
        )
        self.memo = MemoCache(self.kube, self.settings.created_labels)
        self.configmaps = ConfigMapIndex(self.kube)
        self.journals = Journals(
            self.kube,
            self.settings.history_key,
            dict(self.settings.created_labels),
            index=self.configmaps,
            lookup=self._run_fate,
        )

    async def _run_fate(self, namespace: str, name: str) -> tuple[str, bool] | None:
        """The uid of run `name` and whether it finished (the journal's sweep asks)."""
        body = await self.kube.get(path_of("workflowruns", namespace, name))
        if body is None:
            return None
        return str(body["metadata"]["uid"]), finished(body)

    def open_index(self) -> None:
        """Runs about to resume at once (this operator starts, or becomes the active replica)
        read their ConfigMaps from paged listings for a while (baton.store.startup). The
        namespaces watched by name are listed at once (their runs, and their ConfigMaps); with
        all namespaces watched the runs of all at once, the ConfigMaps of each namespace when its
        first run reads (and so with globs, whose runs come in kopf's order)."""
        named = [n for n in self.settings.namespaces if not set(n) & set("*?[!")]
        # Watching every namespace, the runs of all of them are listed in one request.
        self.registry.gather(named if self.settings.namespaces else [None])
        self.configmaps.open(named)


@dataclass(frozen=True)
class Ended:
    """What a run's loop that ended had acted on: enough to tell a late watch event of the run
    (from before the loop's last status write) from a change that needs a new loop."""

    invalid_generation: int | None
    aborted: bool
    finished: bool
    redrive: int
    updates_seen: int

    def covers(self, body: Mapping[str, Any]) -> bool:
        """True when the loop already acted on all that `body` asks for. A body of the run
        may predate the loop's own last status write."""
        if self.invalid_generation is not None:
            return bool(body["metadata"].get("generation") == self.invalid_generation)
        if self.aborted:
            return True
        spec = body.get("spec") or {}
        redrive = int(spec.get("redrive") or 0)
        asked = len(spec.get("updates") or [])
        return self.finished and redrive <= self.redrive and asked <= self.updates_seen


class RunLoop:
    """One run's loop. Created by the Registry; `observe` and `deliver` feed it."""

    def __init__(
        self, shell: Shell, body: Mapping[str, Any], abort: RunAborted | None = None
    ) -> None:
        meta = body["metadata"]
        self.shell = shell
        self.kube = shell.kube
        self.ref = RunRef(
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta["uid"],
            root_uid=(meta.get("labels") or {}).get(ROOT_UID) or meta["uid"],
        )
        self.body: Mapping[str, Any] = body
        self.inbox: asyncio.Queue[Event | None] = asyncio.Queue()
        self.owner = owner_reference(self.ref)
        labels = shell.settings.created_labels
        # A run's first loop here resumes from the start-up listing of its ConfigMaps.
        index = shell.configmaps if shell.configmaps.claim(self.ref.uid) else None
        self.history = HistoryLog(
            self.kube,
            self.ref,
            self.owner,
            chunk_bytes=shell.settings.history_chunk_bytes,
            labels=labels,
            key=shell.settings.history_key,
            index=index,
            journal=shell.journals.of(self.ref.namespace),
        )
        self.snapshots = Snapshots(
            self.kube,
            self.ref,
            self.owner,
            labels,
            key=shell.settings.history_key,
            index=index,
        )
        self.abort = abort
        """Set when the Registry restarts this loop only to end the run (`RunAborted`)."""
        self.ended_aborted = False
        self.progressed = False
        """True once this loop committed a batch of its own: earlier faults were not fatal."""
        self.started_here = False
        """True when this loop folded the run's RunStarted: there is nothing of it to resume."""
        self.position = HistoryPosition()
        self.definition_ref: dict[str, Any] = {}
        self.definition: Definition | None = None
        self.state: State = initial_state()
        self.unsaved: list[HistoryEntry] = []
        self.signals_sent = 0
        self.answers = updates.Answers()
        """The update requests of spec.updates answered (the cursor) and the refusals."""
        self.committed: State = self.state
        """The state as last appended to the history: what a restart would resume from."""
        self.projected: tuple[Any, ...] | None = None
        """`_watched` of the state the status last showed; None before this loop wrote one."""
        self.projected_at = 0.0
        """Monotonic time of this loop's last status write."""
        self.projected_state: State = self.state
        """The state the status last showed (the status is behind while it is not `state`)."""
        self.conditions: list[dict[str, Any]] = []
        """The shell's conditions (SHELL_CONDITIONS) as last written."""
        labels = meta.get("labels") or {}
        self.labelled: dict[str, str | None] = {k: labels.get(k) for k in (WORKFLOW, PHASE)}
        if LINEAGE in labels:
            self.labelled[LINEAGE] = labels[LINEAGE]
        """The run's workflow and phase labels as last seen or written."""
        self.invalid_generation: int | None = None
        self.ttl: float | None = None  # ttlAfterFinished, seconds: the run's, else its Workflow's
        self.arrived: float | None = None  # monotonic time the oldest unfolded event arrived
        self.task: asyncio.Task[None] | None = None
        self.on_ready: Callable[[], None] | None = None
        """Called once when the loop has rebuilt its state after a resume (or ends): the
        Registry's queue of resumes lets the next run go."""

    # -- feeding --------------------------------------------------------------------------

    def observe(self, body: Mapping[str, Any]) -> None:
        """The run object changed (the user may have signalled, cancelled, suspended...)."""
        self.body = body
        self.arrived = self.arrived or time.monotonic()
        self.inbox.put_nowait(None)

    async def deliver(self, event: Event) -> None:
        """An executor or child run reports `event` (stale ones are ignored by the engine)."""
        self.arrived = self.arrived or time.monotonic()
        self.inbox.put_nowait(event)

    async def report(self, event: Event) -> None:
        """Where executors report: routed by run uid to whichever loop drives the run by then,
        so an attempt that outlives this loop (restarted after an error, or fenced off its
        history) reaches the next one instead of a loop that has ended."""
        await self.shell.registry.deliver(self.ref.uid, event)

    def ready(self) -> None:
        """State rebuilt (or the loop ended): tell the Registry, once."""
        on_ready, self.on_ready = self.on_ready, None
        if on_ready is not None:
            on_ready()

    def ended(self) -> Ended:
        """What this loop, having ended, acted on: kept by the Registry after the loop."""
        return Ended(
            invalid_generation=self.invalid_generation,
            aborted=self.ended_aborted,
            finished=self.state.phase.finished,
            redrive=self.state.redrive,
            updates_seen=self.answers.seen,
        )

    # -- the loop -------------------------------------------------------------------------

    async def main(self) -> None:
        """Start or resume the run, then fold events until it finishes."""
        try:
            await self._main()
        except NameTakenError as exc:
            # Tell the user; the Registry restarts the loop after a delay, by when the garbage
            # collector has usually removed the deleted namesake's objects.
            await self._post_event("Warning", "NameTaken", str(exc))
            raise

    async def _main(self) -> None:
        if self.abort is not None:
            await self._end_aborted(self.abort)
            return
        if not await self._load():
            return
        # Its state is rebuilt (the CPU of a resume); what follows waits on the API server
        # (stops, commands, the commit of what the user sent): the next run's turn.
        self.ready()
        assert self.definition is not None
        # Resumed (this loop did not start the run): stops a crash lost, and Jobs and children
        # to adopt. Even a run whose only batch is its start may have them: an acknowledgement
        # is not written on its own, so a child started first can run for hours meanwhile.
        if not self.started_here:
            try:
                await self._perform(await self._stale_stops())
            except ApiError as exc:  # the run goes on; what is left runs to its own end
                log.warning("%s/%s: stale stops: %s", self.ref.namespace, self.ref.name, exc)
            await self._stale_releases()
        await self._perform(pending_commands(self.definition, self.state))
        await self._fold(self._spec_events())  # what the user changed while we were away
        while not self.state.phase.finished:
            await self._fold(await self._next_batch())
        await self._flush()
        if self.projected_state is not self.committed:  # the status of a run that ended is whole
            await self._write_status()

    async def _stale_stops(self) -> list[Command]:
        """Stops a crash may have lost (baton.handlers.stale). Jobs and child runs are listed
        only when the workflow has steps of their kind; the executors adopt them too, so an
        attempt whose Job or child has a name from before names carried the run's uid is
        re-issued and stopped under that name, not created twice (baton.executors.child)."""
        assert self.definition is not None
        kinds = {step.kind for step in self.definition.index.values()}
        namespace, uid = self.ref.namespace, self.ref.uid
        jobs, children = [], []
        if StepKind.JOB in kinds:
            jobs = await self.kube.list(batch_path(namespace), label_selector=f"{RUN_UID}={uid}")
        if StepKind.WORKFLOW in kinds:
            children = await self.kube.list(
                path_of("workflowruns", namespace), label_selector=f"{PARENT_UID}={uid}"
            )
        job_executor = self.shell.executors.get(StepKind.JOB.value)
        if isinstance(job_executor, Adopting):
            job_executor.adopt(self.ref, jobs)
        if isinstance(job_executor, HoldsOutcomes):
            ttl = self.shell.settings.job_ttl_seconds
            await job_executor.expire(namespace, committed_jobs(self.committed, jobs, ttl))
        self.shell.children.adopt(self.ref, children)
        return stale_stops(self.state, uid, jobs, children)

    async def _stale_releases(self) -> None:
        """Releases of locks a crash may have lost: the state dropped a hold (committed) but the
        release was not performed. Only for workflows that have locks."""
        assert self.definition is not None
        definition = self.definition
        if definition.lock is None and all(s.lock is None for s in definition.index.values()):
            return
        held = [holder_id(self.ref.uid, key) for key in self.state.locks]
        # Every namespace a lock of the definition may be kept in: a lost release names none.
        lock_defs = [definition.lock, *(sd.lock for sd in definition.index.values())]
        namespaces = {self.ref.namespace}
        namespaces.update(d.namespace for d in lock_defs if d is not None and d.namespace)
        try:
            await self.shell.locks.forget(namespaces, self.ref.uid, keep=held)
        except ApiError as exc:  # holders are checked when someone waits, which clears them
            log.warning("%s/%s: stale releases: %s", self.ref.namespace, self.ref.name, exc)

    async def _next_batch(self) -> list[Event]:
        assert self.definition is not None
        items: list[Event | None] = []
        while not items:
            wake = next_wakeup(self.definition, self.state)
            timeout = None if wake is None else max(0.0, wake - time.time())
            status_due = self._status_due_in()
            if status_due is not None and (timeout is None or status_due < timeout):
                timeout = status_due
            else:
                status_due = None
            try:
                items = [await asyncio.wait_for(self.inbox.get(), timeout)]
            except TimeoutError:
                if status_due is None:
                    items = [TimerFired(timer_id="wakeup")]
                else:  # nothing happened for a while: bring the status up to the history
                    await self._write_status(self.committed)
        while not self.inbox.empty():
            items.append(self.inbox.get_nowait())
        events: list[Event] = []
        for item in items:
            events.extend(self._spec_events() if item is None else [item])
        return events

    def _spec_events(self) -> list[Event]:
        """Events for what the user changed in the spec since the engine last saw it."""
        spec = self.body.get("spec") or {}
        events: list[Event] = []
        signals = spec.get("signals") or []
        for index in range(self.signals_sent, len(signals)):
            signal = signals[index]
            events.append(SignalReceived(index, signal["name"], signal.get("payload")))
        self.signals_sent = max(self.signals_sent, len(signals))
        events.extend(self.answers.requests(spec))
        if spec.get("cancel") and self.state.ending is not Ending.CANCELLED:
            events.append(CancelRequested())
        if bool(spec.get("suspend")) != self.state.suspended:
            events.append(SuspendRequested() if spec.get("suspend") else ResumeRequested())
        if int(spec.get("redrive") or 0) > self.state.redrive:
            events.append(RedriveRequested(int(spec["redrive"])))
        return events

    async def _fold(self, events: Iterable[Event]) -> None:
        """Decide every event, commit the batch, then act on it."""
        assert self.definition is not None
        now = time.time()
        commands: list[Command] = []
        quiet = True
        before = self.state
        arrived, self.arrived = self.arrived or time.monotonic(), None
        offload = may_fan_out(self.definition)
        for arrived_event in events:
            event: Event | None = arrived_event
            if isinstance(arrived_event, UpdateRequested):
                # Answered already, or refused (None): the run is untouched.
                event = self.answers.answer(self.definition, self.state, arrived_event, now)
            if event is None:
                continue
            # In a worker thread when it may be long: a decision is pure CPU, and one that
            # starts thousands of instantaneous steps (a forEach of `set` steps) would hold
            # every other run's loop for as long; the thread lets the event loop in at each GIL
            # switch. A run that cannot fan out decides inline: the hand-off to a thread costs
            # more CPU (about 50 µs) than its decision.
            if offload:
                decision = await asyncio.to_thread(decide, self.definition, self.state, event, now)
            else:
                decision = decide(self.definition, self.state, event, now)
            if decision.state == self.state and not decision.commands:
                continue  # a duplicate or stale event: nothing to record
            self.state = decision.state
            commands.extend(decision.commands)
            self.unsaved.append(HistoryEntry(at=now, event=event))
            quiet = quiet and isinstance(event, _QUIET_EVENTS) and not decision.commands
        if not self.unsaved or (quiet and not self._timers_at_risk(now)):
            if self.answers.unwritten:
                # A refusal answers at once; it is written after what history it follows.
                await (self._flush(force=True) if self.unsaved else self._write_status())
            return
        batch = self.unsaved
        stops = [c for c in commands if isinstance(c, CancelActivity | TerminateChild)]
        await self._flush(stops)
        self.progressed = True
        # Off the event loop too when long: a batch that ended thousands of instances observes
        # each.
        observe = functools.partial(
            metrics.observe_batch,
            self.definition,
            self.definition_ref.get("workflow"),
            before,
            self.state,
            [entry.event for entry in batch],
            latency=time.monotonic() - arrived,
        )
        if offload:
            await asyncio.to_thread(observe)
        else:
            observe()
        self._post_transitions(before, self.state)
        await self._perform(c for c in commands if c not in stops)
        failpoint("after-perform")

    async def _flush(self, stops: Iterable[Command] = (), *, force: bool = False) -> None:
        """Commit what is folded but not yet written: history first, then status. `stops` are
        performed in between: once the status is written nothing re-derives them, but until then
        a restart resumes the run, which does (baton.handlers.stale)."""
        if not self.unsaved:
            return
        failpoint("before-history-append")
        # Into the run's chunk, with what the journal holds of it, when the run ends or
        # something a user watches changes (a wait begins): the journal holds runs in motion.
        settle = (
            force
            or self.state.phase.finished
            or self.projected is None
            or self._watched(self.state) != self.projected
        )
        self.position = await self.history.append(self.position, self.unsaved, settle=settle)
        failpoint("after-history-append")
        batch, self.unsaved = self.unsaved, []
        self.committed = self.state
        await self._perform(stops)
        await self._outcomes_committed(batch)
        if force or self._status_due():
            await self._write_status()
        # Passed whether or not the status was written now: the window it marks is a batch
        # committed and its commands not performed.
        failpoint("after-status-write")

    async def _outcomes_committed(self, batch: list[HistoryEntry]) -> None:
        """Outcomes now in the history: what held them (a Job's pod) may go."""
        for executor in self.shell.executors.values():
            if isinstance(executor, HoldsOutcomes):
                await executor.outcomes_committed(self.ref, (entry.event for entry in batch))

    def _status_due(self) -> bool:
        """True when the status must be written with this batch: something a user watches
        changed, or the last write is `status_interval` old (or coalescing is off)."""
        interval = self.shell.settings.status_interval
        if interval <= 0 or self.projected is None:
            return True
        if self._watched(self.state) != self.projected:
            return True
        return time.monotonic() - self.projected_at >= interval

    def _status_due_in(self) -> float | None:
        """Seconds until the status, behind the history, falls due; None when it is not."""
        if self.projected_state is self.committed:
            return None
        interval = self.shell.settings.status_interval
        return max(0.0, self.projected_at + interval - time.monotonic())

    def _watched(self, state: State) -> tuple[Any, ...]:
        """What a user watching the run sees change at once (everything else in the status may
        lag by `status_interval`): the phase and how it ends, suspension, the run's error and
        conditions, the spec generation observed, each lock it asked for (held, or whom it
        waits behind), and each step that waits (sleep, signal, lock), backs off or failed. A
        step starting or succeeding is not in it: in a chain of steps that is every batch, and
        the bounded lag is what saves a write per step."""
        return (
            state.phase,
            state.ending,
            state.suspended,
            state.redrive,
            None if state.error is None else (state.error.type, state.error.message),
            tuple((c.get("type"), c.get("status"), c.get("reason")) for c in state.conditions),
            self.body["metadata"].get("generation"),
            # The registry releases a deleted run's locks from what its status shows of them.
            tuple(
                (key, hold.granted_at is not None, tuple(hold.holders))
                for key, hold in state.locks.items()
            ),
            frozenset(
                (path, step.phase)
                for path, step in state.steps.items()
                if step.phase in _WATCHED_STEP_PHASES
            ),
        )

    def _timers_at_risk(self, now: float) -> bool:
        """True when a due time of the committed state is less than half as far from `now` as
        the same due time of the live state (heartbeats pushed it back since the last write)."""
        assert self.definition is not None
        committed = {d.timer_id: d.due for d in deadlines(self.definition, self.committed)}
        now_ms = now * 1000
        for live in deadlines(self.definition, self.state):
            due = committed.get(live.timer_id)
            if due is not None and due < live.due and due - now_ms < (live.due - now_ms) / 2:
                return True
        return False

    async def _write_status(self, state: State | None = None) -> None:
        """Write the status of `state` (default: the live state, committed by the caller)."""
        assert self.definition is not None
        state = self.state if state is None else state
        settings = self.shell.settings
        engine_status = status_of(self.definition, state)
        status = await self.snapshots.offload(engine_status, settings.offload_bytes)
        if len(compact_json(status)) > settings.status_bytes:
            status = await self.snapshots.offload(engine_status, _OFFLOAD_ALL_BYTES)
        status["history"] = self.position.to_json()
        if self.ttl is not None and state.finished_at is not None:
            status["expiresAt"] = timestamp(state.finished_at / 1000 + self.ttl)
        status["definition"] = self.definition_ref
        self.answers.publish(status)
        generation = self.body["metadata"].get("generation")
        status["observedGeneration"] = generation
        # The outcome's transition is dated when the run finished, other changes when written.
        finished_at = state.finished_at
        self.conditions = run_outcome(
            self.conditions,
            state.phase,
            error_json(state.error),
            now=timestamp(time.time() if finished_at is None else finished_at / 1000),
            observed_generation=generation,
            continued_as=status.get("continuedAs"),
        )
        status["conditions"] = [*self.conditions, *(status.get("conditions") or [])]
        await self._label(self.definition_ref.get("workflow"), state.phase)
        await self._patch_status(status)
        self.projected, self.projected_at = self._watched(state), time.monotonic()
        self.projected_state = state

    async def _label(self, workflow: str | None, phase: RunPhase) -> None:
        """Keep the run's workflow and phase labels (`kubectl get -l`) up to date: one metadata
        write when the phase changes, none per step (status writes cannot carry labels). It
        comes before the status write, so a crash between them leaves a run whose status is
        behind, which its loop resumes and rewrites, never a finished run mislabelled."""
        wanted = run_labels(workflow, phase.value)
        if self.state.successor is not None or self.state.continued_from is not None:
            # A lineage's first run is labelled once it continues; the others are created so.
            wanted[LINEAGE] = label_value(self.state.lineage or self.ref.name)
        if wanted == self.labelled:
            return
        path = path_of("workflowruns", self.ref.namespace, self.ref.name)
        try:
            await self.kube.patch(path, {"metadata": {"labels": wanted}})
        except ApiError as exc:
            # Labels are for finding runs, not for running them: the next write tries again.
            log.warning("%s/%s: labels not written: %s", self.ref.namespace, self.ref.name, exc)
            return
        self.labelled = wanted

    async def _patch_status(self, status: Mapping[str, Any]) -> None:
        path = path_of("workflowruns", self.ref.namespace, self.ref.name, subresource="status")
        # `add` replaces the whole status, so fields the engine dropped disappear too.
        await self.kube.patch(
            path, [{"op": "add", "path": "/status", "value": status}], kind="json"
        )

    # -- start and resume -------------------------------------------------------------------

    async def _load(self) -> bool:
        """Resume from status, or start a new run; False when the run cannot start."""
        status = dict(self.body.get("status") or {})
        try:
            if status.get("definition"):
                await self._resume(status)
            else:
                await self._start()
        except InvalidRunError as exc:
            await self._invalid(exc)
            self.invalid_generation = self.body["metadata"].get("generation")
            return False
        return True

    async def _start(self) -> None:
        if len(self.ref.name) > MAX_RUN_NAME_LENGTH:
            raise InvalidRunError(
                "InvalidName",
                f"metadata.name: {len(self.ref.name)} characters, over the "
                f"{MAX_RUN_NAME_LENGTH} a run may have (Baton names its objects after it); "
                "create the run under a shorter name",
            )
        try:
            spec = WorkflowRunSpec.model_validate(self.body.get("spec") or {})
        except ValidationError as exc:
            raise InvalidRunError(
                "InvalidSpec", f"spec.{first_problem(exc, WorkflowRunSpec)}"
            ) from None
        problem = input_problem(spec.input)
        if problem is not None:
            raise InvalidRunError("InvalidInput", f"spec.{problem}")
        workflow_name = spec.workflow_ref.name if spec.workflow_ref is not None else None
        found = await self._find_definition()
        if found is not None:
            # Started before (the status was lost or wiped, or a crash came before its first
            # write): go on with the definition the run started with, never today's Workflow.
            await self._recover(*found, workflow_name)
            return
        generation = 0
        if spec.workflow is not None:
            raw = (self.body.get("spec") or {})["workflow"]
        elif spec.workflow_ref is not None:
            workflow_name = spec.workflow_ref.name
            workflow = await self.kube.get(path_of("workflows", self.ref.namespace, workflow_name))
            if workflow is None:
                raise InvalidRunError(
                    "WorkflowNotFound",
                    f"spec.workflowRef: Workflow {workflow_name!r} not found in namespace "
                    f"{self.ref.namespace!r}; apply it and the run starts",
                )
            raw = workflow.get("spec") or {}
            generation = int(workflow["metadata"].get("generation") or 0)
        else:
            raise InvalidRunError("InvalidSpec", "spec: give workflowRef or an inline workflow")
        self.definition = _compile(raw, "spec.workflow" if workflow_name is None else None)
        _check_pod_policy(
            self.definition, self.shell.settings, "spec.workflow" if workflow_name is None else None
        )
        self.ttl = _ttl_after_finished(self.body, raw)
        problem = self.definition.input_problem(spec.input)
        if problem is not None:
            raise InvalidRunError("InvalidInput", f"spec.{problem}")
        text, seal = self.snapshots.seal_definition(raw, generation)
        if len(text.encode()) <= DEFINITION_IN_CHUNK_BYTES:
            # With the start batch, in the create of the first chunk: one write, and no
            # snapshot without a start or start without a snapshot.
            self.history.carry_definition(text, seal)
            name = chunk_name(self.ref.name, 0)
        else:
            name = await self.snapshots.save_definition(raw, generation)
        self.definition_ref = {"configMap": name, "workflow": workflow_name}
        if workflow_name is not None:
            self.definition_ref["generation"] = generation
        if await self._replay_tail():
            return  # started before a crash (or by another writer) that left no status yet
        await self._fold_started(spec, generation)

    async def _find_definition(self) -> tuple[tuple[dict[str, Any], int], str] | None:
        """The run's definition snapshot and the ConfigMap it is in: its first history chunk,
        or (a run started by an earlier version, or a large definition) its own ConfigMap;
        None when it has neither."""
        first = await self.history.first_chunk()
        name = chunk_name(self.ref.name, 0)
        if first is None and self.definition_ref.get("configMap") == name:
            # The status says the snapshot came with the first batch: both are gone.
            raise HistoryLostError(
                f"history ConfigMap {name!r} is gone: the run's definition snapshot and first "
                "batches of events cannot be read, and the run cannot go on without them"
            )
        snapshot = await self.snapshots.load_definition(name, config_map=first or {})
        if snapshot is None:
            name = self.snapshots.definition_name
            snapshot = await self.snapshots.load_definition(name)
        return None if snapshot is None else (snapshot, name)

    async def _recover(
        self, snapshot: tuple[dict[str, Any], int], name: str, workflow: str | None
    ) -> None:
        """Start from the run's own definition snapshot and its whole history."""
        raw, generation = snapshot
        spec = WorkflowRunSpec.model_validate(self.body.get("spec") or {})
        self.definition = _compile(raw, "spec.workflow" if workflow is None else None)
        self.ttl = _ttl_after_finished(self.body, raw)
        self.definition_ref = {"configMap": name, "workflow": workflow}
        if workflow is not None:
            self.definition_ref["generation"] = generation
        replayed = await self._replay_tail()
        if replayed:
            log.warning(
                "%s/%s had no status: rebuilt from its definition snapshot and %d events",
                self.ref.namespace,
                self.ref.name,
                replayed,
            )
            return
        problem = self.definition.input_problem(spec.input)
        if problem is not None:
            raise InvalidRunError("InvalidInput", f"spec.{problem}")
        await self._fold_started(spec, generation)

    async def _fold_started(self, spec: WorkflowRunSpec, generation: int) -> None:
        self.started_here = True
        started = RunStarted(
            input=spec.input,
            run_name=self.ref.name,
            namespace=self.ref.namespace,
            uid=self.ref.uid,
            generation=generation,
            timeout=parse_duration(spec.timeout) if spec.timeout else None,
            on_cancel=spec.on_cancel.value if spec.on_cancel else None,
            parallelism=spec.parallelism,
            scheduled_time=scheduled_time(self.body),
            continuation=(
                spec.continuation.model_dump(by_alias=True, exclude_none=True)
                if spec.continuation is not None
                else None
            ),
        )
        await self._fold([started, *self._spec_events()])

    async def _resume(self, status: dict[str, Any]) -> None:
        self.definition_ref = dict(status["definition"])
        found = await self._find_definition()
        if found is None:
            name = self.definition_ref.get("configMap") or self.snapshots.definition_name
            raise SnapshotLostError(
                f"definition snapshot ConfigMap {name!r} is gone; the run cannot go on without "
                "the definition it started with"
            )
        raw = found[0][0]
        self.definition = _compile(raw, None)
        self.ttl = _ttl_after_finished(self.body, raw)
        engine_status, self.conditions = split_status(status)
        self.answers = updates.Answers.from_status(status)
        if engine_status.get(SUMMARY):
            # A large run's status lists only part of it (baton.engine.summary): its state is
            # the fold of its whole history.
            self.state = initial_state()
            self.position = HistoryPosition()
        else:
            self.state = state_from_status(await self.snapshots.inline(engine_status))
            self.position = HistoryPosition.from_json(status.get("history"))
        replayed = await self._replay_tail()
        if not replayed:
            # The status just read shows the committed state: nothing is due until a batch
            # commits (the first one writes it: `projected` is unknown). Counted as behind, every
            # run resumed by a restart wrote its status again at once, 10,000 writes queued
            # ahead of the timers due soon after the restart.
            self.projected_state, self.projected_at = self.state, time.monotonic()
        log.info("resumed %s/%s (%d events replayed)", self.ref.namespace, self.ref.name, replayed)

    async def _replay_tail(self) -> int:
        """Fold the events logged after `position` (decided before a crash, or by another
        writer, but not in the snapshot), write the snapshot if there were any; their count."""
        assert self.definition is not None
        tail, self.position = await self.history.read_tail(self.position)
        # A summarized run folds its whole history: off the event loop, as decisions are.
        self.state = await asyncio.to_thread(_folded, self.definition, self.state, tail)
        self.signals_sent = max(self.signals_sent, self.state.signals_received)
        if tail:
            await self._write_status()
        self.committed = self.state
        return len(tail)

    async def _end_aborted(self, event: RunAborted) -> None:
        """End the run Failed, recording `event` in its history: folded by the engine when the
        definition and status can be read, else written beside the status as it is."""
        status = dict(self.body.get("status") or {})
        self.position = await self.history.end(HistoryPosition.from_json(status.get("history")))
        self.definition_ref = dict(status.get("definition") or {})
        snapshot = None
        with contextlib.suppress(HistoryCorruptError):
            found = await self._find_definition()
            snapshot = None if found is None else found[0]
        self.ended_aborted = True
        if snapshot is not None:
            with contextlib.suppress(InvalidRunError):
                self.definition = _compile(snapshot[0], None)
                self.ttl = _ttl_after_finished(self.body, snapshot[0])
        if self.definition is not None:
            engine_status, _ = split_status(status)
            with contextlib.suppress(HistoryCorruptError):
                engine_status = await self.snapshots.inline(engine_status)
            if engine_status.get(SUMMARY):
                with contextlib.suppress(HistoryCorruptError):
                    entries, _ = await self.history.read_tail(HistoryPosition())
                    self.state = await asyncio.to_thread(replay, self.definition, entries)
            elif engine_status:
                self.state = state_from_status(engine_status)
            self.answers = updates.Answers.from_status(status)
            self.signals_sent = self.state.signals_received
            await self._fold([event])
        else:
            # No definition to fold with: the engine's state cannot be computed, so the shell
            # records the event and marks the status itself; nothing can be re-issued anyway.
            at = time.time()
            self.position = await self.history.append(
                self.position, [HistoryEntry(at, event)], settle=True
            )
            condition = {
                "type": "Aborted",
                "status": "True",
                "reason": event.reason,
                "message": event.message,
                "lastTransitionTime": timestamp(at),
            }
            others = [c for c in status.get("conditions") or [] if c.get("type") != "Aborted"]
            status.update(
                phase=RunPhase.FAILED.value,
                finishedAt=status.get("finishedAt") or timestamp(at),
                currentStep="",
                error={"type": event.reason, "message": event.message},
                conditions=[*others, condition],
                history=self.position.to_json(),
            )
            status.pop("nextWakeupAt", None)
            await self._patch_status(status)
        await self._post_event("Warning", event.reason, event.message)
        log.error("run %s/%s aborted: %s", self.ref.namespace, self.ref.name, event.message)

    async def _invalid(self, exc: InvalidRunError) -> None:
        log.warning("run %s/%s is invalid: %s", self.ref.namespace, self.ref.name, exc)
        status = dict(self.body.get("status") or {})
        generation = self.body["metadata"].get("generation")
        status["conditions"] = set_condition(
            status.get("conditions") or [],
            ConditionType.INVALID,
            True,
            exc.reason,
            str(exc),
            now=timestamp(time.time()),
            observed_generation=generation,
        )
        status["observedGeneration"] = generation
        status.setdefault("phase", RunPhase.PENDING.value)
        workflow = ((self.body.get("spec") or {}).get("workflowRef") or {}).get("name")
        await self._label(workflow, RunPhase(status["phase"]))
        await self._patch_status(status)
        await self._post_event("Warning", exc.reason, str(exc))

    # -- commands -------------------------------------------------------------------------

    async def _perform(self, commands: Iterable[Command]) -> None:
        for command in commands:
            try:
                await self._perform_one(command)
            except ApiError as exc:
                # The engine's timeouts still run: a command that cannot be performed now
                # ends as its step's timeout or is performed again when the loop restarts.
                log.error("%s/%s: %s failed: %s", self.ref.namespace, self.ref.name, command, exc)
            failpoint("after-command")

    async def _perform_one(self, command: Command) -> None:
        if isinstance(command, StartActivity):
            executor = self.shell.executors.get(command.kind)
            if executor is None:
                await self.deliver(
                    ActivityFailed(
                        command.key,
                        command.attempt,
                        {"type": "UnsupportedActivity", "message": f"no {command.kind} executor"},
                    )
                )
                return
            await executor.start(self.ref, command, self.report)
        elif isinstance(command, CancelActivity):
            executor = self.shell.executors.get(command.kind)
            if executor is not None:
                await executor.cancel(self.ref, command)
        elif isinstance(command, StartChildRun):
            # Reported to this loop directly, as the child's create is awaited here.
            await self.shell.children.start(self.ref, command, self.deliver)
        elif isinstance(command, TerminateChild):
            await self.shell.children.cancel(self.ref, command)
        elif isinstance(command, ContinueAsNew):
            # Reported to this loop directly, as the create is awaited here.
            await self.shell.successors.create(self.ref, self.body, command, self.deliver)
        elif isinstance(command, AcquireLock):
            await self.shell.locks.acquire(self.ref, command, self.report)
        elif isinstance(command, ReleaseLock):
            await self.shell.locks.release(self.ref, command)
        elif isinstance(command, LookupMemo):
            workflow = self.definition_ref.get("workflow")
            answer = await self.shell.memo.lookup(self.ref, workflow, command, now=time.time())
            await self.deliver(answer)
        elif isinstance(command, StoreMemo):
            workflow = self.definition_ref.get("workflow")
            await self.shell.memo.store(self.ref, workflow, command, now=time.time())
        elif isinstance(command, FinishRun):
            # The phase change already posted its Kubernetes Event; this is for the log.
            log.info("run %s/%s ended %s", self.ref.namespace, self.ref.name, command.phase)

    # -- Kubernetes Events ----------------------------------------------------------------

    def _post_transitions(self, before: State, after: State) -> None:
        if not self.shell.settings.kube_events:
            return
        if before.phase != after.phase:
            phase = after.phase
            if phase in _WARNING_PHASES:
                message = outcome_message(phase, error_json(after.error))
                self._spawn_event("Warning", f"Run{phase.value}", message)
            else:
                self._spawn_event("Normal", f"Run{phase.value}", f"run is {phase.value}")
        for path, step in after.steps.items():
            old = before.steps.peek(path)
            if old is step:
                continue  # not changed by the batch: the states share it (engine.state.Steps)
            if step.phase is StepPhase.BACKOFF:
                if (
                    old is None
                    or old.phase is not StepPhase.BACKOFF
                    or old.attempts != step.attempts
                ):
                    self._spawn_event("Warning", "StepRetrying", _retry_message(path, step))
                continue
            if old is not None and old.phase == step.phase:
                continue
            if step.phase is StepPhase.SUCCEEDED and not self.shell.settings.step_events:
                continue  # opt-in: a write per step for what the status already shows
            if step.phase.value in {"Succeeded", "Failed"}:
                kind = "Normal" if step.phase.value == "Succeeded" else "Warning"
                detail = f" ({step.error.type})" if step.error else ""
                message = f"step {path} {step.phase.value.lower()}{detail}"
                self._spawn_event(kind, f"Step{step.phase.value}", message)

    def _spawn_event(self, kind: str, reason: str, message: str) -> None:
        task = asyncio.get_running_loop().create_task(self._post_event(kind, reason, message))
        self.shell.registry.background.add(task)
        task.add_done_callback(self.shell.registry.background.discard)

    async def _post_event(self, kind: str, reason: str, message: str) -> None:
        involved = {
            "kind": "WorkflowRun",
            "name": self.ref.name,
            "namespace": self.ref.namespace,
            "uid": self.ref.uid,
        }
        await post_event(self.kube, involved, kind, reason, message, now=time.time())


_GATHER_QUIET = 5.0
"""Seconds without a run handed over by kopf after which the runs of the start-up listing that
kopf has not handed over are looked up: one deleted in between is forgotten."""
_ENDED_LIMIT = 10_000
"""Ended loops remembered until their run's final status arrives (`Registry._ended`): bounded,
the oldest forgotten first, since a run deleted unseen would otherwise be held for ever."""


class Registry:
    """Every run loop of this operator, by run uid; restarts loops that crash; deletes finished
    runs when their `status.expiresAt` (ttlAfterFinished) comes.

    Runs that existed before a loop of theirs starts here (an operator's start, a replica
    becoming active, a loop restarted) resume through `resumes`, the most urgent first, a
    bounded number at once (baton.handlers.resumes); new runs start at once."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.loops: dict[str, RunLoop] = {}
        self.latest: dict[str, Mapping[str, Any]] = {}
        self.background: set[asyncio.Task[Any]] = set()
        self._failures: dict[str, int] = {}
        self._faults: dict[str, int] = {}
        """Consecutive restarts after errors that were not transient, by run uid."""
        self._aborts: dict[str, RunAborted] = {}
        """Runs whose next loop only ends them, by uid."""
        self._given_up: dict[str, Any] = {}
        """Runs that could not even be ended, by uid: the generation they had; a spec change
        tries again."""
        self._expiries: dict[str, tuple[str, asyncio.TimerHandle]] = {}
        self.resumes = ResumeQueue(shell.settings.resumes_in_flight)
        self._listings_awaited: set[asyncio.Task[Any]] = set()
        self._unconfirmed: set[str] = set()
        """Runs of the start-up listing (`gather`) that kopf has not handed over yet."""
        self._last_arrival: float | None = None
        """Monotonic time kopf last handed a run over since `gather` began; None before."""
        self._gathering: asyncio.Task[None] | None = None
        self._ended: dict[str, Ended] = {}
        """Loops that ended, by run uid, until a body of the run shows it has nothing more to
        do. kopf may still hand over older events of the run (from before the loop's last
        status write, e.g. its phase label patch): they must not start the run again."""
        self.active = True
        """False while this replica is a standby (baton.handlers.peering): no loop runs."""

    async def pause(self) -> None:
        """Standby: stop every loop (their state is committed) and start none until `resume`."""
        self.active = False
        await self.stop()
        self.shell.journals.reset()  # the active replica writes them now: views go stale

    async def resume(self) -> None:
        """Active: a loop for every known run that needs one. The bodies held went stale while
        kopf's watches were paused too, so each is read again (a run deleted meanwhile is
        forgotten); a loop may start from a stale status anyway: it folds the history after it."""
        self.active = True
        self.shell.open_index()
        for uid, body in list(self.latest.items()):
            meta = body["metadata"]
            fresh: Mapping[str, Any] | None = body
            with contextlib.suppress(ApiError):
                fresh = await self.shell.kube.get(
                    path_of("workflowruns", meta["namespace"], meta["name"])
                )
            if fresh is None or fresh["metadata"]["uid"] != uid:
                self.latest.pop(uid, None)
                continue
            self.latest[uid] = fresh
            self._schedule_expiry(fresh)  # one due while standby was skipped
            if self.active and uid not in self.loops and self._needs_loop(fresh):
                self._start(fresh)

    def gather(self, namespaces: Iterable[str | None]) -> None:
        """Many runs are about to resume (the operator starts, or becomes the active replica):
        list the runs of `namespaces` in pages and queue them all, most urgent first, rather
        than resume them in the order kopf hands them over (by name, a few milliseconds of
        CPU each: at 10,000 runs the last arrives most of a minute after the first)."""
        if self._gathering is not None:
            self._gathering.cancel()
        self._last_arrival = None
        self._gathering = asyncio.get_running_loop().create_task(self._gather(list(namespaces)))

    async def _gather(self, namespaces: list[str | None]) -> None:
        shard = self.shell.settings.shard
        selector = f"{SHARD}={shard}" if shard is not None else f"!{SHARD}"
        for namespace in namespaces:
            for body in await list_runs(self.shell.kube, namespace, selector):
                uid = body["metadata"]["uid"]
                if uid in self.latest:
                    continue  # kopf handed it over already: that body is at least as new
                self.latest[uid] = body
                self._unconfirmed.add(uid)
                if self.active and uid not in self.loops and self._needs_loop(body):
                    self._start(body)
        if self._unconfirmed:
            asyncio.get_running_loop().call_later(_GATHER_QUIET, self._confirm)

    def _confirm(self) -> None:
        """Once kopf has handed runs over and been quiet a while since, look up the listed runs
        it did not hand over: one deleted between the two listings is forgotten (kopf's watch,
        begun after its own listing, will not tell). kopf hands over nothing before its
        listing is whole, so until its first run it is not quiet but still listing."""
        if not self._unconfirmed:
            return
        last = self._last_arrival
        quiet = 0.0 if last is None else time.monotonic() - last
        if quiet < _GATHER_QUIET:
            asyncio.get_running_loop().call_later(_GATHER_QUIET - quiet, self._confirm)
            return
        unconfirmed, self._unconfirmed = self._unconfirmed, set()
        task = asyncio.get_running_loop().create_task(self._forget_deleted(unconfirmed))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _forget_deleted(self, uids: set[str]) -> None:
        for uid in uids:
            body = self.latest.get(uid)
            if body is None:
                continue
            meta = body["metadata"]
            try:
                now = await self.shell.kube.get(
                    path_of("workflowruns", meta["namespace"], meta["name"])
                )
            except ApiError as exc:  # kept: a loop of a deleted run fails and says so
                log.warning("run %s/%s not looked up: %s", meta["namespace"], meta["name"], exc)
                continue
            if now is not None and now["metadata"]["uid"] == uid:
                continue
            log.info("run %s/%s deleted while listed: forgotten", meta["namespace"], meta["name"])
            self.latest.pop(uid, None)
            self.resumes.discard(uid)
            loop = self.loops.pop(uid, None)
            if loop is not None and loop.task is not None:
                loop.task.cancel()

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A WorkflowRun watch event: route it to its loop, starting one when needed."""
        uid = body["metadata"]["uid"]
        self._last_arrival = time.monotonic()
        if self._unconfirmed:
            self._unconfirmed.discard(uid)
        if event_type == "DELETED":
            if self.active:  # what the journal holds of it goes with its next write
                self.shell.journals.forget(body["metadata"]["namespace"], uid)
            self._cancel_expiry(uid)
            self.latest.pop(uid, None)
            self.resumes.discard(uid)
            self._ended.pop(uid, None)
            loop = self.loops.pop(uid, None)
            if loop is not None and loop.task is not None:
                loop.task.cancel()
            held = (body.get("status") or {}).get("locks")
            if held and self.active:
                # A deleted run never releases: its holds and queued asks go now, in its own
                # namespace and in those keeping its cross-namespace locks.
                namespaces = {body["metadata"]["namespace"]}
                namespaces.update(
                    h["namespace"]
                    for h in held.values()
                    if isinstance(h, dict) and h.get("namespace")
                )
                self._spawn(self.shell.locks.forget(namespaces, uid))
            return
        self.latest[uid] = body
        self._schedule_expiry(body)
        self._route_child_result(body)
        loop = self.loops.get(uid)
        if loop is not None:
            loop.observe(body)
            return
        needed = self._needs_loop(body)
        ended = self._ended.pop(uid, None)
        if needed and ended is not None and ended.covers(body):
            self._ended[uid] = ended  # an event from before the loop's last write: wait on
            return
        if needed:
            self._start(body)
        else:
            self.resumes.discard(uid)

    def retry_waiting_on(self, namespace: str, workflow: str) -> None:
        """A Workflow appeared or changed: runs that found it missing or invalid try again."""
        for uid, body in list(self.latest.items()):
            ref = (body.get("spec") or {}).get("workflowRef") or {}
            if (
                uid not in self.loops
                and body["metadata"]["namespace"] == namespace
                and ref.get("name") == workflow
                and _invalid(body)
            ):
                self._start(body)

    async def deliver(self, uid: str, event: Event) -> None:
        """Deliver `event` to the loop of run `uid`, if it runs here."""
        loop = self.loops.get(uid)
        if loop is not None:
            await loop.deliver(event)

    async def stop(self) -> None:
        """Cancel every loop (operator shutdown); their state is already committed."""
        await self.shell.locks.stop()
        for uid in list(self._expiries):
            self._cancel_expiry(uid)
        tasks = [loop.task for loop in self.loops.values() if loop.task is not None]
        self.resumes.clear()
        self._unconfirmed.clear()
        if self._gathering is not None:
            self._gathering.cancel()
        self._ended.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.loops.clear()

    def _schedule_expiry(self, body: Mapping[str, Any]) -> None:
        uid = body["metadata"]["uid"]
        expires = (body.get("status") or {}).get("expiresAt")
        if not expires or not finished(body):
            self._cancel_expiry(uid)
            return
        held = self._expiries.get(uid)
        if held is not None and held[0] == expires:
            return
        self._cancel_expiry(uid)
        delay = max(0.0, parse_rfc3339(str(expires)) / 1000 - time.time())
        handle = asyncio.get_running_loop().call_later(delay, self._expire, uid, expires)
        self._expiries[uid] = (expires, handle)

    def _cancel_expiry(self, uid: str) -> None:
        held = self._expiries.pop(uid, None)
        if held is not None:
            held[1].cancel()

    def _expire(self, uid: str, expires: str) -> None:
        self._expiries.pop(uid, None)
        body = self.latest.get(uid)
        if (
            not self.active  # the active replica deletes it (resume reschedules)
            or body is None
            or uid in self.loops
            or not finished(body)
            or (body.get("status") or {}).get("expiresAt") != expires
        ):
            return
        task = asyncio.get_running_loop().create_task(self._delete(body))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _delete(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        try:
            # Background propagation: the garbage collector removes what the run owns (history
            # and snapshot ConfigMaps, Jobs, child runs it terminates with it).
            await self.shell.kube.delete(path_of("workflowruns", meta["namespace"], meta["name"]))
        except ApiError as exc:
            log.warning("run %s/%s not deleted: %s", meta["namespace"], meta["name"], exc)
            return
        log.info("run %s/%s deleted: ttlAfterFinished", meta["namespace"], meta["name"])

    def _needs_loop(self, body: Mapping[str, Any]) -> bool:
        status = body.get("status") or {}
        spec = body.get("spec") or {}
        meta = body["metadata"]
        if meta["uid"] in self._given_up:
            if self._given_up[meta["uid"]] == meta.get("generation"):
                return False
            del self._given_up[meta["uid"]]
        if _invalid(body):
            return bool(body["metadata"].get("generation") != status.get("observedGeneration"))
        if not finished(body):
            return True
        # An update sent to a finished run is answered (refused) by a loop started for it.
        redrive = int(spec.get("redrive") or 0) > int(status.get("redrive") or 0)
        return redrive or updates.unanswered(body)

    def _start(self, body: Mapping[str, Any]) -> None:
        """A loop for the run: at once for a new run, through `resumes` for one to resume."""
        if not self.active:
            return
        uid = body["metadata"]["uid"]
        self._ended.pop(uid, None)
        if (body.get("status") or {}).get("definition") and uid not in self._aborts:
            self.resumes.push(uid, body, time.time() * 1000)
            self._next_resumes()
            return
        self.resumes.discard(uid)
        self._launch(body)

    def _launch(self, body: Mapping[str, Any], on_ready: Callable[[], None] | None = None) -> None:
        uid = body["metadata"]["uid"]
        loop = RunLoop(self.shell, body, self._aborts.get(uid))
        loop.on_ready = on_ready
        self.loops[uid] = loop
        loop.task = asyncio.get_running_loop().create_task(self._supervise(loop))

    def _next_resumes(self) -> None:
        """Start the most urgent queued resumes while there is room; none while the start-up
        listings of runs and their ConfigMaps are being read (a resume would wait for the
        ConfigMaps anyway, and every run kopf hands over meanwhile is queued, to be ordered
        with the rest)."""
        reading: list[asyncio.Task[Any]] = list(self.shell.configmaps.reading())
        if self._gathering is not None and not self._gathering.done():
            reading.append(self._gathering)  # the runs listed, the queue orders them all
        if reading:
            for task in reading:
                if task not in self._listings_awaited:
                    self._listings_awaited.add(task)
                    task.add_done_callback(self._listing_read)
            return
        while self.active and self.resumes.has_room():
            uid = self.resumes.pop()
            if uid is None:
                break
            body = self.latest.get(uid)
            if body is None or uid in self.loops or not self._needs_loop(body):
                self.resumes.done()
                continue
            self._launch(body, self._resumed)

    def _listing_read(self, task: asyncio.Task[Any]) -> None:
        self._listings_awaited.discard(task)
        self._next_resumes()

    def _resumed(self) -> None:
        self.resumes.done()
        self._next_resumes()

    async def _supervise(self, loop: RunLoop) -> None:
        uid = loop.ref.uid
        ended = False
        try:
            await loop.main()
            self._failures.pop(uid, None)
            self._faults.pop(uid, None)
            self._aborts.pop(uid, None)
            ended = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            loop.ready()  # the queue does not wait out the restart delay
            await self._restart_after(loop, exc)
        finally:
            loop.ready()
            if self.loops.get(uid) is loop:
                del self.loops[uid]
        body = self.latest.get(uid)
        if body is None or not self._needs_loop(body):
            return
        if ended:
            done = loop.ended()
            if done.covers(body):
                # The latest body predates the loop's last status write; so may events kopf
                # has yet to hand over. Remember what the loop did until that write arrives.
                self._ended[uid] = done
                while len(self._ended) > _ENDED_LIMIT:
                    del self._ended[next(iter(self._ended))]
                return
        self._start(body)

    async def _restart_after(self, loop: RunLoop, exc: Exception) -> None:
        """Decide what follows a loop's error: a plain restart after a delay, a restart that
        ends the run (`RunAborted`), or — when even ending it failed — giving the run up."""
        uid = loop.ref.uid
        where = f"run {loop.ref.namespace}/{loop.ref.name}"
        failures = self._failures.get(uid, 0)
        self._failures[uid] = failures + 1
        delay = _RESTART_DELAYS[min(failures, len(_RESTART_DELAYS) - 1)]
        if _transient(exc):
            if isinstance(exc, HistoryConflictError):
                # Another loop appended to this run's history (a replica handing its runs over
                # has not stopped yet): this one's view is stale; reload what is committed.
                log.warning("%s: %s; reloading in %ss", where, exc, delay)
            else:
                log.warning("%s: %s; restarting in %ss", where, _describe(exc), delay)
            await asyncio.sleep(delay)
            return
        if loop.abort is not None:
            # Ending the run failed for a reason no retry will change: stop trying until the
            # user changes the run's spec, and say so where they look.
            log.exception("%s could not be ended; giving it up", where)
            self._aborts.pop(uid, None)
            self._given_up[uid] = loop.body["metadata"].get("generation")
            message = f"the run could not be ended after {loop.abort.reason}: {_describe(exc)}"
            with contextlib.suppress(Exception):
                await loop._post_event("Warning", "AbortFailed", message[:_MESSAGE_LIMIT])
            return
        abort: RunAborted | None = None
        if isinstance(exc, HistoryCorruptError):
            abort = RunAborted(exc.reason, str(exc)[:_MESSAGE_LIMIT])
        elif isinstance(exc, HistoryTooLargeError):
            abort = RunAborted("HistoryTooLarge", str(exc)[:_MESSAGE_LIMIT])
        else:
            faults = (0 if loop.progressed else self._faults.get(uid, 0)) + 1
            self._faults[uid] = faults
            log.exception(
                "%s failed (%d of %d); restarting in %ss", where, faults, MAX_FAULTS, delay
            )
            if faults >= MAX_FAULTS:
                message = (
                    f"the operator failed {faults} times in a row driving this run: "
                    f"{_describe(exc)}"
                )
                abort = RunAborted("RepeatedFault", message[:_MESSAGE_LIMIT])
        if abort is not None:
            log.error("%s cannot go on: %s", where, abort.message)
            self._aborts[uid] = abort
            self._faults.pop(uid, None)
            return  # restarted at once, to end the run
        await asyncio.sleep(delay)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(self._logged(work))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except (ApiError, OSError, LockRecordError) as exc:
            log.warning("releasing the locks of a deleted run: %s", exc)

    def _route_child_result(self, body: Mapping[str, Any]) -> None:
        parent = (body["metadata"].get("labels") or {}).get(PARENT_UID)
        if parent is None or parent not in self.loops or not finished(body):
            return
        task = asyncio.get_running_loop().create_task(self._deliver_child(parent, body))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _deliver_child(self, parent: str, body: Mapping[str, Any]) -> None:
        result = await child_result(self.shell.kube, body)
        if result is not None:
            await self.deliver(parent, result)


def _transient(exc: Exception) -> bool:
    """True for errors that say nothing about the run itself: the API server unavailable or
    throttling, a fencing conflict, a name still held by a deleted namesake."""
    if isinstance(exc, HistoryConflictError | NameTakenError):
        return True
    if isinstance(exc, ApiError):
        if any(marker in exc.message for marker in _TOO_LARGE):
            return False  # etcd's size limit comes back as a 500, and always will
        return exc.status in _TRANSIENT_STATUSES or exc.status >= 500
    return isinstance(exc, OSError | TimeoutError | aiohttp.ClientError)


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


_WARNING_PHASES = frozenset(
    {RunPhase.FAILED, RunPhase.COMPENSATED, RunPhase.COMPENSATION_FAILED, RunPhase.TIMED_OUT}
)
"""Final phases whose Event is a Warning: the run did not do what it was for. (A cancelled run
did what its user asked.)"""


def _retry_message(path: str, step: StepState) -> str:
    """`step pay attempt 1 failed (HttpError: 502 Bad Gateway); attempt 2 at <time>`."""
    error = step.error
    detail = error.type if error is not None else "Error"
    if error is not None and error.message:
        detail += f": {error.message}"
    when = "" if step.next_attempt_at is None else f" at {timestamp(step.next_attempt_at / 1000)}"
    return (
        f"step {path} attempt {step.attempts} failed ({detail[:512]}); "
        f"attempt {step.attempts + 1}{when}"
    )


def _invalid(body: Mapping[str, Any]) -> bool:
    return condition_is((body.get("status") or {}).get("conditions") or [], ConditionType.INVALID)


def _ttl_after_finished(body: Mapping[str, Any], workflow: Mapping[str, Any]) -> float | None:
    """The run's `ttlAfterFinished` in seconds, else its definition's; None keeps it."""
    for where, owner in (("spec.", body.get("spec") or {}), ("workflow: ", workflow)):
        ttl = owner.get("ttlAfterFinished")
        if ttl:
            try:
                return parse_duration(str(ttl))
            except DurationError as exc:
                raise InvalidRunError("InvalidSpec", f"{where}ttlAfterFinished: {exc}") from None
    return None


def _check_pod_policy(
    definition: Definition, settings: OperatorSettings, field: str | None
) -> None:
    """Refuse to start a run whose Job steps ask, in values written out, for a ServiceAccount
    or pod annotation the operator does not allow: before any step has had an effect."""
    for step, path, violation in podpolicy.definition_violations(definition, settings):
        where = f"{field}: step {step!r}" if field else f"workflow: step {step!r}"
        raise InvalidRunError(
            podpolicy.POLICY_DENIED, f"{where}, field {path!r}: {violation.message}"
        )


def may_fan_out(definition: Definition) -> bool:
    """Whether one decision of a run of `definition` may start or end an unbounded number of
    step instances: the definition has a forEach (a step at a depth; update handlers' steps are
    at one too, which errs on the safe side). Otherwise the instances a decision touches are
    bounded by the definition's steps."""
    return any(definition.depth.values())


def _folded(definition: Definition, state: State, entries: Iterable[HistoryEntry]) -> State:
    """`state` with the history `entries` decided in order."""
    for entry in entries:
        state = decide(definition, state, entry.event, entry.at).state
    return state


DEFINITIONS_CACHED = 256
"""Compiled definitions kept, by their snapshot's text: runs of one Workflow share one."""


@functools.lru_cache(maxsize=DEFINITIONS_CACHED)
def _compiled(text: str) -> Definition:
    """The definition of a workflow spec given as its canonical JSON text. A Definition is
    frozen, so the runs of one Workflow (thousands, resumed at once after a restart) share one
    instead of each validating, compiling and holding its own copy."""
    return compile_definition(WorkflowSpec.model_validate(json.loads(text)))


def _compile(raw: Mapping[str, Any], field: str | None) -> Definition:
    try:
        return _compiled(compact_json(raw))
    except ValidationError as exc:
        prefix = f"{field}." if field else "workflow: "
        raise InvalidRunError(
            "InvalidWorkflow", prefix + first_problem(exc, WorkflowSpec)
        ) from None
    except DefinitionError as exc:
        raise InvalidRunError("InvalidWorkflow", f"workflow: {exc}") from None
