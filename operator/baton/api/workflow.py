"""The workflow language: pydantic models of a Workflow's spec.

These models are the edge where YAML written by users becomes typed data. Their field
descriptions become `kubectl explain` text through the generated CRDs, so they are written for
users. Everything here is structural validation; semantic checks that need the whole definition
(DAG cycles, expression references) live in `baton.engine.definition`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from baton.api.duration import (
    Duration,
    DurationError,
    TimestampError,
    parse_duration,
    parse_timestamp,
)
from baton.api.locks import Synchronization
from baton.api.names import ObjectName, TemplatedObjectName

JSON = Any
"""Any JSON value; strings in it may hold `${{ cel }}` interpolations (`$${{` is a literal
`${{`)."""

MAX_EXPRESSION_LENGTH = 4096
"""Characters in one CEL expression, bare or inside `${{ }}`; the API server refuses longer bare
ones and compilation longer interpolated ones (docs/language.md lists every expression limit)."""

CelExpression = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_EXPRESSION_LENGTH,
        description="A bare CEL expression (at most 4096 characters).",
    ),
]

INTERPOLATION = "${{"
"""What makes a time field computed: it holds a `${{ cel }}` evaluated when the step starts."""


def is_computed(text: str) -> bool:
    """True when a time field holds an expression rather than a literal."""
    return INTERPOLATION in text


def _duration_or_expression(text: str) -> str:
    if not is_computed(text):
        try:
            parse_duration(text)
        except DurationError as exc:
            raise ValueError(f"{exc}, or compute it with ${{{{ cel }}}}") from None
    return text


def _timestamp_or_expression(text: str) -> str:
    if not is_computed(text):
        try:
            parse_timestamp(text)
        except TimestampError as exc:
            raise ValueError(f"{exc}, or compute it with ${{{{ cel }}}}") from None
    return text


COMPUTED_DURATION_PATTERN = r"^([0-9]{1,15}(\.[0-9]{1,9})?(ms|s|m|h|d)){1,8}$|\$\{\{"
"""A literal duration, or anything holding `${{` (compiled with the definition). The field's
length admits an expression, so the literal's own numbers are bounded here: a duration of 400
digits is refused by the API server as `Duration` fields refuse it by their length."""

ComputedDuration = Annotated[
    str,
    Field(
        pattern=COMPUTED_DURATION_PATTERN,
        max_length=MAX_EXPRESSION_LENGTH + 16,
        description="A duration (`90s`, `1h30m`, `7d`), or `${{ cel }}` evaluated when the step "
        "starts, giving a duration string (`2h`), a number of seconds, or a CEL duration "
        "(`${{ timestamp(input.expiry) - now }}`).",
    ),
    AfterValidator(_duration_or_expression),
]

ComputedTimestamp = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_EXPRESSION_LENGTH + 16,
        description="An RFC 3339 timestamp with its time zone (`2026-01-02T15:04:05Z`), or "
        "`${{ cel }}` evaluated when the step starts giving one (a string or a CEL timestamp, "
        "`${{ now + duration('36h') }}`).",
    ),
    AfterValidator(_timestamp_or_expression),
]

STEP_NAME_PATTERN = r"^[a-z](?:[a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?$"
"""A lowercase letter, then letters, digits, underscores or hyphens, not ending in a hyphen
(`charge-card`, as Kubernetes users write names; `-` at the end would only be cut from the Job
and child names derived from it)."""
StepName = Annotated[
    str,
    Field(
        pattern=STEP_NAME_PATTERN,
        max_length=63,
        description="Step name: a lowercase letter, then letters, digits, underscores or "
        "hyphens, not ending in a hyphen (at most 63 characters). Referenced in expressions "
        "as `steps.<name>`, or `steps['<name>']` when it holds a hyphen.",
    ),
]


class Model(BaseModel):
    """Base of every resource model: camelCase as written in YAML, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


ANY_ERROR = "*"
"""The error type that matches every error, in `catch` clauses and retry rules."""


