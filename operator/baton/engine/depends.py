"""Conditional dependencies: the `depends` expression of a step, parsed and evaluated.

`depends` is Argo's enhanced-depends language, kept small: step names of the same list, each
optionally qualified by the outcome it waits for, combined with `&&`, `||`, `!` and
parentheses:

    a.Failed
    b || c
    a.Succeeded && (b.Failed || c.Skipped)

This module owns the grammar (a hand-written recursive-descent parser into a typed tree), the
references a definition checks against its sibling steps, and the evaluation. Evaluation is
three-valued (Kleene): an outcome of a step still pending or in flight is *unknown*, so
`b || c` is true as soon as either one succeeded and `a.Failed` is false as soon as `a`
succeeded. The engine starts a step whose `depends` is true, skips one whose `depends` is
false, and keeps waiting while it is unknown.

A bare name means the step is *done*, as in `needs`: Succeeded, Skipped, or Failed with
`continueOn.failed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from baton.api.workflow import MAX_DEPENDS_LENGTH

MAX_DEPENDS_DEPTH = 32
"""Nesting of parentheses and `!` in one expression: the parser recurses once per level."""


class Outcome(StrEnum):
    """What a qualified name in `depends` waits for (`a.Failed`)."""

    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    DONE = "Done"
    """A bare name: Succeeded, Skipped, or Failed with `continueOn.failed`."""


QUALIFIERS: tuple[Outcome, ...] = (Outcome.SUCCEEDED, Outcome.FAILED, Outcome.SKIPPED)
"""The outcomes a name may be qualified with, as written after the dot."""


class DependsError(ValueError):
    """A `depends` expression that does not parse; the message says where and what to write."""


@dataclass(frozen=True)
class Ref:
    """A step's outcome: `name.Outcome`, or a bare `name` (Outcome.DONE)."""

    step: str
    outcome: Outcome


@dataclass(frozen=True)
class Not:
    """`!operand`."""

    operand: Node


@dataclass(frozen=True)
class AllOf:
    """`a && b && ...`."""

    operands: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """`a || b || ...`."""

    operands: tuple[Node, ...]


Node = Ref | Not | AllOf | AnyOf

Resolver = Callable[[Ref], bool | None]
"""Tells whether a referenced outcome happened: True, False, or None while unknown."""


@dataclass(frozen=True)
class Depends:
    """A parsed `depends` expression."""

    source: str
    tree: Node

    @property
    def refs(self) -> tuple[Ref, ...]:
        """Every reference in the expression, in the order written."""
        return tuple(_refs(self.tree))

    @property
    def steps(self) -> tuple[str, ...]:
        """The step names referenced, each once, in the order first written."""
        return tuple(dict.fromkeys(r.step for r in self.refs))

    def evaluate(self, resolve: Resolver) -> bool | None:
        """True or False once decided, None while an outcome it needs is unknown."""
        return _evaluate(self.tree, resolve)


def parse_depends(source: str) -> Depends:
    """Parse `source`; DependsError names the position and the problem."""
    if len(source) > MAX_DEPENDS_LENGTH:
        raise DependsError(
            f"the expression is {len(source)} characters, over the {MAX_DEPENDS_LENGTH} allowed"
        )
    parser = _Parser(source)
    tree = parser.expression(0)
    parser.expect_end()
    return Depends(source=source, tree=tree)


# -- evaluation -------------------------------------------------------------------------------


def _evaluate(node: Node, resolve: Resolver) -> bool | None:
    if isinstance(node, Ref):
        return resolve(node)
    if isinstance(node, Not):
        value = _evaluate(node.operand, resolve)
        return None if value is None else not value
    # Kleene logic: one decisive operand decides, whatever the unknown ones turn out to be.
    decisive = isinstance(node, AnyOf)
    unknown = False
    for operand in node.operands:
        value = _evaluate(operand, resolve)
        if value is None:
            unknown = True
        elif value is decisive:
            return decisive
    return None if unknown else not decisive


