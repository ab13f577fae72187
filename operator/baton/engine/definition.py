"""Compiling a WorkflowSpec into the engine's frozen, validated Definition.

This module owns every check that needs the whole definition: unique step names across nested
lists, the `needs` DAG of each step list (unknown names, cycles), durations parsed to seconds,
retry and timeout defaults merged into each step, and every expression and template compiled
once with its `steps.X` references checked. Times written as `${{ cel }}` (timeouts, retry
intervals, sleeps, signal timeouts) are compiled here too and listed in `StepDef.times`, to be
evaluated when the step starts (`baton.engine.timing`). A broken definition raises
`DefinitionError`, whose message is one line naming the step and the field, so the operator
can put it in an `Invalid` condition and `baton` can print it as is.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from baton.api.duration import (
    DurationError,
    TimestampError,
    parse_duration,
    parse_timestamp,
)
from baton.api.locks import LockKind, Synchronization
from baton.api.resources import first_problem
from baton.api.workflow import (
    ANY_ERROR,
    DEFAULT_PARALLELISM,
    CatchClause,
    OnCancel,
    ParallelMode,
    ParentClosePolicy,
    Step,
    WorkflowSpec,
    is_computed,
)
from baton.api.workflow import Compensation as CompensationModel
from baton.api.workflow import RetryBackoff as BackoffModel
from baton.api.workflow import RetryPolicy as RetryModel
from baton.api.workflow import RetryRule as RuleModel
from baton.api.workflow import Timeouts as TimeoutsModel
from baton.engine.depends import Depends, DependsError, Outcome, parse_depends
from baton.engine.inputs import InputSchemaError, check_input_schema, input_problem
from baton.expr import Expression, ExpressionError, Template, compile_expression, compile_template

# Built-in retry policy for fields neither the step nor `defaults.retry` sets. Temporal retries
# forever by default; a finite default is kinder to the systems a workflow calls and makes a
# forgotten policy visible as a failure instead of an endless loop.
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_INITIAL_INTERVAL = 1.0
DEFAULT_BACKOFF_COEFFICIENT = 2.0
DEFAULT_MAX_INTERVAL_FACTOR = 100.0
"""Without `maxInterval`, a single delay is capped at 100 x `initialInterval` (as Temporal)."""
DEFAULT_JITTER = 0.0
UNLIMITED_ATTEMPTS = 0
"""`maxAttempts: 0`: retry for as long as scheduleToClose and the run's timeout allow."""
CHILD_ATTEMPTS = 1
"""Attempts of a `workflow` step without its own `retry`: a child run is a whole process with
retries of its own, and starting it again repeats every step it completed (Temporal's default).
`defaults.retry` does not apply to it."""


