"""Values the engine computes: templates rendered and checked for storage, and the errors an
expression or an oversize output gives.

Everything an expression produces ends up in the run's status, which the API server must accept:
`render` and `checked` refuse what cannot be stored, `output_too_large` what is too big.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from baton.engine.errors import StepError
from baton.engine.limits import value_problem
from baton.expr import EvaluationError, Expression, as_text

MAX_OUTPUT_BYTES = 1_000_000
"""Largest output (compact JSON) a step or the run may have: the shell stores one in a single
ConfigMap, and Kubernetes caps an object at 1 MiB. Activities cannot return more (their
executors cap responses); this catches what a forEach, parallel, `set` or `output` assembles."""


def query(expression: Expression, context: dict[str, Any]) -> Any:
    try:
        return checked(expression.evaluate(context))
    except EvaluationError as exc:
        return f"error: {exc}"


def render(template: Renders, context: dict[str, Any]) -> Any:
    """`template` rendered, refused (EvaluationError) when the result cannot be stored."""
    return checked(template.render(context))


class Renders(Protocol):
    """A compiled template or action: renders to JSON in an expression context."""

    def render(self, context: Mapping[str, Any]) -> Any: ...


def checked(value: Any) -> Any:
    """`value` itself, or EvaluationError when a run cannot store it (`limits.value_problem`):
    an expression's result goes into the status, which the API server must accept."""
    problem = value_problem(value, "the result")
    if problem is not None:
        raise EvaluationError(problem)
    return value


def output_too_large(output: Any, step: str | None) -> StepError | None:
    """OutputTooLarge for an output over MAX_OUTPUT_BYTES, InvalidOutput for one a run cannot
    store (Infinity, nesting past MAX_JSON_DEPTH), else None."""
    problem = value_problem(output, "the output")
    if problem is not None:
        return StepError("InvalidOutput", problem, step=step)
    if output is None or isinstance(output, bool | int | float):
        return None
    size = len(json.dumps(output, separators=(",", ":"), ensure_ascii=False).encode())
    if size <= MAX_OUTPUT_BYTES:
        return None
    return StepError(
        "OutputTooLarge",
        f"the output is {size} bytes of JSON, over the {MAX_OUTPUT_BYTES} a run can "
        "store; return references (ids, object keys) and keep bulk data in your own store",
        details={"bytes": size, "limit": MAX_OUTPUT_BYTES},
        step=step,
    )


def expression_error(
    message: str, step: str | None, field: str, error_type: str = "ExpressionError"
) -> StepError:
    """The error of an expression (in `field`) that could not be evaluated or gave a value of
    the wrong kind."""
    return StepError(error_type, message, details={"field": field}, step=step)


def describe(value: Any) -> str:
    """A value that has the wrong type, for an error message: its JSON type and JSON text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, int | float):
        kind = "a number"
    elif isinstance(value, str):
        kind = "a string"
    elif isinstance(value, list):
        kind = "a list"
    else:
        kind = "an object"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else as_text(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{kind}: {text}"
