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

Handlers have no steps of their own: an update's work is its assignments, which the main body
reads (a `waitForSignal`-free wait on `vars` is a `repeat.until`, a step's `when`), and an
activity a caller needs answered belongs in a step the update unblocks. This keeps an update's
answer part of the decision that accepts it, and the run's step graph the definition's alone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from baton.engine.definition import Definition, UpdateHandler
from baton.engine.errors import StepError
from baton.engine.events import UpdateAccepted, UpdateRequested
from baton.engine.limits import value_problem
from baton.engine.scope import ROOT
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
MAX_PAYLOAD_BYTES = 64 * 1024
"""An update's payload, as JSON. It is in the run's spec (an etcd object of at most 1.5 MiB
holding up to 1,000 of them) and in the history; bulk data belongs in a ConfigMap or a URL."""


def refusal(
    definition: Definition, state: State, request: UpdateRequested, now: float
) -> str | None:
    """Why `request` is refused, or None when it is accepted. Reads `state`, never changes it."""
    from baton.engine.machine import Machine  # the machine imports this module

    handler = definition.update_handlers.get(request.name)
    if state.phase.finished:
        return f"the run has finished ({state.phase.value}); it takes no more updates"
    if state.ending is not None or state.compensations or state.exit_outcome is not None:
        return "the run is ending (failed, cancelled or timed out); it takes no more updates"
    if handler is None:
        known = ", ".join(sorted(definition.update_handlers)) or "none"
        return f"no update handler is named {request.name!r} (the workflow has: {known})"
    problem = _payload_problem(request.payload)
    if problem is not None:
        return problem
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
    output = None
    if handler.output is not None:
        context["vars"] = s.vars
        try:
            output = render(handler.output, context)
        except EvaluationError as exc:
            _answer(machine, event, error=StepError("ExpressionError", f"output: {exc}"))
            return
        size = len(json.dumps(output, separators=(",", ":")))
        if size > MAX_OUTPUT_BYTES:
            message = (
                f"output: {size} bytes of JSON, over the {MAX_OUTPUT_BYTES} an update answers "
                "with; return less, keep the rest in vars"
            )
            _answer(machine, event, error=StepError("OutputTooLarge", message))
            return
    _answer(machine, event, output=output)


def _answer(
    machine: Machine, event: UpdateAccepted, *, output: Any = None, error: StepError | None = None
) -> None:
    updates = machine.state.updates
    outcome = UpdateOutcome.COMPLETED if error is None else UpdateOutcome.FAILED
    updates[event.id] = UpdateResult(event.name, outcome, machine.now, output=output, error=error)
    while len(updates) > MAX_RESULTS:
        del updates[next(iter(updates))]


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
