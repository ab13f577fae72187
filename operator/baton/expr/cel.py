"""Compiled CEL expressions: compile once per definition, evaluate many times.

Built on `common-expression-language` (a Rust CEL core); the measurements behind that choice are
in docs/architecture.md and bench/expressions.py. Errors are raised in two kinds: at compile
time (`ExpressionError`, naming step, field and position) and at evaluation time
(`EvaluationError`, a message the engine turns into a step failure).

Hostile expressions are stopped on both sides: at compile time an expression over the limits
of `baton.expr.syntax` (length, depth, nested comprehensions) or one that is over the budget on
any values at all (`[1,2,3].map(...)` nested over literals) is refused; at evaluation time the
cost bound of `baton.expr.cost` over the actual values is checked against the budget before the
CEL core starts. The core cannot be interrupted once started, so nothing slow may reach it.
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

from baton.expr.cost import EVALUATION_BUDGET, TooDeepError, plan
from baton.expr.syntax import Node, SyntaxLimitError, parse

CONTEXT_ROOTS: frozenset[str] = frozenset(
    {
        "input", "steps", "vars", "signals", "run", "item", "index", "signal", "error", "step",
        "now", "update",
    }
)  # fmt: skip
"""Every name an expression may start from; which are bound depends on where it is evaluated.
`now` is a CEL timestamp: the time of the event being decided, never the wall clock, so a
replay computes what the first run did."""

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
_STEP_INDEX = re.compile(r"""\bsteps\s*\[\s*(['"])([A-Za-z_][A-Za-z0-9_-]*)\1\s*\]""")
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


class Budget:
    """Operations left for a group of evaluations (all the `${{ }}` of one template): each
    evaluation is refused when its cost bound is over what is left, and spends it."""

    def __init__(self, operations: int = EVALUATION_BUDGET) -> None:
        self.operations = operations
        self.left = operations


@dataclass(frozen=True)
class Expression:
    """A bare CEL expression compiled once."""

    source: str
    program: Program = field(repr=False, compare=False)
    roots: frozenset[str]
    step_references: frozenset[str]
    tree: Node = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any], budget: Budget | None = None) -> Any:
        """The expression's value as plain JSON-compatible Python data; EvaluationError when
        it fails, or when its cost bound on these values is over the budget (`budget`, shared
        with other evaluations, or one EVALUATION_BUDGET of its own)."""
        budget = budget if budget is not None else Budget()
        # Only the paths the expression reads are converted into CEL values: the full context
        # holds every step's output and converting it on each evaluation is the dominant cost.
        try:
            planned = plan(self.tree, self.roots, context, budget=budget.left)
        except TooDeepError as exc:
            raise EvaluationError(f"{_short(self.source)}: {exc}") from None
        if planned.cost > budget.left:
            raise EvaluationError(
                f"{_short(self.source)}: over the evaluation budget: on these values it may "
                f"cost {_count(planned.cost)} operations, at most {_count(budget.left)} are "
                f"left of {_count(budget.operations)}; read less (a smaller list, fewer nested "
                "loops) or compute it in a worker activity"
            )
        budget.left -= planned.cost
        try:
            return to_json(self.program.execute(planned.bindings))
        except KeyError as exc:
            raise EvaluationError(f"{_cut(self.source)}: no such key {exc.args[0]!r}") from None
        except Exception as exc:  # the CEL core raises several builtin types for runtime errors
            # Quoted short: an error message lands in the run's status and history.
            raise EvaluationError(f"{_cut(self.source)}: {_first_line(str(exc))}") from None


def compile_expression(source: str, *, step: str | None, field: str, offset: int = 0) -> Expression:
    """Compile `source`; positions are 1-based columns, shifted by `offset` when the
    expression sits inside a larger string."""
    if not source.strip():
        raise ExpressionError("empty expression", step=step, field=field, position=offset)
    try:
        # Read first: the CEL core itself recurses without limit (see baton.expr.syntax).
        tree = parse(source)
    except SyntaxLimitError as exc:
        # A syntax error is better told by the core, when the text is short enough that the
        # core cannot overflow its stack on it (300 levels were safe on a 256 KiB stack).
        if exc.limit or len(source) > _CORE_SAFE_LENGTH or _core_accepts(source):
            raise ExpressionError(
                f"{exc} in {_short(source)}",
                step=step,
                field=field,
                position=offset + exc.position,
            ) from None
        tree = None  # the core's own message says better what is wrong
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
    if tree is None:  # the core accepted what the reader refused: refuse it all the same
        raise ExpressionError(
            f"cannot read {_short(source)}", step=step, field=field, position=offset + 1
        )
    roots = frozenset(variables & CONTEXT_ROOTS)
    least = plan(tree, roots, {}, budget=EVALUATION_BUDGET).cost
    if least > EVALUATION_BUDGET:
        raise ExpressionError(
            f"{_short(source)} costs at least {_count(least)} operations on any values, over "
            f"the evaluation budget of {_count(EVALUATION_BUDGET)}: loop over fewer items",
            step=step,
            field=field,
            position=offset + 1,
        )
    references = set(_STEP_DOT.findall(code)) | {m[1] for m in _STEP_INDEX.findall(source)}
    return Expression(
        source=source,
        program=program,
        roots=roots,
        step_references=frozenset(references),
        tree=tree,
    )


_CORE_SAFE_LENGTH = 512
"""Characters: at most 256 levels of any chain, whatever the text."""


def _core_accepts(source: str) -> bool:
    try:
        cel.compile(source)
    except ValueError:
        return False
    return True


def _short(source: str) -> str:
    """An expression quoted for a message, cut when long (it may be up to MAX_LENGTH)."""
    return repr(source) if len(source) <= 80 else repr(source[:77] + "...")


def _cut(source: str) -> str:
    """An expression as written, cut when long."""
    return source if len(source) <= 80 else source[:77] + "..."


def _count(number: int) -> str:
    return f"{number:,}" if number < 10**15 else "more than 10^15"


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
        # Fixed-point, never an exponent: `3023400s` must read back as a duration.
        text = f"{value.total_seconds():.6f}".rstrip("0").rstrip(".")
        return f"{text}s"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _where(name: str, code: str) -> int:
    match = re.search(rf"\b{re.escape(name)}\b", code)
    return match.start() + 1 if match else 1


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
