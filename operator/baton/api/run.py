"""WorkflowRun: one execution of a workflow, its spec (what users write) and status.

The status is the serialised engine state (see `baton.engine.state`): the engine reads it back
on every transition, so it is both what `kubectl get` shows and the run's durable memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from baton.api.conditions import (
    CONDITIONS_LIST_MAP,
    Condition,
    ConditionStatus,
    ConditionType,
    set_condition,
)
from baton.api.duration import Duration
from baton.api.locks import LockStatus
from baton.api.names import ObjectName
from baton.api.workflow import (
    DEFAULT_PARALLELISM,
    JSON,
    MAX_PARALLELISM,
    Model,
    OnCancel,
    WorkflowSpec,
)

MAX_RUN_NAME_LENGTH = 200
"""Longest WorkflowRun name. Baton names what a run owns after it, adding up to 21 characters
(`-out-<hash>`; `-definition`, `-history-<n>`), and Kubernetes names end at 253; the CRD refuses
longer names, so a run never gets stuck unable to create its own objects."""


class WorkflowRef(Model):
    """The Workflow a run follows, in the run's own namespace."""

    name: ObjectName = Field(description="Workflow name (in the run's own namespace).")


class Signal(Model):
    """A message sent to a running workflow by appending to `spec.signals`."""

    name: str = Field(
        min_length=1, description="Signal name, matched by waitForSignal and signalHandlers."
    )
    payload: JSON = Field(None, description="Any JSON value delivered with the signal.")


MAX_UPDATE_REQUESTS = 1000
"""Entries `spec.updates` may hold, as many as `spec.signals`."""
UPDATE_ID_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_-]{0,62})$"
"""An update's id: a key of `status.updates` and of `kubectl get -o jsonpath` paths, and part
of the paths of its handler's step instances (`@<id>.<step>`), hence no dots."""


class UpdateRequest(Model):
    """A request to a running workflow's update handler, appended to `spec.updates`."""

    id: str = Field(
        pattern=UPDATE_ID_PATTERN,
        description="Unique among the run's updates; the result appears at status.updates.<id>.",
    )
    name: str = Field(min_length=1, max_length=253, description="The update handler's name.")
    payload: JSON = Field(None, description="Any JSON value; `update.payload` in the handler.")


MAX_CONTINUATION = 1_000_000_000
"""Highest generation number of a lineage (continue-as-new): bounds what a hand-written
`spec.continuation.number` can make the successor's name and label carry."""


class Continuation(Model):
    """Written by the operator on a run that another run continued as (continue-as-new): where
    it comes from and the state carried over. A run created by hand with it starts as that
    successor would: it can only carry what the run's own input could."""

    from_: ObjectName = Field(alias="from", description="The run this one continues.")
    lineage: ObjectName = Field(description="The first run of the lineage.")
    number: int = Field(
        ge=1, le=MAX_CONTINUATION, description="Runs before this one in the lineage."
    )
    vars: dict[str, JSON] | None = Field(None, description="`vars` carried over.")
    iterations: dict[str, Annotated[int, Field(ge=0)]] | None = Field(
        None, description="Repeat iterations carried over, by step."
    )


