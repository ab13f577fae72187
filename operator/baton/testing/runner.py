"""Offline runs of a workflow on a virtual clock, with mocked activities and child runs.

`run_workflow` is what `baton test` prints and what users call from pytest. It drives the real
engine (the same `decide` the operator uses) through `baton.engine.Simulation`, one simulation
per run: child runs whose Workflow is among the given definitions run for real, side by side on
the shared virtual clock; activities answer from the mocks. A seven-day timer costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from baton.api.duration import parse_duration
from baton.api.resources import (
    ObjectMeta,
    ResourceError,
    Workflow,
    WorkflowRun,
    load_resource,
    load_yaml_documents,
)
from baton.api.run import RunPhase
from baton.api.workflow import WorkflowSpec
from baton.engine import (
    ContinueAsNew,
    Definition,
    FinishRun,
    LookupMemo,
    MemoResolved,
    Simulation,
    StartActivity,
    StartChildRun,
    StepKind,
    StoreMemo,
    TerminateChild,
    compile_definition,
    deadlines,
    status_of,
)
from baton.engine.commands import AcquireLock, Command, ReleaseLock
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    Event,
    HistoryEntry,
    LockAcquired,
    LockWaiting,
    RedriveRequested,
    ResumeRequested,
    RunStarted,
    SignalReceived,
    SuccessorCreated,
    SuspendRequested,
    TimerFired,
    UpdateRequested,
    event_detail,
    event_step,
)
from baton.engine.state import rfc3339, to_millis
from baton.testing.mocks import (
    MockAction,
    MockOutcome,
    Mocks,
    MockSignal,
    MockUpdate,
    OutcomeScript,
    RunAction,
)

ROOT_UID = "00000000-0000-4000-8000-000000000000"
MAX_EVENTS = 200_000
MAX_GENERATIONS = 100
"""Runs of one continue-as-new lineage a test follows by default: the run that would start the
next one ends ContinuedAsNew and the result shows the input it continued with (`nextInput`)."""


class WorkflowTestError(ValueError):
    """The test cannot run: an unknown workflow, a child with no definition, bad input."""


@dataclass(frozen=True)
class StepReport:
    """How one step ended."""

    phase: str
    attempts: int
    output: Any
    cached: bool = False
    """The output came from the test's memoization cache (`memoize`)."""

    def to_json(self) -> dict[str, Any]:
        """`{phase, attempts, output}`, and `cached: true` for an output from the cache."""
        data = {"phase": self.phase, "attempts": self.attempts, "output": self.output}
        if self.cached:
            data["cached"] = True
        return data


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the run (or of a child run), at virtual seconds since the start."""

    at: float
    type: str
    step: str | None
    run: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """`{type, step, at}`, plus `run` for events of child runs and `detail` when there is
        one (the attempt, the error, the signal's name, what a timer was for)."""
        data: dict[str, Any] = {"type": self.type, "step": self.step, "at": self.at}
        if self.run:
            data["run"] = self.run
        if self.detail:
            data["detail"] = self.detail
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
    updates: dict[str, Any] = field(default_factory=dict)
    """Answers to the update requests by id, as `status.updates` shows them (refusals too)."""
    status: dict[str, Any] = field(default_factory=dict, repr=False)
    generations: int = 1
    """Runs of the lineage the test ran (continue-as-new); the result is the last one's."""
    next_input: Any = None
    """When the last run continued as new past the bound of generations: the input the next
    run would have started with."""

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
            "updates": self.updates,
            **({"generations": self.generations} if self.generations > 1 else {}),
            **(
                {"nextInput": self.next_input}
                if self.phase == RunPhase.CONTINUED_AS_NEW.value
                else {}
            ),
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
    workflow: str = ""
    successor: _Run | None = None
    """The run this one continued as, when it did."""
    generation: int = 1
    """Its place in its continue-as-new lineage (1: the first run)."""
    logged: int = 0
    """How many entries of the simulation's history the world's timeline has taken."""

    @property
    def finished(self) -> bool:
        """True once the run issued FinishRun."""
        return self.finished_at is not None


class _World:
    """All runs of one test on one virtual clock, answering each other's commands."""

    def __init__(
        self,
        definitions: Mapping[str, Definition],
        mocks: Mocks,
        max_generations: int = MAX_GENERATIONS,
    ) -> None:
        self.definitions = definitions
        self.max_generations = max_generations
        self.script = OutcomeScript(mocks)
        self.runs: list[_Run] = []
        self._seen = 0
        """Runs the timeline has looked at since they were started."""
        self.timeline: list[TimelineEntry] = []
        """Every run's events in the order they were decided (a parent's ChildFinished after
        the child's last event, even at the same virtual instant)."""
        self.locks = _Locks()
        self.workflows: dict[str, str] = {}
        """The workflow each run follows, by run name."""
        self.memo: dict[tuple[str, str, str], tuple[float, Any, str]] = {}
        """The memoization cache of this test: (workflow, step, key) to when and by which run
        an output was stored, and the output. It starts empty with each test, as a cluster's
        starts empty with each Workflow."""

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
        continuation: dict[str, Any] | None = None,
        generation: int = 1,
    ) -> _Run:
        definition = self.definitions[workflow]
        run = _Run(name, Simulation(definition, now=at), parent, parent_key, parent_attempt)
        run.workflow = workflow
        run.generation = generation
        self.workflows[name] = workflow
        run.simulation.respond = lambda command, now: self._respond(run, command, now)
        self.runs.append(run)
        first = parent is None and continuation is None
        uid = ROOT_UID if first else f"{ROOT_UID[:-12]}{len(self.runs):012d}"
        started = RunStarted(
            input=run_input,
            run_name=name,
            namespace="default",
            uid=uid,
            continuation=continuation,
        )
        run.simulation.deliver(started, at)
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
            run = self.runs[index]
            timers = _due_timers(run.simulation)
            run.simulation.step()
            self.take_timeline(run, timers)
        raise WorkflowTestError(
            f"the run did not settle within {MAX_EVENTS} events: "
            "is there a repeat or retry without a limit?"
        )

    def take_timeline(self, stepped: _Run, timers: tuple[str | None, str] | None = None) -> None:
        """Add the events decided since the last call to the timeline: `stepped`'s first (the
        event delivered), then those of children it started meanwhile, in creation order.
        `timers` names the step and purpose of the timer `stepped` had due, if it fired."""
        # Only the stepped run decided an event; runs it started have their RunStarted (and
        # what followed at once). Every other run only had events queued, not decided.
        started, self._seen = self.runs[self._seen :], len(self.runs)
        for run in [stepped, *(r for r in started if r is not stepped)]:
            history = run.simulation.history
            for entry in history[run.logged :]:
                self.timeline.append(_entry(entry, run, timers if run is stepped else None))
            run.logged = len(history)

    def _respond(self, run: _Run, command: Command, now: float) -> Iterable[tuple[float, Event]]:
        if isinstance(command, StartActivity):
            key = f"{command.step}.compensate" if command.compensation else command.step
            return _activity_events(command, self.script.next(key))
        if isinstance(command, StartChildRun):
            return self._start_child(run, command, now)
        if isinstance(command, LookupMemo | StoreMemo):
            return self._memo(run, command, now)
        if isinstance(command, TerminateChild):
            for child in self.runs:
                if child.name == command.name and not child.finished:
                    child.simulation.schedule(CancelRequested(), now)
            return []
        if isinstance(command, ContinueAsNew):
            return self._continue(run, command, now)
        if isinstance(command, AcquireLock):
            return self.locks.acquire(run, command, now)
        if isinstance(command, ReleaseLock):
            self.locks.release(run, command, now)
            return []
        if isinstance(command, FinishRun):
            run.finished_at = now
            if command.phase == RunPhase.CONTINUED_AS_NEW.value:
                return []  # not the end for a parent: the lineage's last run reports it
            if run.parent is not None and not run.parent.finished:
                run.parent.simulation.schedule(
                    ChildFinished(
                        key=run.parent_key,
                        attempt=run.parent_attempt,
                        phase=command.phase,
                        output=command.output,
                        error=command.error,
                        name=run.name,
                    ),
                    now,
                )
        return []

    def _continue(
        self, run: _Run, command: ContinueAsNew, now: float
    ) -> Iterable[tuple[float, Event]]:
        """Start the run `run` continues as (the same workflow, and the same parent for a
        child), up to `max_generations` runs of one lineage; past it `run` ends ContinuedAsNew
        and the result reports the input it continued with."""
        if run.generation < self.max_generations and run.successor is None:
            continuation = command.continuation(run.name)
            run.successor = self.start(
                command.name,
                run.workflow,
                command.input,
                now,
                parent=run.parent,
                parent_key=run.parent_key,
                parent_attempt=run.parent_attempt,
                continuation=continuation,
                generation=run.generation + 1,
            )
        return [(0.0, SuccessorCreated(command.name))]

    def _memo(
        self, run: _Run, command: LookupMemo | StoreMemo, now: float
    ) -> Iterable[tuple[float, Event]]:
        """The cluster's cache (baton.store.memo) in memory: entries per workflow and step,
        fresh while younger than `maxAge` on the virtual clock; no size bound."""
        slot = (self.workflows[run.name], command.step, command.cache_key)
        if isinstance(command, StoreMemo):
            self.memo[slot] = (now, command.output, run.name)
            return []
        entry = self.memo.get(slot)
        fresh = entry is not None and (command.max_age is None or now - entry[0] <= command.max_age)
        reason = None if fresh else ("absent" if entry is None else "expired")
        stored = (rfc3339(to_millis(entry[0])), entry[2]) if fresh and entry else (None, None)
        answer = MemoResolved(
            key=command.key,
            attempt=command.attempt,
            iteration=command.iteration,
            cache_key=command.cache_key,
            hit=fresh,
            output=entry[1] if fresh and entry else None,
            stored_at=stored[0],
            stored_by=stored[1],
            reason=reason,
        )
        return [(0.0, answer)]

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
                name=command.name,
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


