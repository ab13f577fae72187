"""Generated workflows and scripted worlds for property tests of the engine.

`workflows()` builds valid definitions of every step kind, nested (parallel, forEach, catch
with steps), with `when`, `repeat`, `compensate`, retry policies and timeouts, through the
public models (`baton.api.workflow` -> `compile_definition`): an engine restructure does not
touch it. `scenarios()` adds what the world does: a script of every activity's outcome
(success, retryable or non-retryable failure, an HTTP 503 with `Retry-After`, a 404, silence
until a timeout), child runs that succeed or fail, signals in bursts (some out of index order),
a suspension, a cancel, redrives of a Failed run, and `onCancel: abandon`.

`drive()` runs a scenario through `baton.engine.Simulation`, the loop `baton test` uses, and
keeps the outside view of the run: every command issued and event delivered, in order
(`Trace`). The properties compare the engine against that view, never against its own records.

Outcomes are drawn lazily, once per (activity key, attempt), and remembered, so driving the
same scenario twice (with signals reordered, say) answers the same command the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import strategies as st

from baton.api.workflow import (
    Branch,
    CatchClause,
    ChildWorkflowAction,
    Compensation,
    ContinueAsNewAction,
    Defaults,
    FailAction,
    ForEachAction,
    HttpAction,
    JobAction,
    OnCancel,
    ParallelAction,
    ParentClosePolicy,
    RepeatPolicy,
    RetryPolicy,
    SignalHandler,
    SleepAction,
    Step,
    Timeouts,
    WaitForSignalAction,
    WorkerAction,
    WorkflowSpec,
)
from baton.engine import (
    ActivityCompleted,
    ActivityFailed,
    ActivityHeartbeat,
    ActivityStarted,
    CancelActivity,
    CancelRequested,
    ChildFinished,
    Command,
    ContinueAsNew,
    Definition,
    Event,
    FinishRun,
    RedriveRequested,
    ResumeRequested,
    RunStarted,
    SignalReceived,
    Simulation,
    StartActivity,
    StartChildRun,
    SuccessorCreated,
    SuspendRequested,
    TerminateChild,
    compile_definition,
)

SIGNALS = ("go", "halt", "bump")
"""Signal names the generated workflows wait for and handle."""

FATAL = "Fatal"
"""The error type every generated workflow lists as non-retryable."""

START = 1_000_000.0
"""Virtual time at which every generated run starts."""

LEAF_KINDS = (
    *("http", "http", "http", "job", "worker", "worker", "workflow"),
    *("sleep", "waitForSignal", "set", "set", "fail", "continueAsNew"),
)
NESTING_KINDS = ("parallel", "parallel", "forEach", "forEach", "catchSteps")
"""Kinds of step, repeated by how often the generator picks them: mostly activities, and a
`fail` and a `continueAsNew` rarely enough that most runs get far."""


# -- definitions -----------------------------------------------------------------------------


@dataclass
class Shape:
    """What the generator knows about the definition it built, for the outside view: the
    names of steps with `compensate`, of activity steps whose `repeat` ends on the output's
    `done` flag, and of steps inside something that runs its contents again (repeat)."""

    compensated: set[str] = field(default_factory=set)
    repeats_on_done: set[str] = field(default_factory=set)
    under_repeat: set[str] = field(default_factory=set)
    names: list[str] = field(default_factory=list)


class _Build:
    """One definition being generated: unique step names, its shape, whether it is a saga."""

    def __init__(self, saga: bool) -> None:
        self.count = 0
        self.shape = Shape()
        self.saga = saga

    def name(self) -> str:
        self.count += 1
        name = f"s{self.count}"
        self.shape.names.append(name)
        return name


_DURATIONS = st.sampled_from(["1s", "5s", "30s", "2m"])
_SECONDS = {"1s": 1, "5s": 5, "30s": 30, "2m": 120, "10s": 10, "1m": 60, "5m": 300}


@st.composite
def _retry(draw: st.DrawFn) -> RetryPolicy | None:
    if draw(st.booleans()):
        return None
    initial = draw(st.sampled_from(["1s", "5s", "30s"]))
    longer = [d for d in ("10s", "1m", "5m") if _SECONDS[d] >= _SECONDS[initial]]
    return RetryPolicy(
        max_attempts=draw(st.integers(1, 3)),
        initial_interval=initial,
        backoff_coefficient=draw(st.sampled_from([1.0, 2.0])),
        max_interval=draw(st.sampled_from([None, *longer])),
        jitter=draw(st.sampled_from([None, 0.0, 0.5])),
        non_retryable_errors=draw(st.sampled_from([None, [FATAL], [FATAL, "Flaky"]])),
    )


@st.composite
def _timeouts(draw: st.DrawFn, *, heartbeat: bool) -> Timeouts | None:
    if draw(st.booleans()):
        return None
    return Timeouts(
        start_to_close=draw(st.sampled_from([None, "20s", "2m"])),
        schedule_to_close=draw(st.sampled_from([None, "10m", "1h"])),
        heartbeat=draw(st.sampled_from([None, "30s"])) if heartbeat else None,
    )


def _undo(kind: str, name: str) -> Compensation:
    if kind == "job":
        return Compensation(job=JobAction(image="undo", args=[f"undo-{name}"]))
    if kind == "worker":
        return Compensation(
            worker=WorkerAction(pool="p", activity="undo", input="${{ steps." + name + ".output }}")
        )
    return Compensation(http=HttpAction(method="DELETE", url=f"http://undo/{name}"))


@st.composite
def _step(draw: st.DrawFn, build: _Build, depth: int, repeated: bool) -> Step:
    name = build.name()
    shape, saga = build.shape, build.saga
    if repeated:
        shape.under_repeat.add(name)
    kinds = LEAF_KINDS + (NESTING_KINDS if depth > 0 else ())
    kind = draw(st.sampled_from(kinds))
    fields: dict[str, Any] = {"name": name}
    if draw(st.integers(0, 5)) == 0:
        fields["when"] = draw(st.sampled_from(["true", "false", "vars.n < 2", "input.go"]))
    repeat = kind not in ("fail", "continueAsNew", "catchSteps") and draw(st.integers(0, 5)) == 0
    inner_repeated = repeated or repeat
    if kind in ("http", "job", "worker"):
        if kind == "http":
            fields["http"] = HttpAction(url=f"http://svc/{name}", body={"n": "${{ vars.n }}"})
        elif kind == "job":
            fields["job"] = JobAction(image="img", args=["${{ string(vars.n) }}"])
        else:
            fields["worker"] = WorkerAction(pool="p", activity=name, input="${{ vars }}")
        fields["retry"] = draw(_retry())
        fields["timeout"] = draw(_timeouts(heartbeat=kind == "worker"))
        if saga or draw(st.booleans()):
            fields["compensate"] = _undo(draw(st.sampled_from(["http", "job", "worker"])), name)
            comp = fields["compensate"]
            comp.retry = draw(_retry())
            shape.compensated.add(name)
    elif kind == "workflow":
        policy = draw(st.sampled_from(list(ParentClosePolicy)))
        fields["workflow"] = ChildWorkflowAction(
            workflow_ref="child", input={"n": "${{ vars.n }}"}, parent_close_policy=policy
        )
        fields["retry"] = draw(_retry())
        # An abandoned child is not stopped when its step is: the outside cannot tell whether
        # its late result still counted, so only children that are terminated get compensated.
        if policy is ParentClosePolicy.TERMINATE and (saga or draw(st.booleans())):
            fields["compensate"] = _undo("http", name)
            shape.compensated.add(name)
    elif kind == "sleep":
        fields["sleep"] = SleepAction(duration=draw(_DURATIONS))
    elif kind == "waitForSignal":
        fields["wait_for_signal"] = WaitForSignalAction(
            name=draw(st.sampled_from(SIGNALS[:2])),
            timeout=draw(st.sampled_from([None, "10m", "3h"])),
        )
    elif kind == "set":
        fields["set"] = {"n": "${{ vars.n + 1 }}"}
    elif kind == "fail":
        fields["fail"] = FailAction(
            error=draw(st.sampled_from([FATAL, "Flaky"])), message="${{ vars.n }}"
        )
    elif kind == "continueAsNew":
        fields["continue_as_new"] = ContinueAsNewAction(input={"n": "${{ vars.n }}"})
    elif kind == "parallel":
        branches = []
        for index in range(draw(st.integers(1, 3))):
            steps = draw(_steps(build, depth - 1, inner_repeated, max_size=3))
            branches.append(Branch(name=f"b{index}", steps=steps))
        fields["parallel"] = ParallelAction(branches=branches)
    elif kind == "forEach":
        fields["for_each"] = ForEachAction(
            items=draw(st.sampled_from(["[]", "[1]", "[1, 2]", "[1, 2, 3]"])),
            concurrency=draw(st.integers(1, 3)),
            step=draw(_step(build, depth - 1, inner_repeated)),
        )
    else:
        # A failing activity whose catch clause runs steps instead.
        fields["http"] = HttpAction(url=f"http://svc/{name}")
        fields["retry"] = RetryPolicy(max_attempts=1)
        recovery = draw(_steps(build, depth - 1, repeated, max_size=2))
        fields["catch"] = [CatchClause(errors=["*"], steps=recovery)]
    if kind not in ("catchSteps", "parallel", "forEach") and draw(st.integers(0, 3)) == 0:
        errors = draw(st.sampled_from([["*"], [FATAL], ["Timeout"], ["ChildFailed", "Flaky"]]))
        fields["catch"] = [CatchClause(errors=errors, output={"recovered": name})]
    if repeat:
        if kind in ("http", "job", "worker", "workflow"):
            until = f"steps.{name}.output.done"
            shape.repeats_on_done.add(name)
        else:
            until = draw(st.sampled_from(["true", "false", "vars.n >= 1"]))
        fields["repeat"] = RepeatPolicy(
            until=until,
            interval=draw(st.sampled_from([None, "10s"])),
            max_iterations=draw(st.integers(1, 3)),
        )
    return Step(**fields)


@st.composite
def _steps(
    draw: st.DrawFn, build: _Build, depth: int, repeated: bool, *, max_size: int, min_size: int = 1
) -> list[Step]:
    count = draw(st.integers(min_size, max_size))
    return [draw(_step(build, depth, repeated)) for _ in range(count)]


@dataclass
class Generated:
    """A generated workflow: its spec, compiled definition and shape."""

    spec: WorkflowSpec
    definition: Definition
    shape: Shape

    def __repr__(self) -> str:
        # What hypothesis prints for a failing example: the workflow as a user would write it.
        spec = self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        return "Workflow spec:\n" + yaml.safe_dump(spec, sort_keys=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


@st.composite
def workflows(
    draw: st.DrawFn, *, max_depth: int = 2, max_steps: int = 5, saga: bool = False
) -> Generated:
    """A valid workflow of every step kind, nested up to `max_depth` levels. A `saga` gives
    every activity step a compensation, and half of them end with a failing step."""
    build = _Build(saga)
    steps = draw(_steps(build, max_depth, False, max_size=max_steps, min_size=2))
    if saga and draw(st.booleans()):
        name = build.name()
        steps.append(Step(name=name, fail=FailAction(error=FATAL, message="unwind")))
    handlers = None
    if draw(st.booleans()):
        handlers = [SignalHandler(signal="bump", set={"n": "${{ vars.n + signal.payload }}"})]
    spec = WorkflowSpec(
        defaults=Defaults(
            retry=RetryPolicy(
                max_attempts=draw(st.integers(1, 3)),
                initial_interval="1s",
                non_retryable_errors=[FATAL],
            ),
            # scheduleToClose bounds worker tasks that never leave their pool's queue.
            timeout=Timeouts(start_to_close="1m", schedule_to_close="1d"),
        ),
        vars={"n": 0},
        steps=steps,
        signal_handlers=handlers,
        queries={"n": "vars.n"},
        output={"n": "${{ vars.n }}"},
        # Every run ends: what nothing else ends, the run's own timeout does.
        timeout="30d",
        on_cancel=draw(st.sampled_from(list(OnCancel))),
    )
    spec = WorkflowSpec.model_validate(spec.model_dump(by_alias=True, exclude_none=True))
    return Generated(spec=spec, definition=compile_definition(spec), shape=build.shape)


# -- the world ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one attempt of an activity or child run ends, as the world decides it."""

    ack: bool
    result: str
    """ok, flaky (retryable), fatal (non-retryable), throttled (HTTP 503 with Retry-After),
    missing (HTTP 404), silent (no answer: a timeout ends it), child-failed."""
    delay: float
    done: bool = True
    retry_after: float | None = None
    heartbeat: bool = False


