"""`forEach`: runs its step once per item of a list, at most `concurrency` at a time; succeeds
with the list of the items' outputs. The first item failing for good cancels the items in
flight at once and fails the step with its error, unless the forEach tolerates failed items
(`toleratedFailureCount`/`Percentage`): then it fails with ToleratedFailureExceeded once they
are exceeded, and otherwise succeeds with `{items, failed}`. The item instances live at
`path[index].step`. Redrive redrives the failed items only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.kinds.base import Kind
from baton.engine.outcomes import (
    failed_items,
    is_fatal,
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
    drives: ClassVar[bool] = True

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
                f"the {MAX_STEP_INSTANCES} a run can hold; fan out through child runs "
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
        # The items' phases are counted in the run's index (`m.fan`), kept current with what
        # each decision touched: a pass costs the items in flight, not the forEach's size.
        # Only items with `finally` steps are visited one by one, as they must be to begin it.
        s = m.state
        steps = s.steps
        each = sd.for_each
        assert each is not None
        assert step.items is not None
        values = step.items
        inner = each.step
        paths = item_paths(path, inner.name, len(values))
        total = len(paths)

        counts_failures = not inner.continue_on_failed
        cleanup = bool(inner.finally_steps)
        if cleanup:
            # Items that ended run their `finally` before anything else is decided.
            for i, item_path in enumerate(paths):
                if item_path in steps:
                    m.ended(inner, scope.enter(path, i, values[i]), item_path, steps[item_path])

        def exceeded() -> bool:
            # An item running its `finally` counts by the outcome it ended in.
            if cleanup:
                failed = 0
                for item_path in paths:
                    x = steps.peek(item_path)
                    if x is None:
                        continue
                    phase = running_outcome(x)
                    if phase is StepPhase.CANCELLED:
                        return True
                    if phase is StepPhase.FAILED:
                        failed += counts_failures
                return each.exceeded(failed, total)
            fan = m.fan(path)
            if fan.count(StepPhase.CANCELLED):
                return True
            return each.exceeded(fan.count(StepPhase.FAILED) if counts_failures else 0, total)

        halt = halt or exceeded()
        if halt:
            self.cancel_nested(m, sd, scope, path, step)
        # A running item of a kind that nests nothing only waits (its result, a due time):
        # driving it does nothing, so it is not even looked at, unless it runs a catch
        # clause's or its `finally` steps, or must be cancelled.
        drives = halt or m.drives(inner)
        for i in sorted(m.fan(path).active):
            x: StepState | None = steps.peek(paths[i])
            if not drives and x is not None and x.recovering is None and x.outcome is None:
                continue
            item = steps[paths[i]]
            if item.phase in ACTIVE:
                item_scope = scope.enter(path, i, values[i])
                m.drive_step(inner, item_scope, paths[i], item, halt)
                if cleanup:
                    m.ended(inner, item_scope, paths[i], item)
                if not halt and bad(item) and exceeded():
                    # Past what the forEach tolerates: the items in flight are cancelled at once.
                    halt = True
                    self.cancel_nested(m, sd, scope, path, step)
        active = len(m.fan(path).active)
        can_start = m.may_start(inner.name)
        i = first = m.fan(path).next
        while i < total and not halt and can_start and active < each.concurrency:
            waiting = steps.peek(paths[i])
            if waiting is None or waiting.phase is StepPhase.PENDING:
                if not m.take_slot(inner):
                    break
                item_scope = scope.enter(path, i, values[i])
                started = m.start_step(inner, item_scope, paths[i])
                if cleanup:
                    m.ended(inner, item_scope, paths[i], started)
                if started.phase in ACTIVE:
                    active += 1
                elif bad(started) and exceeded():
                    halt = True
                    self.cancel_nested(m, sd, scope, path, step)
            i += 1
        fan = m.fan(path)
        if fan.next >= first:
            # Every item before `i` has started now (an item made Pending again meanwhile
            # moved `next` back, and stays ahead).
            fan = m.sync().own(path)
            fan.next = i
        if fan.active:
            return
        if not exceeded():
            fan = m.fan(path)
            if fan.count(StepPhase.SUCCEEDED, StepPhase.SKIPPED, StepPhase.FAILED) == total:
                items = [steps.peek(p) for p in paths]
                output: Any = (
                    tolerant_output(items, failed_items(inner, items))
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
        items = [steps.peek(p) for p in paths]
        failed = failed_items(inner, items)
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
        paths = item_paths(path, inner.name, len(step.items))
        steps = m.state.steps
        # Without `finally` steps only the items in flight have anything to do; with them,
        # every item that ended (just now, or by the run's cancel) begins its `finally`.
        visit = range(len(paths)) if inner.finally_steps else sorted(m.fan(path).active)
        for i in visit:
            item = steps.get(paths[i])
            if item is None:
                continue
            item_scope = scope.enter(path, i, step.items[i])
            # An item running its `finally` has ended already: its cleanup runs to the end.
            if item.phase in ACTIVE and item.outcome is None:
                m.cancel_subtree(inner, item_scope, paths[i], item)
            m.ended(inner, item_scope, paths[i], item)

    def nested_active(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> bool:
        if sd.for_each is None or step.items is None:
            return False
        return bool(m.fan(path).active)

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
