"""`fail`: fails at once with the error type and rendered message it declares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from baton.engine.definition import StepDef
from baton.engine.errors import StepError
from baton.engine.kinds.base import Kind
from baton.engine.scope import Scope
from baton.engine.state import StepState
from baton.engine.values import expression_error
from baton.expr import EvaluationError, as_text

if TYPE_CHECKING:
    from baton.engine.machine import Machine


class Fail(Kind):
    def start(self, m: Machine, sd: StepDef, scope: Scope, path: str, step: StepState) -> None:
        assert sd.fail is not None
        try:
            message = sd.fail.message.render(m.context(scope, sd.name))
        except EvaluationError as exc:
            error = expression_error(str(exc), sd.name, "fail.message")
            m.step_failed(sd, scope, path, step, error)
            return
        # A message that is not a string is written as in any template: compact JSON.
        text = message if isinstance(message, str) else as_text(message)
        m.step_failed(sd, scope, path, step, StepError(sd.fail.error_type, text, step=sd.name))