_RESULTS = ["ok"] * 12 + ["flaky", "flaky", "fatal", "throttled", "missing", "silent"]


@st.composite
def outcomes(draw: st.DrawFn, *, child: bool = False) -> Outcome:
    """One attempt's outcome."""
    if child:
        result = draw(st.sampled_from(["ok", "ok", "child-failed", "silent"]))
    else:
        result = draw(st.sampled_from(_RESULTS))
    return Outcome(
        ack=draw(st.booleans()) or result == "silent",
        result=result,
        delay=draw(st.sampled_from([0.0, 0.5, 5.0, 30.0, 90.0])),
        done=draw(st.booleans()),
        retry_after=draw(st.sampled_from([0.0, 2.0, 120.0])) if result == "throttled" else None,
        heartbeat=draw(st.booleans()),
    )


@dataclass
class Scenario:
    """A workflow and what happens to its run: every outcome (drawn on first use), the user's
    signals, suspension, cancel and redrives."""

    workflow: Generated
    draw_outcome: Callable[[str, int, bool], Outcome] = field(repr=False)
    signals: list[tuple[float, list[SignalReceived]]]
    suspend: tuple[float, float] | None
    cancel: float | None
    redrives: int
    on_cancel: str | None
    input: dict[str, Any]

    @property
    def definition(self) -> Definition:
        return self.workflow.definition

    @property
    def effective_on_cancel(self) -> str:
        return self.on_cancel or self.workflow.spec.on_cancel.value


