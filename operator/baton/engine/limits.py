"""Limits on the values a run carries, so that every state the engine reaches can be stored.

Whatever the engine keeps (the input, `vars`, outputs, rendered requests, forEach items, query
results) ends up in the run's `.status`, an object the API server must accept and etcd must hold.
JSON has no `Infinity` or `NaN` (CEL's `1.0/0.0` is one), the API server refuses them, and a
value nested hundreds of levels deep overflows Python's recursion in every copy and encoder on
the way. A value that cannot be stored is therefore refused where it is made — an expression
result becomes an `ExpressionError` of its step, an input an `Invalid` run — instead of failing
every status write after it.

The checks walk values with an explicit stack, never by recursion: the values they guard against
are exactly the ones that would overflow it.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 64
"""Deepest nesting of lists and objects in a value a run keeps (the input, outputs, `vars`,
requests). Real documents stay far below it; the status nests each value a few levels deeper."""

MAX_INPUT_BYTES = 256 * 1024
"""Largest run input, as compact JSON. The run object holds it twice (`spec.input` and the
status's copy) beside a status of up to 512 KiB, and etcd refuses objects over 1.5 MiB."""


def value_problem(value: Any, root: str = "the value") -> str | None:
    """Why `value` cannot be stored as JSON in a run (a number JSON cannot write, nesting deeper
    than MAX_JSON_DEPTH), naming where in the value (paths start at `root`); None when it can.

    The walk keeps no paths (a 330 KB value takes about 10 ms); only a value with a problem is
    walked again to name where."""
    if _fine(value):
        return None
    stack: list[tuple[Any, str, int]] = [(value, root, 0)]
    while stack:
        node, where, depth = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return f"{where} is {node!r}, which JSON cannot hold"
        if isinstance(node, dict | list):
            if depth >= MAX_JSON_DEPTH:
                return f"{where} nests lists and objects more than {MAX_JSON_DEPTH} levels deep"
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, inner in items:
                step = f"[{key}]" if isinstance(key, int) else f".{key}"
                stack.append((inner, where + step, depth + 1))
    return None


def _fine(value: Any) -> bool:
    """True when `value` has no non-finite number and no nesting past MAX_JSON_DEPTH."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        kind = type(node)
        if kind is dict or kind is list:
            if depth >= MAX_JSON_DEPTH:
                return False
            for inner in node.values() if kind is dict else node:
                if type(inner) in _SCALARS:
                    continue
                push((inner, depth + 1))
        elif kind is float:
            if not math.isfinite(node):
                return False
        elif kind in _SCALARS:
            continue
        elif isinstance(node, dict):  # subclasses: as the plain types
            push((dict(node), depth))
        elif isinstance(node, list):
            push((list(node), depth))
        elif isinstance(node, float) and not math.isfinite(node):
            return False
    return True


_SCALARS = frozenset({str, int, bool, type(None)})


def input_problem(value: Any) -> str | None:
    """Why a run's `input` cannot be accepted (too large, too deep, not JSON), else None."""
    problem = value_problem(value, "input")
    if problem is not None:
        return problem
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_INPUT_BYTES:
        return (
            f"input: {size} bytes of JSON, over the {MAX_INPUT_BYTES} a run accepts; pass "
            "references (object keys, ids) to bulk data kept in your own store"
        )
    return None
