"""`${{ cel }}` interpolation inside JSON values (URLs, bodies, args, outputs).

A string that is exactly one `${{ }}` keeps the result's JSON type (a number stays a number, an
object stays an object); any other string with interpolations renders each result as text:
strings as they are, everything else as compact JSON. `$${{` writes a literal `${{`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from baton.expr.cel import Expression, ExpressionError, compile_expression

_ESCAPE = "$${{"
"""Written for a literal `${{`: the opening doubled its `$`, as Terraform's `$${`."""
_TOKEN = re.compile(
    r"""\$\$\{\{|\$\{\{((?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^'"])*?)\}\}""", re.S
)
"""An escape or an interpolation; the leftmost wins, so `$${{ x }}` is an escape. An
interpolation ends at the first `}}` outside a CEL string literal: `${{ '}}' }}` is one."""


@dataclass(frozen=True)
class _Text:
    """A literal piece of a string."""

    text: str


@dataclass(frozen=True)
class _Interpolated:
    """A string made of literal pieces and expressions."""

    parts: tuple[_Text | Expression, ...]
    whole: bool

    def render(self, context: Mapping[str, Any]) -> Any:
        if self.whole:
            expression = self.parts[0]
            assert isinstance(expression, Expression)
            return expression.evaluate(context)
        return "".join(
            part.text if isinstance(part, _Text) else as_text(part.evaluate(context))
            for part in self.parts
        )


_Node = Any  # a JSON value whose strings may be _Interpolated


@dataclass(frozen=True)
class Template:
    """A JSON value with its interpolations compiled."""

    tree: _Node
    step_references: frozenset[str]
    is_constant: bool

    def render(self, context: Mapping[str, Any]) -> Any:
        """The JSON value with every interpolation evaluated in `context`."""
        if self.is_constant:
            return self.tree
        return _render(self.tree, context)


def compile_template(value: Any, *, step: str | None, field: str) -> Template:
    """Compile every `${{ }}` in `value`; errors name the step, the field path and position."""
    references: set[str] = set()
    tree = _compile(value, step, field, references)
    constant = not references and not _has_interpolation(tree)
    return Template(tree=tree, step_references=frozenset(references), is_constant=constant)


def _compile(value: Any, step: str | None, path: str, refs: set[str]) -> _Node:
    if isinstance(value, str):
        return _compile_string(value, step, path, refs)
    if isinstance(value, Mapping):
        return {k: _compile(v, step, f"{path}.{k}", refs) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v, step, f"{path}[{i}]", refs) for i, v in enumerate(value)]
    return value


def _compile_string(text: str, step: str | None, path: str, refs: set[str]) -> _Node:
    if "${{" not in text:
        return text
    parts: list[_Text | Expression] = []
    literal: list[str] = []
    cursor = 0
    for match in _TOKEN.finditer(text):
        between = text[cursor : match.start()]
        _check_closed(between, cursor, text, step, path)
        literal.append(between)
        cursor = match.end()
        if match.group(0) == _ESCAPE:
            literal.append("${{")
            continue
        if "".join(literal):
            parts.append(_Text("".join(literal)))
        literal = []
        source = match.group(1)
        leading = len(source) - len(source.lstrip())
        expression = compile_expression(
            source.strip(), step=step, field=path, offset=match.start(1) + leading
        )
        refs.update(expression.step_references)
        parts.append(expression)
    rest = text[cursor:]
    _check_closed(rest, cursor, text, step, path)
    literal.append(rest)
    if "".join(literal):
        parts.append(_Text("".join(literal)))
    if not any(isinstance(part, Expression) for part in parts):
        return "".join(part.text for part in parts if isinstance(part, _Text))
    whole = len(parts) == 1 and isinstance(parts[0], Expression)
    return _Interpolated(parts=tuple(parts), whole=whole)


def _check_closed(piece: str, start: int, text: str, step: str | None, path: str) -> None:
    """A `${{` left in literal text has no `}}` after it: refuse it rather than print it."""
    at = piece.find("${{")
    if at >= 0:
        raise ExpressionError(
            "unclosed '${{': close it with '}}', or write '$${{' for a literal '${{'",
            step=step,
            field=path,
            position=start + at + 1,
        )


def _has_interpolation(tree: _Node) -> bool:
    if isinstance(tree, _Interpolated):
        return True
    if isinstance(tree, dict):
        return any(_has_interpolation(v) for v in tree.values())
    if isinstance(tree, list):
        return any(_has_interpolation(v) for v in tree)
    return False


def _render(tree: _Node, context: Mapping[str, Any]) -> Any:
    if isinstance(tree, _Interpolated):
        return tree.render(context)
    if isinstance(tree, dict):
        return {k: _render(v, context) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_render(v, context) for v in tree]
    return tree


def as_text(value: Any) -> str:
    """A rendered value as text: a string as it is, anything else as compact JSON with sorted
    keys. How a result is written inside a longer string, and how a `fail.message` that is not
    a string becomes the error's message."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
