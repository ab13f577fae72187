"""CEL expressions and `${{ }}` templates: compiled once per definition, evaluated per step."""

from baton.expr.cel import (
    CONTEXT_ROOTS,
    Budget,
    EvaluationError,
    Expression,
    ExpressionError,
    compile_expression,
)
from baton.expr.template import Template, as_text, compile_template

__all__ = [
    "CONTEXT_ROOTS",
    "Budget",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "Template",
    "as_text",
    "compile_expression",
    "compile_template",
]
