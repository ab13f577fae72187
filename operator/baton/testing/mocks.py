"""MOCKS.yaml: scripted activity outcomes and signals for offline runs.

```yaml
steps:
  pay:                                   # per step name, one outcome per execution, in order;
    - error: {type: CardDeclined, message: declined}    # the last one repeats
    - {duration: 30s, output: {id: p-1}}
signals:
  - {name: manualApproval, payload: {ok: true}, at: 2h}  # virtual time since the run started
updates:                                 # requests to update handlers, answered in the result
  - {name: addItem, payload: {sku: A-1}, at: 1h, id: first}   # id: default u<position>
actions:                                 # what a user does to the run, at virtual times
  - {action: suspend, at: 1h}
  - {action: resume, at: 3h}
  - {action: cancel, at: 5h}             # or redrive (a Failed run), as `baton redrive` does
```

Signals arrive at their `at`, in time order whatever their order in the list (signals of the
same time in list order), numbered as a cluster numbers the entries of `spec.signals`.

Every step and signal name is checked against the workflow (and the child workflows of the
file): a mock for a name it does not have is an error naming the ones it has, so a typo never
silently matches nothing. A step with no mock succeeds at once with output `{}`. Outcomes are
taken in the order the step is executed, across attempts, `repeat` iterations, forEach items and
child runs alike, so a list reads as "the first call gets this, the second that". A compensation
is mocked under the key `<step>.compensate`.
"""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from baton.api.duration import Duration, parse_duration
from baton.api.workflow import JSON, Model


class MockError(Model):
    """An error the mocked activity reports."""

    type: str = Field(min_length=1, description="Error type, matched by retry and catch.")
    message: str = Field("", description="Error message.")
    details: dict[str, Any] | None = Field(None, description="Structured detail.")
    retry_after: Duration | None = Field(
        None, alias="retryAfter", description="A Retry-After hint, as an HTTP 429 would give."
    )


class MockOutcome(Model):
    """What one execution of a step does."""

    output: JSON = Field(None, description="Output of a successful execution.")
    error: MockError | None = Field(None, description="Fail with this error instead.")
    duration: Duration | None = Field(None, description="Virtual time the execution takes.")
    heartbeat: Duration | None = Field(
        None, description="Heartbeat every this long while running (default: never)."
    )

    @model_validator(mode="after")
    def _output_or_error(self) -> MockOutcome:
        if self.error is not None and self.output is not None:
            raise ValueError("an outcome has either `output` or `error`, not both")
        return self

    @property
    def seconds(self) -> float:
        """Virtual seconds the execution takes."""
        return parse_duration(self.duration) if self.duration else 0.0


class MockSignal(Model):
    """A signal delivered at a virtual time."""

    name: str = Field(min_length=1, description="Signal name.")
    payload: JSON = Field(None, description="Signal payload.")
    at: Duration = Field("0s", description="Virtual time since the run started.")


class MockUpdate(Model):
    """An update request sent at a virtual time."""

    name: str = Field(min_length=1, description="Update handler name.")
    payload: JSON = Field(None, description="Update payload.")
    at: Duration = Field("0s", description="Virtual time since the run started.")
    id: str | None = Field(
        None, min_length=1, description="The request's id (default: u<position in the list>)."
    )


class RunAction(StrEnum):
    """What a user can do to a run besides signalling it (`baton cancel|suspend|resume|redrive`,
    or the matching `spec` fields)."""

    CANCEL = "cancel"
    SUSPEND = "suspend"
    RESUME = "resume"
    REDRIVE = "redrive"


class MockAction(Model):
    """A user's action on the run at a virtual time."""

    action: RunAction = Field(description="cancel, suspend, resume or redrive.")
    at: Duration = Field("0s", description="Virtual time since the run started.")


class Mocks(Model):
    """The whole MOCKS.yaml document."""

    steps: dict[str, list[MockOutcome]] = Field(
        default_factory=dict, description="Outcomes by step name."
    )
    signals: list[MockSignal] = Field(default_factory=list, description="Signals to send.")
    updates: list[MockUpdate] = Field(
        default_factory=list, description="Update requests to send; their answers are reported."
    )
    actions: list[MockAction] = Field(
        default_factory=list,
        description="Cancel, suspend, resume or redrive the run at virtual times, in order.",
    )


SUCCESS = MockOutcome(output={})


class OutcomeScript:
    """Hands out each step's outcomes in execution order; the last one repeats."""

    def __init__(self, mocks: Mocks) -> None:
        self._mocks = mocks
        self._taken: defaultdict[str, int] = defaultdict(int)

    def has(self, key: str) -> bool:
        """True when `key` (a step name or `<step>.compensate`) is mocked."""
        return key in self._mocks.steps

    def next(self, key: str) -> MockOutcome:
        """The outcome of the next execution of `key`."""
        outcomes = self._mocks.steps.get(key)
        if not outcomes:
            return SUCCESS
        index = min(self._taken[key], len(outcomes) - 1)
        self._taken[key] += 1
        return outcomes[index]
