"""Offline runs of a workflow on a virtual clock, with mocked activities and child runs.

`run_workflow` is what `baton test` prints and what users call from pytest. It drives the real
engine (the same `decide` the operator uses) through `baton.engine.Simulation`, one simulation
per run: child runs whose Workflow is among the given definitions run for real, side by side on
the shared virtual clock; activities answer from the mocks. A seven-day timer costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from baton.api.duration import parse_duration
from baton.api.resources import Workflow, load_yaml_documents
from baton.api.workflow import WorkflowSpec
from baton.engine import (
    Definition,
    FinishRun,
    Simulation,
    StartActivity,
    StartChildRun,
    TerminateChild,
    compile_definition,
    status_of,
)
from baton.engine.commands import Command
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Event,
    RunStarted,
    SignalReceived,
    event_detail,
    event_step,
)
from baton.testing.mocks import MockOutcome, Mocks, OutcomeScript

ROOT_UID = "00000000-0000-4000-8000-000000000000"
MAX_EVENTS = 200_000


class WorkflowTestError(ValueError):
    """The test cannot run: an unknown workflow, a child with no definition, bad input."""


@dataclass(frozen=True)
class StepReport:
    """How one step ended."""

    phase: str
    attempts: int
    output: Any

    def to_json(self) -> dict[str, Any]:
        """`{phase, attempts, output}`."""
        return {"phase": self.phase, "attempts": self.attempts, "output": self.output}


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the run (or of a child run), at virtual seconds since the start."""

    at: float
    type: str
    step: str | None
    run: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """`{type, step, at}`, plus `run` for events of child runs."""
        data: dict[str, Any] = {"type": self.type, "step": self.step, "at": self.at}
        if self.run:
            data["run"] = self.run
        return data


@dataclass(frozen=True)
class TestResult:
    """The outcome of an offline run, in the shape `baton test --json` prints."""

    __test__ = False  # not a pytest test class, despite the name

    phase: str
    output: Any
    error: dict[str, Any] | None
    virtual_duration: float
    steps: dict[str, StepReport]
    compensations: list[str]
    events: list[TimelineEntry]
    queries: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The result as one JSON object."""
        return {
            "phase": self.phase,
            "output": self.output,
            "error": self.error,
            "virtualDuration": self.virtual_duration,
            "steps": {name: step.to_json() for name, step in self.steps.items()},
            "compensations": self.compensations,
            "events": [event.to_json() for event in self.events],
            "queries": self.queries,
            "vars": self.vars,
        }


@dataclass
class _Run:
    """One simulated run: the root or a child, and who waits for it."""

    name: str
    simulation: Simulation
    parent: _Run | None = None
    parent_key: str = ""
    parent_attempt: int = 0
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the run issued FinishRun."""
        return self.finished_at is not None


class _World:
    """All runs of one test on one virtual clock, answering each other's commands."""

    def __init__(self, definitions: Mapping[str, Definition], mocks: Mocks) -> None:
        self.definitions = definitions
        self.script = OutcomeScript(mocks)
        self.runs: list[_Run] = []

    def start(
        self,
        name: str,
        workflow: str,
        run_input: Any,
        at: float,
        *,
        parent: _Run | None = None,
        parent_key: str = "",
        parent_attempt: int = 0,
    ) -> _Run:
        definition = self.definitions[workflow]
        run = _Run(name, Simulation(definition, now=at), parent, parent_key, parent_attempt)
        run.simulation.respond = lambda command, now: self._respond(run, command, now)
        self.runs.append(run)
        uid = ROOT_UID if parent is None else f"{ROOT_UID[:-12]}{len(self.runs):012d}"
        run.simulation.deliver(
            RunStarted(input=run_input, run_name=name, namespace="default", uid=uid), at
        )
        return run

    def run_until_settled(self) -> None:
        for _ in range(MAX_EVENTS):
            due = [
                (at, index)
                for index, run in enumerate(self.runs)
                if (at := run.simulation.next_at()) is not None
            ]
            if not due:
                return
            _, index = min(due)  # ties go to the run started first: the parent before children
            self.runs[index].simulation.step()
        raise WorkflowTestError(
            f"the run did not settle within {MAX_EVENTS} events: "
            "is there a repeat or retry without a limit?"
        )

    def _respond(self, run: _Run, command: Command, now: float) -> Iterable[tuple[float, Event]]:
        if isinstance(command, StartActivity):
            key = f"{command.step}.compensate" if command.compensation else command.step
            return _activity_events(command, self.script.next(key))
        if isinstance(command, StartChildRun):
            return self._start_child(run, command, now)
        if isinstance(command, TerminateChild):
            for child in self.runs:
                if child.name == command.name and not child.finished:
                    child.simulation.schedule(CancelRequested(), now)
            return []
        if isinstance(command, FinishRun):
            run.finished_at = now
            if run.parent is not None and not run.parent.finished:
                run.parent.simulation.schedule(
                    ChildFinished(
                        key=run.parent_key,
                        attempt=run.parent_attempt,
                        phase=command.phase,
                        output=command.output,
                        error=command.error,
                    ),
                    now,
                )
        return []

    def _start_child(
        self, parent: _Run, command: StartChildRun, now: float
    ) -> Iterable[tuple[float, Event]]:
        started = (0.0, ActivityStarted(key=command.key, attempt=command.attempt))
        if self.script.has(command.step) or command.workflow_ref not in self.definitions:
            if not self.script.has(command.step):
                raise WorkflowTestError(
                    f"step {command.step!r}: child workflow {command.workflow_ref!r} is not "
                    "defined; add it as another document of the file or mock the step"
                )
            outcome = self.script.next(command.step)
            error = _error_of(outcome)
            finished = ChildFinished(
                key=command.key,
                attempt=command.attempt,
                phase="Failed" if error else "Succeeded",
                output=None if error else outcome.output,
                error=error,
            )
            return [started, (outcome.seconds, finished)]
        if not any(r.name == command.name for r in self.runs):
            self.start(
                command.name,
                command.workflow_ref,
                command.input,
                now,
                parent=parent,
                parent_key=command.key,
                parent_attempt=command.attempt,
            )
        return [started]


