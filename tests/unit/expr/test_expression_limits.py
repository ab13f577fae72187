"""Hostile expressions are refused or bounded, never run unbounded on the operator's loop.

Each case reproduces one found against the CEL core (common-expression-language), which has
no cost limit, cannot be interrupted, and recurses without limit over an expression's tree and
over the values it converts.
"""

from __future__ import annotations

import pytest

from baton.expr import Budget, EvaluationError, ExpressionError, compile_expression
from baton.expr.cost import EVALUATION_BUDGET, MAX_VALUE_NESTING
from baton.expr.syntax import MAX_COMPREHENSION_NESTING, MAX_DEPTH, MAX_LENGTH, Kind, Node, parse
from baton.expr.template import MAX_INTERPOLATIONS, MAX_NESTING, compile_template

TEN = {"input": {"l": list(range(10))}}


def test_the_limits_are_the_documented_numbers() -> None:
    assert (MAX_LENGTH, MAX_DEPTH, MAX_COMPREHENSION_NESTING) == (4096, 32, 3)
    assert (EVALUATION_BUDGET, MAX_VALUE_NESTING) == (1_000_000, 100)
    assert (MAX_INTERPOLATIONS, MAX_NESTING) == (1_000, 64)


def test_four_nested_loops_over_a_ten_item_input_are_refused_at_compile_time() -> None:
    # 65 characters that held the event loop for seconds over ten items.
    source = "input.l.map(a,input.l.map(b,input.l.map(c,input.l.map(d,a+b))))"
    with pytest.raises(ExpressionError, match="comprehensions nested 4 deep, over the limit of 3"):
        compile_expression(source, step="s", field="when")


def test_three_nested_loops_over_ten_items_evaluate() -> None:
    expression = compile_expression(
        "input.l.map(a, input.l.map(b, input.l.map(c, a + b + c)))", step="s", field="when"
    )
    assert expression.evaluate(TEN)[9][9][9] == 27


def test_nested_loops_over_a_larger_input_are_refused_before_they_run() -> None:
    # The shape that reached 486 MB: lists of lists built by nested `map`.
    expression = compile_expression(
        "input.l.map(a, input.l.map(b, input.l))", step="s", field="when"
    )
    with pytest.raises(EvaluationError, match="over the evaluation budget"):
        expression.evaluate({"input": {"l": list(range(300))}})


def test_a_quadratic_map_over_thousands_of_items_is_refused_before_it_runs() -> None:
    expression = compile_expression("input.l.map(x, x + 1)", step="s", field="items")
    with pytest.raises(EvaluationError, match=r"may cost [\d,]+ operations, at most 1,000,000"):
        expression.evaluate({"input": {"l": list(range(20_000))}})


def test_an_expression_longer_than_the_limit_is_refused_at_compile_time() -> None:
    source = " + ".join(["input.a"] * 6_000)  # 56 KB, the size that crashed evaluation
    with pytest.raises(ExpressionError, match=r"of 59997 characters, over the limit of 4096"):
        compile_expression(source, step="s", field="when")


@pytest.mark.parametrize(
    "source",
    [
        "+".join(["1"] * 2_000),
        "input" + ".a" * 1_000,
        "input" + "[0]" * 1_000,
        "-" * 2_000 + "1",
        "true ? 1 : " * 300 + "2",
    ],
    ids=["operators", "selections", "indexes", "unary", "conditionals"],
)
def test_a_chain_deeper_than_the_limit_is_refused_before_the_core_sees_it(source: str) -> None:
    # Within the length limit, but deep enough to overflow the core's stack in a thread.
    with pytest.raises(ExpressionError, match="nested more than 32 levels deep"):
        compile_expression(source, step="s", field="when")


def test_an_expression_as_deep_as_the_limit_evaluates() -> None:
    source = "+".join(["1"] * MAX_DEPTH)
    assert compile_expression(source, step="s", field="when").evaluate({}) == MAX_DEPTH


def test_loops_over_literal_lists_that_are_over_budget_are_refused_at_compile_time() -> None:
    items = "[" + ",".join(str(i) for i in range(60)) + "]"
    source = f"{items}.map(a, {items}.map(b, {items}.map(c, a + b + c)))"
    with pytest.raises(ExpressionError, match="on any values, over the evaluation budget"):
        compile_expression(source, step="s", field="when")


def test_a_value_nested_deeper_than_the_limit_is_refused_not_converted() -> None:
    nested: object = 1
    for _ in range(MAX_VALUE_NESTING + 100):
        nested = [nested]
    expression = compile_expression("size(input.v)", step="s", field="when")
    with pytest.raises(EvaluationError, match="nests more than 100 levels deep"):
        expression.evaluate({"input": {"v": nested}})


def test_reading_one_path_of_a_large_root_is_not_charged_for_the_rest() -> None:
    big = {f"k{i}": {"a": [1, 2, 3], "b": "x" * 20} for i in range(50_000)}
    context = {"steps": {"pay": {"output": {"amount": 3}}, "fetch": {"output": big}}}
    expression = compile_expression("steps.pay.output.amount > 1", step="s", field="when")
    assert expression.evaluate(context) is True
    whole = compile_expression("size(steps.fetch.output) > 1", step="s", field="when")
    with pytest.raises(EvaluationError, match="over the evaluation budget"):
        whole.evaluate(context)