@dataclass
class _Lock:
    holders: list[tuple[_Run, str]] = field(default_factory=list)
    queue: list[tuple[_Run, str]] = field(default_factory=list)


class _Locks:
    """The mutexes and semaphores of one test's runs (a run and its children contend as they
    would in a cluster), first come first served. A semaphore whose limit the cluster would read
    from a ConfigMap has no ConfigMap here: it is not bounded in a test. A lock kept in another
    namespace is one more lock (keyed by that namespace), granted without consent: there is no
    cluster to consent."""

    def __init__(self) -> None:
        self.locks: dict[tuple[str | None, str, str], _Lock] = {}

    def acquire(self, run: _Run, command: AcquireLock, now: float) -> Iterable[tuple[float, Event]]:
        lock = self.locks.setdefault((command.namespace, command.kind, command.name), _Lock())
        me = (run, command.key)
        if me not in lock.holders and me not in lock.queue:
            lock.queue.append(me)
        self._promote(lock, command.limit, now, me)
        if me in lock.holders:
            return [(0.0, LockAcquired(key=command.key))]
        return [(0.0, LockWaiting(command.key, [r.name for r, _ in lock.holders]))]

    def release(self, run: _Run, command: ReleaseLock, now: float) -> None:
        lock = self.locks.get((command.namespace, command.kind, command.name))
        if lock is None:
            return
        me = (run, command.key)
        lock.holders = [h for h in lock.holders if h != me]
        lock.queue = [h for h in lock.queue if h != me]
        self._promote(lock, command.limit, now, None)

    @staticmethod
    def _promote(
        lock: _Lock, limit: int | None, now: float, asking: tuple[_Run, str] | None
    ) -> None:
        while lock.queue and (limit is None or len(lock.holders) < limit):
            granted = lock.queue.pop(0)
            lock.holders.append(granted)
            if granted != asking:
                granted[0].simulation.schedule(LockAcquired(key=granted[1]), now)