class RetryBackoff(Model):
    """How failed attempts are retried: how many, and how long between them."""

    max_attempts: int | None = Field(
        None,
        alias="maxAttempts",
        ge=0,
        description="Total attempts (0: unlimited).",
    )
    initial_interval: ComputedDuration | None = Field(
        None, alias="initialInterval", description="Delay before the second attempt."
    )
    backoff_coefficient: float | None = Field(
        None, alias="backoffCoefficient", ge=1, description="Each delay is the previous times this."
    )
    max_interval: ComputedDuration | None = Field(
        None,
        alias="maxInterval",
        description="Upper bound of a single delay.",
    )
    jitter: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Fraction of each delay randomised (deterministically, from run uid and "
        "attempt): 0.2 spreads a 10s delay over 8s..12s.",
    )
    non_retryable_errors: list[str] | None = Field(
        None,
        alias="nonRetryableErrors",
        description="Error types that fail the step at once, without further attempts.",
    )


class RetryRule(RetryBackoff):
    """A retry policy for the errors `errors` and `when` select."""

    errors: list[str] | None = Field(None, min_length=1, description="Error types (default: all).")
    when: CelExpression | None = Field(
        None,
        description="Bare CEL over `error` (`error.details.status`): applies when true.",
    )

    @property
    def matches_everything(self) -> bool:
        """True when this rule applies to every error (no `when`, no narrowing `errors`)."""
        return self.when is None and (self.errors is None or ANY_ERROR in self.errors)


MAX_RETRY_RULES = 10


class RetryPolicy(RetryRule):
    """How failed attempts of a step are retried: one policy, or several `rules`."""

    rules: list[RetryRule] | None = Field(
        None,
        min_length=1,
        max_length=MAX_RETRY_RULES,
        description="Rules with this policy's fields, which they default to; the first that "
        "matches an error applies.",
    )

    @model_validator(mode="after")
    def _rules_select(self) -> RetryPolicy:
        if self.rules is None:
            return self
        if self.errors is not None or self.when is not None:
            raise ValueError(
                "with rules, errors and when belong on each rule: move them into the rules"
            )
        for i, rule in enumerate(self.rules[:-1]):
            if rule.matches_everything:
                raise ValueError(
                    f"rules[{i + 1}] can never apply: rules[{i}] matches every error (it has no "
                    "`when` and no `errors`, or `errors: ['*']`); put the rule for every error "
                    "last"
                )
        return self


class Timeouts(Model):
    """Time limits of a step's activity."""

    start_to_close: ComputedDuration | None = Field(
        None, alias="startToClose", description="Limit of one attempt, from its start."
    )
    schedule_to_close: ComputedDuration | None = Field(
        None,
        alias="scheduleToClose",
        description="Limit across all attempts and backoffs, from the first schedule.",
    )
    heartbeat: ComputedDuration | None = Field(
        None,
        description="Longest silence between heartbeats of a running attempt (worker activities).",
    )


class Defaults(Model):
    """Policies every step inherits unless it sets its own."""

    retry: RetryBackoff | None = Field(
        None,
        description="Default retry policy of activities (http, job, worker steps and "
        "compensations): the fields a step's own rules leave unset. Not of `workflow` steps: "
        "a child run has its own retries, and is retried only when its step says so.",
    )
    timeout: Timeouts | None = Field(None, description="Default activity timeouts.")


class SecretKeyRef(Model):
    """A key of a Secret in the run's own namespace."""

    name: TemplatedObjectName = Field(
        description="Name of a Secret in the run's own namespace, labelled "
        "`baton.dev/workflow-secret=true` by its owner to let runs use it."
    )
    key: str = Field(min_length=1, max_length=253, description="Key in the Secret's data.")


class SecretSource(Model):
    """A value read from a Secret when the activity runs; never copied into status or history."""

    secret_key_ref: SecretKeyRef = Field(alias="secretKeyRef", description="Where the value is.")


