"""Cleanup steps in definitions: `onExit`, `finally` and `compensate.onInterrupt` are compiled,
and the combinations that cannot mean anything are refused naming the field."""

from __future__ import annotations

import pytest
from enginekit import definition, spec
from pydantic import ValidationError

from baton.api import crd
from baton.engine import DefinitionError


def test_on_exit_steps_compile_as_a_list_of_their_own() -> None:
    compiled = definition(
        """
        steps:
          - {name: work, http: {url: "http://w"}}
        onExit:
          - {name: notify, http: {url: "http://n", body: {outcome: "${{ run.outcome }}"}}}
          - {name: unlock, needs: [], http: {url: "http://u"}}
        """
    )
    assert [s.name for s in compiled.steps] == ["work"]
    assert [(s.name, s.after) for s in compiled.on_exit] == [("notify", ()), ("unlock", ())]
    assert compiled.step("notify").kind.value == "http"


def test_finally_steps_compile_under_their_step() -> None:
    compiled = definition(
        """
        steps:
          - name: work
            http: {url: "http://w"}
            finally:
              - {name: release, http: {url: "http://r", body: "${{ step.outcome }}"}}
        """
    )
    (release,) = compiled.step("work").finally_steps
    assert release.name == "release"
    assert compiled.parent["release"] == ("work", "finally")


def test_a_cleanup_step_name_must_differ_from_every_other_step() -> None:
    with pytest.raises(DefinitionError, match="step 'work', field 'name': duplicate step name"):
        definition(
            """
            steps:
              - {name: work, http: {url: "http://w"}}
            onExit:
              - {name: work, http: {url: "http://n"}}
            """
        )


def test_needs_in_on_exit_names_on_exit_steps_only() -> None:
    with pytest.raises(DefinitionError) as raised:
        definition(
            """
            steps:
              - {name: work, http: {url: "http://w"}}
            onExit:
              - {name: notify, needs: [work], http: {url: "http://n"}}
            """
        )
    assert str(raised.value).startswith("step 'notify', field 'needs': unknown step 'work'")


@pytest.mark.parametrize("where", ["onExit", "finally"])
def test_a_cleanup_step_with_a_compensation_is_refused(where: str) -> None:
    cleanup = "[{name: undo, http: {url: 'http://u'}, compensate: {http: {url: 'http://x'}}}]"
    text = (
        f"steps: [{{name: work, http: {{url: 'http://w'}}, finally: {cleanup}}}]"
        if where == "finally"
        else f"steps: [{{name: work, http: {{url: 'http://w'}}}}]\nonExit: {cleanup}"
    )
    with pytest.raises(DefinitionError) as raised:
        definition(text)
    message = str(raised.value)
    assert message.startswith("step 'undo', field 'compensate': a cleanup step")
    assert "remove compensate" in message


def test_on_interrupt_is_compiled_into_the_compensation() -> None:
    compiled = definition(
        """
        steps:
          - name: charge
            http: {url: "http://c"}
            compensate: {http: {url: "http://refund"}, onInterrupt: true}
        """
    )
    compensation = compiled.step("charge").compensate
    assert compensation is not None
    assert compensation.on_interrupt


@pytest.mark.parametrize(
    "kind", ["sleep: {duration: 1s}", "set: {a: 1}", "waitForSignal: {name: go}"]
)
def test_on_interrupt_on_a_step_without_an_activity_is_refused(kind: str) -> None:
    with pytest.raises(ValidationError) as raised:
        spec(
            f"""
            steps:
              - name: pause
                {kind}
                compensate: {{http: {{url: "http://x"}}, onInterrupt: true}}
            """
        )
    message = str(raised.value)
    assert "step 'pause', field 'compensate.onInterrupt'" in message
    assert "remove onInterrupt" in message


def test_empty_cleanup_lists_are_refused() -> None:
    with pytest.raises(ValidationError, match="onExit"):
        spec("steps: [{name: a, sleep: {duration: 1s}}]\nonExit: []")


def test_the_crd_refuses_on_interrupt_on_a_step_without_an_activity() -> None:
    schema = crd.openapi_schema(crd.Workflow)
    step = schema["properties"]["spec"]["properties"]["steps"]["items"]
    rules = [r for r in step["x-kubernetes-validations"] if "onInterrupt" in r["rule"]]
    assert len(rules) == 1
    assert "field compensate.onInterrupt" in rules[0]["messageExpression"]


def test_cleanup_lists_are_in_the_schema_with_their_descriptions() -> None:
    schema = crd.openapi_schema(crd.Workflow)["properties"]["spec"]["properties"]
    assert "run.outcome" in schema["onExit"]["description"]
    finally_ = schema["steps"]["items"]["properties"]["finally"]
    assert "step.outcome" in finally_["description"]
    compensate = schema["steps"]["items"]["properties"]["compensate"]["properties"]
    assert "interrupts" in compensate["onInterrupt"]["description"]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "steps: [{name: a, http: {url: 'http://a/${{ step.outcome }}'}}]",
            "step 'a', field 'http.url'",
        ),
        (
            "steps: [{name: a, when: 'step.outcome == \"x\"', sleep: {duration: 1s}}]",
            "step 'a', field 'when'",
        ),
        (
            "steps: [{name: a, sleep: {duration: 1s}}]\noutput: '${{ step.output }}'",
            "field 'output'",
        ),
    ],
)
def test_step_outside_a_finally_list_is_refused(text: str, where: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        definition(text)
    message = str(raised.value)
    assert message.startswith(f"{where}: `step` (the step that ended) is known only")


def test_step_inside_a_nested_step_of_a_finally_list_is_accepted() -> None:
    compiled = definition(
        """
        steps:
          - name: work
            http: {url: "http://w"}
            finally:
              - name: both
                parallel:
                  branches:
                    - name: one
                      steps: [{name: tell, http: {url: "http://t/${{ step.outcome }}"}}]
        """
    )
    assert compiled.step("tell").action is not None
