"""A run's input checked against its Workflow's `inputSchema` (JSON Schema 2020-12).

Whoever writes a Workflow is not trusted to write a schema that is cheap to check, and the check
runs on the operator's only event loop, so what can make it slow or crash is refused when the
Workflow is applied (`check_input_schema`), or bounded when a run's input is checked:

- `pattern` and `patternProperties` are matched with RE2, which never backtracks (Python's `re`
  took forever on `^(a+)+$` against 41 characters); a pattern RE2 cannot compile (a
  backreference, a lookaround) is refused at apply time, naming where it is.
- `$ref` and `$dynamicRef` must point inside the schema (`#`, `#/json/pointer`, `#anchor`), and
  `$id` may only stand at the top: the checker never fetches anything, and every reference can
  be followed here. A loop of references and in-place keywords (`allOf`, `anyOf`, `oneOf`, `not`,
  `if`/`then`/`else`, `dependentSchemas`) that never descends into the input (`{"$ref": "#"}`)
  recurses forever and is refused; so is such a chain longer than MAX_IN_PLACE_CHAIN.
- The schema may nest at most MAX_SCHEMA_NESTING levels, the input MAX_INPUT_NESTING levels:
  the checker recurses once per level.
- `uniqueItems` compares canonical forms in one pass instead of every pair of items.
- `unevaluatedProperties` next to `patternProperties` is refused: the library matches those
  patterns with Python's `re` there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import SchemaError, best_match

MAX_SCHEMA_NESTING = 64
"""Levels of objects and arrays in an `inputSchema`."""
MAX_INPUT_NESTING = 100
"""Levels of objects and arrays in an input checked against a schema."""
MAX_IN_PLACE_CHAIN = 32
"""Subschemas applied to one place of the input in a row (through `$ref`, `allOf`, …)."""

_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")
_REFERENCES = ("$ref", "$dynamicRef")


class InputSchemaError(ValueError):
    """The `inputSchema` of a definition is not a valid JSON Schema, or not one Baton checks."""


def check_input_schema(schema: Mapping[str, Any] | None) -> None:
    """Raise InputSchemaError (one line) when `schema` is not a valid JSON Schema or is one
    that could make checking an input slow or endless."""
    if schema is None:
        return
    _check_nesting(schema)
    try:
        # No format checker: a `pattern` is checked below by RE2, which is what matches it.
        Draft202012Validator.check_schema(schema, format_checker=FormatChecker(formats=()))
    except SchemaError as exc:
        raise _error(_where(exc.absolute_path), exc.message) from None
    subschemas, anchors = _subschemas(schema)
    for pointer, subschema in subschemas.items():
        if _is_keyword_position(pointer):
            _check_subschema(pointer, subschema)
    _check_references(schema, subschemas, anchors)


def input_problem(schema: Mapping[str, Any] | None, value: Any) -> str | None:
    """One line describing why `value` does not satisfy `schema`, or None when it does."""
    if schema is None:
        return None
    if _nesting(value, MAX_INPUT_NESTING) > MAX_INPUT_NESTING:
        return f"input: nests more than {MAX_INPUT_NESTING} levels deep"
    try:
        error = best_match(_Validator(schema).iter_errors(value))
    except RecursionError:  # not expected after the checks above; a message, never a crash
        return "input: too deeply nested for the inputSchema to check"
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"input{where}: {error.message}"


# -- matching with RE2 -------------------------------------------------------------------------


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # an invalid pattern is reported to the user, not logged


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    return re2.compile(pattern, _OPTIONS)


def _search(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in properties and not any(_search(p, key) for p in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif additional is False and extras:
        listed = ", ".join(repr(key) for key in sorted(extras))
        yield ValidationError(f"additional properties are not allowed ({listed} unexpected)")


def _unique_items(
    validator: Any, unique: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[str] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"{item!r} appears more than once; items must be unique")
            return
        seen.add(key)


def _canonical(value: Any) -> str:
    """Equal JSON values (in JSON Schema's sense: 1 == 1.0, true != 1) have equal forms."""
    return json.dumps(_normal(value), sort_keys=True, separators=(",", ":"))


def _normal(value: Any) -> Any:
    # Depth is bounded by MAX_INPUT_NESTING, checked before validation.
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() and abs(value) < 2**63 else value
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


_Validator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
        "uniqueItems": _unique_items,
    },
)


# -- the schema's shape ------------------------------------------------------------------------


def _check_nesting(schema: Mapping[str, Any]) -> None:
    if _nesting(schema, MAX_SCHEMA_NESTING) > MAX_SCHEMA_NESTING:
        raise _error("(root)", f"nests more than {MAX_SCHEMA_NESTING} levels deep")