@st.composite
def scenarios(
    draw: st.DrawFn, *, max_depth: int = 2, max_steps: int = 5, saga: bool = False
) -> Scenario:
    """A generated workflow (a saga: see `workflows`) and a world for its run."""
    workflow = draw(workflows(max_depth=max_depth, max_steps=max_steps, saga=saga))
    data = draw(st.data())
    script: dict[tuple[str, int], Outcome] = {}

    def draw_outcome(key: str, attempt: int, child: bool) -> Outcome:
        if (key, attempt) not in script:
            script[(key, attempt)] = data.draw(outcomes(child=child), label=f"{key}#{attempt}")
        return script[(key, attempt)]

    bursts: list[tuple[float, list[SignalReceived]]] = []
    index = 0
    for _ in range(draw(st.integers(0, 3))):
        at = START + draw(st.sampled_from([0.0, 1.0, 60.0, 600.0, 7200.0]))
        burst = []
        for _ in range(draw(st.integers(1, 3))):
            name = draw(st.sampled_from(SIGNALS))
            burst.append(SignalReceived(index=index, name=name, payload=index + 1))
            index += 1
        # The shell may hand a burst of signals over in any order; the engine applies them
        # in index order.
        bursts.append((at, draw(st.permutations(burst))))
    suspend = None
    if draw(st.integers(0, 3)) == 0:
        at = START + draw(st.sampled_from([0.0, 30.0, 600.0]))
        suspend = (at, at + draw(st.sampled_from([1.0, 600.0, 86400.0])))
    cancel = None
    if draw(st.integers(0, 3)) == 0:
        cancel = START + draw(st.sampled_from([0.0, 0.5, 45.0, 3600.0]))
    return Scenario(
        workflow=workflow,
        draw_outcome=draw_outcome,
        signals=bursts,
        suspend=suspend,
        cancel=cancel,
        redrives=draw(st.integers(0, 2)),
        on_cancel=draw(st.sampled_from([None, None, "abandon", "compensate"])),
        input={"go": draw(st.booleans())},
    )


