"""Commands: the work the engine asks the shell to perform.

Every command is idempotent for the shell: starting the same (key, attempt) twice is one
activity (Jobs by deterministic name, HTTP calls and worker tasks by `idempotency_key`, child
runs by name), and cancelling something already gone is a no-op. That is what lets the shell
re-issue `pending_commands(state)` after a crash without ever repeating finished work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar


def idempotency_key(run_uid: str, key: str, attempt: int) -> str:
    """The `Idempotency-Key` of one attempt of an activity: the run's uid, the activity key
    (`pay`, `items[3].charge`, `pay/compensate`) and the attempt, so a re-issued attempt is
    recognised by whoever performs it and a new attempt is not."""
    return f"{run_uid}/{key}/{attempt}"


@dataclass(frozen=True)
class Command:
    """Base of every command."""

    type: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The command as a JSON object with its `type`, for logs and tests."""
        return {"type": self.type, **asdict(self)}


@dataclass(frozen=True)
class StartActivity(Command):
    """Perform one attempt of an activity: an HTTP call, a Job, or a task on a WorkerPool.

    `spec` is the step's action with every `${{ }}` rendered (for `http`: method, url, headers,
    body...; `job`: image, args, env...; `worker`: pool, activity, input). `step` is the step's
    name, `compensation` tells an undo action from the step's own. Timeouts are enforced by the
    engine; they are given so the shell can set matching client-side limits.
    """

    type: ClassVar[str] = "StartActivity"
    key: str
    step: str
    kind: str
    spec: dict[str, Any]
    attempt: int
    idempotency_key: str
    start_to_close: float | None
    heartbeat: float | None
    compensation: bool = False
    acknowledged: bool = False
    heartbeat_details: Any = None
    """The details of the last heartbeat an earlier attempt of the step reported (worker
    steps hand them to the activity, as Temporal does); None when there were none."""


@dataclass(frozen=True)
class CancelActivity(Command):
    """Stop an attempt whose result no longer matters (timed out, run cancelled). Best effort:
    a result that still arrives for it is ignored."""

    type: ClassVar[str] = "CancelActivity"
    key: str
    kind: str
    attempt: int
    idempotency_key: str


@dataclass(frozen=True)
class StartChildRun(Command):
    """Create the child WorkflowRun `name` (deterministic: the same key and attempt always give
    the same name, so a re-issue finds the existing child)."""

    type: ClassVar[str] = "StartChildRun"
    key: str
    step: str
    attempt: int
    name: str
    workflow_ref: str
    input: Any
    parent_close_policy: str
    acknowledged: bool = False


@dataclass(frozen=True)
class TerminateChild(Command):
    """Cancel the child run `name`."""

    type: ClassVar[str] = "TerminateChild"
    key: str
    attempt: int
    name: str


@dataclass(frozen=True)
class ContinueAsNew(Command):
    """Create the run `name` (deterministic: from the lineage and this run's uid, so a
    re-issue finds the run the first issue created) following the same Workflow with `input`,
    carrying `vars` and repeat `iterations`; it is the lineage's run number `number`."""

    type: ClassVar[str] = "ContinueAsNew"
    name: str
    input: Any
    lineage: str
    number: int
    vars: dict[str, Any] | None = None
    iterations: dict[str, int] | None = None
    cancel: bool = False
    """Create it cancelled (or cancel it, when it exists): the run was cancelled while it was
    continuing."""

    def continuation(self, previous: str) -> dict[str, Any]:
        """The new run's `spec.continuation`, continuing the run named `previous`: where it
        comes from, its lineage and number, and the state it carries."""
        out: dict[str, Any] = {"from": previous, "lineage": self.lineage, "number": self.number}
        if self.vars:
            out["vars"] = self.vars
        if self.iterations:
            out["iterations"] = self.iterations
        return out


@dataclass(frozen=True)
class LookupMemo(Command):
    """Read the memoization cache of the step `step` (of the run's Workflow) under `cache_key`
    and report a MemoResolved for (`key`, `attempt`, `iteration`): a hit when an entry exists
    that is younger than `max_age` seconds (any age when None). In flight until answered;
    reading twice is harmless, and only the first answer counts."""

    type: ClassVar[str] = "LookupMemo"
    key: str
    step: str
    attempt: int
    iteration: int
    cache_key: str
    max_age: float | None


@dataclass(frozen=True)
class StoreMemo(Command):
    """Store `output`, the successful output of the step `step` (of the run's Workflow), under
    `cache_key`. Issued once, in the decision where the step succeeded by running: writing the
    same entry again only refreshes it, and a store lost to a crash is a later miss."""

    type: ClassVar[str] = "StoreMemo"
    key: str
    step: str
    cache_key: str
    output: Any


@dataclass(frozen=True)
class FinishRun(Command):
    """The run reached a final phase: publish it (Kubernetes Event, metrics, parent run)."""

    type: ClassVar[str] = "FinishRun"
    phase: str
    output: Any
    error: dict[str, Any] | None


@dataclass(frozen=True)
class AcquireLock(Command):
    """Ask for the lock `name` (a mutex, or a slot of a semaphore of `limit` holders, or of the
    limit read from `config_map`: ConfigMap name and key) for the holder `holder` (the run's
    uid and `key`: a step path, or `(run)`). Idempotent: asking again for a holder already
    queued keeps its place, and one already granted stays granted. The shell reports
    LockAcquired once granted, LockWaiting with the holders meanwhile."""

    type: ClassVar[str] = "AcquireLock"
    key: str
    kind: str
    name: str
    holder: str
    limit: int | None = None
    config_map: tuple[str, str] | None = None
    namespace: str | None = None
    """The namespace keeping the lock when not the run's own."""


@dataclass(frozen=True)
class ReleaseLock(Command):
    """The holder `holder` no longer needs the lock `name`: drop it from the lock's holders or
    its queue (a no-op when it is in neither), and grant the lock to whoever is next."""

    type: ClassVar[str] = "ReleaseLock"
    key: str
    kind: str
    name: str
    holder: str
    limit: int | None = None
    config_map: tuple[str, str] | None = None
    namespace: str | None = None
    """The namespace keeping the lock when not the run's own."""