class WorkflowRunSpec(Model):
    """What to run and how the user steers it."""

    workflow_ref: WorkflowRef | None = Field(
        None, alias="workflowRef", description="The Workflow to run (or give `workflow` inline)."
    )
    workflow: WorkflowSpec | None = Field(
        None, description="An inline definition, instead of `workflowRef`."
    )
    input: JSON = Field(None, description="The run's input, `input` in expressions.")
    signals: list[Signal] | None = Field(
        None,
        max_length=1000,
        # Published as the CRD's default, so every run has the list and the JSON patch
        # `add /spec/signals/-` appends even the first signal.
        json_schema_extra={"default": []},
        description="Append-only list of signals; each is delivered once, in order. "
        "Append with `kubectl patch --type json` and the path `/spec/signals/-` "
        "(at most 1000 per run; the list is empty, not absent, on a run created without it).",
    )
    updates: list[UpdateRequest] | None = Field(
        None,
        max_length=MAX_UPDATE_REQUESTS,
        json_schema_extra={
            "default": [],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["id"],
        },
        description="Append-only list of update requests, each answered once in "
        "status.updates.<id> (accepted with its output, or refused with the reason). Append "
        f"with the path `/spec/updates/-` or `baton update` (at most {MAX_UPDATE_REQUESTS}).",
    )
    cancel: bool = Field(False, description="Set true to cancel the run.")
    on_cancel: OnCancel | None = Field(
        None, alias="onCancel", description="Overrides the Workflow's `onCancel`."
    )
    suspend: bool = Field(False, description="While true no new step starts.")
    redrive: int = Field(
        0, ge=0, description="Bump to restart a Failed run from the steps that failed."
    )
    timeout: Duration | None = Field(None, description="Overrides the Workflow's run timeout.")
    parallelism: int | None = Field(
        None,
        ge=1,
        le=MAX_PARALLELISM,
        description="Overrides the Workflow's `parallelism`: activities and child runs this run "
        f"may have in flight at once (default {DEFAULT_PARALLELISM}).",
    )
    ttl_after_finished: Duration | None = Field(
        None,
        alias="ttlAfterFinished",
        description="Delete the run this long after it finished (its history, Jobs and owned "
        "child runs go with it). Overrides the Workflow's `ttlAfterFinished`.",
    )
    continuation: Continuation | None = Field(
        None, description="Set by the operator on a run started by continue-as-new."
    )


class RunPhase(StrEnum):
    """Where a run is in its life."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    COMPENSATING = "Compensating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    COMPENSATED = "Compensated"
    COMPENSATION_FAILED = "CompensationFailed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"
    CONTINUED_AS_NEW = "ContinuedAsNew"
    """Ended by a `continueAsNew` step: its successor (`status.continuedAs`) goes on."""

    @property
    def finished(self) -> bool:
        """True for phases a run never leaves (except by redrive)."""
        return self in _FINISHED


_FINISHED = frozenset(
    {
        RunPhase.SUCCEEDED,
        RunPhase.FAILED,
        RunPhase.COMPENSATED,
        RunPhase.COMPENSATION_FAILED,
        RunPhase.CANCELLED,
        RunPhase.TIMED_OUT,
        RunPhase.CONTINUED_AS_NEW,
    }
)


class StepPhase(StrEnum):
    """Where one step is."""

    PENDING = "Pending"
    RUNNING = "Running"
    BACKOFF = "Backoff"
    WAITING = "Waiting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELLED = "Cancelled"


class ErrorInfo(Model):
    """A typed error, as activities report them and `catch`/`nonRetryableErrors` match them."""

    type: str = Field(description="Error type, for example HttpError, Timeout, JobFailed.")
    message: str = Field("", description="Human-readable detail.")
    step: str | None = Field(None, description="Step the error came from.")
    details: dict[str, Any] | None = Field(
        None, description="Structured detail (HTTP status, exit code, ...)."
    )


# -- status -----------------------------------------------------------------------------------
# The status is written by the engine (`baton.engine.state.state_to_status`) and read back by it
# on every transition; these models describe that JSON exactly, for the CRD schema and for
# `kubectl explain`. Fields marked "Internal" are the engine's bookkeeping.


class ItemCounts(Model):
    """Progress of a forEach step's items."""

    total: int = Field(description="Items the `items` expression gave.")
    succeeded: int = Field(description="Items that succeeded or were skipped.")
    failed: int = Field(description="Items that failed or were cancelled.")
    running: int = Field(description="Items in flight (running, backing off or waiting).")


