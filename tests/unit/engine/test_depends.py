"""The `depends` language: parsing into a typed tree, errors with positions, Kleene evaluation,
and the checks a definition makes of it (sibling names, cycles, failures it handles)."""

from __future__ import annotations

import pytest
from enginekit import definition
from hypothesis import given
from hypothesis import strategies as st

from baton.engine import DefinitionError
from baton.engine.depends import (
    MAX_DEPENDS_DEPTH,
    AllOf,
    AnyOf,
    DependsError,
    Not,
    Outcome,
    Ref,
    parse_depends,
)


def test_a_qualified_name_parses_to_a_reference_of_that_outcome() -> None:
    assert parse_depends("a.Failed").tree == Ref("a", Outcome.FAILED)


def test_a_bare_name_means_done() -> None:
    assert parse_depends("a").tree == Ref("a", Outcome.DONE)


def test_and_binds_tighter_than_or() -> None:
    assert parse_depends("a || b && c.Skipped").tree == AnyOf(
        (Ref("a", Outcome.DONE), AllOf((Ref("b", Outcome.DONE), Ref("c", Outcome.SKIPPED))))
    )


def test_parentheses_and_negation_nest() -> None:
    tree = parse_depends("a.Succeeded && !(b.Failed || c.Skipped)").tree
    assert tree == AllOf(
        (
            Ref("a", Outcome.SUCCEEDED),
            Not(AnyOf((Ref("b", Outcome.FAILED), Ref("c", Outcome.SKIPPED)))),
        )
    )


def test_hyphenated_step_names_are_names() -> None:
    assert parse_depends("charge-card.Failed").tree == Ref("charge-card", Outcome.FAILED)


def test_steps_lists_each_referenced_name_once_in_order() -> None:
    assert parse_depends("b.Failed || a && b.Succeeded").steps == ("b", "a")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "a.Done",
            "unknown outcome a.Done at position 3: write one of Succeeded, Failed, Skipped "
            "(a bare name means done)",
        ),
        ("a &", "unexpected '&' at position 3 (write && and ||, not & or |)"),
        ("a ||", "expected a step name, '!' or '(' at position 5, found the end"),
        ("(a || b", "expected ')' at position 8, found the end"),
        ("a b", "expected &&, || or the end at position 3, found 'b'"),
        ("a.", "expected an outcome (Succeeded, Failed, Skipped) at position 3, found the end"),
        ("a == b", "unexpected '=' at position 3"),
    ],
)
def test_a_malformed_expression_says_where_and_what(source: str, message: str) -> None:
    with pytest.raises(DependsError) as raised:
        parse_depends(source)
    assert str(raised.value) == message


def test_nesting_is_bounded() -> None:
    with pytest.raises(DependsError, match=f"nested deeper than {MAX_DEPENDS_DEPTH} levels"):
        parse_depends("!" * (MAX_DEPENDS_DEPTH + 1) + "a")


def outcomes(**known: bool | None) -> dict[str, bool | None]:
    return known


def test_or_is_true_once_one_side_is_true_while_the_other_is_unknown() -> None:
    condition = parse_depends("b || c")
    assert condition.evaluate(lambda ref: True if ref.step == "b" else None) is True


def test_and_is_false_once_one_side_is_false_while_the_other_is_unknown() -> None:
    condition = parse_depends("a.Failed && b")
    assert condition.evaluate(lambda ref: False if ref.step == "a" else None) is False


def test_an_undecided_operand_keeps_the_expression_unknown() -> None:
    condition = parse_depends("a.Failed && b")
    assert condition.evaluate(lambda ref: True if ref.step == "a" else None) is None


def test_negation_of_unknown_is_unknown() -> None:
    assert parse_depends("!a").evaluate(lambda ref: None) is None


@given(st.dictionaries(st.sampled_from("abc"), st.booleans(), min_size=3, max_size=3))
def test_with_every_outcome_known_evaluation_is_boolean_logic(values: dict[str, bool]) -> None:
    condition = parse_depends("a && !(b || c) || c && a")
    a, b, c = values["a"], values["b"], values["c"]
    assert condition.evaluate(lambda ref: values[ref.step]) == ((a and not (b or c)) or (c and a))


# -- in a definition --------------------------------------------------------------------------


def test_depends_orders_the_step_after_the_steps_it_names() -> None:
    compiled = definition(
        """
        steps:
          - {name: a, sleep: {duration: 1s}}
          - {name: b, needs: [], sleep: {duration: 1s}}
          - {name: c, depends: "a.Failed || b", sleep: {duration: 1s}}
        """
    )
    c = compiled.step("c")
    assert c.after == ("a", "b")
    assert c.depends is not None
    assert c.depends.source == "a.Failed || b"


def test_a_step_whose_failure_a_sibling_depends_on_is_handled() -> None:
    compiled = definition(
        """
        steps:
          - {name: a, sleep: {duration: 1s}}
          - {name: b, needs: [], sleep: {duration: 1s}}
          - {name: c, depends: "a.Failed || b", sleep: {duration: 1s}}
        """
    )
    assert compiled.step("a").failure_handled
    assert not compiled.step("a").continue_on_failed
    assert not compiled.step("b").failure_handled


def test_continue_on_failed_handles_the_steps_own_failure() -> None:
    compiled = definition(
        """
        steps:
          - {name: a, continueOn: {failed: true}, sleep: {duration: 1s}}
          - {name: b, sleep: {duration: 1s}}
        """
    )
    assert compiled.step("a").continue_on_failed
    assert compiled.step("a").failure_handled


def test_depends_naming_an_unknown_step_is_refused_naming_the_field() -> None:
    with pytest.raises(DefinitionError) as raised:
        definition(
            """
            steps:
              - {name: a, sleep: {duration: 1s}}
              - {name: b, depends: "a || nope.Failed", sleep: {duration: 1s}}
            """
        )
    assert str(raised.value) == (
        "step 'b', field 'depends': unknown step 'nope' (not a step of this workflow)"
    )


def test_depends_naming_a_step_of_another_list_is_refused() -> None:
    with pytest.raises(DefinitionError, match="field 'depends': unknown step 'inner' \\(a step"):
        definition(
            """
            steps:
              - name: p
                parallel:
                  branches:
                    - {name: x, steps: [{name: inner, sleep: {duration: 1s}}]}
              - {name: b, depends: "inner.Failed", sleep: {duration: 1s}}
            """
        )


def test_a_malformed_depends_is_refused_naming_the_step_and_field() -> None:
    with pytest.raises(DefinitionError) as raised:
        definition(
            """
            steps:
              - {name: a, sleep: {duration: 1s}}
              - {name: b, depends: "a.Crashed", sleep: {duration: 1s}}
            """
        )
    assert str(raised.value).startswith("step 'b', field 'depends': unknown outcome a.Crashed")


def test_a_cycle_through_depends_is_refused() -> None:
    with pytest.raises(DefinitionError, match="step 'a', field 'depends': cycle a -> b -> a"):
        definition(
            """
            steps:
              - {name: a, depends: "b.Failed", sleep: {duration: 1s}}
              - {name: b, depends: "a", sleep: {duration: 1s}}
            """
        )


def test_depends_on_a_for_each_step_is_refused() -> None:
    with pytest.raises(DefinitionError, match="step 'one', field 'depends': a forEach step runs"):
        definition(
            """
            steps:
              - {name: a, sleep: {duration: 1s}}
              - name: each
                forEach:
                  items: "[1]"
                  step: {name: one, depends: "a", sleep: {duration: 1s}}
            """
        )