def _due_timers(simulation: Simulation) -> tuple[str | None, str] | None:
    """The step key and purpose of what is due when the simulation's timer next fires (a
    retry's backoff, a sleep, a timeout): the simulation delivers a bare `TimerFired`, and the
    timeline says what it was for. None when nothing is due."""
    wake = simulation.wakeup()
    if wake is None or simulation.state.phase.finished:
        return None
    due = [d for d in deadlines(simulation.definition, simulation.state) if d.due <= wake * 1000]
    if not due:
        return None
    keys = list(dict.fromkeys(d.target for d in due if d.target))
    purposes = list(dict.fromkeys(d.purpose for d in due))
    return (", ".join(keys) or None), ", ".join(purposes)


def _entry(entry: HistoryEntry, run: _Run, timers: tuple[str | None, str] | None) -> TimelineEntry:
    step, detail = event_step(entry.event), event_detail(entry.event)
    if isinstance(entry.event, TimerFired) and timers is not None:
        step, detail = timers
    # Events of child runs and of the runs a run continued as carry their run's name.
    name = "" if run.parent is None and run.generation == 1 else run.name
    return TimelineEntry(at=entry.at, type=entry.event.type, step=step, run=name, detail=detail)


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


@dataclass(frozen=True)
class TestFile:
    """What a file given to `baton test` asks to run: Workflows, and maybe a WorkflowRun."""

    __test__ = False  # not a pytest test class, despite the name

    workflows: list[Workflow]
    """The Workflows: the one to run first when the file holds no run, the others children."""
    workflow: str | None = None
    """The Workflow the file's run follows (its inline one is named after the run)."""
    input: Any = None
    """The run's `spec.input`."""
    run: Mocks = field(default_factory=Mocks)
    """What the run's spec does to it: its `signals` (at 0s, in order), `suspend`, `cancel`."""