# -- driving -----------------------------------------------------------------------------------


@dataclass
class Trace:
    """The outside view of a run: every command the engine issued and every event delivered,
    interleaved in the order they happened (each event, then the commands it caused)."""

    log: list[Event | Command] = field(default_factory=list)


def respond_for(scenario: Scenario) -> Callable[[Command, float], Iterable[tuple[float, Event]]]:
    """The world's answer to each command, from the scenario's script."""

    def respond(command: Command, now: float) -> list[tuple[float, Event]]:
        if isinstance(command, StartActivity):
            out = scenario.draw_outcome(command.key, command.attempt, False)
            key, attempt = command.key, command.attempt
            events: list[tuple[float, Event]] = []
            if out.ack:
                events.append((0.0, ActivityStarted(key=key, attempt=attempt)))
            if out.heartbeat:
                events.append((out.delay / 2, ActivityHeartbeat(key, attempt, {"at": 1})))
            if out.result == "ok":
                output = {"id": attempt, "done": out.done}
                events.append((out.delay, ActivityCompleted(key, attempt, output)))
            elif out.result in ("flaky", "fatal"):
                error = {"type": "Flaky" if out.result == "flaky" else FATAL, "message": "x"}
                events.append((out.delay, ActivityFailed(key, attempt, error)))
            elif out.result in ("throttled", "missing"):
                status = 503 if out.result == "throttled" else 404
                error = {"type": "HttpError", "message": "x", "details": {"status": status}}
                events.append(
                    (out.delay, ActivityFailed(key, attempt, error, retry_after=out.retry_after))
                )
            return events
        if isinstance(command, StartChildRun):
            out = scenario.draw_outcome(command.key, command.attempt, True)
            key, attempt = command.key, command.attempt
            events = [(0.0, ActivityStarted(key=key, attempt=attempt))] if out.ack else []
            if out.result == "ok":
                output = {"id": attempt, "done": out.done}
                events.append((out.delay, ChildFinished(key, attempt, "Succeeded", output)))
            elif out.result == "child-failed":
                error = {"type": "Boom", "message": "x"}
                events.append((out.delay, ChildFinished(key, attempt, "Failed", None, error)))
            return events
        if isinstance(command, ContinueAsNew):
            return [(0.0, SuccessorCreated(command.name))]
        return []

    return respond