class StepStatus(Model):
    """One step instance. forEach items appear as `<forEach>[<index>].<step>`."""

    phase: StepPhase = Field(description="Where the step is.")
    attempts: int = Field(0, description="Attempts started so far (retries and redrives count).")
    started_at: str | None = Field(
        None, alias="startedAt", description="RFC 3339 time the step started."
    )
    finished_at: str | None = Field(
        None, alias="finishedAt", description="RFC 3339 time the step finished."
    )
    next_attempt_at: str | None = Field(
        None,
        alias="nextAttemptAt",
        description="RFC 3339 time of the next attempt (backoff) or repeat iteration.",
    )
    wake_at: str | None = Field(
        None, alias="wakeAt", description="RFC 3339 end of a sleep or of a signal wait's timeout."
    )
    iterations: int = Field(0, description="Repeat iterations completed.")
    output: JSON = Field(None, description="The step's output (the latest, while repeating).")
    error: ErrorInfo | None = Field(None, description="The last error of the step.")
    item_counts: ItemCounts | None = Field(
        None, alias="itemCounts", description="forEach steps: progress of the items."
    )
    attempt_base: int = Field(
        0, alias="attemptBase", description="Internal: attempts before the current retry budget."
    )
    scheduled_at: str | None = Field(
        None,
        alias="scheduledAt",
        description="Internal: start of the current execution (scheduleToClose origin).",
    )
    attempt_started_at: str | None = Field(
        None, alias="attemptStartedAt", description="Internal: start of the current attempt."
    )
    heartbeat_at: str | None = Field(
        None, alias="heartbeatAt", description="Internal: last heartbeat of the current attempt."
    )
    heartbeat_details: JSON = Field(
        None,
        alias="heartbeatDetails",
        description="The details of the last heartbeat with details of any attempt (at most "
        "1 KiB of JSON), handed to the next attempt of a worker step.",
    )
    acknowledged: bool = Field(
        False, description="Internal: the shell confirmed it started the current attempt."
    )
    request: JSON = Field(
        None, description="Internal: the rendered action (or child input) of the current attempt."
    )
    items: list[JSON] | None = Field(None, description="forEach steps: the items, in order.")
    recovering: int | None = Field(
        None, description="Internal: index of the catch clause whose steps are running."
    )
    signal: int | None = Field(
        None, description="waitForSignal steps: index in spec.signals of the signal taken."
    )
    times: dict[str, float] | None = Field(
        None,
        description="Computed times of the current execution, by field (seconds; sleep.until: "
        "ms since the epoch).",
    )
    failures: list[int] | None = Field(
        None,
        description="Internal: attempts that failed per retry rule in the current budget "
        "(steps with several rules).",
    )
    outcome: StepPhase | None = Field(
        None,
        description="Steps with `finally`: the phase the step ended in; set while its finally "
        "steps run (the step shows Running), kept once they ran.",
    )
    memo_key: str | None = Field(
        None,
        alias="memoKey",
        description="Memoized steps: the cache key of the current execution.",
    )
    cached: bool | None = Field(
        None,
        description="Memoized steps: true when the output came from the cache, false when the "
        "step ran; absent while the cache is being read.",
    )


class CompensationStatus(StepStatus):
    """One compensation of the saga, in the order they run (reverse completion order)."""

    step: str = Field(description="The compensated step instance.")
    key: str = Field(description="Activity key of the compensation, as in events and commands.")
    step_output: JSON = Field(
        None,
        alias="stepOutput",
        description="Internal: the step's output when it completed (`steps.<name>.output`).",
    )


class RunIdentity(Model):
    """The run as expressions see it (`run.name`, `run.namespace`, `run.uid`)."""

    name: str = Field("", description="Run name.")
    namespace: str = Field("", description="Run namespace.")
    uid: str = Field("", description="Run uid; part of every idempotency key.")
    lineage: str | None = Field(
        None, description="First run of its continue-as-new lineage (`run.lineage`)."
    )
    continuation: int = Field(
        0, description="Runs before this one in its lineage (`run.continuation`)."
    )


class SignalRecordStatus(Model):
    """A signal kept by the engine until a step takes it, or until its turn comes."""

    index: int = Field(description="Index in spec.signals.")
    name: str = Field(description="Signal name.")
    payload: JSON = Field(None, description="Signal payload.")


class UpdateResultStatus(Model):
    """The answer to one update request (`status.updates.<id>`)."""

    name: str = Field(description="The update handler's name.")
    outcome: Literal["Running", "Completed", "Failed", "Refused"] = Field(
        description="Running (accepted, its handler's steps run), Completed (`output` is the "
        "result), Failed (accepted, its handler failed: `error`) or Refused (`reason`; the run "
        "is untouched)."
    )
    output: JSON = Field(None, description="The handler's result.")
    error: ErrorInfo | None = Field(None, description="Why an accepted update failed.")
    reason: str | None = Field(None, description="Why the update was refused.")
    payload: JSON = Field(None, description="Internal: the request's payload, while it runs.")
    at: str | None = Field(None, description="RFC 3339 time it was answered.")


