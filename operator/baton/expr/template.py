"""`${{ cel }}` interpolation inside JSON values (URLs, bodies, args, outputs).

A string that is exactly one `${{ }}` keeps the result's JSON type (a number stays a number, an
object stays an object); any other string with interpolations renders each result as text:
strings as they are, everything else as compact JSON. `$${{` writes a literal `${{`.

All the interpolations of one template share one evaluation budget per render, so a body of a
thousand `${{ }}` costs no more than one expression may.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from baton.expr.cel import Budget, Expression, ExpressionError, compile_expression

# A literal `${{` is written `$${{`: the opening doubles its `$`, as Terraform's `$${`.
MAX_INTERPOLATIONS = 1_000
"""`${{ }}` in one field (a URL, a body, an output): each is compiled when the Workflow is
applied, and rendered at each attempt."""
MAX_NESTING = 64
"""Levels of arrays and objects in one field's value: compiling and rendering recurse per level."""


def _interpolations(text: str) -> Iterator[tuple[int, int, int | None]]:
    """(start, end, where the CEL starts) of each escape (None) and interpolation, left to
    right; the leftmost wins, so `$${{ x }}` is an escape. An interpolation ends at the first
    `}}` outside a CEL string literal: `${{ '}}' }}` is one. One pass over the text: a string
    of many unclosed `${{` costs no more than its length (a regular expression took 23 s on
    16,000 of them). An interpolation that never closes ends the scan; the caller reports it."""
    at = 0
    while (opening := text.find("${{", at)) >= 0:
        if opening > at and text[opening - 1] == "$":
            yield opening - 1, opening + 3, None
            at = opening + 3
            continue
        closing = _closing(text, opening + 3)
        if closing < 0:
            return
        yield opening, closing + 2, opening + 3
        at = closing + 2


def _closing(text: str, at: int) -> int:
    """Index of the `}}` that closes an interpolation whose CEL starts at `at`, or -1."""
    while at < len(text):
        char = text[at]
        if char in "'\"":
            at += 1
            while at < len(text) and text[at] != char:
                at += 2 if text[at] == "\\" else 1
            if at >= len(text):
                return -1
        elif text.startswith("}}", at):
            return at
        at += 1
    return -1


@dataclass(frozen=True)
class _Text:
    """A literal piece of a string."""

    text: str


@dataclass(frozen=True)
class _Interpolated:
    """A string made of literal pieces and expressions."""

    parts: tuple[_Text | Expression, ...]
    whole: bool

    def render(self, context: Mapping[str, Any], budget: Budget) -> Any:
        if self.whole:
            expression = self.parts[0]
            assert isinstance(expression, Expression)
            return expression.evaluate(context, budget)
        return "".join(
            part.text if isinstance(part, _Text) else as_text(part.evaluate(context, budget))
            for part in self.parts
        )


_Node = Any  # a JSON value whose strings may be _Interpolated


@dataclass(frozen=True)
class Template:
    """A JSON value with its interpolations compiled."""

    tree: _Node
    step_references: frozenset[str]
    is_constant: bool
    roots: frozenset[str] = frozenset()
    """The context roots its expressions read (`input`, `steps`, `step`...)."""

    def render(self, context: Mapping[str, Any], budget: Budget | None = None) -> Any:
        """The JSON value with every interpolation evaluated in `context`, all of them within
        `budget` (one evaluation budget when not given)."""
        if self.is_constant:
            return self.tree
        return _render(self.tree, context, budget if budget is not None else Budget())


def compile_template(value: Any, *, step: str | None, field: str) -> Template:
    """Compile every `${{ }}` in `value`; errors name the step, the field path and position."""
    _check_shape(value, step, field)
    references: set[str] = set()
    roots: set[str] = set()
    tree = _compile(value, step, field, references, roots)
    constant = not references and not _has_interpolation(tree)
    return Template(
        tree=tree,
        step_references=frozenset(references),
        is_constant=constant,
        roots=frozenset(roots),
    )


def _check_shape(value: Any, step: str | None, field: str) -> None:
    """Refuse a value nested deeper than MAX_NESTING or with more than MAX_INTERPOLATIONS,
    walking it without recursion (before anything recurses over it)."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            raise ExpressionError(
                f"value nested more than {MAX_NESTING} levels deep", step=step, field=field
            )
        if isinstance(item, str):
            count += item.count("${{")
        elif isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    if count > MAX_INTERPOLATIONS:
        raise ExpressionError(
            f"{count} '${{{{' in one value, over the limit of {MAX_INTERPOLATIONS}: build "
            "large values in a worker activity or a `set` step",
            step=step,
            field=field,
        )


def _compile(value: Any, step: str | None, path: str, refs: set[str], roots: set[str]) -> _Node:
    if isinstance(value, str):
        return _compile_string(value, step, path, refs, roots)
    if isinstance(value, Mapping):
        return {k: _compile(v, step, f"{path}.{k}", refs, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile(v, step, f"{path}[{i}]", refs, roots) for i, v in enumerate(value)]
    return value


def _compile_string(
    text: str, step: str | None, path: str, refs: set[str], roots: set[str]
) -> _Node:
    if "${{" not in text:
        return text
    parts: list[_Text | Expression] = []
    literal: list[str] = []
    cursor = 0
    for start, end, cel_start in _interpolations(text):
        between = text[cursor:start]
        _check_closed(between, cursor, text, step, path)
        literal.append(between)
        cursor = end
        if cel_start is None:
            literal.append("${{")
            continue
        if "".join(literal):
            parts.append(_Text("".join(literal)))
        literal = []
        source = text[cel_start : end - 2]
        leading = len(source) - len(source.lstrip())
        expression = compile_expression(
            source.strip(), step=step, field=path, offset=cel_start + leading
        )
        refs.update(expression.step_references)
        roots.update(expression.roots)
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


def _render(tree: _Node, context: Mapping[str, Any], budget: Budget) -> Any:
    if isinstance(tree, _Interpolated):
        return tree.render(context, budget)
    if isinstance(tree, dict):
        return {k: _render(v, context, budget) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_render(v, context, budget) for v in tree]
    return tree


def as_text(value: Any) -> str:
    """A rendered value as text: a string as it is, anything else as compact JSON with sorted
    keys. How a result is written inside a longer string, and how a `fail.message` that is not
    a string becomes the error's message."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
