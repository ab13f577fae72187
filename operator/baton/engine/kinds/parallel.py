"""`parallel`: runs its branches side by side.

In `mode: all` (the default) it succeeds with an object mapping each branch to its last step's
output once every branch succeeded. A branch failing fatally cancels the other branches at once
and fails the step with its error (`failFast`, the default); with `failFast: false` the other
branches go on and the step fails with the first error once none runs. In `mode: race` the
first branch to end (the first listed, among those ending in one decision) decides: the step
succeeds with `{winner, output}` or fails with the winner's error, and the other branches are
cancelled at once. Redrive redrives the failed (and cancelled) steps of every branch."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.kinds.base import Kind
from baton.engine.outcomes import race_output
from baton.engine.scope import ACTIVE, BlockResult, Scope
from baton.engine.state import StepState

if TYPE_CHECKING:
    from baton.engine.machine import Machine

_ENDED = (BlockResult.SUCCEEDED, BlockResult.FAILED)


class Parallel(Kind):
    drives: ClassVar[bool] = True

    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        m.reset_nested(sd, scope)
        step.phase = StepPhase.RUNNING

    def advance(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState, *, halt: bool
    ) -> None:
        if sd.is_race:
            self._race(m, sd, scope, path, step, halt=halt)
            return
        results: list[tuple[BlockResult, StepError | None]] = []
        for branch in sd.branches:
            result = m.drive_block(branch.steps, scope, halting=halt, fail_fast=sd.fail_fast)
            results.append(result)
            if result[0] is BlockResult.FAILED and sd.fail_fast and not halt:
                # A branch failed for good: the others are cancelled at once, so the step fails
                # (and its catch or the run's compensation starts) in this decision.
                halt = True
                self.cancel_nested(m, sd, scope, path, step)
        if halt:
            results = [
                m.drive_block(b.steps, scope, halting=True, fail_fast=sd.fail_fast)
                for b in sd.branches
            ]
        if all(r is BlockResult.SUCCEEDED for r, _ in results):
            output = {b.name: m.last_output(b.steps, scope) for b in sd.branches}
            m.execution_succeeded(sd, scope, path, step, output)
        elif not any(r is BlockResult.RUNNING for r, _ in results):
            errors = [e for r, e in results if r is BlockResult.FAILED]
            if errors and not m.stopping:
                m.step_failed(sd, scope, path, step, m.first_error(sd, errors))
            else:
                m.cancel(step)

    def _race(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState, *, halt: bool
    ) -> None:
        results = [m.drive_block(b.steps, scope, halting=halt) for b in sd.branches]
        winner = next((i for i, (r, _) in enumerate(results) if r in _ENDED), None)
        if winner is None:
            if not any(r is BlockResult.RUNNING for r, _ in results):
                m.cancel(step)
            return
        self.cancel_nested(m, sd, scope, path, step)
        branch = sd.branches[winner]
        result, error = results[winner]
        if result is BlockResult.SUCCEEDED:
            output = race_output(branch.name, m.last_output(branch.steps, scope))
            m.execution_succeeded(sd, scope, path, step, output)
        else:
            m.step_failed(sd, scope, path, step, m.first_error(sd, [error]))

    def cancel_nested(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> None:
        for branch in sd.branches:
            m.cancel_block(branch.steps, scope)

    def nested_active(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState
    ) -> bool:
        return any(
            (x := m.state.steps.get(scope.prefix + inner.name)) is not None and x.phase in ACTIVE
            for branch in sd.branches
            for inner in branch.steps
        )

    def redrive(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        step.phase = StepPhase.RUNNING
        for branch in sd.branches:
            m.redrive_block(branch.steps, scope)
