"""Helpers for the engine's tests: compile a workflow from YAML and drive one run by hand."""

from __future__ import annotations

from typing import Any

import yaml

from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import WorkflowSpec
from baton.engine import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    Command,
    Decision,
    Definition,
    Event,
    RunStarted,
    SignalReceived,
    Simulation,
    StartActivity,
    StepState,
    TimerFired,
    compile_definition,
)


def spec(text: str) -> WorkflowSpec:
    """A WorkflowSpec from the YAML of a Workflow's `spec`."""
    return WorkflowSpec.model_validate(yaml.safe_load(text))


def definition(text: str) -> Definition:
    """The compiled definition of a Workflow `spec` written in YAML."""
    return compile_definition(spec(text))


class Run:
    """One run driven event by event; `last` is the latest decision."""

    def __init__(self, text: str, input: Any = None, *, now: float = 1000.0, **started: Any):
        self.definition = definition(text)
        self.sim = Simulation(self.definition, now=now)
        self.last = self.sim.deliver(
            RunStarted(input=input, run_name="run", namespace="ns", uid="uid", **started)
        )

    # -- looking ----------------------------------------------------------------------------

    @property
    def phase(self) -> RunPhase:
        return self.sim.state.phase

    @property
    def now(self) -> float:
        return self.sim.now

    def step(self, path: str) -> StepState:
        return self.sim.state.steps[path]

    def step_phase(self, path: str) -> StepPhase | None:
        step = self.sim.state.steps.get(path)
        return step.phase if step is not None else None

    @property
    def commands(self) -> tuple[Command, ...]:
        return self.last.commands

    def started(self) -> list[str]:
        """Keys of activities the last decision started."""
        return [c.key for c in self.last.commands if isinstance(c, StartActivity)]

    def start_of(self, key: str) -> StartActivity:
        return next(c for c in self.last.commands if isinstance(c, StartActivity) and c.key == key)

    def of_type(self, kind: type[Command]) -> list[Any]:
        return [c for c in self.last.commands if isinstance(c, kind)]

    # -- acting -----------------------------------------------------------------------------

    def deliver(self, event: Event, at: float | None = None) -> Decision:
        self.last = self.sim.deliver(event, at)
        return self.last

    def _attempt(self, key: str) -> int:
        comp = next((c for c in self.sim.state.compensations if c.key == key), None)
        return comp.run.attempt if comp is not None else self.step(key).attempt

    def complete(self, key: str, output: Any = None, *, after: float = 0.0) -> Decision:
        event = ActivityCompleted(key=key, attempt=self._attempt(key), output=output)
        return self.deliver(event, self.now + after)

    def fail(
        self,
        key: str,
        error_type: str = "Boom",
        *,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
        after: float = 0.0,
    ) -> Decision:
        error: dict[str, Any] = {"type": error_type, "message": f"{error_type} happened"}
        if details is not None:
            error["details"] = details
        event = ActivityFailed(
            key=key, attempt=self._attempt(key), error=error, retry_after=retry_after
        )
        return self.deliver(event, self.now + after)

    def acknowledge(self, key: str, *, after: float = 0.0) -> Decision:
        """The shell started the attempt (a worker task: it left its pool's queue)."""
        return self.deliver(ActivityStarted(key=key, attempt=self._attempt(key)), self.now + after)

    def heartbeat(self, key: str, *, after: float = 0.0, details: Any = None) -> Decision:
        return self.deliver(
            ActivityHeartbeat(key=key, attempt=self._attempt(key), details=details),
            self.now + after,
        )

    def signal(self, index: int, name: str, payload: Any = None) -> Decision:
        return self.deliver(SignalReceived(index=index, name=name, payload=payload))

    def advance(self, seconds: float) -> Decision:
        return self.deliver(TimerFired(), self.now + seconds)

    def fire(self) -> Decision:
        """Jump to the next due time and deliver the timer."""
        wake = self.sim.wakeup()
        assert wake is not None, "nothing is due"
        return self.deliver(TimerFired(), wake)
