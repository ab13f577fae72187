"""`parallel`: runs its branches side by side; succeeds with an object mapping each branch to
its last step's output once all succeed, fails with the first error once none runs. Redrive
redrives the failed steps of every branch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baton.api.run import StepPhase
from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.kinds.base import Kind
from baton.engine.scope import BAD, BlockResult, Scope
from baton.engine.state import StepState

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Parallel(Kind):
    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        m.reset_nested(sd, scope)
        step.phase = StepPhase.RUNNING

    def advance(
        self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState, *, halt: bool
    ) -> None:
        s = m.state
        halt = halt or any(
            (x := s.steps.get(scope.prefix + inner.name)) is not None and x.phase in BAD
            for branch in sd.branches
            for inner in branch.steps
        )
        results: list[tuple[BlockResult, StepError | None]] = []
        for branch in sd.branches:
            result = m.drive_block(branch.steps, scope, halting=halt)
            results.append(result)
            if result[0] is BlockResult.FAILED:
                halt = True
        if all(r is BlockResult.SUCCEEDED for r, _ in results):
            output = {b.name: m.last_output(b.steps, scope) for b in sd.branches}
            m.execution_succeeded(sd, scope, path, step, output)
        elif not any(r is BlockResult.RUNNING for r, _ in results):
            errors = [e for r, e in results if r is BlockResult.FAILED]
            if errors:
                m.step_failed(sd, scope, path, step, m.first_error(sd, errors))
            else:
                m.cancel(step)

    def redrive(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        step.phase = StepPhase.RUNNING
        for branch in sd.branches:
            m.redrive_block(branch.steps, scope)
