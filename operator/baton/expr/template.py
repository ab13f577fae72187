"""`${{ cel }}` interpolation inside JSON values (URLs, bodies, args, outputs).

A string that is exactly one `${{ }}` keeps the result's JSON type (a number stays a number, an
object stays an object); any other string with interpolations renders each result as text:
strings as they are, everything else as compact JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from baton.expr.cel import Expression, ExpressionError, compile_expression

_INTERPOLATION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


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
            part.text if isinstance(part, _Text) else _as_text(part.evaluate(context))
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
    cursor = 0
    for match in _INTERPOLATION.finditer(text):
        if match.start() > cursor:
            parts.append(_Text(text[cursor : match.start()]))
        source = match.group(1)
        leading = len(source) - len(source.lstrip())
        expression = compile_expression(
            source.strip(), step=step, field=path, offset=match.start(1) + leading
        )
        refs.update(expression.step_references)
        parts.append(expression)
        cursor = match.end()
    rest = text[cursor:]
    if "${{" in rest:
        raise ExpressionError(
            "unclosed '${{': close it with '}}'",
            step=step,
            field=path,
            position=text.rfind("${{") + 1,
        )
    if rest:
        parts.append(_Text(rest))
    whole = len(parts) == 1 and isinstance(parts[0], Expression)
    return _Interpolated(parts=tuple(parts), whole=whole)


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


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