def _nesting(value: Any, limit: int) -> int:
    """Levels of objects and arrays in `value`, counted without recursion up to `limit` + 1."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _subschemas(schema: Mapping[str, Any]) -> tuple[dict[str, Mapping[str, Any]], dict[str, str]]:
    """Every object in the schema by JSON pointer, and the pointer of every anchor."""
    found: dict[str, Mapping[str, Any]] = {}
    anchors: dict[str, str] = {}
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        item, pointer = stack.pop()
        if isinstance(item, Mapping):
            found[pointer] = item
            for keyword in ("$anchor", "$dynamicAnchor"):
                if isinstance(item.get(keyword), str):
                    anchors[item[keyword]] = pointer
            stack.extend((v, f"{pointer}/{_escape(str(k))}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{pointer}/{i}") for i, v in enumerate(item))
    return found, anchors


def _check_subschema(pointer: str, subschema: Mapping[str, Any]) -> None:
    where = pointer or "(root)"
    if pointer and isinstance(subschema.get("$id"), str):
        raise _error(where, "'$id' is only allowed at the top of an inputSchema")
    patterns = []
    if isinstance(subschema.get("pattern"), str):
        patterns.append((f"{pointer}/pattern", subschema["pattern"]))
    if isinstance(subschema.get("patternProperties"), Mapping):
        patterns.extend(
            (f"{pointer}/patternProperties", key) for key in subschema["patternProperties"]
        )
        if "unevaluatedProperties" in subschema:
            raise _error(
                where, "'unevaluatedProperties' next to 'patternProperties' is not supported"
            )
    for at, pattern in patterns:
        try:
            _regex(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            raise _error(
                at,
                f"pattern {pattern!r} is not a regular expression RE2 can match ({reason}); "
                "backreferences and lookarounds are not supported",
            ) from None


def _is_keyword_position(pointer: str) -> bool:
    """Whether the object at `pointer` is a schema and not, say, a `properties` entry named
    `$id` or a value inside `const`/`enum`/`default`/`examples`."""
    parts = pointer.split("/")
    return not any(p in ("const", "enum", "default", "examples") for p in parts)


def _check_references(
    schema: Mapping[str, Any], subschemas: dict[str, Mapping[str, Any]], anchors: dict[str, str]
) -> None:
    """Refuse references that leave the schema and loops that never descend into the input."""
    edges: dict[str, list[str]] = {}
    for pointer, subschema in subschemas.items():
        if not _is_keyword_position(pointer):
            continue
        targets: list[str] = []
        for keyword in _REFERENCES:
            reference = subschema.get(keyword)
            if isinstance(reference, str):
                targets.append(_resolve(reference, f"{pointer}/{keyword}", subschemas, anchors))
        for keyword in _IN_PLACE_LISTS:
            if isinstance(subschema.get(keyword), list):
                targets.extend(f"{pointer}/{keyword}/{i}" for i in range(len(subschema[keyword])))
        for keyword in _IN_PLACE_ONE:
            if isinstance(subschema.get(keyword), Mapping):
                targets.append(f"{pointer}/{keyword}")
        if isinstance(subschema.get("dependentSchemas"), Mapping):
            targets.extend(
                f"{pointer}/dependentSchemas/{_escape(k)}" for k in subschema["dependentSchemas"]
            )
        edges[pointer] = targets
    _check_chains(edges)


def _resolve(
    reference: str, at: str, subschemas: dict[str, Mapping[str, Any]], anchors: dict[str, str]
) -> str:
    if not reference.startswith("#"):
        raise _error(
            at,
            f"reference {reference!r} leaves the schema: only '#', '#/pointer' and "
            "'#anchor' references are followed (put shared definitions under '$defs')",
        )
    fragment = _unquote(reference[1:])
    target = fragment if fragment == "" or fragment.startswith("/") else anchors.get(fragment)
    if target is None or target not in subschemas:
        raise _error(at, f"reference {reference!r} points to nothing in the schema")
    return target


def _check_chains(edges: dict[str, list[str]]) -> None:
    """Longest in-place chain from every subschema, without recursion; a loop is refused."""
    longest: dict[str, int] = {}
    for start in edges:
        if start in longest:
            continue
        on_path: set[str] = {start}
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges.get(start, ())))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                on_path.discard(node)
                longest[node] = 1 + max((longest[c] for c in edges.get(node, ())), default=0)
                if longest[node] > MAX_IN_PLACE_CHAIN:
                    raise _error(
                        node or "(root)",
                        f"more than {MAX_IN_PLACE_CHAIN} subschemas apply to one place of the "
                        "input in a row (through $ref, allOf, anyOf, oneOf, not, if/then/else)",
                    )
                continue
            if child in on_path:
                raise _error(
                    node or "(root)",
                    f"references loop back to {child or '#'} without descending into the "
                    "input (through $ref, allOf, anyOf, oneOf, not, if/then/else), so "
                    "checking any input would never end",
                )
            if child not in longest:
                on_path.add(child)
                stack.append((child, iter(edges.get(child, ()))))


def _unquote(text: str) -> str:
    """A URI fragment's percent-escapes decoded (`%25` is `%`)."""
    decoded = bytearray()
    at = 0
    while at < len(text):
        hexa = text[at + 1 : at + 3]
        if text[at] == "%" and len(hexa) == 2 and all(c in "0123456789abcdefABCDEF" for c in hexa):
            decoded.append(int(hexa, 16))
            at += 3
        else:
            decoded.extend(text[at].encode())
            at += 1
    return decoded.decode(errors="replace")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _where(path: Any) -> str:
    return "/".join(str(p) for p in path) or "(root)"


def _error(where: str, message: str) -> InputSchemaError:
    return InputSchemaError(f"field 'inputSchema' at {where.lstrip('/') or '(root)'}: {message}")
