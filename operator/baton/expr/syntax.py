"""The shape of a CEL expression, read before the CEL core ever sees it.

The CEL core (`common-expression-language`, Rust) evaluates by recursion over its syntax tree
with no limit of its own: a chain of 20,000 `+` compiles and then overflows the stack of
whichever thread evaluates it, a segmentation fault no `except` can catch (measured: 500 levels
already crash a thread with a 256 KiB stack; 300 do not). It also has no cost limit. So every
expression is parsed here first, into a small tree that carries its nesting depth, and refused
when it is longer, deeper or nests more comprehensions than the limits below; `baton.expr.cost`
walks the same tree to bound what an evaluation may cost.

The parser follows the CEL grammar (github.com/google/cel-spec, langdef.md). It only needs the
tree's shape: the CEL core still decides what is valid and what it means. Recursion here is
bounded by MAX_DEPTH (a deeper expression is refused before the parser recurses further), and
chains of operators, selections and calls are built in loops, so a hostile expression cannot
exhaust Python's stack either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from baton.api.workflow import MAX_EXPRESSION_LENGTH

MAX_LENGTH = MAX_EXPRESSION_LENGTH
"""Characters in one expression (a bare one, or one `${{ }}`); the CRD carries the same bound."""
MAX_DEPTH = 32
"""Levels of the syntax tree: `a + b + c` is 3 deep, `f(g(x))` 3 as well. A tenth of the
depth that crashed a 256 KiB thread stack in the CEL core."""
MAX_COMPREHENSION_NESTING = 3
"""Comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) inside the body of another:
`a.all(x, x.b.all(y, y.c.all(z, z)))` is 3. Each level multiplies the work by a list length."""

MACROS: frozenset[str] = frozenset({"all", "exists", "exists_one", "map", "filter"})
"""Methods the CEL core expands into a loop over their target, binding their first argument."""


class Kind(StrEnum):
    """What a node of the tree is."""

    LITERAL = "literal"
    IDENT = "ident"
    SELECT = "select"
    INDEX = "index"
    CALL = "call"
    COMPREHENSION = "comprehension"
    LIST = "list"
    MAP = "map"
    UNARY = "unary"
    BINARY = "binary"
    CONDITIONAL = "conditional"


@dataclass(frozen=True, slots=True)
class Node:
    """One node. `name` is the identifier, field, function, macro variable or operator;
    `value` a literal's value (strings without quotes); `children` in source order, a method's
    target first."""

    kind: Kind
    children: tuple[Node, ...] = ()
    name: str = ""
    value: object = None
    position: int = 0
    depth: int = 1
    nesting: int = 0


class SyntaxLimitError(ValueError):
    """An expression over a limit, or one this reader cannot follow; `position` is 1-based."""

    def __init__(self, message: str, position: int, *, limit: bool = False) -> None:
        super().__init__(message)
        self.position = position
        self.limit = limit
        """Over a limit (length, depth, nesting), as opposed to unreadable."""


_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>==|!=|<=|>=|&&|\|\||\.\?|\[\?|[-+*/%<>!?:.,()\[\]{}])
    """,
    re.X,
)
_KEYWORDS = {"true": True, "false": False, "null": None}
_RELATIONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "string", "number", "ident", "punct", "end"
    text: str
    value: object
    position: int


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    at = 0
    while at < len(source):
        match = _TOKEN.match(source, at)
        if match is None:
            raise SyntaxLimitError(f"unexpected character {source[at]!r}", at + 1)
        kind = match.lastgroup or ""
        if kind == "string":
            end, value = _string_end(source, match.end(), match.group(0))
            tokens.append(_Token("string", source[at:end], value, at + 1))
            at = end
            continue
        if kind == "ident" and match.group(0) in _KEYWORDS:
            tokens.append(_Token("literal", match.group(0), _KEYWORDS[match.group(0)], at + 1))
        elif kind == "ident" and match.group(0) == "in":
            tokens.append(_Token("punct", "in", None, at + 1))
        elif kind != "space":
            tokens.append(_Token(kind, match.group(0), match.group(0), at + 1))
        at = match.end()
    tokens.append(_Token("end", "", None, len(source) + 1))
    return tokens


