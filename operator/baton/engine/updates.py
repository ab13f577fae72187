"""Updates: requests that change a running workflow and answer the caller (Temporal's Update).

A request is an entry `{id, name, payload}` of the run's `spec.updates`. Its handler (the
Workflow's `updates[]` entry of that name) decides in two stages:

1. `refusal` — pure and read-only — says whether the request is refused, and why: the run has
   finished or is ending, no handler has that name, the payload is too large, or the handler's
   `validate` expression is not true. A refused request changes nothing: the shell answers it
   in `status.updates.<id>` and records no event (as Temporal records no rejected update).
2. `accept` applies the `UpdateAccepted` event the shell folds for a request that passed:
   the handler's `set` assignments are rendered first, then made together (none when one
   fails), then its `output` is rendered over the new `vars`, and the answer is recorded in
   `State.updates`. All of it happens in that one event's decision, so the event in the
   history is the commit point: a crash before it was written loses nothing (the request is
   validated again), a crash after it is replayed from the history, never applied twice.

A handler may have `steps`. They run in the update's own scope — instances at `@<id>.<step>`,
driven by the machine's settle loop beside the run's steps (`drive`), with the run's retries,
timeouts, parallelism and suspension — and the answer waits for them: `Running` until they
end, then `output` is rendered over their outputs (`Completed`), or the first failure is the
answer (`Failed`). The run does not succeed while an update's steps run; a run that fails, is
cancelled or times out cancels them and answers `Failed` (`abandon`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from baton.engine.definition import Definition, UpdateHandler
from baton.engine.errors import StepError
from baton.engine.events import UpdateAccepted, UpdateRequested
from baton.engine.limits import value_problem
from baton.engine.scope import ROOT, BlockResult, Scope
from baton.engine.state import State, UpdateOutcome, UpdateResult, to_millis
from baton.engine.values import describe, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine

MAX_RESULTS = 32
"""Answers of accepted updates the state keeps (the oldest go first); the same bound applies
to refusals the shell keeps. Each is in the run's status; a caller waits for its own answer
seconds after sending it, long before 32 later ones push it out."""
MAX_OUTPUT_BYTES = 4 * 1024
"""An update's result, as JSON: 64 answers of at most 4 KiB stay a quarter of the status budget
(512 KiB). A larger result belongs in `vars` or a step's output, which a query can read."""
MAX_RUNNING = 10
"""Updates whose steps run at once; more are refused until one is answered. Each keeps its
payload in the status while it runs."""
MARK = "@"
"""First character of an update's scope segment (`@<id>.`): no step name starts with it."""
MAX_PAYLOAD_BYTES = 16 * 1024
"""An update's payload, as JSON. It is in the run's spec and history, and in its status while
its steps run: MAX_RUNNING of them stay under a third of the status budget (512 KiB). Bulk
data belongs in a ConfigMap or a URL the payload names."""


def refusal(
    definition: Definition, state: State, request: UpdateRequested, now: float
) -> str | None:
    """Why `request` is refused, or None when it is accepted. Reads `state`, never changes it."""
    from baton.engine.machine import Machine  # the machine imports this module

    handler = definition.update_handlers.get(request.name)
    if state.phase.finished:
        return f"the run has finished ({state.phase.value}); it takes no more updates"
    if state.ending is not None or state.compensations or state.exit_outcome is not None:
        why = f" ({state.ending.value})" if state.ending is not None else ""
        return f"the run is ending{why}; it takes no more updates"
    if handler is None:
        known = ", ".join(sorted(definition.update_handlers)) or "none"
        return f"no update handler is named {request.name!r} (the workflow has: {known})"
    problem = _payload_problem(request.payload)
    if problem is not None:
        return problem
    if handler.steps and len(running(state)) >= MAX_RUNNING:
        return (
            f"{MAX_RUNNING} updates are running their steps already; send it again once one "
            "was answered"
        )
    if handler.validate is None:
        return None
    machine = Machine(definition, state, to_millis(now))
    context = _context(machine, request.id, request.name, request.payload)
    try:
        verdict = handler.validate.evaluate(context)
    except EvaluationError as exc:
        return f"validate failed: {exc}"
    if not isinstance(verdict, bool):
        return f"validate must be true or false, got {describe(verdict)}"
    if verdict:
        return None
    return _message(handler, context)


def accept(machine: Machine, event: UpdateAccepted) -> None:
    """Run the handler of an accepted update and record its answer."""
    s = machine.state
    if event.id in s.updates:
        return  # answered already: a duplicate delivery
    handler = machine.d.update_handlers.get(event.name)
    if handler is None:  # the shell validated against this definition: only a forged history
        _answer(machine, event, error=StepError("UnknownUpdate", f"no handler {event.name!r}"))
        return
    context = _context(machine, event.id, event.name, event.payload)
    try:
        values = {var: render(template, context) for var, template in handler.assignments}
    except EvaluationError as exc:
        _answer(machine, event, error=StepError("ExpressionError", f"set: {exc}"))
        return
    s.vars.update(values)
    if handler.steps:
        # Answered once its steps end (`drive`, from the settle loop of this very decision).
        s.updates[event.id] = UpdateResult(
            event.name, UpdateOutcome.RUNNING, machine.now, payload=event.payload
        )
        return
    context["vars"] = s.vars
    _finish(machine, event.id, handler, context)


