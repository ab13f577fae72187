"""`set`: assigns run variables from templates and succeeds at once with the values it set."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baton.engine.definition import StepDef
from baton.engine.kinds.base import Kind
from baton.engine.scope import Scope
from baton.engine.state import StepState
from baton.engine.values import expression_error, render
from baton.expr import EvaluationError

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Set(Kind):
    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        context = m.context(scope, sd.name)
        try:
            values = {name: render(t, context) for name, t in sd.assignments}
        except EvaluationError as exc:
            m.step_failed(sd, scope, path, step, expression_error(str(exc), sd.name, "set"))
            return
        m.state.vars.update(values)
        m.execution_succeeded(sd, scope, path, step, values)
