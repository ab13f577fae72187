"""`forEach`: runs its step once per item of a list, at most `concurrency` at a time; succeeds
with the list of the items' outputs, fails with the first failed item's error once none runs.
The item instances live at `path[index].step`. Redrive redrives the failed items only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.kinds.base import Kind
from baton.engine.scope import (
    ACTIVE,
    BAD,
    DONE,
    MAX_STEP_INSTANCES,
    Scope,
    first_failure,
    item_paths,
    subtree_size,
)
from baton.engine.state import StepState
from baton.engine.values import checked, describe, expression_error
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


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
        inner = each.step
        paths = item_paths(path, inner.name, len(step.items))
        # Item states are changed in place, never replaced, so this list stays current.
        items = [s.steps.get(p) for p in paths]
        halt = halt or any(x is not None and x.phase in BAD for x in items)
        for i, item in enumerate(items):
            if item is not None and item.phase in ACTIVE:
                m.drive_step(inner, scope.enter(path, i, step.items[i]), paths[i], item, halt)
                if item.phase in BAD:
                    halt = True
        active = sum(1 for x in items if x is not None and x.phase in ACTIVE)
        for i, item in enumerate(items):
            if halt or not m.can_start or active >= each.concurrency:
                break
            if item is None or item.phase is StepPhase.PENDING:
                started = items[i] = m.start_step(
                    inner, scope.enter(path, i, step.items[i]), paths[i]
                )
                if started.phase in ACTIVE:
                    active += 1
                elif started.phase in BAD:
                    halt = True
        if any(i is not None and i.phase in ACTIVE for i in items):
            return
        if all(i is not None and i.phase in DONE for i in items):
            output = [i.output for i in items if i is not None]
            m.execution_succeeded(sd, scope, path, step, output)
            return
        failed = [i for i in items if i is not None and i.phase in BAD]
        if failed:
            m.step_failed(sd, scope, path, step, m.first_error(sd, [first_failure(failed).error]))
        elif halt:
            m.cancel(step)

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