class HttpAction(Model):
    """Call an HTTP endpoint. The response's JSON body is the step's output."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = Field(
        "GET", description="HTTP method."
    )
    url: str = Field(min_length=1, description="URL; may interpolate `${{ }}`.")
    headers: dict[str, str | SecretSource] | None = Field(
        None, description="Request headers: a string, or a value from a Secret."
    )
    body: JSON = Field(None, description="JSON request body; strings may interpolate `${{ }}`.")
    success_codes: list[int] | None = Field(
        None,
        alias="successCodes",
        description="Status codes that count as success (default: any 2xx).",
    )


class EnvVar(Model):
    """An environment variable of a Job's container."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(None, description="Literal value; may interpolate `${{ }}`.")
    value_from: SecretSource | None = Field(
        None, alias="valueFrom", description="Value from a Secret in the run's namespace."
    )


class JobAction(Model):
    """Run a container as a Kubernetes Job. The JSON in its termination message is the output."""

    image: str = Field(min_length=1, description="Container image.")
    command: list[str] | None = Field(None, description="Entrypoint override.")
    args: list[str] | None = Field(None, description="Arguments; each may interpolate `${{ }}`.")
    env: list[EnvVar] | None = Field(None, description="Environment variables.")
    resources: dict[str, dict[str, str]] | None = Field(
        None, description="Container resources (`requests`, `limits`) as in a Pod spec."
    )
    service_account_name: str | None = Field(
        None,
        alias="serviceAccountName",
        description="ServiceAccount the Job's pod runs as, one the operator's pod policy "
        "allows. Without it the pod gets no Kubernetes API token.",
    )
    pod_annotations: dict[str, str] | None = Field(
        None,
        alias="podAnnotations",
        description="Annotations of the Job's pod (service mesh, admission, scheduling hints); "
        "each key must be one the operator's pod policy allows.",
    )


class WorkerAction(Model):
    """Run an activity on a WorkerPool."""

    pool: TemplatedObjectName = Field(description="Name of the WorkerPool in the run's namespace.")
    activity: str = Field(min_length=1, description="Registered activity name.")
    input: JSON = Field(None, description="Activity input; strings may interpolate `${{ }}`.")


class ParentClosePolicy(StrEnum):
    """What happens to a child run when its parent ends before it."""

    TERMINATE = "terminate"
    ABANDON = "abandon"


class ChildWorkflowAction(Model):
    """Start a child WorkflowRun and wait for it; its output is the step's output."""

    workflow_ref: ObjectName = Field(
        alias="workflowRef", description="Name of the child's Workflow (in the run's namespace)."
    )
    input: JSON = Field(None, description="Child input; strings may interpolate `${{ }}`.")
    parent_close_policy: ParentClosePolicy = Field(
        ParentClosePolicy.TERMINATE,
        alias="parentClosePolicy",
        description="terminate or abandon the child if this run ends first.",
    )


class SleepAction(Model):
    """Wait a time, or until a time: exactly one of `duration` and `until`."""

    duration: ComputedDuration | None = Field(None, description="How long, for example `24h`.")
    until: ComputedTimestamp | None = Field(
        None,
        description="Until this RFC 3339 time (a past one: at once).",
    )

    @model_validator(mode="after")
    def _duration_or_until(self) -> SleepAction:
        if (self.duration is None) == (self.until is None):
            raise ValueError(
                "sleep needs exactly one of duration (how long) or until (a time)"
                + (" (found both)" if self.duration is not None else "")
            )
        return self


class WaitForSignalAction(Model):
    """Block until a signal of this name arrives; its payload is the step's output."""

    name: str = Field(min_length=1, description="Signal name.")
    timeout: ComputedDuration | None = Field(
        None, description="Give up after this long with a `Timeout` error."
    )


class FailAction(Model):
    """End the step with an error of a chosen type."""

    error: str = Field("Failed", min_length=1, description="Error type.")
    message: str = Field("", description="Error message; may interpolate `${{ }}`.")


class ContinueAsNewAction(Model):
    """End the run and start a fresh run of the same Workflow with new input
    (continue-as-new): same lineage, a new history."""

    input: JSON = Field(None, description="The next run's input; strings may interpolate `${{ }}`.")


class Branch(Model):
    """One branch of a `parallel` step."""

    name: str = Field(min_length=1, description="Branch name.")
    steps: list[Step] = Field(
        min_length=1, max_length=50, description="Steps of the branch, in order (at most 50)."
    )


