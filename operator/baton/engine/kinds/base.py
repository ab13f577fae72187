"""What a step kind is to the engine: the `Kind` interface every module in `kinds/` implements,
and the due times (`Deadline`, `TimerPurpose`) kinds and the core share.

The core machine (`baton.engine.machine`) knows nothing of any one kind: it resets a step for a
new execution and calls `start`; drives a running step with `advance`; asks `running_deadlines`
and `wake_purpose` for its due times and `expire` when one passes; turns `command` into the
shell's commands; hands activity and child results to `result`; and calls `redrive` on a failed
step. The defaults here are those of a step that does nothing over time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from baton.api.run import StepPhase
from baton.engine.commands import Command
from baton.engine.definition import StepDef, StepKind, Timeouts
from baton.engine.events import ActivityCompleted, ActivityFailed, ChildFinished
from baton.engine.scope import Scope
from baton.engine.state import Millis, State, StepState

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class TimerPurpose(StrEnum):
    """Why a due time exists; the last part of its timer id (`pay#2/retry`)."""

    RUN = "run"
    START_TO_CLOSE = "startToClose"
    HEARTBEAT = "heartbeat"
    SCHEDULE_TO_CLOSE = "scheduleToClose"
    RETRY = "retry"
    SLEEP = "sleep"
    SIGNAL_TIMEOUT = "signalTimeout"
    REPEAT = "repeat"

    @property
    def is_attempt_timeout(self) -> bool:
        """True for the timeouts that fail an attempt of an activity or child run."""
        return self in _ATTEMPT_TIMEOUTS


_ATTEMPT_TIMEOUTS = frozenset(
    {TimerPurpose.START_TO_CLOSE, TimerPurpose.HEARTBEAT, TimerPurpose.SCHEDULE_TO_CLOSE}
)


@dataclass(frozen=True)
class Deadline:
    """A due time derived from the state: a timer the shell should have armed."""

    due: Millis
    timer_id: str
    target: str
    purpose: TimerPurpose


Result = ActivityCompleted | ActivityFailed | ChildFinished


class Kind:
    """The behaviour of one step kind. One instance per kind, in `baton.engine.kinds.KINDS`."""

    attempts: ClassVar[bool] = False
    """Performed by the shell in numbered attempts (activities, child runs): acknowledged,
    heartbeating, retried, with a command while running."""
    waits_while_running: ClassVar[bool] = False
    """A running instance only waits on something outside (a child run), so a failing sibling
    cancels it at once instead of letting it finish."""
    drives: ClassVar[bool] = False
    """`advance` does something: the kind nests steps (a running instance of another kind
    only waits for its result, a due time or a catch clause's steps, which the core drives)."""
    wake_purpose: ClassVar[TimerPurpose | None] = None
    """What `StepState.wake_at` means while the step is WAITING, if the kind sets it."""

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        """Begin one execution of the step (the core has reset it for a new execution)."""
        raise NotImplementedError

    def advance(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState, *, halt: bool
    ) -> None:
        """Drive a RUNNING step one pass; `halt` says nothing new may start in it."""

    def cancel_nested(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> None:
        """Cancel what is in flight inside an active instance being cancelled (`Machine.
        cancel_subtree`); only composites nest steps."""

    def nested_active(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> bool:
        """True while a nested step is still in flight (after `cancel_nested`: running its
        `finally`)."""
        return False

    def redrive(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        """Make a failed step go again: by default from the start, with a fresh retry budget;
        attempt numbers go on, so no idempotency key repeats."""
        step.phase = StepPhase.PENDING
        step.attempt_base = step.attempt
        step.failures = None
        step.iterations = 0
        step.items = None

    def running_deadlines(
        self, key: str, tag: str, step: StepState, timeouts: Timeouts, kind: StepKind
    ) -> Iterator[Deadline]:
        """Due times of a RUNNING instance."""
        return iter(())

    def expire(
        self,
        m: Machine,
        sd: StepDef,
        scope: Scope,
        path: str,
        step: StepState,
        *,
        purpose: TimerPurpose,
    ) -> None:
        """A due time of this kind (one `running_deadlines` or `wake_purpose` gave, or a
        retry) passed."""
        raise AssertionError(f"{sd.kind} has no {purpose} due time")

    def command(self, state: State, sd: StepDef, path: str, step: StepState) -> Command | None:
        """The command that keeps a RUNNING attempt in flight, if the kind has attempts."""
        return None

    def result(self, m: Machine, sd: StepDef, path: str, step: StepState, event: Result) -> None:
        """The current attempt's result arrived; ignored by kinds it is not for."""