class TracedSimulation(Simulation):
    """A Simulation that also keeps the outside view of its run in `trace`."""

    trace: Trace

    def deliver(self, event: Event, at: float | None = None) -> Any:
        decision = super().deliver(event, at)
        self.trace.log.append(event)
        self.trace.log.extend(decision.commands)
        return decision


def traced(
    definition: Definition, respond: Callable[[Command, float], Iterable[tuple[float, Event]]]
) -> TracedSimulation:
    """A traced simulation of `definition` starting at START."""
    sim = TracedSimulation(definition, respond=respond, now=START)
    sim.trace = Trace()
    return sim


@dataclass
class Driven:
    """A scenario driven to its end."""

    scenario: Scenario
    sim: Simulation
    trace: Trace


MAX_EVENTS = 3_000


def drive(
    scenario: Scenario, *, signals: list[tuple[float, list[SignalReceived]]] | None = None
) -> Driven:
    """Run `scenario` on the virtual clock to its end, redriving a Failed run as the scenario
    says; `signals` replaces the scenario's signal bursts (the same signals, reordered)."""
    sim = traced(scenario.definition, respond_for(scenario))
    for at, burst in scenario.signals if signals is None else signals:
        for signal in burst:
            sim.schedule(signal, at)
    if scenario.suspend is not None:
        sim.schedule(SuspendRequested(), scenario.suspend[0])
        sim.schedule(ResumeRequested(), scenario.suspend[1])
    if scenario.cancel is not None:
        sim.schedule(CancelRequested(), scenario.cancel)
    sim.deliver(
        RunStarted(
            input=scenario.input,
            run_name="run",
            namespace="ns",
            uid="uid-1",
            on_cancel=scenario.on_cancel,
        )
    )
    sim.run(max_events=MAX_EVENTS)
    for n in range(1, scenario.redrives + 1):
        if sim.state.phase.value != "Failed":
            break
        sim.deliver(RedriveRequested(n), sim.now + 60.0)
        sim.run(max_events=MAX_EVENTS)
    return Driven(scenario=scenario, sim=sim, trace=sim.trace)