class ParallelMode(StrEnum):
    """How a `parallel` step ends."""

    ALL = "all"
    """Every branch runs to its end; the output maps branch name to its last step's output."""
    RACE = "race"
    """The first branch to end decides; the others are cancelled."""


class ParallelAction(Model):
    """Run branches at the same time. With `mode: all` (the default) the output maps branch
    name to its last step's output; with `mode: race` the first branch to end wins, the others
    are cancelled, and the output is `{winner: <branch name>, output: <its last step's output>}`."""

    branches: list[Branch] = Field(
        min_length=1, max_length=16, description="The branches (at most 16)."
    )
    mode: ParallelMode = Field(
        ParallelMode.ALL,
        description="all, or race: the first branch to end wins.",
    )
    fail_fast: bool | None = Field(
        None,
        alias="failFast",
        description="false: a failed branch lets others go on.",
    )

    @model_validator(mode="after")
    def _fail_fast_needs_all(self) -> ParallelAction:
        if self.mode is ParallelMode.RACE and self.fail_fast is not None:
            raise ValueError(
                "failFast has no effect with mode: race (the first branch to end decides); "
                "remove failFast"
            )
        return self


class ForEachAction(Model):
    """Run a step once per item; the output is the list of per-item outputs, in item order."""

    items: CelExpression = Field(
        description="CEL expression giving the list of items. A run holds at most 2,000 step "
        "instances; a larger fan-out fails with TooManyItems (use child runs per batch)."
    )
    concurrency: int | None = Field(
        None,
        ge=1,
        description="Items in flight at once (default: all, within the run's parallelism).",
    )
    step: Step = Field(description="The step run per item; `item` and `index` are in scope.")
    tolerated_failure_count: int | None = Field(
        None,
        alias="toleratedFailureCount",
        ge=0,
        description="Failed items tolerated.",
    )
    tolerated_failure_percentage: float | None = Field(
        None,
        alias="toleratedFailurePercentage",
        ge=0,
        le=100,
        description="Percentage of items that may fail.",
    )


class CatchClause(Model):
    """Recovery from a step's final error."""

    errors: list[str] = Field(
        min_length=1, description="Error types this clause handles; `*` matches any."
    )
    output: JSON = Field(None, description="Continue with this as the step's output.")
    steps: list[Step] | None = Field(
        None,
        max_length=20,
        description="Run these steps instead; the last one's output becomes the step's output "
        "(at most 20).",
    )


class RepeatPolicy(Model):
    """Run a step again until a condition holds (polling, inspections)."""

    until: CelExpression = Field(
        description="Bare CEL evaluated after each iteration; true ends the repetition."
    )
    interval: Duration | None = Field(None, description="Pause between iterations.")
    max_iterations: int = Field(
        100, alias="maxIterations", ge=1, description="Fail with `MaxIterations` after this many."
    )
    continue_as_new_every: int | None = Field(
        None,
        alias="continueAsNewEvery",
        ge=1,
        description="After this many iterations in one run, continue as new with the same "
        "input, `vars` and iteration count (not in a forEach).",
    )


MAX_MEMO_KEY_LENGTH = 1024
"""Characters in a rendered memoization key: it is kept in the step's status and history."""


class Memoize(Model):
    """Reuse a stored output instead of running the step again (Argo's memoize)."""

    key: str = Field(
        min_length=1,
        max_length=MAX_EXPRESSION_LENGTH,
        description="The cache key; may interpolate `${{ }}` (`report-${{ input.day }}`). "
        "Entries are per Workflow and step name.",
    )
    max_age: Duration | None = Field(
        None,
        alias="maxAge",
        description="Use an entry only while younger than this (`1h`); none: while it is kept.",
    )