def _string_end(source: str, start: int, opening: str) -> tuple[int, str]:
    """Where the string literal opened by `opening` (prefix and quotes) ends, and its text
    (escapes kept as written: only its length matters here)."""
    quote = opening.lstrip("rRbB")
    raw = "r" in opening.lower()
    at = start
    while at < len(source):
        if source.startswith(quote, at):
            return at + len(quote), source[start:at]
        if source[at] == "\\" and not raw:
            at += 2
            continue
        if source[at] == "\n" and len(quote) == 1:
            break
        at += 1
    raise SyntaxLimitError("unterminated string literal", start - len(opening) + 1)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokens(source)
        self.at = 0
        self.level = 0

    # -- tokens ------------------------------------------------------------------------------

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, text: str) -> bool:
        token = self.peek()
        if token.kind == "punct" and token.text == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> _Token:
        token = self.take()
        if token.kind != "punct" or token.text != text:
            raise SyntaxLimitError(f"expected {text!r}", token.position)
        return token

    # -- grammar -----------------------------------------------------------------------------

    def expression(self) -> Node:
        # The only place the parser recurses: refusing deep nesting here bounds Python's stack.
        self.level += 1
        if self.level > MAX_DEPTH:
            raise SyntaxLimitError(_too_deep(), self.peek().position, limit=True)
        condition = self.binary(0)
        if self.accept("?"):
            then = self.binary(0)
            self.expect(":")
            otherwise = self.expression()
            condition = _node(
                Kind.CONDITIONAL, (condition, then, otherwise), position=condition.position
            )
        self.level -= 1
        return condition

    _LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        _RELATIONS,
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        operators = self._LEVELS[level]
        left = self.binary(level + 1)
        while self.peek().kind == "punct" and self.peek().text in operators:
            operator = self.take()
            right = self.binary(level + 1)
            left = _node(Kind.BINARY, (left, right), name=operator.text, position=operator.position)
        return left

    def unary(self) -> Node:
        operators: list[_Token] = []
        while self.peek().kind == "punct" and self.peek().text in ("!", "-"):
            operators.append(self.take())
        node = self.member()
        for operator in reversed(operators):
            node = _node(Kind.UNARY, (node,), name=operator.text, position=operator.position)
        return node

    def member(self) -> Node:
        node = self.primary()
        while True:
            token = self.peek()
            if self.accept(".") or self.accept(".?"):
                field = self.take()
                if field.kind != "ident":
                    raise SyntaxLimitError("expected a field name", field.position)
                if self.accept("("):
                    arguments = self.arguments(")")
                    node = _call(field.text, node, arguments, field.position)
                else:
                    node = _node(Kind.SELECT, (node,), name=field.text, position=field.position)
            elif self.accept("[") or self.accept("[?"):
                index = self.expression()
                self.expect("]")
                node = _node(Kind.INDEX, (node, index), position=token.position)
            elif node.kind in (Kind.IDENT, Kind.SELECT) and self.accept("{"):
                # A message construction `pkg.Type{field: value}`; its fields are values.
                fields = self.entries(keyed_by_name=True)
                node = _node(Kind.MAP, (node, *fields), position=token.position)
            else:
                return node

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "punct" and token.text == ".":
            token = self.take()
            if token.kind != "ident":
                raise SyntaxLimitError("expected a name after '.'", token.position)
        if token.kind == "ident":
            if self.accept("("):
                return _call(token.text, None, self.arguments(")"), token.position)
            return _node(Kind.IDENT, name=token.text, position=token.position)
        if token.kind in ("string", "number", "literal"):
            # The token's kind ("string", "number" or "literal") is kept as the node's name.
            return _node(Kind.LITERAL, name=token.kind, value=token.value, position=token.position)
        if token.kind == "punct" and token.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind == "punct" and token.text == "[":
            return _node(Kind.LIST, tuple(self.arguments("]")), position=token.position)
        if token.kind == "punct" and token.text == "{":
            return _node(Kind.MAP, tuple(self.entries()), position=token.position)
        raise SyntaxLimitError(f"unexpected {token.text or 'end of expression'!r}", token.position)

    def arguments(self, closing: str) -> list[Node]:
        items: list[Node] = []
        while not self.accept(closing):
            items.append(self.expression())
            if not self.accept(","):
                self.expect(closing)
                break
        return items

    def entries(self, *, keyed_by_name: bool = False) -> list[Node]:
        """Keys and values of a map literal (or fields of a message) in order."""
        items: list[Node] = []
        while not self.accept("}"):
            if keyed_by_name:
                name = self.take()
                items.append(
                    _node(Kind.LITERAL, name="string", value=name.text, position=name.position)
                )
            else:
                self.accept("?")
                items.append(self.expression())
            self.expect(":")
            items.append(self.expression())
            if not self.accept(","):
                self.expect("}")
                break
        return items