def _refs(node: Node) -> Iterator[Ref]:
    if isinstance(node, Ref):
        yield node
    elif isinstance(node, Not):
        yield from _refs(node.operand)
    else:
        for operand in node.operands:
            yield from _refs(operand)


# -- parsing ----------------------------------------------------------------------------------


class _Kind(StrEnum):
    NAME = "name"
    DOT = "'.'"
    AND = "'&&'"
    OR = "'||'"
    NOT = "'!'"
    OPEN = "'('"
    CLOSE = "')'"
    END = "end of expression"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    at: int


_SINGLE = {".": _Kind.DOT, "!": _Kind.NOT, "(": _Kind.OPEN, ")": _Kind.CLOSE}
_DOUBLE = {"&&": _Kind.AND, "||": _Kind.OR}


def _is_name_start(char: str) -> bool:
    return char.isascii() and char.isalpha()


def _is_name_char(char: str) -> bool:
    # Hyphens belong to names (`charge-card.Failed`): the language has no minus to confuse.
    return char.isascii() and (char.isalnum() or char in "_-")


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char in " \t\n\r":
            i += 1
        elif source[i : i + 2] in _DOUBLE:
            out.append(_Token(_DOUBLE[source[i : i + 2]], source[i : i + 2], i))
            i += 2
        elif char in _SINGLE:
            out.append(_Token(_SINGLE[char], char, i))
            i += 1
        elif _is_name_start(char):
            start = i
            while i < len(source) and _is_name_char(source[i]):
                i += 1
            out.append(_Token(_Kind.NAME, source[start:i], start))
        else:
            hint = " (write && and ||, not & or |)" if char in "&|" else ""
            raise DependsError(f"unexpected {char!r} at position {i + 1}{hint}")
    out.append(_Token(_Kind.END, "", len(source)))
    return out


class _Parser:
    """Recursive descent over: or := and ('||' and)*; and := unary ('&&' unary)*;
    unary := '!' unary | '(' or ')' | NAME ('.' NAME)?"""

    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.i = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, wanted: str) -> DependsError:
        token = self.current
        found = f"{token.text!r}" if token.kind is not _Kind.END else "the end"
        return DependsError(f"expected {wanted} at position {token.at + 1}, found {found}")

    def expect_end(self) -> None:
        if self.current.kind is not _Kind.END:
            raise self.fail("&&, || or the end")

    def expression(self, depth: int) -> Node:
        operands = [self.conjunction(depth)]
        while self.current.kind is _Kind.OR:
            self.take()
            operands.append(self.conjunction(depth))
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def conjunction(self, depth: int) -> Node:
        operands = [self.unary(depth)]
        while self.current.kind is _Kind.AND:
            self.take()
            operands.append(self.unary(depth))
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def unary(self, depth: int) -> Node:
        if depth >= MAX_DEPENDS_DEPTH:
            raise DependsError(f"nested deeper than {MAX_DEPENDS_DEPTH} levels")
        token = self.current
        if token.kind is _Kind.NOT:
            self.take()
            return Not(self.unary(depth + 1))
        if token.kind is _Kind.OPEN:
            self.take()
            inner = self.expression(depth + 1)
            if self.current.kind is not _Kind.CLOSE:
                raise self.fail("')'")
            self.take()
            return inner
        if token.kind is not _Kind.NAME:
            raise self.fail("a step name, '!' or '('")
        self.take()
        if self.current.kind is not _Kind.DOT:
            return Ref(token.text, Outcome.DONE)
        self.take()
        qualifier = self.current
        known = ", ".join(q.value for q in QUALIFIERS)
        if qualifier.kind is not _Kind.NAME:
            raise self.fail(f"an outcome ({known})")
        if qualifier.text not in {q.value for q in QUALIFIERS}:
            raise DependsError(
                f"unknown outcome {token.text}.{qualifier.text} at position {qualifier.at + 1}: "
                f"write one of {known} (a bare name means done)"
            )
        self.take()
        return Ref(token.text, Outcome(qualifier.text))
