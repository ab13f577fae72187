"""`${{ }}` interpolation: type preservation, text rendering, errors."""

import pytest

from baton.expr import ExpressionError, as_text, compile_template

CONTEXT = {
    "input": {"propertyId": "p-9", "amount": 1200, "tags": ["a", "b"]},
    "steps": {"reserve": {"output": {"id": 42}, "phase": "Succeeded", "attempts": 1}},
}


def test_whole_string_interpolation_keeps_the_json_type() -> None:
    template = compile_template(
        {"n": "${{ input.amount }}", "t": "${{input.tags}}"}, step="s", field="body"
    )
    assert template.render(CONTEXT) == {"n": 1200, "t": ["a", "b"]}


def test_interpolation_inside_text_renders_as_text() -> None:
    template = compile_template(
        "http://inventory/reservations/${{ steps.reserve.output.id }}", step="s", field="http.url"
    )
    assert template.render(CONTEXT) == "http://inventory/reservations/42"


def test_non_string_values_inside_text_render_as_compact_json() -> None:
    template = compile_template("tags=${{ input.tags }}", step="s", field="args[0]")
    assert template.render(CONTEXT) == 'tags=["a","b"]'


def test_nested_lists_and_objects_are_rendered_everywhere() -> None:
    template = compile_template(
        {"a": [{"b": "${{ input.propertyId }}"}], "c": 3}, step="s", field="body"
    )
    assert template.render(CONTEXT) == {"a": [{"b": "p-9"}], "c": 3}


def test_template_without_interpolation_is_constant() -> None:
    template = compile_template({"a": ["x", 1, None]}, step="s", field="body")
    assert template.is_constant
    assert template.render({}) == {"a": ["x", 1, None]}


def test_step_references_are_collected_from_every_string() -> None:
    template = compile_template(
        ["${{ steps.a.output }}", {"k": "x${{ steps.b.output.id }}"}], step="s", field="body"
    )
    assert template.step_references == {"a", "b"}


def test_error_names_the_field_path_and_position_in_the_string() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template({"payload": ["ok", "a ${{ input. }}"]}, step="pay", field="http.body")
    assert str(caught.value).startswith(
        "step 'pay', field 'http.body.payload[1]', position 13: invalid CEL 'input.'"
    )


def test_unclosed_interpolation_is_refused() -> None:
    with pytest.raises(ExpressionError, match="unclosed"):
        compile_template("id=${{ input.id", step="s", field="http.url")


def test_a_doubled_dollar_writes_a_literal_interpolation_opening() -> None:
    template = compile_template("echo '$${{ input.amount }}'", step="s", field="job.args[0]")
    assert template.is_constant
    assert template.render(CONTEXT) == "echo '${{ input.amount }}'"


def test_escaped_and_real_interpolations_mix_in_one_string() -> None:
    template = compile_template(
        "$${{ input.amount }} is ${{ input.amount }}, $${{x", step="s", field="fail.message"
    )
    assert not template.is_constant
    assert template.render(CONTEXT) == "${{ input.amount }} is 1200, ${{x"


def test_a_string_that_is_only_an_escape_stays_a_string() -> None:
    template = compile_template({"doc": "$${{ steps.reserve.output }}"}, step="s", field="body")
    assert template.render(CONTEXT) == {"doc": "${{ steps.reserve.output }}"}
    assert template.step_references == frozenset()


def test_a_dollar_before_an_escape_stays_a_dollar() -> None:
    template = compile_template("$$${{ x }}", step="s", field="body")
    assert template.render(CONTEXT) == "$${{ x }}"


def test_inside_an_interpolation_the_escape_is_cel_text() -> None:
    template = compile_template("${{ '$${{' + 'a' }}", step="s", field="body")
    assert template.render(CONTEXT) == "$${{a"


def test_an_unclosed_interpolation_before_an_escape_is_refused() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template("id=${{ input.id and $${{ more", step="s", field="http.url")
    assert str(caught.value) == (
        "step 's', field 'http.url', position 4: unclosed '${{': close it with '}}', "
        "or write '$${{' for a literal '${{'"
    )


def test_map_keys_are_not_unescaped() -> None:
    template = compile_template({"$${{ k }}": "v"}, step="s", field="body")
    assert template.render(CONTEXT) == {"$${{ k }}": "v"}


def test_a_value_as_text_is_a_string_as_it_is_or_sorted_compact_json() -> None:
    values = ("a", 1, 1.5, True, None, {"b": [1], "a": "é"})
    assert [as_text(v) for v in values] == [
        "a",
        "1",
        "1.5",
        "true",
        "null",
        '{"a":"\\u00e9","b":[1]}',  # the same text wherever a value is written: args, headers
    ]


def test_a_closing_brace_pair_inside_a_cel_string_does_not_end_the_interpolation() -> None:
    template = compile_template("a ${{ '}}' + \"}}\" }} b ${{ 'it\\'s' }}", step=None, field="f")
    assert template.render({}) == "a }}}} b it's"


def test_a_string_left_open_inside_an_interpolation_is_refused() -> None:
    with pytest.raises(ExpressionError, match="unclosed"):
        compile_template("${{ 'abc }}", step="s", field="http.url")