def running(state: State) -> list[str]:
    """Ids of the updates whose steps run."""
    return [key for key, r in state.updates.items() if r.outcome is UpdateOutcome.RUNNING]


def scope(update_id: str) -> Scope:
    """The scope of an update's steps: their instances are at `@<id>.<step>`."""
    return Scope((ROOT.prefix, f"{MARK}{update_id}."))


def in_scope(machine: Machine, at: Scope) -> dict[str, Any] | None:
    """`update` in the context of a step of an update's handler, else None."""
    if len(at.prefixes) < 2 or not at.prefixes[1].startswith(MARK):
        return None
    update_id = at.prefixes[1][len(MARK) : -1]
    result = machine.state.updates.get(update_id)
    if result is None:
        return None
    return {"id": update_id, "name": result.name, "payload": result.payload}


def drive(machine: Machine) -> None:
    """Drive the steps of every running update one pass; answer those whose steps ended."""
    s = machine.state
    for update_id in running(s):
        result = s.updates[update_id]
        handler = machine.d.update_handlers[result.name]
        at = scope(update_id)
        outcome, error = machine.drive_block(handler.steps, at, halting=s.ending is not None)
        if outcome is BlockResult.SUCCEEDED:
            _finish(machine, update_id, handler, machine.context(at))
        elif outcome in (BlockResult.FAILED, BlockResult.HALTED):
            failure = error or StepError("Cancelled", "the update's steps were cancelled")
            _set(machine, update_id, result.name, error=failure)


def abandon(machine: Machine, error: StepError) -> None:
    """The run stops going forward (it fails, is cancelled, times out, is aborted): cancel the
    steps of every running update and answer it `Failed`."""
    s = machine.state
    for update_id in running(s):
        result = s.updates[update_id]
        handler = machine.d.update_handlers[result.name]
        machine.cancel_block(handler.steps, scope(update_id))
        failure = StepError(
            error.type, f"the run ended before the update's steps did: {error.message}"
        )
        _set(machine, update_id, result.name, error=failure)


def _finish(
    machine: Machine, update_id: str, handler: UpdateHandler, context: dict[str, Any]
) -> None:
    """Answer the update with its rendered `output`, or the render's failure."""
    output = None
    if handler.output is not None:
        try:
            output = render(handler.output, context)
        except EvaluationError as exc:
            error = StepError("ExpressionError", f"output: {exc}")
            _set(machine, update_id, handler.name, error=error)
            return
        size = len(json.dumps(output, separators=(",", ":")))
        if size > MAX_OUTPUT_BYTES:
            message = (
                f"output: {size} bytes of JSON, over the {MAX_OUTPUT_BYTES} an update answers "
                "with; return less, keep the rest in vars"
            )
            _set(machine, update_id, handler.name, error=StepError("OutputTooLarge", message))
            return
    _set(machine, update_id, handler.name, output=output)


def _answer(machine: Machine, event: UpdateAccepted, *, error: StepError) -> None:
    _set(machine, event.id, event.name, error=error)


def _set(
    machine: Machine,
    update_id: str,
    name: str,
    *,
    output: Any = None,
    error: StepError | None = None,
) -> None:
    """Record the answer of update `update_id`; the oldest answers beyond MAX_RESULTS go (never
    a running update's)."""
    updates = machine.state.updates
    outcome = UpdateOutcome.COMPLETED if error is None else UpdateOutcome.FAILED
    updates.pop(update_id, None)  # an answer moves to the end: the latest are kept
    updates[update_id] = UpdateResult(name, outcome, machine.now, output=output, error=error)
    # Its steps' instances go with its answer (the history keeps what they did), so a run
    # answering updates for months does not pile them up in its status.
    prefix = scope(update_id).prefix
    steps = machine.state.steps
    for path in [p for p in steps if p.startswith(prefix)]:
        del steps[path]
    answered = [k for k, r in updates.items() if r.outcome is not UpdateOutcome.RUNNING]
    for key in answered[: max(0, len(answered) - MAX_RESULTS)]:
        del updates[key]


def _context(machine: Machine, id: str, name: str, payload: Any) -> dict[str, Any]:
    context = machine.context(ROOT)
    context["update"] = {"id": id, "name": name, "payload": payload}
    return context


def _message(handler: UpdateHandler, context: dict[str, Any]) -> str:
    if handler.message is None:
        return f"refused by the validator of update {handler.name!r}"
    try:
        message = render(handler.message, context)
    except EvaluationError as exc:
        return f"refused by the validator of update {handler.name!r} (its message failed: {exc})"
    return message if isinstance(message, str) else json.dumps(message)


def _payload_problem(payload: Any) -> str | None:
    problem = value_problem(payload, "payload")
    if problem is not None:
        return problem
    size = len(json.dumps(payload, separators=(",", ":")))
    if size > MAX_PAYLOAD_BYTES:
        return (
            f"payload: {size} bytes of JSON, over the {MAX_PAYLOAD_BYTES} an update accepts; "
            "pass a reference (a ConfigMap's name, a URL) instead"
        )
    return None