class CompletionStatus(Model):
    """A completed step with a compensation, in completion order."""

    step: str = Field(description="Step instance.")
    output: JSON = Field(None, description="Its output when it completed.")


class HistoryRef(Model):
    """Where the history ends: ConfigMaps `<run>-history-0` to `<run>-history-<chunk>`."""

    chunk: int = Field(0, description="Number of the open history ConfigMap.")
    chunk_bytes: int = Field(0, alias="chunkBytes", description="Bytes in the open chunk.")
    batches: int = Field(0, description="Batches of events written.")
    events: int = Field(0, description="Events written; `baton history RUN` shows them.")


class DefinitionRef(Model):
    """The definition snapshot the run follows, whatever later happens to its Workflow."""

    config_map: str = Field(alias="configMap", description="ConfigMap holding the snapshot.")
    workflow: str | None = Field(None, description="Workflow it was taken from (None: inline).")
    generation: int | None = Field(None, description="That Workflow's metadata.generation.")


class WorkflowRunStatus(Model):
    """The observed state of a run: what `kubectl get` shows and the engine's durable memory."""

    phase: RunPhase = Field(RunPhase.PENDING, description="Where the run is in its life.")
    workflow_generation: int = Field(
        0, alias="workflowGeneration", description="Generation of the Workflow this run follows."
    )
    started_at: str | None = Field(
        None, alias="startedAt", description="RFC 3339 time the run started."
    )
    finished_at: str | None = Field(
        None, alias="finishedAt", description="RFC 3339 time the run finished."
    )
    duration: str | None = Field(
        None, description="How long the run took, startedAt to finishedAt (`1m30s`), once ended."
    )
    current_step: str = Field(
        "", alias="currentStep", description="Steps in flight, comma-separated."
    )
    progress: str = Field("", description="Top-level steps finished / top-level steps.")
    steps: dict[str, StepStatus] = Field(
        default_factory=dict, description="Step instances by name (path for nested forEach items)."
    )
    output: JSON = Field(None, description="The run's output, once it succeeded.")
    error: ErrorInfo | None = Field(
        None, description="Why the run failed, was cancelled or timed out."
    )
    vars: dict[str, JSON] = Field(default_factory=dict, description="Current `vars`.")
    queries: dict[str, JSON] = Field(
        default_factory=dict,
        description="Results of the Workflow's queries after the last transition "
        "(`error: ...` when one could not be evaluated).",
    )
    signals: dict[str, JSON] = Field(
        default_factory=dict, description="Latest payload of each signal name received."
    )
    signals_consumed: int = Field(
        0,
        alias="signalsConsumed",
        description="Signals of spec.signals taken so far; the next one expected has this index.",
    )
    updates: dict[str, UpdateResultStatus] = Field(
        default_factory=dict,
        description="Answers to spec.updates by id: those running their steps, and the latest "
        "32 answered and 32 refused.",
    )
    updates_seen: int = Field(
        0,
        alias="updatesSeen",
        description="Internal: entries of spec.updates answered so far, in list order.",
    )
    compensations: list[CompensationStatus] = Field(
        default_factory=list, description="Compensations of the saga, in the order they run."
    )
    redrive: int = Field(0, description="The last spec.redrive the engine saw.")
    next_wakeup_at: str | None = Field(
        None, alias="nextWakeupAt", description="RFC 3339 time the run next has something due."
    )
    locks: dict[str, LockStatus] = Field(
        default_factory=dict,
        description="Mutexes and semaphore slots asked for, by step (`(run)`: the run's own).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra=CONDITIONS_LIST_MAP,
        description="Succeeded (Unknown until the run ends, then True or False) and Completed "
        "(True once it ended, whatever the outcome), for `kubectl wait --for=condition=...`; "
        "Invalid when the run cannot start; conditions of the engine (SignalHandlerFailed, "
        "CleanupFailed).",
    )
    run: RunIdentity | None = Field(None, description="Internal: the run's identity.")
    input: JSON = Field(None, description="Internal: the run's input as it started.")
    deadline: str | None = Field(
        None, description="RFC 3339 time the run times out (spec.timeout)."
    )
    on_cancel: OnCancel | None = Field(
        None, alias="onCancel", description="Internal: the run's onCancel override."
    )
    parallelism: int | None = Field(
        None, description="Internal: the run's parallelism override (spec.parallelism)."
    )
    unclaimed_signals: list[SignalRecordStatus] = Field(
        default_factory=list,
        alias="unclaimedSignals",
        description="Signals waited for by some step that no step has taken yet.",
    )
    early_signals: list[SignalRecordStatus] = Field(
        default_factory=list,
        alias="earlySignals",
        description="Internal: signals delivered before an earlier index; applied in order.",
    )
    completed: list[CompletionStatus] = Field(
        default_factory=list,
        description="Internal: completed steps with a compensation, in completion order.",
    )
    ending: Literal["failed", "cancelled", "timedOut", "continued"] | None = Field(
        None, description="Internal: why the run is ending, while it unwinds."
    )
    suspended: bool = Field(False, description="True while spec.suspend holds the run.")
    exit_outcome: RunPhase | None = Field(
        None,
        alias="exitOutcome",
        description="Runs with `onExit`: the phase the run ends in; set while the onExit steps "
        "run (`run.outcome` in them), kept once they ran.",
    )
    history: HistoryRef | None = Field(None, description="Where the event history is.")
    definition: DefinitionRef | None = Field(
        None, description="The definition snapshot this run follows."
    )
    observed_generation: int | None = Field(
        None, alias="observedGeneration", description="The run's spec generation last seen."
    )
    expires_at: str | None = Field(
        None,
        alias="expiresAt",
        description="RFC 3339 time the operator deletes the finished run (ttlAfterFinished).",
    )
    continued_as: str | None = Field(
        None,
        alias="continuedAs",
        description="The run this one continued as (phase ContinuedAsNew).",
    )
    continued_from: str | None = Field(
        None, alias="continuedFrom", description="The run this one continues (continue-as-new)."
    )
    successor: JSON = Field(None, description="Internal: the run continue-as-new is starting next.")
    carried_iterations: dict[str, int] | None = Field(
        None,
        alias="carriedIterations",
        description="Internal: repeat iterations carried over by continue-as-new.",
    )