class Compensation(Model):
    """The undo action of a step, run when the saga unwinds."""

    http: HttpAction | None = Field(None, description="Compensate with an HTTP call.")
    job: JobAction | None = Field(None, description="Compensate with a Job.")
    worker: WorkerAction | None = Field(None, description="Compensate with a worker activity.")
    retry: RetryBackoff | None = Field(None, description="Retry policy of the compensation.")
    timeout: Timeouts | None = Field(None, description="Timeouts of the compensation.")
    on_interrupt: bool = Field(
        False,
        alias="onInterrupt",
        description="Also compensate the step when a cancel or the run timeout interrupts "
        "it in flight (http, job, worker and workflow steps).",
    )

    @model_validator(mode="after")
    def _exactly_one_action(self) -> Compensation:
        kinds = [k for k in ("http", "job", "worker") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a compensation needs exactly one of http, job or worker"
                + (f" (found {', '.join(kinds)})" if kinds else "")
            )
        return self


STEP_KINDS: tuple[str, ...] = (
    "http",
    "job",
    "worker",
    "workflow",
    "sleep",
    "wait_for_signal",
    "parallel",
    "for_each",
    "set",
    "fail",
    "continue_as_new",
)
"""Attribute names of the step kinds on `Step`, in documentation order."""

ACTIVITY_KINDS: frozenset[str] = frozenset({"http", "job", "worker"})

MAX_DEPENDS_LENGTH = 1024
"""Characters in one `depends` expression (engine.depends parses it)."""


class ContinueOn(Model):
    """Outcomes of a step that do not stop the steps around it."""

    failed: bool | None = Field(None, description="true: a failure does not stop the run.")


MAX_CLEANUP_STEPS = 20
"""Steps in one `onExit` or `finally` list (as in a catch clause): a cleanup is a few calls."""


class Step(Model):
    """One step of a workflow: exactly one kind, plus the policies around it."""

    name: StepName
    needs: list[str] | None = Field(
        None,
        description="Steps that must finish first. Without it a step follows the previous one.",
    )
    depends: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_DEPENDS_LENGTH,
        description="Instead of needs: `a.Failed || (b && c.Skipped)`.",
    )
    continue_on: ContinueOn | None = Field(
        None,
        alias="continueOn",
        description="Outcomes that do not stop the run.",
    )
    when: CelExpression | None = Field(
        None, description="Bare CEL; when false the step is Skipped."
    )
    http: HttpAction | None = Field(None, description="An HTTP call.")
    job: JobAction | None = Field(None, description="A Kubernetes Job.")
    worker: WorkerAction | None = Field(None, description="An activity on a WorkerPool.")
    workflow: ChildWorkflowAction | None = Field(None, description="A child run.")
    sleep: SleepAction | None = Field(
        None,
        description="A durable timer.",
    )
    wait_for_signal: WaitForSignalAction | None = Field(
        None, alias="waitForSignal", description="Wait for a signal."
    )
    parallel: ParallelAction | None = Field(None, description="Branches run concurrently.")
    for_each: ForEachAction | None = Field(None, alias="forEach", description="Fan out over items.")
    set: dict[str, JSON] | None = Field(
        None, description="Assign `vars`: name to value (strings may interpolate `${{ }}`)."
    )
    fail: FailAction | None = Field(None, description="Fail with an error.")
    continue_as_new: ContinueAsNewAction | None = Field(
        None, alias="continueAsNew", description="End the run; a new run goes on with new input."
    )
    retry: RetryPolicy | None = Field(
        None,
        description="Overrides `defaults.retry` field by field (`rules`: several, by error). "
        "Only http, job, worker and workflow steps accept it.",
    )
    timeout: Timeouts | None = Field(
        None,
        description="Overrides `defaults.timeout`. Only http, job, worker and workflow steps "
        "accept it (`heartbeat`: not workflow); waitForSignal has its own `timeout`.",
    )
    catch: list[CatchClause] | None = Field(
        None, max_length=10, description="Recoveries by error type (at most 10)."
    )
    compensate: Compensation | None = Field(
        None, description="Undo action run if the run later fails or is cancelled."
    )
    repeat: RepeatPolicy | None = Field(None, description="Run again until a condition holds.")
    synchronization: Synchronization | None = Field(
        None, description="A mutex or semaphore slot held while the step runs."
    )
    memoize: Memoize | None = Field(
        None,
        description="Take the output stored under a key by an earlier successful execution "
        "instead of running (http, job, worker and workflow steps).",
    )
    finally_: list[Step] | None = Field(
        None,
        alias="finally",
        min_length=1,
        max_length=MAX_CLEANUP_STEPS,
        description="Cleanup steps run once the step ended, whatever the outcome (not when "
        "Skipped); `step.outcome` and `step.error` are in scope (at most 20).",
    )

    @property
    def kind(self) -> str:
        """The step's kind as written in YAML (`waitForSignal`, `forEach`, ...)."""
        for attr in STEP_KINDS:
            if getattr(self, attr) is not None:
                return _YAML_NAME.get(attr, attr)
        raise AssertionError("validated steps always have a kind")

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Step:
        kinds = [_YAML_NAME.get(a, a) for a in STEP_KINDS if getattr(self, a) is not None]
        if len(kinds) != 1:
            found = f"; found {' and '.join(kinds)}" if kinds else ""
            raise ValueError(
                f"step {self.name!r} must have exactly one kind of "
                f"{', '.join(_YAML_NAME.get(a, a) for a in STEP_KINDS)}{found}"
            )
        return self

    @model_validator(mode="after")
    def _needs_or_depends(self) -> Step:
        if self.needs is not None and self.depends is not None:
            raise ValueError(
                f'step {self.name!r}: give needs or depends, not both (depends: "a && b" '
                "says what needs: [a, b] says)"
            )
        return self

    @model_validator(mode="after")
    def _interruptible(self) -> Step:
        comp = self.compensate
        if comp is not None and comp.on_interrupt:
            kind = self.kind
            if kind not in (*ACTIVITY_KINDS, "workflow"):
                raise ValueError(
                    f"step {self.name!r}, field 'compensate.onInterrupt': only http, job, "
                    "worker and workflow steps have an activity in flight that a cancel can "
                    f"interrupt; remove onInterrupt (this is a {kind} step)"
                )
        return self

    @model_validator(mode="after")
    def _memoizable(self) -> Step:
        if self.memoize is not None and self.kind not in (*ACTIVITY_KINDS, "workflow"):
            raise ValueError(f"step {self.name!r}, field 'memoize': {MEMOIZE_KINDS_TEXT}")
        return self


