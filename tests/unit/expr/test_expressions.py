"""Bare CEL expressions: compile-time errors and evaluation."""

import pytest

from baton.expr import EvaluationError, ExpressionError, compile_expression


def test_comparison_over_step_output_evaluates_to_bool() -> None:
    expr = compile_expression("steps.pay.output.amount > 1000000", step="approval", field="when")
    assert expr.evaluate({"steps": {"pay": {"output": {"amount": 2_000_000}}}}) is True
    assert expr.evaluate({"steps": {"pay": {"output": {"amount": 5}}}}) is False


def test_int_and_double_compare_without_conversion() -> None:
    expr = compile_expression("input.amount > 1.5", step=None, field="when")
    assert expr.evaluate({"input": {"amount": 2}}) is True


def test_syntax_error_names_step_field_and_position() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("input.a +", step="pay", field="when")
    message = str(caught.value)
    assert message.startswith("step 'pay', field 'when', position 10: invalid CEL 'input.a +'")
    assert "\n" not in message


def test_unknown_root_name_is_refused_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match=r"unknown name 'inptu'"):
        compile_expression("inptu.amount > 3", step="pay", field="when")


def test_comprehension_variables_are_not_unknown_names() -> None:
    expr = compile_expression("input.items.map(i, i * 2)", step=None, field="forEach.items")
    assert expr.evaluate({"input": {"items": [1, 2]}}) == [2, 4]


def test_step_references_are_found_by_member_and_index() -> None:
    expr = compile_expression(
        "steps.pay.output.ok && steps['reserve'].phase == 'Succeeded' && 'steps.fake' != ''",
        step=None,
        field="when",
    )
    assert expr.step_references == {"pay", "reserve"}


def test_missing_key_is_an_evaluation_error() -> None:
    expr = compile_expression("input.missing", step=None, field="when")
    with pytest.raises(EvaluationError, match="no such key 'missing'"):
        expr.evaluate({"input": {}})


def test_has_tests_presence_without_error() -> None:
    expr = compile_expression("has(input.missing)", step=None, field="when")
    assert expr.evaluate({"input": {}}) is False


def test_division_by_zero_is_an_evaluation_error() -> None:
    expr = compile_expression("input.a / 0", step=None, field="when")
    with pytest.raises(EvaluationError):
        expr.evaluate({"input": {"a": 1}})


def test_timestamps_come_back_as_rfc3339_strings() -> None:
    expr = compile_expression('timestamp("2026-01-02T03:04:05Z")', step=None, field="output")
    assert expr.evaluate({}) == "2026-01-02T03:04:05Z"


def test_empty_expression_is_refused() -> None:
    with pytest.raises(ExpressionError, match="empty expression"):
        compile_expression("  ", step="s", field="when")


def test_a_function_the_cel_core_lacks_is_refused_at_compile_time() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("input.csv.split(',')", step="parse", field="when")
    assert str(caught.value).startswith(
        "step 'parse', field 'when', position 11: function 'split' is not available"
    )


def test_standard_functions_and_macros_compile() -> None:
    expr = compile_expression(
        "size(input.xs) == 2 && input.xs.all(x, string(x).startsWith('1')) "
        "&& has(input.t) && timestamp(input.t).getFullYear() == 2026",
        step=None,
        field="when",
    )
    assert expr.evaluate({"input": {"xs": [1, 12], "t": "2026-01-01T00:00:00Z"}}) is True
