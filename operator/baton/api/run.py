"""WorkflowRun: one execution of a workflow, its spec (what users write) and status.

The status is the serialised engine state (see `baton.engine.state`): the engine reads it back
on every transition, so it is both what `kubectl get` shows and the run's durable memory.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from baton.api.duration import Duration
from baton.api.workflow import JSON, Model, OnCancel, WorkflowSpec


class WorkflowRef(Model):
    """The Workflow a run follows, in the run's own namespace."""

    name: str = Field(min_length=1, description="Workflow name.")


class Signal(Model):
    """A message sent to a running workflow by appending to `spec.signals`."""

    name: str = Field(
        min_length=1, description="Signal name, matched by waitForSignal and signalHandlers."
    )
    payload: JSON = Field(None, description="Any JSON value delivered with the signal.")


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
        description="Append-only list of signals; each is delivered once, in order. "
        "Append with `kubectl patch --type json` and the path `/spec/signals/-`.",
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


class Condition(Model):
    """A Kubernetes-style condition."""

    type: str = Field(description="Condition type, for example Ready or Invalid.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field("", description="CamelCase reason.")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str | None = Field(
        None, alias="lastTransitionTime", description="RFC 3339 time of the last change."
    )