MEMOIZE_KINDS_TEXT = (
    "only http, job, worker and workflow steps produce an output that can be memoized; "
    "remove memoize"
)

_YAML_NAME = {
    "wait_for_signal": "waitForSignal",
    "for_each": "forEach",
    "continue_as_new": "continueAsNew",
}


class SignalHandler(Model):
    """Update `vars` whenever a signal of this name arrives; `signal.payload` is in scope."""

    signal: str = Field(min_length=1, description="Signal name.")
    set: dict[str, JSON] = Field(description="vars to assign: name to value.")


MAX_UPDATE_HANDLERS = 50
"""Update handlers one Workflow may declare."""
MAX_UPDATE_STEPS = 20
"""Steps of one update handler, as many as a catch clause's."""


class UpdateHandler(Model):
    """A request that changes a running workflow and answers the caller (`baton update`): a
    validator that may refuse it, `vars` it assigns, and the result it returns."""

    name: str = Field(
        min_length=1, max_length=253, description="Update name, as `baton update RUN NAME` sends."
    )
    validate_: CelExpression | None = Field(
        None,
        alias="validate",
        description="Bare CEL that must be true, or the update is refused and nothing changes "
        "(`update.payload`, `vars`, `input`, `steps` in scope).",
    )
    message: str | None = Field(
        None,
        max_length=1024,
        description="The refusal's reason when `validate` is false; may interpolate `${{ }}`.",
    )
    set: dict[str, JSON] | None = Field(
        None, description="vars to assign when the update is accepted: name to value."
    )
    # Steps as the `steps` of a Workflow, kept opaque in the CRD (a third typed step list would
    # take the CRDs past the size kubectl apply can hold) and validated by the operator, which
    # compiles them into Steps (`baton.engine.definition`): a bad one makes the Workflow Invalid.
    steps: list[dict[str, JSON]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_UPDATE_STEPS,
        description="Steps (as the Workflow's) run once the update is accepted, after `set` and "
        "beside the run's own; the answer waits for them and `output` may read "
        f"`steps.<name>.output` (at most {MAX_UPDATE_STEPS}).",
    )
    output: JSON = Field(
        None,
        description="The update's result, evaluated after `set` (and `steps`); may interpolate "
        "`${{ }}`.",
    )