# -- the outside view ----------------------------------------------------------------------------


def completions_seen_from_outside(log: list[Event | Command], shape: Shape) -> list[str]:
    """The instances of steps with `compensate` that completed, in the order the outside saw
    them complete, up to the first compensation the engine started.

    From the commands and events alone: an attempt (key, n) was started by a StartActivity or
    StartChildRun; its first result counts unless a CancelActivity or TerminateChild for it
    came first (a timeout, a cancel) or another result for it was already delivered. A
    counted success of a step with `compensate` completes the step, unless the step repeats
    and the output's `done` flag was false (another iteration follows)."""
    started: set[tuple[str, int]] = set()
    stopped: set[tuple[str, int]] = set()
    order: list[str] = []
    for item in log:
        if isinstance(item, StartActivity) and item.compensation:
            break
        if isinstance(item, StartActivity | StartChildRun):
            started.add((item.key, item.attempt))
        elif isinstance(item, CancelActivity | TerminateChild):
            stopped.add((item.key, item.attempt))
        elif isinstance(item, ActivityCompleted | ActivityFailed | ChildFinished):
            attempt = (item.key, item.attempt)
            if attempt not in started or attempt in stopped:
                continue
            stopped.add(attempt)
            succeeded = isinstance(item, ActivityCompleted) or (
                isinstance(item, ChildFinished) and item.phase == "Succeeded"
            )
            name = item.key.rsplit(".", 1)[-1]
            if not succeeded or name not in shape.compensated:
                continue
            if name in shape.repeats_on_done and not item.output.get("done"):
                continue
            order.append(item.key)
    return order


def in_flight_seen_from_outside(
    log: list[Event | Command],
) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """The attempts (key, attempt) started and not yet ended, as far as the outside can tell:
    no result delivered for them, no CancelActivity or TerminateChild issued. Children
    started with `abandon` are returned apart: the engine stops waiting for one without a
    command (nothing is to be done to it), so the outside cannot tell when."""
    running: set[tuple[str, int]] = set()
    abandoned: set[tuple[str, int]] = set()
    for item in log:
        if isinstance(item, StartActivity | StartChildRun):
            attempt = (item.key, item.attempt)
            if isinstance(item, StartChildRun) and item.parent_close_policy == "abandon":
                abandoned.add(attempt)
            else:
                running.add(attempt)
        elif isinstance(
            item,
            CancelActivity | TerminateChild | ActivityCompleted | ActivityFailed | ChildFinished,
        ):
            running.discard((item.key, item.attempt))
            abandoned.discard((item.key, item.attempt))
    return running, abandoned


def compensations_started(log: list[Event | Command]) -> list[str]:
    """Activity keys of the compensations, in the order their first attempts were issued."""
    return [
        item.key
        for item in log
        if isinstance(item, StartActivity) and item.compensation and item.attempt == 1
    ]


def final_phase(driven: Driven) -> str:
    """The phase the last FinishRun command published."""
    finishes = [item for item in driven.trace.log if isinstance(item, FinishRun)]
    assert finishes, "the run never published a final phase"
    return finishes[-1].phase
