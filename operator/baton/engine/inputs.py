"""A run's input checked against its Workflow's `inputSchema` (JSON Schema 2020-12)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match


class InputSchemaError(ValueError):
    """The `inputSchema` of a definition is not a valid JSON Schema."""


def check_input_schema(schema: Mapping[str, Any] | None) -> None:
    """Raise InputSchemaError (one line) when `schema` is not a valid JSON Schema."""
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise InputSchemaError(f"field 'inputSchema' at {where}: {exc.message}") from None


def input_problem(schema: Mapping[str, Any] | None, value: Any) -> str | None:
    """One line describing why `value` does not satisfy `schema`, or None when it does."""
    if schema is None:
        return None
    error = best_match(Draft202012Validator(schema).iter_errors(value))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"input{where}: {error.message}"