DEFAULT_PARALLELISM = 100
"""Activities and child runs one run has in flight at once when neither its Workflow nor the
run says. A forEach starts every item by default; 100 lets every usual fan-out start at once
while a run of 2,000 items cannot create 2,000 Jobs (each an API write and a pod) in one
decision. Raise it per Workflow or per run."""
MAX_PARALLELISM = 2_000
"""As many as a run can hold step instances: a higher bound would bound nothing."""


class OnCancel(StrEnum):
    """What cancelling a run does to the steps it already completed."""

    COMPENSATE = "compensate"
    ABANDON = "abandon"


class WorkflowSpec(Model):
    """A workflow definition."""

    input_schema: dict[str, JSON] | None = Field(
        None, alias="inputSchema", description="JSON Schema the run's input must satisfy."
    )
    defaults: Defaults | None = Field(None, description="Policies inherited by every step.")
    vars: dict[str, JSON] | None = Field(None, description="Initial values of `vars`.")
    steps: list[Step] = Field(min_length=1, max_length=150, description="The steps (at most 150).")
    signal_handlers: list[SignalHandler] | None = Field(
        None, alias="signalHandlers", description="Signal handlers updating `vars`."
    )
    queries: dict[str, CelExpression] | None = Field(
        None, description="Name to CEL; results are published to `status.queries`."
    )
    updates: list[UpdateHandler] | None = Field(
        None,
        max_length=MAX_UPDATE_HANDLERS,
        description="Update handlers: requests appended to a run's spec.updates that are "
        f"validated, change vars and answer in status.updates (at most {MAX_UPDATE_HANDLERS}).",
    )
    output: JSON = Field(None, description="The run's output; strings may interpolate `${{ }}`.")
    timeout: Duration | None = Field(None, description="Limit of the whole run.")
    parallelism: int | None = Field(
        None,
        ge=1,
        le=MAX_PARALLELISM,
        description="Activities (http, job, worker) and child runs the run may have in flight "
        f"at once, across all its steps (default {DEFAULT_PARALLELISM}); a step over the bound "
        "waits for a slot before it starts. A run's own `parallelism` overrides it.",
    )
    ttl_after_finished: Duration | None = Field(
        None,
        alias="ttlAfterFinished",
        description="Delete each run this long after it finished (like a Job's "
        "ttlSecondsAfterFinished); unset keeps finished runs until deleted.",
    )
    on_cancel: OnCancel = Field(
        OnCancel.COMPENSATE,
        alias="onCancel",
        description="compensate completed steps on cancel, or abandon them.",
    )
    fail_fast: bool | None = Field(
        None,
        alias="failFast",
        description="false: a failed step lets independent steps go on (default true).",
    )
    synchronization: Synchronization | None = Field(
        None,
        description="A mutex or semaphore slot the whole run holds: taken before its first "
        "step starts, released when it finishes. Locks are shared by the runs of one "
        "namespace; names may interpolate `${{ input... }}`.",
    )
    on_exit: list[Step] | None = Field(
        None,
        alias="onExit",
        min_length=1,
        max_length=MAX_CLEANUP_STEPS,
        description="Cleanup steps run once when the run ends, whatever the outcome "
        "(Succeeded, Failed, Compensated, CompensationFailed, Cancelled, TimedOut), after "
        "compensations and before the run takes its final phase; not after an Aborted run. "
        "`run.outcome` (that phase) and `run.error` are in scope. The run keeps its outcome "
        "and error; a failure here fails a run that had succeeded and is reported in the "
        "CleanupFailed condition (at most 20 steps).",
    )


Branch.model_rebuild()
ForEachAction.model_rebuild()
CatchClause.model_rebuild()
Step.model_rebuild()