def run_outcome(
    conditions: Iterable[Mapping[str, Any]],
    phase: RunPhase,
    error: Mapping[str, Any] | None,
    *,
    now: str,
    observed_generation: int | None = None,
    continued_as: str | None = None,
) -> list[dict[str, Any]]:
    """`conditions` with a run's outcome set from its phase and error, named as the tools
    users come from name theirs:

    - `Succeeded` (Tekton's): Unknown while the run has not ended, True when it Succeeded,
      False when it ended any other way; the reason is the phase (Failed, Compensated,
      TimedOut, ...), the message the error.
    - `Completed` (Argo's): True once the run ended, whatever the outcome; False before.

    A run that ended ContinuedAsNew succeeded: its message names the run it continued as
    (`continued_as`).
    """
    if phase is RunPhase.SUCCEEDED:
        succeeded = ConditionStatus.TRUE
        message = "the run succeeded"
    elif phase is RunPhase.CONTINUED_AS_NEW:
        # It did what it was for and handed on (Temporal's ContinuedAsNew is no failure).
        succeeded = ConditionStatus.TRUE
        message = f"the run continued as {continued_as or 'a new run'}"
    elif phase.finished:
        succeeded = ConditionStatus.FALSE
        message = outcome_message(phase, error)
    else:
        succeeded = ConditionStatus.UNKNOWN
        message = f"the run is {phase.value}"
    updated = set_condition(
        conditions,
        ConditionType.SUCCEEDED,
        succeeded,
        phase.value,
        message,
        now=now,
        observed_generation=observed_generation,
    )
    return set_condition(
        updated,
        ConditionType.COMPLETED,
        phase.finished,
        phase.value,
        message,
        now=now,
        observed_generation=observed_generation,
    )


def outcome_message(phase: RunPhase, error: Mapping[str, Any] | None) -> str:
    """How a run that ended in `phase` ended, with its error: `the run ended Failed: HttpError in
    step pay: 502 Bad Gateway`. The `Succeeded` condition's message and the final Event's."""
    ended = f"the run ended {phase.value}"
    if not error:
        return ended
    kind = error.get("type") or "Error"
    step = f" in step {error['step']}" if error.get("step") else ""
    detail = f": {error['message']}" if error.get("message") else ""
    return f"{ended}: {kind}{step}{detail}"[:1024]
