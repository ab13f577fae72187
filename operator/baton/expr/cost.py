"""What evaluating an expression may cost, bounded before the CEL core runs it.

Values are JSON as the engine holds it: `dict`, `list`, `str`, numbers, booleans and None
(checked by concrete type: an abstract `Mapping` check costs more than the rest of a walk).

The CEL core has no cost limit and cannot be interrupted: an expression it starts, it finishes,
on the operator's only event loop. So before each evaluation the expression's tree is walked
over the values it will actually read, and an upper bound of the work is computed in
*operations*; an evaluation over EVALUATION_BUDGET is refused with an EvaluationError instead of
run. The bound depends only on the expression and the values, never on a clock, so a replay
decides exactly as the first run did.

The weights below were measured on the CEL core (docs/language.md has the numbers): converting
a value into CEL costs about 4 µs per map entry or list element, more than anything the
expression then does; `map` and `filter` copy their accumulator on every iteration, so their
cost grows with the square of the list's length (a `map` over 10,000 numbers took 3 s). One
operation is meant to be at most about 0.1 µs of the core's time, so the budget of 1,000,000
operations keeps the worst evaluation near 100 ms.

The same walk decides what to hand the core: a root read only through fixed paths
(`steps.pay.output.amount`) is bound as just those paths, not as the whole value, because
converting `steps` whole on every evaluation would cost more than most expressions do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from baton.expr.syntax import Kind, Node

EVALUATION_BUDGET = 1_000_000
"""Operations one evaluation (or one template's render) may cost; about 100 ms at most."""

MAX_VALUE_NESTING = 100
"""Levels of lists and maps in a value an expression reads: the CEL core converts values by
recursion too, and a list nested 10,000 deep crashed the process (1,000 did not)."""

_CONVERT = 40
"""Per value unit converted into CEL or back into Python (about 4 µs per entry, measured)."""
_NODE = 10
"""Per node of the tree evaluated."""
_COPY = 4
"""Per value unit copied, compared or scanned by an operator or function."""
_ITERATION = 20
"""Per iteration of a comprehension, besides its body."""
_ACCUMULATE = 1
"""Per value unit copied when `map` or `filter` appends to its accumulator, which the core
copies whole, elements included, on every iteration: L²/2 elements per loop (measured: a `map`
producing 148 lists of 148 numbers took 80 ms; of 148 lists of one number, 3 ms)."""
_REGEX = 1_000
"""Compiling a regular expression for `matches`, besides its length."""
_PATTERN_CHARACTER = 8
"""Per character of a `matches` pattern compiled (a 1,000,000-character one took 222 ms)."""
_STRING_UNIT = 256
"""Characters of a string counted as one value unit (copying text is cheap per character)."""


@dataclass(frozen=True, slots=True)
class Bound:
    """Upper bounds of a value: its size in value units, its length (elements, entries or
    characters) and the size of any one element, key or entry value."""

    total: int
    length: int
    item: int


_ONE = Bound(1, 1, 1)


class TooDeepError(ValueError):
    """A value read by an expression nests deeper than MAX_VALUE_NESTING."""


@dataclass(frozen=True, slots=True)
class Plan:
    """An evaluation's bounded cost and the (possibly pruned) roots to bind."""

    cost: int
    bindings: dict[str, Any]


class _Whole:
    """Marks a kept subtree as kept entire."""


_WHOLE = _Whole()
_Trie = dict[str, "_Trie | _Whole"]


def plan(tree: Node, roots: frozenset[str], context: Mapping[str, Any], *, budget: int) -> Plan:
    """The cost bound of evaluating `tree` over `context`, and the bindings to evaluate with;
    TooDeepError when a value it reads nests deeper than MAX_VALUE_NESTING.

    Measuring stops once a value is known to be over `budget`, so planning itself stays
    cheap however large the values."""
    estimator = _Estimator(context, roots, budget)
    cost, result = estimator.walk(tree, {})
    cost += _CONVERT * result.total
    bindings: dict[str, Any] = {}
    for root, kept in estimator.kept.items():
        bindings[root] = _prune(context[root], kept)
        cost += _CONVERT * estimator.converted(context[root], kept)
    return Plan(cost=cost, bindings=bindings)


class _Estimator:
    def __init__(self, context: Mapping[str, Any], roots: frozenset[str], budget: int) -> None:
        self.context = context
        self.roots = frozenset(r for r in roots if r in context)
        self.allowance = budget // _CONVERT + 1
        """Value units left to measure; past it every measure saturates (and is over budget)."""
        self.sizes: dict[int, Bound] = {}
        self.kept: dict[str, _Trie | _Whole] = {}

    # -- values ------------------------------------------------------------------------------

    def measure(self, value: Any) -> Bound:
        """The bound of an actual value, cached per object for this plan."""
        known = self.sizes.get(id(value))
        if known is not None:
            return known
        if value is None or isinstance(value, bool | int | float):
            bound = _ONE
        elif isinstance(value, str | bytes):
            bound = Bound(1 + len(value) // _STRING_UNIT, len(value), 1)
        elif isinstance(value, dict | list | tuple | Mapping):
            parts: list[int] = []
            elements = [*value.keys(), *value.values()] if _is_map(value) else value
            for element in elements:
                parts.append(self.total(element))
                if self.allowance <= 0:  # the rest cannot matter: over budget already
                    parts.append(_SATURATED)
                    break
            bound = Bound(self._cap(1 + sum(parts)), len(value), max(parts, default=1))
        else:
            bound = _ONE
        self.sizes[id(value)] = bound
        return bound

    def total(self, value: Any) -> int:
        """A value's size in units, walked without recursion (values may nest deeply) and
        saturating at the allowance left."""
        count = 0
        stack = [(value, 1)]
        while stack:
            if self.allowance <= 0:
                return count + self.allowance_exceeded()
            item, depth = stack.pop()
            self.allowance -= 1
            if item is None or isinstance(item, bool | int | float):
                count += 1
            elif isinstance(item, str | bytes):
                count += 1 + len(item) // _STRING_UNIT
            elif isinstance(item, dict | list | tuple | Mapping):
                if depth >= MAX_VALUE_NESTING:
                    raise TooDeepError(f"a value nests more than {MAX_VALUE_NESTING} levels deep")
                count += 1
                if _is_map(item):
                    stack.extend((k, depth + 1) for k in item)
                    stack.extend((v, depth + 1) for v in item.values())
                else:
                    stack.extend((v, depth + 1) for v in item)
            else:
                count += 1
        return count

    def allowance_exceeded(self) -> int:
        # Large enough that any cost built on it is over budget.
        return _SATURATED

    def _cap(self, total: int) -> int:
        return min(total, _SATURATED)

    def converted(self, value: Any, kept: _Trie | _Whole) -> int:
        """Units converted into CEL when `value` is bound pruned to `kept`."""
        if isinstance(kept, _Whole) or not isinstance(value, dict):
            return self.measure(value).total
        return 1 + sum(
            1 + self.converted(value[key], sub) for key, sub in kept.items() if key in value
        )

    def keep(self, root: str, keys: list[str]) -> None:
        """Remember that `root` is read at `keys` (and below)."""
        if isinstance(self.kept.get(root), _Whole):
            return
        if not keys:
            self.kept[root] = _WHOLE
            return
        trie = self.kept.setdefault(root, {})
        assert isinstance(trie, dict)
        for key in keys[:-1]:
            sub = trie.setdefault(key, {})
            if isinstance(sub, _Whole):
                return
            trie = sub
        trie[keys[-1]] = _WHOLE

    # -- the tree ----------------------------------------------------------------------------

    def walk(self, node: Node, env: dict[str, Bound]) -> tuple[int, Bound]:
        """(cost, bound of the result) of `node`, with comprehension variables in `env`."""
        path = _static_path(node)
        if path is not None and path[0] not in env:
            return self._read(path[0], path[1])
        kind = node.kind
        if kind is Kind.IDENT:
            return _NODE, env.get(node.name, _ONE)
        if kind is Kind.LITERAL:
            if node.name == "string" and isinstance(node.value, str):
                n = len(node.value)
                return _NODE, Bound(1 + n // _STRING_UNIT, n, 1)
            return _NODE, _ONE
        if kind is Kind.COMPREHENSION:
            return self._comprehension(node, env)
        walked = [self.walk(child, env) for child in node.children]
        cost = _NODE + sum(c for c, _ in walked)
        bounds = [b for _, b in walked]
        if kind is Kind.SELECT:
            return cost, bounds[0]
        if kind is Kind.INDEX:
            item = bounds[0].item
            return cost, Bound(item, item, item)
        if kind is Kind.LIST or kind is Kind.MAP:
            total = _saturate(1 + sum(b.total for b in bounds))
            return cost, Bound(total, len(bounds), max((b.total for b in bounds), default=1))
        if kind is Kind.UNARY:
            return cost, _ONE
        if kind is Kind.CONDITIONAL:
            # Both branches counted: a bound, not a prediction of which one runs.
            then, otherwise = bounds[1], bounds[2]
            return cost, Bound(
                max(then.total, otherwise.total),
                max(then.length, otherwise.length),
                max(then.item, otherwise.item),
            )
        if kind is Kind.BINARY:
            return self._binary(node.name, cost, bounds[0], bounds[1])
        return self._call(node, cost, bounds)

    def _read(self, root: str, keys: list[str]) -> tuple[int, Bound]:
        if root not in self.roots:
            return _NODE, _ONE  # unbound: the core reports the missing name
        value = self.context[root]
        followed: list[str] = []
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                break
            value = value[key]
            followed.append(key)
        self.keep(root, followed)
        return _NODE * (1 + len(keys)), self.measure(value)

    def _binary(self, operator: str, cost: int, left: Bound, right: Bound) -> tuple[int, Bound]:
        if operator == "+":
            total = _saturate(left.total + right.total)
            cost += _COPY * total
            return cost, Bound(total, left.length + right.length, max(left.item, right.item))
        if operator in ("==", "!=", "<", "<=", ">", ">="):
            return cost + _COPY * (left.total + right.total), _ONE
        if operator == "in":
            return cost + _COPY * (right.length + 1) * (left.total + 1), _ONE
        return cost, _ONE  # && || - * / %: numbers, booleans, durations and timestamps

    def _call(self, node: Node, cost: int, bounds: list[Bound]) -> tuple[int, Bound]:
        name = node.name
        scanned = sum(b.total for b in bounds)
        if name == "matches" and len(bounds) == 2:
            text, pattern = bounds
            # The core's regex engine has no backtracking: linear in the text for a compiled
            # pattern; compiling costs per character of the pattern (0.2 µs measured).
            compiling = _REGEX + _PATTERN_CHARACTER * pattern.length
            return cost + compiling + (text.length + 1) * (pattern.length + 1) // 16, _ONE
        if name in ("size", "contains", "startsWith", "endsWith", "has") or name.startswith("get"):
            return cost + _COPY * scanned, _ONE
        if name == "string":
            length = max(32, 4 * sum(b.length for b in bounds))
            return cost + _COPY * scanned, Bound(1 + length // _STRING_UNIT, length, 1)
        if name == "dyn" and bounds:
            return cost, bounds[0]
        # Conversions (int, double, bytes, timestamp, duration, type, …): read their argument.
        total = _saturate(max(scanned, 1))
        return cost + _COPY * scanned, Bound(total, total, total)

    def _comprehension(self, node: Node, env: dict[str, Bound]) -> tuple[int, Bound]:
        cost, target = self.walk(node.children[0], env)
        element = Bound(target.item, target.item, target.item)
        inner = {**env, str(node.value): element}
        bodies = [self.walk(child, inner) for child in node.children[1:]]
        loops = target.length
        per_iteration = _ITERATION + sum(c for c, _ in bodies)
        cost += _NODE + loops * per_iteration
        if node.name == "map":
            produced = bodies[-1][1] if bodies else _ONE
            cost += _ACCUMULATE * loops * loops // 2 * produced.total
            cost += _COPY * loops * produced.total
            total = _saturate(1 + loops * produced.total)
            return cost, Bound(total, loops, produced.total)
        if node.name == "filter":
            cost += _ACCUMULATE * loops * loops // 2 * target.item
            return cost, target
        return cost, _ONE


_SATURATED = 1 << 62
"""A size known to be larger than anything a budget allows."""


def _saturate(value: int) -> int:
    return min(value, _SATURATED)


def _is_map(value: Any) -> TypeGuard[Mapping[Any, Any]]:
    # `dict` first: most values are, and the abstract check is the slow one.
    return type(value) is dict or isinstance(value, Mapping)


def _static_path(node: Node) -> tuple[str, list[str]] | None:
    """`root` and field names when `node` is `root.a['b'].c`, else None."""
    keys: list[str] = []
    while node.kind is not Kind.IDENT:
        if node.kind is Kind.SELECT:
            keys.append(node.name)
            node = node.children[0]
        elif node.kind is Kind.INDEX and _plain_string(node.children[1]):
            keys.append(str(node.children[1].value))
            node = node.children[0]
        else:
            return None
    keys.reverse()
    return node.name, keys


def _plain_string(node: Node) -> bool:
    """A string literal whose text is its value (no escapes or prefixes to interpret)."""
    return (
        node.kind is Kind.LITERAL
        and isinstance(node.value, str)
        and node.value != ""
        and "\\" not in node.value
        and node.name == "string"
    )


def _prune(value: Any, kept: _Trie | _Whole) -> Any:
    """`value` with only the kept paths: what the expression can observe of it."""
    if isinstance(kept, _Whole) or not isinstance(value, dict):
        return value
    return {key: _prune(value[key], sub) for key, sub in kept.items() if key in value}