def load_test_file(path: str | Path) -> TestFile:
    """The Workflows of a YAML file, or the WorkflowRun of one (examples/hello/run.yaml).

    A run's inline `spec.workflow` is run under the run's name; a `workflowRef` is looked up
    among the file's Workflows, then in the other YAML files of its folder (a run.yaml next to
    its workflow.yaml). Raises WorkflowTestError when the referenced Workflow is nowhere."""
    path = Path(path)
    documents = load_yaml_documents(path.read_text(encoding="utf-8"))
    workflows = [d for d in documents if isinstance(d, Workflow)]
    runs = [d for d in documents if isinstance(d, WorkflowRun)]
    if not runs:
        return TestFile(workflows)
    if len(runs) > 1:
        raise WorkflowTestError(
            f"the file holds {len(runs)} WorkflowRuns; test one at a time (one run per file)"
        )
    run = runs[0]
    spec = run.spec
    actions = [MockAction(action=RunAction.SUSPEND)] if spec.suspend else []
    if spec.cancel:
        actions.append(MockAction(action=RunAction.CANCEL))
    signals = [MockSignal(name=s.name, payload=s.payload) for s in spec.signals or []]
    updates = [MockUpdate(name=u.name, payload=u.payload, id=u.id) for u in spec.updates or []]
    steering = Mocks(signals=signals, updates=updates, actions=actions)
    if spec.workflow is not None:
        name = run.metadata.name or "run"
        inline = Workflow(metadata=ObjectMeta(name=name), spec=spec.workflow)
        others = [w for w in workflows if w.metadata.name != name]
        return TestFile([inline, *others], name, spec.input, steering)
    assert spec.workflow_ref is not None  # a run has exactly one of the two (its model says)
    wanted = spec.workflow_ref.name
    if not any(w.metadata.name == wanted for w in workflows):
        workflows += _workflows_beside(path)
    if not any(w.metadata.name == wanted for w in workflows):
        raise WorkflowTestError(
            f"the run's workflowRef {wanted!r} is neither in the file nor in another YAML file "
            f"of {path.parent}; put the Workflow next to the run"
        )
    return TestFile(workflows, wanted, spec.input, steering)