class DefinitionError(ValueError):
    """A definition that cannot run; its message is one line naming the step and the field."""

    def __init__(self, message: str, *, step: str | None = None, field: str | None = None) -> None:
        self.step = step
        self.field = field
        self.reason = message
        where = []
        if step is not None:
            where.append(f"step {step!r}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        super().__init__(" ".join(text.split("\n")))


class StepKind(StrEnum):
    """Kinds of step, spelt as in YAML."""

    HTTP = "http"
    JOB = "job"
    WORKER = "worker"
    WORKFLOW = "workflow"
    SLEEP = "sleep"
    WAIT_FOR_SIGNAL = "waitForSignal"
    PARALLEL = "parallel"
    FOR_EACH = "forEach"
    SET = "set"
    FAIL = "fail"
    CONTINUE_AS_NEW = "continueAsNew"

    @property
    def is_activity(self) -> bool:
        """True for steps performed by the shell as an activity (http, job, worker)."""
        return self in (StepKind.HTTP, StepKind.JOB, StepKind.WORKER)

    @property
    def queues_before_start(self) -> bool:
        """True for activities the shell may hold back until a slot frees (a worker pool's,
        the operator's HTTP limits): acknowledged when sent, which starts their startToClose
        and heartbeat clocks; until then only scheduleToClose bounds the wait."""
        return self in (StepKind.HTTP, StepKind.WORKER)

    @property
    def is_composite(self) -> bool:
        """True for steps made of other steps."""
        return self in (StepKind.PARALLEL, StepKind.FOR_EACH)


@dataclass(frozen=True)
class RetryPolicy:
    """One retry rule with every default applied; intervals in seconds.

    `errors` (empty: every type) and `when` select the errors the rule applies to; a step's
    rules are tried in order and the first that applies decides. `max_attempts` 0 is
    unlimited. An interval written as `${{ }}` is in the step's `times` under
    `retry[<index>].initialInterval` (or `maxInterval`) and replaces the value here once the
    step started (`baton.engine.timing`)."""

    max_attempts: int
    initial_interval: float
    backoff_coefficient: float
    max_interval: float
    jitter: float
    non_retryable_errors: frozenset[str]
    errors: frozenset[str] = frozenset()
    when: Expression | None = None
    source: str = "retry"
    """Where the rule is written (`retry`, `retry.rules[1]`, `compensate.retry`), for errors."""
    max_interval_factor: float | None = None
    """Set when maxInterval is the default (a factor of initialInterval) and initialInterval
    is computed: the cap is computed with it."""

    @property
    def unlimited(self) -> bool:
        """True for `maxAttempts: 0`."""
        return self.max_attempts == UNLIMITED_ATTEMPTS

    def selects(self, error_type: str) -> bool:
        """True when `errors` names `error_type` (before `when` is consulted)."""
        return not self.errors or ANY_ERROR in self.errors or error_type in self.errors


class TimeKind(StrEnum):
    """What a computed time field gives once evaluated."""

    DURATION = "duration"
    INSTANT = "instant"


@dataclass(frozen=True)
class ComputedTime:
    """A time field written as `${{ cel }}`, evaluated when its step (or compensation) starts.

    `field` is the field's path in the step as users write it (`timeout.startToClose`,
    `retry[1].initialInterval`, `sleep.until`): the key of the value in the step's state and
    the field an error names."""

    field: str
    template: Template
    kind: TimeKind = TimeKind.DURATION
    where: str = ""
    """The field as written, for errors: `defaults.timeout.startToClose` for an inherited
    default, `compensate.retry[0].initialInterval` in a compensation; `field` when empty."""

    @property
    def written(self) -> str:
        """The field to name in an error."""
        return self.where or self.field


@dataclass(frozen=True)
class Timeouts:
    """A step's activity timeouts in seconds; None means no limit."""

    start_to_close: float | None = None
    schedule_to_close: float | None = None
    heartbeat: float | None = None


@dataclass(frozen=True)
class Action:
    """An activity (http, job or worker) whose fields are templates rendered at each attempt."""

    kind: StepKind
    fields: tuple[tuple[str, Template], ...]

    def render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The action spec the shell performs, with every `${{ }}` evaluated."""
        return {name: template.render(context) for name, template in self.fields}


@dataclass(frozen=True)
class ChildWorkflow:
    """A child run started by a `workflow` step."""

    workflow_ref: str
    input: Template
    parent_close_policy: ParentClosePolicy


@dataclass(frozen=True)
class WaitForSignal:
    """A `waitForSignal` step: the signal name and the timeout in seconds."""

    name: str
    timeout: float | None


@dataclass(frozen=True)
class Fail:
    """A `fail` step: the error type and its message template."""

    error_type: str
    message: Template


@dataclass(frozen=True)
class Branch:
    """One branch of a parallel step."""

    name: str
    steps: tuple[StepDef, ...]


@dataclass(frozen=True)
class ForEach:
    """A forEach step: the items expression, how many run at once, the step run per item, and
    how many failed items it tolerates (None: none, the first failure fails it)."""

    items: Expression
    concurrency: int
    step: StepDef
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None

    @property
    def tolerates_failures(self) -> bool:
        """True when failed items are counted against a threshold instead of failing the step
        (which also gives the step its `{items, failed}` output)."""
        return (
            self.tolerated_failure_count is not None
            or self.tolerated_failure_percentage is not None
        )

    def exceeded(self, failed: int, total: int) -> bool:
        """True when `failed` items of `total` are more than this forEach tolerates."""
        if failed == 0:
            return False
        if not self.tolerates_failures:
            return True
        count = self.tolerated_failure_count
        percentage = self.tolerated_failure_percentage
        # Compared in integers (failed * 100 > percentage * total) where exact: 10% of 30 is
        # 3 items, and 3 failures must not count as 10.000000001%.
        return (count is not None and failed > count) or (
            percentage is not None and failed * 100 > percentage * total
        )


@dataclass(frozen=True)
class Catch:
    """A catch clause: error types handled (`*` for any) and the recovery."""

    errors: frozenset[str]
    output: Template | None
    steps: tuple[StepDef, ...] | None

    def matches(self, error_type: str) -> bool:
        """True when this clause handles errors of `error_type`."""
        return "*" in self.errors or error_type in self.errors


@dataclass(frozen=True)
class Compensation:
    """The undo action of a step with its own merged retry policy and timeouts."""

    action: Action
    retry: tuple[RetryPolicy, ...]
    timeouts: Timeouts
    times: tuple[ComputedTime, ...] = ()
    on_interrupt: bool = False
    """Also compensate the step when a cancel or the run timeout interrupts it in flight."""


@dataclass(frozen=True)
class Repeat:
    """Repetition of a step until `until` holds."""

    until: Expression
    interval: float | None
    max_iterations: int
    continue_every: int | None = None
    """`continueAsNewEvery`: iterations one run makes before it continues as new."""


@dataclass(frozen=True)
class LockDef:
    """A compiled `synchronization`: the lock's kind, its name (rendered when the holder
    starts), and its limit, written or read from a ConfigMap key (`config_map`: name, key)."""

    kind: LockKind
    name: Template
    limit: int | None = None
    config_map: tuple[str, str] | None = None
    namespace: str | None = None
    """The namespace keeping the lock when not the run's own (`synchronization.namespace`)."""


@dataclass(frozen=True)
class Memo:
    """A step's `memoize`: the key rendered when each execution starts, and how old an entry
    may be to be used (seconds; None: any age)."""

    key: Template
    max_age: float | None


