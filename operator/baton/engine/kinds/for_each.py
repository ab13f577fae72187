"""`forEach`: runs its step once per item of a list, at most `concurrency` at a time; succeeds
with the list of the items' outputs. The first item failing for good cancels the items in
flight at once and fails the step with its error, unless the forEach tolerates failed items
(`toleratedFailureCount`/`Percentage`): then it fails with ToleratedFailureExceeded once they
are exceeded, and otherwise succeeds with `{items, failed}`. The item instances live at
`path[index].step`. Redrive redrives the failed items only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.kinds.base import Kind
from baton.engine.outcomes import (
    failed_items,
    is_fatal,
    is_settled,
    running_outcome,
    tolerance_error,
    tolerant_output,
)
from baton.engine.scope import (
    ACTIVE,
    BAD,
    MAX_STEP_INSTANCES,
    Scope,
    bad,
    first_failure,
    item_paths,
    subtree_size,
)
from baton.engine.state import StepState
from baton.engine.values import checked, describe, expression_error
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine

_CANCELLED = frozenset({StepPhase.CANCELLED})


class ForEach(Kind):
    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.for_each is not None
        m.reset_nested(sd, scope)
        try:
            items = checked(sd.for_each.items.evaluate(m.context(scope, sd.name)))
        except EvaluationError as exc:
            error = expression_error(str(exc), sd.name, "forEach.items")
            m.step_failed(sd, scope, path, step, error)
            return
        if not isinstance(items, list):
            error = expression_error(
                f"`forEach.items` must be a list, got {describe(items)}",
                sd.name,
                "forEach.items",
            )
            m.step_failed(sd, scope, path, step, error)
            return
        instances = m.instances_with(path, len(items) * subtree_size(sd.for_each.step))
        if instances > MAX_STEP_INSTANCES:
            error = expression_error(
                f"{len(items)} items would give the run {instances} step instances, over "
                f"the {MAX_STEP_INSTANCES} its status can hold; fan out through child runs "
                "instead: a forEach over batches of items whose step is a `workflow` step, "
                "each child run running a forEach over its batch",
                sd.name,
                "forEach.items",
                error_type="TooManyItems",
            )
            m.step_failed(sd, scope, path, step, error)
            return
        step.items = items
        step.phase = StepPhase.RUNNING

    def advance(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState, *, halt: bool
    ) -> None:
        s = m.state
        each = sd.for_each
        assert each is not None
        assert step.items is not None
        values = step.items
        inner = each.step
        paths = item_paths(path, inner.name, len(values))
        total = len(paths)
        # Item states are changed in place, never replaced, so this list stays current.
        items = [s.steps.get(p) for p in paths]

        counts_failures = not inner.continue_on_failed
        stopping = BAD if counts_failures else _CANCELLED
        cleanup = bool(inner.finally_steps)
        if cleanup:
            # Items that ended run their `finally` before anything else is decided.
            for i, item in enumerate(items):
                if item is not None:
                    m.ended(inner, scope.enter(path, i, values[i]), paths[i], item)

        def exceeded() -> bool:
            # One short-circuiting scan of frozenset lookups per pass: this runs over every item
            # of a large forEach on every pass, and anything more showed in bench/engine.py.
            # An item running its `finally` counts by the outcome it ended in.
            if not each.tolerates_failures and not cleanup:
                return any(x is not None and x.phase in stopping for x in items)
            failed = 0
            for x in items:
                if x is None:
                    continue
                phase = running_outcome(x)
                if phase is StepPhase.CANCELLED:
                    return True
                if phase is StepPhase.FAILED:
                    failed += counts_failures
            return each.exceeded(failed, total)

        halt = halt or exceeded()
        if halt:
            self.cancel_nested(m, sd, scope, path, step)
        for i, item in enumerate(items):
            if item is not None and item.phase in ACTIVE:
                item_scope = scope.enter(path, i, values[i])
                m.drive_step(inner, item_scope, paths[i], item, halt)
                if cleanup:
                    m.ended(inner, item_scope, paths[i], item)
                if not halt and bad(item) and exceeded():
                    # Past what the forEach tolerates: the items in flight are cancelled at once.
                    halt = True
                    self.cancel_nested(m, sd, scope, path, step)
        active = sum(1 for x in items if x is not None and x.phase in ACTIVE)
        can_start = m.may_start(inner.name)
        for i, item in enumerate(items):
            if halt or not can_start or active >= each.concurrency:
                break
            if (item is None or item.phase is StepPhase.PENDING) and m.take_slot(inner):
                item_scope = scope.enter(path, i, values[i])
                started = items[i] = m.start_step(inner, item_scope, paths[i])
                if cleanup:
                    m.ended(inner, item_scope, paths[i], started)
                if started.phase in ACTIVE:
                    active += 1
                elif bad(started) and exceeded():
                    halt = True
                    self.cancel_nested(m, sd, scope, path, step)
        if any(i is not None and i.phase in ACTIVE for i in items):
            return
        failed = failed_items(inner, items)
        if not exceeded():
            if all(
                i is not None and (is_settled(inner, i) or i.phase is StepPhase.FAILED)
                for i in items
            ):
                output: Any = (
                    tolerant_output(items, failed)
                    if each.tolerates_failures
                    else [i.output for i in items if i is not None]
                )
                m.execution_succeeded(sd, scope, path, step, output)
            elif halt:
                m.cancel(step)
            return
        if m.stopping:
            # A cancel or the run timeout stopped it: no error of an item applies.
            m.cancel(step)
            return
        if each.tolerates_failures and each.exceeded(len(failed), total):
            m.step_failed(sd, scope, path, step, tolerance_error(each, sd.name, failed, total))
            return
        fatal_items = [i for i in items if i is not None and is_fatal(inner, i)]
        m.step_failed(sd, scope, path, step, m.first_error(sd, [first_failure(fatal_items).error]))

    def cancel_nested(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> None:
        if sd.for_each is None or step.items is None:
            return
        inner = sd.for_each.step
        for i, item_path in enumerate(item_paths(path, inner.name, len(step.items))):
            item = m.state.steps.get(item_path)
            if item is None:
                continue
            item_scope = scope.enter(path, i, step.items[i])
            # An item running its `finally` has ended already: its cleanup runs to the end.
            if item.phase in ACTIVE and item.outcome is None:
                m.cancel_subtree(inner, item_scope, item_path, item)
            # Every item that ended (just now, or by the run's cancel) begins its `finally`.
            m.ended(inner, item_scope, item_path, item)

    def nested_active(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> bool:
        if sd.for_each is None or step.items is None:
            return False
        inner = sd.for_each.step
        return any(
            (x := m.state.steps.get(p)) is not None and x.phase in ACTIVE
            for p in item_paths(path, inner.name, len(step.items))
        )

    def redrive(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        if step.items is None:
            super().redrive(m, sd, scope, path, step)
            return
        step.phase = StepPhase.RUNNING
        assert sd.for_each is not None
        inner = sd.for_each.step
        for i, item in enumerate(step.items):
            item_path = f"{path}[{i}].{inner.name}"
            item_step = m.state.steps.get(item_path)
            if item_step is not None and item_step.phase in BAD:
                m.redrive_step(inner, scope.enter(path, i, item), item_path, item_step)