def _workflows_beside(path: Path) -> list[Workflow]:
    """The Workflows of the other YAML files in `path`'s folder; files that are not Baton
    resources (mocks, Helm values) are skipped, broken Workflows reported."""
    found: list[Workflow] = []
    for other in sorted([*path.parent.glob("*.yaml"), *path.parent.glob("*.yml")]):
        if other == path:
            continue
        try:
            documents = list(yaml.safe_load_all(other.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        for document in documents:
            if isinstance(document, Mapping) and document.get("kind") == "Workflow":
                try:
                    resource = load_resource(document)
                except ResourceError as exc:
                    raise WorkflowTestError(f"{other.name}: {exc.messages[0]}") from None
                assert isinstance(resource, Workflow)
                found.append(resource)
    return found


def run_workflow(
    workflows: Sequence[Workflow] | Workflow,
    *,
    input: Any = None,
    mocks: Mocks | Mapping[str, Any] | None = None,
    workflow: str | None = None,
    max_generations: int = MAX_GENERATIONS,
) -> TestResult:
    """Run `workflow` (default: the first of `workflows`) to its end on a virtual clock.

    The other Workflows serve as child workflows. `mocks` is a `Mocks` or its YAML's data.
    A run that continues as new is followed into the run it continues as, up to
    `max_generations` runs; the result is the last one's (`generations` counts them).
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
    _check_mocked_steps(script, definitions, root)
    _check_signals(script, specs[root], definitions[root], root)
    if max_generations < 1:
        raise WorkflowTestError(f"max_generations: {max_generations}; give 1 or more")
    world = _World(definitions, script, max_generations)
    main = world.start(root, root, input, 0.0)
    world.take_timeline(main)
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
    # Ordered by time like signals; an entry's default id is its place in the file.
    requests = sorted(enumerate(script.updates), key=lambda item: parse_duration(item[1].at))
    for position, update in requests:
        request = UpdateRequested(update.id or f"u{position}", update.name, update.payload)
        main.simulation.schedule(request, parse_duration(update.at))
    redrives = 0
    for action in script.actions:
        event: Event
        if action.action is RunAction.REDRIVE:
            redrives += 1
            event = RedriveRequested(redrives)
        else:
            event = _ACTION_EVENTS[action.action]
        main.simulation.schedule(event, parse_duration(action.at))
    world.run_until_settled()
    return _result(world, main)


_ACTION_EVENTS: dict[RunAction, Event] = {
    RunAction.CANCEL: CancelRequested(),
    RunAction.SUSPEND: SuspendRequested(),
    RunAction.RESUME: ResumeRequested(),
}


def _check_mocked_steps(mocks: Mocks, definitions: Mapping[str, Definition], root: str) -> None:
    """Every mocked name is a step of the file's workflows that performs something (an
    activity or a child run), or `<step>.compensate` of one with a compensation."""
    mockable: set[str] = set()
    for definition in definitions.values():
        for name, step in definition.index.items():
            if step.kind.is_activity or step.kind is StepKind.WORKFLOW:
                mockable.add(name)
            if step.compensate is not None:
                mockable.add(f"{name}.compensate")
    unknown = sorted(set(mocks.steps) - mockable)
    if not unknown:
        return
    where = f"workflow {root!r}" + (" or its child workflows" if len(definitions) > 1 else "")
    known = ", ".join(sorted(mockable)) or "none"
    raise WorkflowTestError(
        f"mocks: steps.{unknown[0]}: no step of that name in {where} takes a mock "
        f"(http, job, worker and workflow steps and compensations do); known: {known}"
    )


_SIGNAL_DOT = re.compile(r"\bsignals\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_SIGNAL_INDEX = re.compile(r"""\bsignals\s*\[\s*(['"])(.*?)\1\s*\]""")


def _check_signals(mocks: Mocks, spec: WorkflowSpec, definition: Definition, root: str) -> None:
    """Every mocked signal is one the workflow waits for, handles, or reads in an expression
    (`signals.approve`, `signals['manual-approval']`)."""
    if not mocks.signals:
        return
    text = spec.model_dump_json(by_alias=True, exclude_none=True)
    known = set(definition.waited_signals)
    known |= {handler.signal for handler in definition.signal_handlers}
    known |= set(_SIGNAL_DOT.findall(text)) | {m[1] for m in _SIGNAL_INDEX.findall(text)}
    for signal in mocks.signals:
        if signal.name not in known:
            listed = ", ".join(sorted(known)) or "none: it waits for no signal"
            raise WorkflowTestError(
                f"mocks: signals: {signal.name!r} is no signal workflow {root!r} waits for, "
                f"handles or reads; known: {listed}"
            )


def _compile(name: str, spec: WorkflowSpec) -> Definition:
    try:
        return compile_definition(spec)
    except ValueError as exc:
        raise WorkflowTestError(f"workflow {name!r}: {exc}") from None


def _result(world: _World, first: _Run) -> TestResult:
    main = first
    while main.successor is not None:
        main = main.successor  # the lineage's last run
    simulation = main.simulation
    status = status_of(simulation.definition, simulation.state)
    steps = {
        name: StepReport(
            phase=str(step.get("phase", "Pending")),
            attempts=int(step.get("attempts", 0)),
            output=step.get("output"),
            cached=step.get("cached") is True,
        )
        for name, step in status.get("steps", {}).items()
    }
    events = world.timeline
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
        updates={
            **status.get("updates", {}),
            **{
                key: {"name": refused["name"], "outcome": "Refused", "reason": refused["reason"]}
                for key, refused in simulation.refused.items()
            },
        },
        status=status,
        generations=main.generation,
        next_input=(status.get("successor") or {}).get("input"),
    )
