"""Memoization (`memoize: {key, maxAge}`): a step that takes the output an earlier successful
execution stored under the same key instead of running.

An execution of a memoized step (http, job, worker, workflow) starts by rendering its key and
waiting, Running, for the shell's lookup (`LookupMemo`, in flight while `StepState.looking_up`).
The answer is an event, `MemoResolved`, so a replay and a restart after the lookup take the
answer recorded, never a new one. A hit ends the execution with the stored output
(`cached: true`, no attempt made); a miss starts the step's first attempt as if it had no
`memoize` (`cached: false`). When an execution that ran succeeds, `StoreMemo` asks the shell to
store its output. Retries of a missed execution do not look up again (the step is already
running); a redrive or a repeat iteration is a new execution and looks up again. Only the key
and the freshness bound are the engine's: where entries live, their bounds and scope are the
shell's (baton.store.memo).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from baton.api.run import StepPhase
from baton.api.workflow import MAX_MEMO_KEY_LENGTH
from baton.engine.commands import LookupMemo, StoreMemo
from baton.engine.definition import StepDef
from baton.engine.events import MemoResolved
from baton.engine.kinds import KINDS
from baton.engine.scope import Scope, step_def
from baton.engine.state import State, StepState
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


def cache_key(value: Any) -> str:
    """The key a rendered `memoize.key` stands for: a string as it is, any other JSON value
    as its canonical JSON text (`{"a":1}`), so equal values give equal keys."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def begin(m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
    """Start an execution of a memoized step: render its key and wait for the lookup."""
    assert sd.memoize is not None
    try:
        key = cache_key(render(sd.memoize.key, m.context(scope, sd.name)))
    except EvaluationError as exc:
        m.step_failed(sd, scope, path, step, expression_error(str(exc), sd.name, "memoize.key"))
        return
    if not key or len(key) > MAX_MEMO_KEY_LENGTH:
        message = (
            f"the key is {len(key)} characters; a key must have 1 to {MAX_MEMO_KEY_LENGTH} "
            "(key on ids and versions, not on whole documents)"
        )
        m.step_failed(sd, scope, path, step, expression_error(message, sd.name, "memoize.key"))
        return
    step.phase = StepPhase.RUNNING
    step.memo = key
    step.cached = None
    step.request = None
    step.acknowledged = False


def reset(step: StepState) -> None:
    """Forget the previous execution's key and answer (a new execution starts)."""
    step.memo = None
    step.cached = None


def resolved(m: Machine, event: MemoResolved) -> None:
    """The lookup's answer: a hit ends the execution with the stored output, a miss runs it.
    An answer for another lookup (a duplicate, an earlier execution's) is ignored."""
    step = m.state.steps.get(event.key)
    if (
        step is None
        or not step.looking_up
        or step.memo != event.cache_key
        or step.attempt != event.attempt
        or step.iterations != event.iteration
    ):
        return
    sd = step_def(m.d, event.key)
    scope = m.scope_of(event.key)
    step.cached = event.hit
    if event.hit:
        m.execution_succeeded(sd, scope, event.key, step, event.output)
    else:
        KINDS[sd.kind].start(m, sd, scope, event.key, step)


def lookup_command(state: State, sd: StepDef, path: str, step: StepState) -> LookupMemo:
    """The lookup in flight for a step that is `looking_up`."""
    assert sd.memoize is not None
    assert step.memo is not None
    return LookupMemo(
        key=path,
        step=sd.name,
        attempt=step.attempt,
        iteration=step.iterations,
        cache_key=step.memo,
        max_age=sd.memoize.max_age,
    )


def lookup_slot(path: str, step: StepState) -> tuple[str, int]:
    """Where a lookup sits among the commands in flight (`decide`'s (key, attempt) table): apart
    from the step's attempts, and new for each repeat iteration, so a lookup that follows
    another in one decision is still issued."""
    return (f"{path}#memo{step.iterations}", step.attempt)


def stored(sd: StepDef, path: str, step: StepState, output: Any) -> StoreMemo | None:
    """The store of an execution that ran (a miss) and succeeded; None for any other."""
    if sd.memoize is None or step.memo is None or step.cached is not False:
        return None
    return StoreMemo(key=path, step=sd.name, cache_key=step.memo, output=output)