def parse(source: str) -> Node:
    """The tree of `source`; SyntaxLimitError when it is over a limit or cannot be read."""
    if len(source) > MAX_LENGTH:
        raise SyntaxLimitError(
            f"expression of {len(source)} characters, over the limit of {MAX_LENGTH}",
            1,
            limit=True,
        )
    parser = _Parser(source)
    tree = parser.expression()
    end = parser.peek()
    if end.kind != "end":
        raise SyntaxLimitError(f"unexpected {end.text!r}", end.position)
    if tree.depth > MAX_DEPTH:
        raise SyntaxLimitError(_too_deep(), tree.position, limit=True)
    if tree.nesting > MAX_COMPREHENSION_NESTING:
        raise SyntaxLimitError(
            f"comprehensions nested {tree.nesting} deep, over the limit of "
            f"{MAX_COMPREHENSION_NESTING}: compute inner lists in an earlier step",
            _deepest_comprehension(tree).position,
            limit=True,
        )
    return tree


def _too_deep() -> str:
    return (
        f"expression nested more than {MAX_DEPTH} levels deep (operators, calls and "
        "brackets count): split it, for example with a `set` step"
    )


def _node(
    kind: Kind,
    children: tuple[Node, ...] = (),
    *,
    name: str = "",
    value: object = None,
    position: int = 0,
) -> Node:
    depth = 1 + max((c.depth for c in children), default=0)
    if depth > MAX_DEPTH:
        # Chains are built in loops, not by recursion: stop them here before they grow on.
        raise SyntaxLimitError(_too_deep(), position, limit=True)
    nesting = max((c.nesting for c in children), default=0)
    if kind is Kind.COMPREHENSION:
        # The target is evaluated once; only the bodies run once per element.
        nesting = max(children[0].nesting, 1 + max((c.nesting for c in children[1:]), default=0))
    return Node(kind, children, name, value, position, depth, nesting)


def _call(name: str, target: Node | None, arguments: list[Node], position: int) -> Node:
    if target is not None and name in MACROS and arguments and arguments[0].kind is Kind.IDENT:
        # The bound variable is kept as the node's value; the bodies follow the target.
        variable = arguments[0].name
        node = _node(Kind.COMPREHENSION, (target, *arguments[1:]), name=name, position=position)
        return Node(
            node.kind, node.children, node.name, variable, position, node.depth, node.nesting
        )
    children = (target, *arguments) if target is not None else tuple(arguments)
    value = "method" if target is not None else "function"
    node = _node(Kind.CALL, children, name=name, position=position)
    return Node(node.kind, node.children, node.name, value, position, node.depth, node.nesting)


def _deepest_comprehension(tree: Node) -> Node:
    """The outermost comprehension of the deepest nest, to point at."""
    node = tree
    while node.kind is not Kind.COMPREHENSION or node.children[0].nesting == node.nesting:
        node = next(c for c in node.children if c.nesting == node.nesting)
    return node