def test_pruned_paths_keep_has_and_missing_keys_as_they_were() -> None:
    context = {"input": {"a": {"b": 1}, "other": list(range(10))}}
    assert compile_expression("has(input.a.c)", step=None, field="w").evaluate(context) is False
    assert compile_expression("has(input.a.b)", step=None, field="w").evaluate(context) is True
    with pytest.raises(EvaluationError, match="no such key"):
        compile_expression("input.z.y", step=None, field="w").evaluate(context)
    both = compile_expression("input.a.b + size(input.other)", step=None, field="w")
    assert both.evaluate(context) == 11


def test_the_interpolations_of_one_template_share_one_budget() -> None:
    one = "${{ input.l.map(x, x + 1) }}"
    context = {"input": {"l": list(range(600))}}
    assert compile_template(one, step="s", field="body").render(context)[-1] == 600
    template = compile_template([one] * 10, step="s", field="body")
    with pytest.raises(EvaluationError, match="are left of 1,000,000"):
        template.render(context)


def test_a_shared_budget_is_spent_by_each_evaluation() -> None:
    budget = Budget(1_000)
    expression = compile_expression("input.a == 1", step=None, field="w")
    while True:
        try:
            expression.evaluate({"input": {"a": 1}}, budget)
        except EvaluationError:
            break
    assert 0 <= budget.left < 1_000


def test_a_string_of_many_unclosed_interpolations_is_refused_at_once() -> None:
    # A regular expression took 23 s to scan 16,000 of them.
    with pytest.raises(ExpressionError, match="16000 '\\$\\{\\{' in one value, over the limit"):
        compile_template("${{" * 16_000, step="s", field="body")
    with pytest.raises(ExpressionError, match="unclosed"):
        compile_template("${{ '" + "${{" * 900 + "x" * 100_000, step="s", field="body")


def test_a_template_nested_deeper_than_the_limit_is_refused() -> None:
    value: object = "${{ input.a }}"
    for _ in range(3_000):
        value = [value]
    with pytest.raises(ExpressionError, match="nested more than 64 levels deep"):
        compile_template(value, step="s", field="body")


def shape(node: Node) -> str:
    """The tree `parse` read, written with every operation in parentheses."""
    inner = [shape(child) for child in node.children]
    match node.kind:
        case Kind.LITERAL:
            return f"{node.name}:{node.value}"
        case Kind.IDENT:
            return node.name
        case Kind.SELECT:
            return f"{inner[0]}.{node.name}"
        case Kind.INDEX:
            return f"{inner[0]}[{inner[1]}]"
        case Kind.CALL | Kind.COMPREHENSION:
            return f"{node.kind.value}:{node.name}({', '.join(inner)})"
        case Kind.BINARY:
            return f"({inner[0]} {node.name} {inner[1]})"
        case Kind.UNARY:
            return f"({node.name}{inner[0]})"
        case Kind.CONDITIONAL:
            return f"({inner[0]} ? {inner[1]} : {inner[2]})"
        case Kind.LIST:
            return "[" + ", ".join(inner) + "]"
        case Kind.MAP:
            pairs = zip(inner[::2], inner[1::2], strict=True)
            return "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
    raise AssertionError(node.kind)


@pytest.mark.parametrize(
    ("source", "tree"),
    [
        ("a.b.c[0]['x'] + 1", "(a.b.c[number:0][string:x] + number:1)"),
        (
            "[1, 2, 3].map(x, x * 2).filter(y, y > 2)",
            "comprehension:filter(comprehension:map([number:1, number:2, number:3], "
            "(x * number:2)), (y > number:2))",
        ),
        ("{'a': 1, 'b': [1, 2],}", "{string:a: number:1, string:b: [number:1, number:2]}"),
        (
            "has(a.b) ? 1 : 2 > 1 ? 3 : 4",
            "(call:has(a.b) ? number:1 : ((number:2 > number:1) ? number:3 : number:4))",
        ),
        ("-1 + -(2) - 3 % 2", "(((-number:1) + (-number:2)) - (number:3 % number:2))"),
        (
            "x in [1, 2] && !(y in {'a': 1})",
            "((x in [number:1, number:2]) && (!(y in {string:a: number:1})))",
        ),
        (
            "r'\\d+' + b'abc' + '''x'y''' + \"\"\"z\"\"\"",
            "(((string:\\d+ + string:abc) + string:x'y) + string:z)",
        ),
        ("1.5e3 + 0x1F + 3u + .5", "(((number:1.5e3 + number:0x1F) + number:3u) + number:.5)"),
        (
            "timestamp('2020-01-01T00:00:00Z').getFullYear()",
            "call:getFullYear(call:timestamp(string:2020-01-01T00:00:00Z))",
        ),
        ("a.?b", "a.b"),
        ("a // a comment\n + 1", "(a + number:1)"),
        ("l.map(x, x > 1, x * 2)", "comprehension:map(l, (x > number:1), (x * number:2))"),
        (
            "a.all(x, x.b.exists(y, y.c.exists_one(z, z)))",
            "comprehension:all(a, comprehension:exists(x.b, comprehension:exists_one(y.c, z)))",
        ),
        (".a.b", "a.b"),
    ],
)
def test_the_reader_reads_every_form_of_the_grammar_with_cel_precedence(
    source: str, tree: str
) -> None:
    assert shape(parse(source)) == tree


def test_a_huge_pattern_from_the_input_is_refused_before_it_is_compiled() -> None:
    expression = compile_expression("'x'.matches(input.p)", step="s", field="when")
    assert expression.evaluate({"input": {"p": "(a|b)" * 100}}) is False
    with pytest.raises(EvaluationError, match="over the evaluation budget"):
        expression.evaluate({"input": {"p": "(a|b)" * 200_000}})