def _activity_events(command: StartActivity, outcome: MockOutcome) -> list[tuple[float, Event]]:
    events: list[tuple[float, Event]] = [
        (0.0, ActivityStarted(key=command.key, attempt=command.attempt))
    ]
    if outcome.heartbeat:
        every = parse_duration(outcome.heartbeat)
        beat = every
        while beat < outcome.seconds:
            events.append((beat, ActivityHeartbeat(key=command.key, attempt=command.attempt)))
            beat += every
    error = _error_of(outcome)
    if error is not None:
        retry_after = (
            parse_duration(outcome.error.retry_after)
            if outcome.error and outcome.error.retry_after
            else None
        )
        events.append(
            (
                outcome.seconds,
                ActivityFailed(
                    key=command.key, attempt=command.attempt, error=error, retry_after=retry_after
                ),
            )
        )
    else:
        output = {} if outcome.output is None else outcome.output
        events.append(
            (
                outcome.seconds,
                ActivityCompleted(key=command.key, attempt=command.attempt, output=output),
            )
        )
    return events


def _error_of(outcome: MockOutcome) -> dict[str, Any] | None:
    if outcome.error is None:
        return None
    error: dict[str, Any] = {"type": outcome.error.type, "message": outcome.error.message}
    if outcome.error.details:
        error["details"] = outcome.error.details
    return error


def load_workflows(path: str | Path) -> list[Workflow]:
    """The Workflow documents of a YAML file, in order (other kinds are left out)."""
    text = Path(path).read_text(encoding="utf-8")
    return [d for d in load_yaml_documents(text) if isinstance(d, Workflow)]


def run_workflow(
    workflows: Sequence[Workflow] | Workflow,
    *,
    input: Any = None,
    mocks: Mocks | Mapping[str, Any] | None = None,
    workflow: str | None = None,
) -> TestResult:
    """Run `workflow` (default: the first of `workflows`) to its end on a virtual clock.

    The other Workflows serve as child workflows. `mocks` is a `Mocks` or its YAML's data.
    Raises WorkflowTestError when the test cannot start; a failing run is a result, not an error.
    """
    documents = [workflows] if isinstance(workflows, Workflow) else list(workflows)
    if not documents:
        raise WorkflowTestError("no Workflow to run")
    specs: dict[str, WorkflowSpec] = {}
    for number, document in enumerate(documents, start=1):
        if not document.metadata.name:
            raise WorkflowTestError(f"Workflow {number} of the file has no metadata.name")
        specs[document.metadata.name] = document.spec
    root = workflow or next(iter(specs))
    if root not in specs:
        raise WorkflowTestError(
            f"workflow {root!r} is not in the file; it has {', '.join(sorted(specs))}"
        )
    definitions = {name: _compile(name, spec) for name, spec in specs.items()}
    problem = definitions[root].input_problem(input)
    if problem is not None:
        raise WorkflowTestError(problem)
    script = mocks if isinstance(mocks, Mocks) else Mocks.model_validate(mocks or {})
    world = _World(definitions, script)
    main = world.start(root, root, input, 0.0)
    # A cluster numbers signals in the order they are appended to `spec.signals`, which is the
    # order they are sent; numbered by their place in the file instead, a signal listed after a
    # later one would be held until that one arrived (the engine applies signals in index
    # order). The sort is stable: signals of the same time keep the file's order.
    timed = sorted(script.signals, key=lambda signal: parse_duration(signal.at))
    for index, signal in enumerate(timed):
        main.simulation.schedule(
            SignalReceived(index=index, name=signal.name, payload=signal.payload),
            parse_duration(signal.at),
        )
    world.run_until_settled()
    return _result(world, main)


def _compile(name: str, spec: WorkflowSpec) -> Definition:
    try:
        return compile_definition(spec)
    except ValueError as exc:
        raise WorkflowTestError(f"workflow {name!r}: {exc}") from None


def _result(world: _World, main: _Run) -> TestResult:
    simulation = main.simulation
    status = status_of(simulation.definition, simulation.state)
    steps = {
        name: StepReport(
            phase=str(step.get("phase", "Pending")),
            attempts=int(step.get("attempts", 0)),
            output=step.get("output"),
        )
        for name, step in status.get("steps", {}).items()
    }
    events = [
        TimelineEntry(
            at=entry.at,
            type=entry.event.type,
            step=event_step(entry.event),
            run="" if run is main else run.name,
            detail=event_detail(entry.event),
        )
        for run in world.runs
        for entry in run.simulation.history
    ]
    events.sort(key=lambda e: e.at)  # stable: each run's own order is kept
    if main.finished_at is None:
        waiting = status.get("currentStep") or "nothing"
        raise WorkflowTestError(
            f"the run never finished: it is {status.get('phase')} and waits on {waiting}; "
            "mock the signal it waits for or give the wait a timeout"
        )
    return TestResult(
        phase=str(status.get("phase")),
        output=status.get("output"),
        error=status.get("error"),
        virtual_duration=main.finished_at,
        steps=steps,
        compensations=[c["step"] for c in status.get("compensations", [])],
        events=events,
        queries=status.get("queries", {}),
        vars=status.get("vars", {}),
        status=status,
    )