@dataclass(frozen=True)
class StepDef:
    """One compiled step. `after` are the sibling steps it waits for (explicit or implied);
    `depends`, when the step has one, is the condition over their outcomes that replaces
    "all of `after` done". `continue_on_failed` is the step's own `continueOn.failed`;
    `failure_handled` is true also when a sibling's `depends` names `<step>.Failed`: either way
    the step's failure does not fail its list."""

    name: str
    kind: StepKind
    after: tuple[str, ...]
    when: Expression | None = None
    action: Action | None = None
    child: ChildWorkflow | None = None
    sleep: float | None = None
    sleep_until: int | None = None
    """`sleep.until` as milliseconds since the epoch, when written as a literal timestamp."""
    wait: WaitForSignal | None = None
    branches: tuple[Branch, ...] = ()
    for_each: ForEach | None = None
    assignments: tuple[tuple[str, Template], ...] = ()
    fail: Fail | None = None
    continue_input: Template | None = None
    """A `continueAsNew` step: the next run's input."""
    retry: tuple[RetryPolicy, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    catch: tuple[Catch, ...] = ()
    compensate: Compensation | None = None
    repeat: Repeat | None = None
    memoize: Memo | None = None
    times: tuple[ComputedTime, ...] = ()
    """Time fields written as `${{ }}`, evaluated when each execution of the step starts."""
    depends: Depends | None = None
    continue_on_failed: bool = False
    failure_handled: bool = False
    parallel_mode: ParallelMode = ParallelMode.ALL
    fail_fast: bool = True
    """For a parallel step: whether a failed branch stops the others (and the step)."""

    finally_steps: tuple[StepDef, ...] = ()
    """Cleanup run once the step ended, whatever the outcome (`finally`)."""
    lock: LockDef | None = None
    """The mutex or semaphore slot the step holds while it runs (`synchronization`)."""

    @property
    def is_race(self) -> bool:
        """True for a `parallel` step in `mode: race`."""
        return self.parallel_mode is ParallelMode.RACE


@dataclass(frozen=True)
class SignalHandler:
    """Assignments to `vars` made whenever a signal of this name arrives."""

    signal: str
    assignments: tuple[tuple[str, Template], ...]


@dataclass(frozen=True)
class UpdateHandler:
    """An update handler (`updates[]`): the validator that may refuse a request, the `vars` an
    accepted one assigns and the result it answers with (`baton.engine.updates`)."""

    name: str
    validate: Expression | None
    message: Template | None
    assignments: tuple[tuple[str, Template], ...]
    output: Template | None
    steps: tuple[StepDef, ...] = ()
    """Steps run once the update is accepted, in the update's own scope (`@<id>.<step>`)."""


@dataclass(frozen=True)
class Definition:
    """A compiled workflow: immutable, shared by every decision of every run that follows it.

    `index` maps every step name (nested ones included) to its StepDef; `depth` is the number of
    forEach steps around it, which tells how many `name[index].` frames prefix its instances;
    `parent` maps a nested step to the step holding it and how (`branch`, `forEach`, `catch`,
    `finally`). `on_exit` are the run's cleanup steps (`onExit`), top-level steps of their own.
    """

    steps: tuple[StepDef, ...]
    output: Template | None
    queries: tuple[tuple[str, Expression], ...]
    signal_handlers: tuple[SignalHandler, ...]
    vars: tuple[tuple[str, Template], ...]
    timeout: float | None
    on_cancel: OnCancel
    index: Mapping[str, StepDef]
    depth: Mapping[str, int]
    parent: Mapping[str, tuple[str, str]]
    waited_signals: frozenset[str]
    input_schema: Mapping[str, Any] | None = None
    parallelism: int = DEFAULT_PARALLELISM
    """Activities and child runs in flight at once in one run, unless the run says otherwise."""
    fail_fast: bool = True
    """Whether a step of the top-level list failing for good stops the others (`failFast`)."""
    on_exit: tuple[StepDef, ...] = ()
    update_handlers: Mapping[str, UpdateHandler] = field(default_factory=dict)
    """The update handlers by name."""
    cleanup: frozenset[str] = frozenset()
    """Names of the steps in an `onExit` or `finally` list, nested ones included: they start
    while the run ends (after a cancel, the run timeout or a failure) and a cancel leaves them
    running."""
    lock: LockDef | None = None
    """The mutex or semaphore slot the whole run holds (the spec's `synchronization`)."""

    def input_problem(self, value: Any) -> str | None:
        """One line saying why `value` breaks `inputSchema`, or None when it is acceptable."""
        return input_problem(self.input_schema, value)

    def step(self, name: str) -> StepDef:
        """The step called `name`; KeyError for unknown names."""
        return self.index[name]


def compile_definition(spec: WorkflowSpec) -> Definition:
    """Validate `spec` and compile it; raises DefinitionError with a one-line message."""
    return _Compiler(spec).compile()


class _Compiler:
    def __init__(self, spec: WorkflowSpec) -> None:
        self.spec = spec
        self.names: dict[str, Step] = {}
        self.depth: dict[str, int] = {}
        self.parent: dict[str, tuple[str, str]] = {}
        self.index: dict[str, StepDef] = {}
        self.cleanup: set[str] = set()
        self.in_finally: set[str] = set()
        self.in_update = False
        """True while compiling an update handler, where `update` is in scope."""
        self.update_steps = [
            self._update_steps(i, handler.steps or [])
            for i, handler in enumerate(spec.updates or [])
        ]
        defaults = spec.defaults
        self.default_retry = defaults.retry if defaults and defaults.retry else BackoffModel()
        self.default_timeout = (
            defaults.timeout if defaults and defaults.timeout else TimeoutsModel()
        )

    def compile(self) -> Definition:
        spec = self.spec
        # Names first: references in expressions are checked against the whole set.
        self._collect(spec.steps, depth=0)
        self._collect(spec.on_exit or [], depth=0, cleanup=True)
        for update_steps in self.update_steps:
            # One frame deeper than the run's steps: the update's own (`@<id>.`).
            self._collect(update_steps, depth=1)
        steps = self._block(spec.steps)
        on_exit = self._block(spec.on_exit) if spec.on_exit else ()
        output = self._template(spec.output, None, "output") if spec.output is not None else None
        queries = tuple(
            (name, self._expression(source, None, f"queries.{name}"))
            for name, source in (spec.queries or {}).items()
        )
        handlers = tuple(
            SignalHandler(
                signal=handler.signal,
                assignments=tuple(
                    (var, self._template(value, None, f"signalHandlers[{i}].set.{var}"))
                    for var, value in handler.set.items()
                ),
            )
            for i, handler in enumerate(spec.signal_handlers or [])
        )
        updates = self._updates()
        variables = tuple(
            (name, self._template(value, None, f"vars.{name}"))
            for name, value in (spec.vars or {}).items()
        )
        timeout = self._duration(spec.timeout, None, "timeout") if spec.timeout else None
        try:
            check_input_schema(spec.input_schema)
        except InputSchemaError as exc:
            raise DefinitionError(str(exc)) from None
        return Definition(
            steps=steps,
            output=output,
            queries=queries,
            signal_handlers=handlers,
            vars=variables,
            timeout=timeout,
            on_cancel=spec.on_cancel,
            index=dict(self.index),
            depth=dict(self.depth),
            parent=dict(self.parent),
            waited_signals=frozenset(
                s.wait.name for s in self.index.values() if s.wait is not None
            ),
            input_schema=spec.input_schema,
            parallelism=spec.parallelism or DEFAULT_PARALLELISM,
            fail_fast=spec.fail_fast is not False,
            on_exit=on_exit,
            update_handlers=updates,
            cleanup=frozenset(self.cleanup),
            lock=self._lock(spec.synchronization, None),
        )

    @staticmethod
    def _update_steps(index: int, raw: list[dict[str, Any]]) -> list[Step]:
        """An update handler's steps, validated as the Workflow's steps are (the CRD keeps
        them opaque)."""
        steps = []
        for j, value in enumerate(raw):
            try:
                steps.append(Step.model_validate(value))
            except ValidationError as exc:
                problem = first_problem(exc, Step)
                raise DefinitionError(f"updates[{index}].steps[{j}].{problem}") from None
        return steps

    def _updates(self) -> dict[str, UpdateHandler]:
        handlers: dict[str, UpdateHandler] = {}
        for i, handler in enumerate(self.spec.updates or []):
            where = f"updates[{i}]"
            if handler.name in handlers:
                raise DefinitionError(
                    f"update handler {handler.name!r} is declared twice; names are unique",
                    field=f"{where}.name",
                )
            self.in_update = True
            try:
                handlers[handler.name] = UpdateHandler(
                    name=handler.name,
                    validate=self._expression(handler.validate_, None, f"{where}.validate")
                    if handler.validate_ is not None
                    else None,
                    message=self._template(handler.message, None, f"{where}.message")
                    if handler.message is not None
                    else None,
                    assignments=tuple(
                        (var, self._template(value, None, f"{where}.set.{var}"))
                        for var, value in (handler.set or {}).items()
                    ),
                    output=self._template(handler.output, None, f"{where}.output")
                    if handler.output is not None
                    else None,
                    steps=self._block(self.update_steps[i]) if self.update_steps[i] else (),
                )
            finally:
                self.in_update = False
        return handlers

    # -- names -------------------------------------------------------------------------------

    def _collect(
        self, steps: Iterable[Step], depth: int, cleanup: bool = False, in_finally: bool = False
    ) -> None:
        for step in steps:
            if step.name in self.names:
                raise DefinitionError(
                    "duplicate step name: step names are unique across the whole workflow, "
                    "nested steps included",
                    step=step.name,
                    field="name",
                )
            self.names[step.name] = step
            self.depth[step.name] = depth
            if cleanup:
                self.cleanup.add(step.name)
            if in_finally:
                self.in_finally.add(step.name)
            if cleanup and step.continue_as_new is not None:
                raise DefinitionError(
                    "a cleanup step (in onExit or finally) runs while the run ends: it cannot "
                    "continue the run as new; move continueAsNew to the steps",
                    step=step.name,
                    field="continueAsNew",
                )
            if cleanup and step.compensate is not None:
                raise DefinitionError(
                    "a cleanup step (in onExit or finally) is not part of the saga: it runs "
                    "after the outcome is decided, so nothing would compensate it; remove "
                    "compensate",
                    step=step.name,
                    field="compensate",
                )
            for nested, nested_depth, relation in _children(step, depth):
                for child in nested:
                    self.parent[child.name] = (step.name, relation)
                self._collect(
                    nested,
                    nested_depth,
                    cleanup or relation == "finally",
                    in_finally or relation == "finally",
                )

    # -- steps -------------------------------------------------------------------------------

    def _block(self, steps: list[Step]) -> tuple[StepDef, ...]:
        """Compile one list of steps and its DAG."""
        after: dict[str, tuple[str, ...]] = {}
        conditions: dict[str, Depends] = {}
        siblings = {s.name for s in steps}
        previous: str | None = None
        for step in steps:
            if step.depends is not None:
                condition = self._depends(step, siblings)
                conditions[step.name] = condition
                after[step.name] = condition.steps
            elif step.needs is not None:
                for need in step.needs:
                    self._check_sibling(need, siblings, step.name, "needs")
                after[step.name] = tuple(dict.fromkeys(step.needs))
            else:
                after[step.name] = (previous,) if previous is not None else ()
            previous = step.name
        _check_acyclic(steps, after)
        handled = {
            ref.step
            for condition in conditions.values()
            for ref in condition.refs
            if ref.outcome is Outcome.FAILED
        }
        return tuple(
            self._step(
                step,
                after[step.name],
                depends=conditions.get(step.name),
                failure_handled=step.name in handled,
            )
            for step in steps
        )

    def _depends(self, step: Step, siblings: set[str]) -> Depends:
        assert step.depends is not None
        try:
            condition = parse_depends(step.depends)
        except DependsError as exc:
            raise DefinitionError(str(exc), step=step.name, field="depends") from None
        for name in condition.steps:
            self._check_sibling(name, siblings, step.name, "depends")
        return condition

    def _check_sibling(self, name: str, siblings: set[str], step: str, field: str) -> None:
        if name in siblings:
            return
        where = (
            f"a step of another list: {field} only names steps of the same list"
            if name in self.names
            else "not a step of this workflow"
        )
        raise DefinitionError(f"unknown step {name!r} ({where})", step=step, field=field)

    def _step(
        self,
        step: Step,
        after: tuple[str, ...],
        *,
        depends: Depends | None = None,
        failure_handled: bool = False,
    ) -> StepDef:
        name = step.name
        kind = StepKind(step.kind)
        when = self._expression(step.when, name, "when") if step.when is not None else None
        _check_policies(step, kind)
        times: list[ComputedTime] = []
        retry: tuple[RetryPolicy, ...] = ()
        if kind.is_activity:
            retry = self._retry(step.retry, name, "retry", times)
        elif kind is StepKind.WORKFLOW:
            retry = (
                self._retry(step.retry, name, "retry", times)
                if step.retry is not None
                else (_child_policy(),)
            )
        timeouts = self._timeouts(step.timeout, name, "timeout", times)
        fields = self._kind_fields(step, kind, times)
        continue_on_failed = step.continue_on is not None and step.continue_on.failed is True
        compiled = StepDef(
            name=name,
            kind=kind,
            after=after,
            when=when,
            retry=retry,
            timeouts=timeouts,
            catch=tuple(
                self._catch(c, name, f"catch[{i}]") for i, c in enumerate(step.catch or [])
            ),
            compensate=(
                self._compensation(step.compensate, name) if step.compensate is not None else None
            ),
            repeat=self._repeat(step),
            memoize=self._memo(step),
            times=tuple(times),
            depends=depends,
            continue_on_failed=continue_on_failed,
            failure_handled=failure_handled or continue_on_failed,
            finally_steps=self._block(step.finally_) if step.finally_ else (),
            lock=self._lock(step.synchronization, name),
            **fields,
        )
        self.index[name] = compiled
        return compiled

    def _kind_fields(self, step: Step, kind: StepKind, times: list[ComputedTime]) -> dict[str, Any]:
        name = step.name
        if kind.is_activity:
            model = getattr(step, kind.value)
            return {"action": self._action(kind, model, name, kind.value)}
        if step.workflow is not None:
            child = step.workflow
            return {
                "child": ChildWorkflow(
                    workflow_ref=child.workflow_ref,
                    input=self._template(child.input, name, "workflow.input"),
                    parent_close_policy=child.parent_close_policy,
                )
            }
        sleep = step.sleep
        if sleep is not None:
            if sleep.until is not None:
                if is_computed(sleep.until):
                    times.append(
                        ComputedTime(
                            "sleep.until",
                            self._template(sleep.until, name, "sleep.until"),
                            TimeKind.INSTANT,
                        )
                    )
                    return {}
                return {"sleep_until": self._timestamp(sleep.until, name, "sleep.until")}
            assert sleep.duration is not None
            seconds = self._time(sleep.duration, name, "sleep.duration", times)
            return {"sleep": seconds} if seconds is not None else {}
        if step.wait_for_signal is not None:
            wait = step.wait_for_signal
            timeout = (
                self._time(wait.timeout, name, "waitForSignal.timeout", times)
                if wait.timeout is not None
                else None
            )
            return {"wait": WaitForSignal(name=wait.name, timeout=timeout)}
        if step.parallel is not None:
            names = [b.name for b in step.parallel.branches]
            duplicates = sorted({b for b in names if names.count(b) > 1})
            if duplicates:
                raise DefinitionError(
                    f"duplicate branch name {duplicates[0]!r}",
                    step=name,
                    field="parallel.branches",
                )
            return {
                "branches": tuple(
                    Branch(name=b.name, steps=self._block(b.steps)) for b in step.parallel.branches
                ),
                "parallel_mode": step.parallel.mode,
                "fail_fast": step.parallel.fail_fast is not False,
            }
        if step.for_each is not None:
            each = step.for_each
            for field_name, given in (("needs", each.step.needs), ("depends", each.step.depends)):
                if given:
                    raise DefinitionError(
                        f"a forEach step runs alone per item: remove its {field_name}",
                        step=each.step.name,
                        field=field_name,
                    )
            return {
                "for_each": ForEach(
                    items=self._expression(each.items, name, "forEach.items"),
                    concurrency=each.concurrency or UNBOUNDED,
                    step=self._step(each.step, ()),
                    tolerated_failure_count=each.tolerated_failure_count,
                    tolerated_failure_percentage=each.tolerated_failure_percentage,
                )
            }
        if step.set is not None:
            return {
                "assignments": tuple(
                    (var, self._template(value, name, f"set.{var}"))
                    for var, value in step.set.items()
                )
            }
        if step.continue_as_new is not None:
            policies: tuple[tuple[str, object], ...] = (
                ("repeat", step.repeat),
                ("compensate", step.compensate),
            )
            for field_name, policy in policies:
                if policy is not None:
                    raise DefinitionError(
                        f"{field_name} has no effect on a continueAsNew step: it ends the run "
                        "(nothing is compensated, nothing repeats); remove it",
                        step=name,
                        field=field_name,
                    )
            return {
                "continue_input": self._template(
                    step.continue_as_new.input, name, "continueAsNew.input"
                )
            }
        assert step.fail is not None, "a validated step has exactly one kind"
        return {
            "fail": Fail(
                error_type=step.fail.error,
                message=self._template(step.fail.message, name, "fail.message"),
            )
        }

    def _action(self, kind: StepKind, model: Any, step: str, base: str) -> Action:
        dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
        return Action(
            kind=kind,
            fields=tuple(
                (key, self._template(value, step, f"{base}.{key}")) for key, value in dumped.items()
            ),
        )

    def _catch(self, clause: CatchClause, step: str, base: str) -> Catch:
        output = (
            self._template(clause.output, step, f"{base}.output")
            if clause.output is not None
            else None
        )
        if clause.steps and clause.output is not None:
            raise DefinitionError(
                "a catch clause continues with an output or runs steps, not both",
                step=step,
                field=base,
            )
        steps = self._block(clause.steps) if clause.steps else None
        return Catch(errors=frozenset(clause.errors), output=output, steps=steps)

    def _compensation(self, comp: CompensationModel, step: str) -> Compensation:
        kind = next(StepKind(k) for k in ("http", "job", "worker") if getattr(comp, k) is not None)
        times: list[ComputedTime] = []
        return Compensation(
            action=self._action(kind, getattr(comp, kind.value), step, f"compensate.{kind.value}"),
            retry=self._retry(comp.retry, step, "compensate.retry", times),
            timeouts=self._timeouts(comp.timeout, step, "compensate.timeout", times),
            times=tuple(times),
            on_interrupt=comp.on_interrupt,
        )

    def _memo(self, step: Step) -> Memo | None:
        if step.memoize is None:
            return None
        own = step.memoize
        max_age = self._duration(own.max_age, step.name, "memoize.maxAge") if own.max_age else None
        return Memo(key=self._template(own.key, step.name, "memoize.key"), max_age=max_age)

    def _repeat(self, step: Step) -> Repeat | None:
        if step.repeat is None:
            return None
        rep = step.repeat
        interval = (
            self._duration(rep.interval, step.name, "repeat.interval") if rep.interval else None
        )
        if rep.continue_as_new_every is not None and self.depth.get(step.name, 0) != 0:
            raise DefinitionError(
                "continueAsNewEvery restarts the whole run, and the iterations it carries are "
                "counted per step: a step in a forEach has one count per item; move the "
                "repeat out of the forEach",
                step=step.name,
                field="repeat.continueAsNewEvery",
            )
        return Repeat(
            until=self._expression(rep.until, step.name, "repeat.until"),
            interval=interval,
            max_iterations=rep.max_iterations,
            continue_every=rep.continue_as_new_every,
        )

    # -- policies ----------------------------------------------------------------------------

    def _retry(
        self, own: BackoffModel | None, step: str, base: str, times: list[ComputedTime]
    ) -> tuple[RetryPolicy, ...]:
        """The rules of `own` (a policy without `rules` is one rule), each merged field by
        field over the policy's own fields, then `defaults.retry`, then the built-ins."""
        if isinstance(own, RetryModel) and own.rules:
            return tuple(
                self._rule([(rule, f"{base}.rules[{i}]"), (own, base)], step, f"retry[{i}]", times)
                for i, rule in enumerate(own.rules)
            )
        # A single policy's computed intervals are keyed `retry[0]` like the first rule's.
        return (self._rule([(own, base)], step, "retry[0]", times),)

    def _rule(
        self,
        layers: list[tuple[BackoffModel | None, str]],
        step: str,
        key: str,
        times: list[ComputedTime],
    ) -> RetryPolicy:
        """One rule from `layers` (each a model and where it is written), the first one that
        sets a field giving it, then `defaults.retry`."""
        stack = [*layers, (self.default_retry, "defaults.retry")]
        own = layers[0][0]

        def source(attr: str) -> tuple[Any, str]:
            for model, base in stack:
                value = getattr(model, attr) if model is not None else None
                if value is not None:
                    return value, base
            return None, "defaults.retry"

        def pick(attr: str) -> Any:
            return source(attr)[0]

        def where(attr: str, alias: str) -> str:
            return f"{source(attr)[1]}.{alias}"

        initial_text = pick("initial_interval")
        initial_where = where("initial_interval", "initialInterval")
        initial = (
            self._time(initial_text, step, initial_where, times, key=f"{key}.initialInterval")
            if initial_text is not None
            else DEFAULT_INITIAL_INTERVAL
        )
        max_text = pick("max_interval")
        max_where = where("max_interval", "maxInterval")
        maximum = (
            self._time(max_text, step, max_where, times, key=f"{key}.maxInterval")
            if max_text is not None
            else (initial * DEFAULT_MAX_INTERVAL_FACTOR if initial is not None else None)
        )
        if initial is not None and maximum is not None and maximum < initial:
            raise DefinitionError(
                f"maxInterval ({max_text}) is shorter than initialInterval ({initial_text})",
                step=step,
                field=max_where,
            )
        attempts = pick("max_attempts")
        coefficient = pick("backoff_coefficient")
        jitter = pick("jitter")
        # Only a rule selects errors: a compensation's or a default policy cannot.
        selector = own if isinstance(own, RuleModel) else None
        when = selector.when if selector is not None else None
        base = layers[0][1]
        return RetryPolicy(
            max_attempts=attempts if attempts is not None else DEFAULT_MAX_ATTEMPTS,
            # A computed interval is replaced when the step starts; 0 until then.
            initial_interval=initial if initial is not None else 0.0,
            backoff_coefficient=(
                float(coefficient) if coefficient is not None else DEFAULT_BACKOFF_COEFFICIENT
            ),
            max_interval=maximum if maximum is not None else 0.0,
            jitter=float(jitter) if jitter is not None else DEFAULT_JITTER,
            non_retryable_errors=frozenset(pick("non_retryable_errors") or ()),
            errors=frozenset(selector.errors or ()) if selector is not None else frozenset(),
            when=self._expression(when, step, f"{base}.when") if when is not None else None,
            source=base,
            max_interval_factor=(
                DEFAULT_MAX_INTERVAL_FACTOR if max_text is None and initial is None else None
            ),
        )

    def _timeouts(
        self, own: TimeoutsModel | None, step: str, base: str, times: list[ComputedTime]
    ) -> Timeouts:
        default = self.default_timeout
        values: dict[str, float | None] = {}
        for attr, alias in (
            ("start_to_close", "startToClose"),
            ("schedule_to_close", "scheduleToClose"),
            ("heartbeat", "heartbeat"),
        ):
            own_value = getattr(own, attr) if own is not None else None
            text = own_value if own_value is not None else getattr(default, attr)
            where = f"{base}.{alias}" if own_value is not None else f"defaults.timeout.{alias}"
            values[attr] = (
                self._time(text, step, where, times, key=f"timeout.{alias}")
                if text is not None
                else None
            )
        return Timeouts(**values)

    def _time(
        self,
        text: str,
        step: str,
        where: str,
        times: list[ComputedTime],
        *,
        key: str | None = None,
    ) -> float | None:
        """Seconds of a literal duration, or None for a computed one, which is compiled and
        added to `times` under `key` (the field's path in the step; `where` is the field
        written, which for an inherited default is in `defaults`)."""
        if not is_computed(text):
            return self._duration(text, step, where)
        times.append(ComputedTime(key or where, self._template(text, step, where), where=where))
        return None

    # -- leaves ------------------------------------------------------------------------------

    def _duration(self, text: str, step: str | None, where: str) -> float:
        try:
            seconds = parse_duration(text)
        except DurationError as exc:
            raise DefinitionError(str(exc), step=step, field=where) from None
        if seconds <= 0:
            raise DefinitionError(f"duration {text!r} must be positive", step=step, field=where)
        return seconds

    def _timestamp(self, text: str, step: str, where: str) -> int:
        try:
            moment = parse_timestamp(text)
        except TimestampError as exc:
            raise DefinitionError(str(exc), step=step, field=where) from None
        return round(moment.timestamp() * 1000)

    def _lock(self, sync: Synchronization | None, step: str | None) -> LockDef | None:
        if sync is None:
            return None
        if sync.mutex is not None:
            name = self._template(sync.mutex, step, "synchronization.mutex")
            return LockDef(kind=LockKind.MUTEX, name=name, limit=1, namespace=sync.namespace)
        semaphore = sync.semaphore
        assert semaphore is not None
        ref = semaphore.config_map_key_ref
        return LockDef(
            kind=LockKind.SEMAPHORE,
            name=self._template(semaphore.name, step, "synchronization.semaphore.name"),
            limit=semaphore.limit,
            config_map=(ref.name, ref.key) if ref is not None else None,
            namespace=sync.namespace,
        )

    def _expression(self, source: str, step: str | None, where: str) -> Expression:
        try:
            expression = compile_expression(source, step=step, field=where)
        except ExpressionError as exc:
            raise DefinitionError(str(exc)) from None
        self._check_references(expression.step_references, step, where)
        self._check_roots(expression.roots, step, where)
        return expression

    def _template(self, value: Any, step: str | None, where: str) -> Template:
        try:
            template = compile_template(value, step=step, field=where)
        except ExpressionError as exc:
            raise DefinitionError(str(exc)) from None
        self._check_references(template.step_references, step, where)
        self._check_roots(template.roots, step, where)
        return template

    def _check_roots(self, roots: frozenset[str], step: str | None, where: str) -> None:
        if "update" in roots and not self.in_update:
            raise DefinitionError(
                "`update` (the update request) is known only in an update handler (updates[])",
                step=step,
                field=where,
            )
        if "step" in roots and (step is None or step not in self.in_finally):
            raise DefinitionError(
                "`step` (the step that ended) is known only in the steps of a finally list; "
                "use steps.<name> here",
                step=step,
                field=where,
            )

    def _check_references(self, references: frozenset[str], step: str | None, where: str) -> None:
        unknown = sorted(references - self.names.keys())
        if unknown:
            raise DefinitionError(
                f"steps.{unknown[0]} names no step of this workflow", step=step, field=where
            )


UNBOUNDED = 2**31 - 1
"""A forEach's `concurrency` when unset: every item may start (the run's parallelism bounds)."""


def _child_policy() -> RetryPolicy:
    """The retry policy of a `workflow` step that does not give one: a single attempt."""
    return RetryPolicy(
        max_attempts=CHILD_ATTEMPTS,
        initial_interval=DEFAULT_INITIAL_INTERVAL,
        backoff_coefficient=DEFAULT_BACKOFF_COEFFICIENT,
        max_interval=DEFAULT_INITIAL_INTERVAL * DEFAULT_MAX_INTERVAL_FACTOR,
        jitter=DEFAULT_JITTER,
        non_retryable_errors=frozenset(),
    )


def _check_policies(step: Step, kind: StepKind) -> None:
    """Refuse a step's own `retry` or `timeout` where nothing would use it.

    Only attempts are retried and timed: those of activities and of child runs, and only an
    activity heartbeats. `defaults` apply where they can and are never refused."""
    attempts = kind.is_activity or kind is StepKind.WORKFLOW
    for field_name, given in (("retry", step.retry), ("timeout", step.timeout)):
        if given is None or attempts:
            continue
        if kind is StepKind.PARALLEL:
            fix = "remove it, or set it on the steps of its branches"
        elif kind is StepKind.FOR_EACH:
            fix = "remove it, or set it on forEach.step"
        elif kind is StepKind.WAIT_FOR_SIGNAL and field_name == "timeout":
            fix = "remove it, and bound the wait with waitForSignal.timeout"
        else:
            fix = "remove it"
        raise DefinitionError(
            f"{field_name} has no effect on a {kind.value} step: only http, job, worker and "
            f"workflow steps accept it; {fix}",
            step=step.name,
            field=field_name,
        )
    if kind is StepKind.WORKFLOW and step.timeout is not None and step.timeout.heartbeat:
        raise DefinitionError(
            "heartbeat has no effect on a workflow step: only http, job and worker steps "
            "heartbeat; remove it, and bound the child run with timeout.startToClose or "
            "timeout.scheduleToClose",
            step=step.name,
            field="timeout.heartbeat",
        )


def _children(step: Step, depth: int) -> Iterator[tuple[list[Step], int, str]]:
    """Nested step lists of `step`, the forEach depth their steps live at, and the relation."""
    if step.parallel is not None:
        for branch in step.parallel.branches:
            yield branch.steps, depth, "branch"
    if step.for_each is not None:
        yield [step.for_each.step], depth + 1, "forEach"
    for clause in step.catch or []:
        if clause.steps:
            yield clause.steps, depth, "catch"
    if step.finally_:
        yield step.finally_, depth, "finally"


def _check_acyclic(steps: list[Step], after: Mapping[str, tuple[str, ...]]) -> None:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(after)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node before the node that needs it; reverse it to read as
        # "a needs b needs a", then start from the cycle's step that comes first in the list.
        cycle: list[str] = list(reversed(exc.args[1]))[:-1]
        order = {s.name: i for i, s in enumerate(steps)}
        start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
        ring = cycle[start:] + cycle[:start]
        first = next(s for s in steps if s.name == ring[0])
        raise DefinitionError(
            "cycle " + " -> ".join([*ring, ring[0]]),
            step=ring[0],
            field="depends" if first.depends is not None else "needs",
        ) from None
