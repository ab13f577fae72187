"""inputSchema: refused at apply time when checking could be slow or endless; inputs checked
without backtracking and without unbounded recursion."""

from __future__ import annotations

import pytest

from baton.engine.inputs import (
    MAX_IN_PLACE_CHAIN,
    MAX_INPUT_NESTING,
    MAX_SCHEMA_NESTING,
    InputSchemaError,
    check_input_schema,
    input_problem,
)


def refusal(schema: dict[str, object]) -> str:
    with pytest.raises(InputSchemaError) as raised:
        check_input_schema(schema)
    message = str(raised.value)
    assert message.startswith("field 'inputSchema' at ")
    assert "\n" not in message
    return message


def test_the_limits_are_the_documented_numbers() -> None:
    assert (MAX_SCHEMA_NESTING, MAX_INPUT_NESTING, MAX_IN_PLACE_CHAIN) == (64, 100, 32)


@pytest.mark.timeout(10)
def test_a_backtracking_pattern_is_matched_in_linear_time() -> None:
    # Python's `re` did not finish `^(a+)+$` against these 42 characters.
    schema = {"properties": {"s": {"pattern": "^(a+)+$"}}}
    check_input_schema(schema)
    problem = input_problem(schema, {"s": "a" * 41 + "!"})
    assert problem == f"input.s: {'a' * 41 + '!'!r} does not match '^(a+)+$'"
    assert input_problem(schema, {"s": "a" * 41}) is None


@pytest.mark.timeout(10)
def test_pattern_properties_and_additional_properties_match_in_linear_time() -> None:
    schema = {"patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": False}
    assert input_problem(schema, {"a" * 30: 1}) is None
    problem = input_problem(schema, {"a" * 41 + "!": 1})
    assert problem is not None
    assert "additional properties are not allowed" in problem


def test_a_pattern_with_a_backreference_is_refused_naming_where_it_is() -> None:
    message = refusal({"properties": {"name": {"pattern": "(a)\\1"}}})
    assert "at properties/name/pattern: pattern '(a)\\\\1' is not a regular expression" in message


def test_a_schema_referring_to_itself_in_place_is_refused() -> None:
    message = refusal({"$ref": "#"})
    assert "loop back to # without descending into the input" in message


def test_a_loop_through_all_of_and_defs_is_refused() -> None:
    schema = {
        "$defs": {"x": {"allOf": [{"$ref": "#/$defs/y"}]}, "y": {"anyOf": [{"$ref": "#/$defs/x"}]}},
        "$ref": "#/$defs/x",
    }
    assert "without descending into the input" in refusal(schema)


def test_a_recursive_schema_that_descends_into_the_input_is_accepted() -> None:
    schema = {"type": "object", "properties": {"next": {"$ref": "#"}, "n": {"type": "integer"}}}
    check_input_schema(schema)
    assert input_problem(schema, {"next": {"next": {"n": 1}}}) is None
    assert input_problem(schema, {"next": {"next": {"n": "x"}}}) == (
        "input.next.next.n: 'x' is not of type 'integer'"
    )


def test_an_anchor_reference_is_followed() -> None:
    schema = {
        "$defs": {"node": {"$anchor": "node", "properties": {"next": {"$ref": "#node"}}}},
        "$ref": "#node",
    }
    check_input_schema(schema)
    assert input_problem(schema, {"next": {"next": {}}}) is None


def test_a_reference_leaving_the_schema_is_refused() -> None:
    message = refusal({"$ref": "http://schemas.example/person.json"})
    assert "leaves the schema" in message


def test_a_reference_to_nothing_is_refused() -> None:
    assert "points to nothing" in refusal({"$ref": "#/$defs/missing"})


def test_a_chain_of_references_longer_than_the_limit_is_refused() -> None:
    defs: dict[str, object] = {"a0": {}}
    defs.update({f"a{i}": {"$ref": f"#/$defs/a{i - 1}"} for i in range(1, 40)})
    assert "more than 32 subschemas apply" in refusal({"$defs": defs, "$ref": "#/$defs/a39"})


def test_a_schema_nested_deeper_than_the_limit_is_refused() -> None:
    schema: dict[str, object] = {}
    for _ in range(1_000):
        schema = {"items": schema}
    assert "nests more than 64 levels deep" in refusal(schema)


def test_an_input_nested_deeper_than_the_limit_is_a_problem_not_a_crash() -> None:
    schema = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    value: dict[str, object] = {}
    for _ in range(1_000):
        value = {"child": value}
    assert input_problem(schema, value) == "input: nests more than 100 levels deep"


@pytest.mark.timeout(10)
def test_unique_items_compares_many_objects_in_one_pass() -> None:
    schema = {"type": "array", "uniqueItems": True}
    items: list[object] = [{"a": i} for i in range(20_000)]
    assert input_problem(schema, items) is None
    problem = input_problem(schema, [*items, {"a": 7.0}])
    assert problem == "input: {'a': 7.0} appears more than once; items must be unique"
    assert input_problem(schema, [1, True, 0, False]) is None
