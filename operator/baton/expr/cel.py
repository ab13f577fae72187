"""Compiled CEL expressions: compile once per definition, evaluate many times.

Built on `common-expression-language` (a Rust CEL core); the measurements behind that choice are
in docs/architecture.md and bench/expressions.py. Errors are raised in two kinds: at compile
time (`ExpressionError`, naming step, field and position) and at evaluation time
(`EvaluationError`, a message the engine turns into a step failure).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from baton.expr.celcore import cel

if TYPE_CHECKING:
    from cel.cel import Program

CONTEXT_ROOTS: frozenset[str] = frozenset(
    {"input", "steps", "vars", "signals", "run", "item", "index", "signal", "error"}
)
"""Every name an expression may start from; which are bound depends on where it is evaluated."""

FUNCTIONS: frozenset[str] = frozenset(
    {
        "bytes", "contains", "double", "duration", "dyn", "endsWith", "getDate", "getDayOfMonth",
        "getDayOfWeek", "getDayOfYear", "getFullYear", "getHours", "getMilliseconds",
        "getMinutes", "getMonth", "getSeconds", "int", "matches", "size", "startsWith", "string",
        "timestamp", "type", "uint",
    }
)  # fmt: skip
"""Functions the CEL core evaluates (checked one by one); macros (`has`, `all`, `exists`,
`exists_one`, `map`, `filter`) and operators are not listed and always allowed. Anything else
would compile and then fail mid-run, so it is refused at compile time instead."""
_OPERATOR = re.compile(r"^[_@!-]|_$")
_POSITION = re.compile(r"<input>:(\d+):(\d+)")
_STRING_LITERAL = re.compile(
    r"""'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*\"""", re.S
)
_STEP_DOT = re.compile(r"\bsteps\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_STEP_INDEX = re.compile(r"""\bsteps\s*\[\s*(['"])([A-Za-z_][A-Za-z0-9_]*)\1\s*\]""")
_BOUND_VARIABLE = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*,"
)


class ExpressionError(ValueError):
    """An expression that cannot be compiled; its message is one line naming where it is."""

    def __init__(
        self, message: str, *, step: str | None, field: str, position: int | None = None
    ) -> None:
        self.step = step
        self.field = field
        self.position = position
        self.reason = message
        where = f"step {step!r}, field {field!r}" if step else f"field {field!r}"
        at = f", position {position}" if position is not None else ""
        super().__init__(f"{where}{at}: {message}")


class EvaluationError(Exception):
    """An expression that compiled but failed on the values it was given."""


@dataclass(frozen=True)
class Expression:
    """A bare CEL expression compiled once."""

    source: str
    program: Program = field(repr=False, compare=False)
    roots: frozenset[str]
    step_references: frozenset[str]

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The expression's value as plain JSON-compatible Python data."""
        # Only the roots the expression reads are converted into CEL values: the full context
        # holds every step's output and converting it on each evaluation is the dominant cost.
        bound = {name: context[name] for name in self.roots if name in context}
        try:
            return to_json(self.program.execute(bound))
        except KeyError as exc:
            raise EvaluationError(f"{self.source}: no such key {exc.args[0]!r}") from None
        except Exception as exc:  # the CEL core raises several builtin types for runtime errors
            raise EvaluationError(f"{self.source}: {_first_line(str(exc))}") from None


def compile_expression(source: str, *, step: str | None, field: str, offset: int = 0) -> Expression:
    """Compile `source`; positions are 1-based columns, shifted by `offset` when the
    expression sits inside a larger string."""
    if not source.strip():
        raise ExpressionError("empty expression", step=step, field=field, position=offset)
    try:
        program = cel.compile(source)
    except ValueError as exc:
        message = str(exc)
        match = _POSITION.search(message)
        position = offset + int(match.group(2)) if match else None
        detail = message.split(": ", 3)[-1] if match else message
        raise ExpressionError(
            f"invalid CEL {source!r}: {_first_line(detail)}",
            step=step,
            field=field,
            position=position,
        ) from None
    code = _STRING_LITERAL.sub('""', source)
    missing = sorted(
        f for f in program.functions() if f not in FUNCTIONS and not _OPERATOR.search(f)
    )
    if missing:
        raise ExpressionError(
            f"function {missing[0]!r} is not available in {source!r}; Baton's CEL has "
            + ", ".join(sorted(FUNCTIONS))
            + " and the macros has, all, exists, exists_one, map, filter",
            step=step,
            field=field,
            position=offset + _where(missing[0], code),
        )
    variables = set(program.variables())
    bound = set(_BOUND_VARIABLE.findall(code))
    unknown = sorted(variables - CONTEXT_ROOTS - bound)
    if unknown:
        raise ExpressionError(
            f"unknown name {unknown[0]!r} in {source!r}; expressions start from "
            + ", ".join(sorted(CONTEXT_ROOTS)),
            step=step,
            field=field,
            position=offset + _where(unknown[0], code),
        )
    references = set(_STEP_DOT.findall(code)) | {m[1] for m in _STEP_INDEX.findall(source)}
    return Expression(
        source=source,
        program=program,
        roots=frozenset(variables & CONTEXT_ROOTS),
        step_references=frozenset(references),
    )


def to_json(value: Any) -> Any:
    """Convert CEL results (timestamps, durations, bytes) into JSON-compatible values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _where(name: str, code: str) -> int:
    match = re.search(rf"\b{re.escape(name)}\b", code)
    return match.start() + 1 if match else 1


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
