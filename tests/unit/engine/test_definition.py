"""Compiling definitions: the DAG, merged policies, and one-line errors for broken ones."""

from __future__ import annotations

import pytest
from enginekit import definition, spec

from baton.engine import DefinitionError, StepKind, compile_definition


def error_of(text: str) -> str:
    with pytest.raises(DefinitionError) as raised:
        definition(text)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_steps_without_needs_follow_the_previous_step() -> None:
    compiled = definition(
        """
        steps:
          - {name: a, sleep: {duration: 1s}}
          - {name: b, sleep: {duration: 1s}}
          - {name: c, needs: [a], sleep: {duration: 1s}}
          - {name: d, sleep: {duration: 1s}}
        """
    )
    assert [(s.name, s.after) for s in compiled.steps] == [
        ("a", ()),
        ("b", ("a",)),
        ("c", ("a",)),
        ("d", ("c",)),
    ]


def test_unknown_needs_is_refused_naming_step_and_field() -> None:
    message = error_of(
        """
        steps:
          - {name: a, sleep: {duration: 1s}}
          - {name: b, needs: [nope], sleep: {duration: 1s}}
        """
    )
    assert message.startswith("step 'b', field 'needs': unknown step 'nope'")


def test_needs_naming_a_step_of_another_list_is_refused() -> None:
    message = error_of(
        """
        steps:
          - name: p
            parallel:
              branches:
                - {name: x, steps: [{name: inner, sleep: {duration: 1s}}]}
          - {name: b, needs: [inner], sleep: {duration: 1s}}
        """
    )
    assert message.startswith("step 'b', field 'needs': unknown step 'inner' (a step of another")


def test_a_cycle_is_refused_with_its_path() -> None:
    message = error_of(
        """
        steps:
          - {name: a, sleep: {duration: 1s}}
          - {name: b, needs: [c], sleep: {duration: 1s}}
          - {name: c, needs: [b], sleep: {duration: 1s}}
        """
    )
    assert message == "step 'b', field 'needs': cycle b -> c -> b"


def test_a_cycle_through_an_implied_dependency_is_refused() -> None:
    message = error_of(
        """
        steps:
          - {name: a, needs: [b], sleep: {duration: 1s}}
          - {name: b, sleep: {duration: 1s}}
        """
    )
    assert message == "step 'a', field 'needs': cycle a -> b -> a"


def test_a_step_referencing_an_undefined_step_is_refused() -> None:
    message = error_of(
        """
        steps:
          - name: a
            http: {url: "http://x/${{ steps.ghost.output.id }}"}
        """
    )
    assert message == "step 'a', field 'http.url': steps.ghost names no step of this workflow"


def test_an_index_reference_to_an_undefined_hyphenated_step_is_refused() -> None:
    message = error_of(
        """
        steps:
          - name: wait-a-day
            sleep: {duration: 1s}
          - name: a
            http: {url: "http://x/${{ steps['wait-a-dy'].output }}"}
        """
    )
    assert message == "step 'a', field 'http.url': steps.wait-a-dy names no step of this workflow"


def test_a_malformed_duration_is_refused_naming_the_field() -> None:
    workflow = spec(
        """
        steps:
          - name: pay
            http: {url: "http://x"}
            retry: {initialInterval: 5s}
        """
    )
    retry = workflow.steps[0].retry
    assert retry is not None
    retry.initial_interval = "5x"  # what the schema would refuse; the engine must too
    with pytest.raises(DefinitionError) as raised:
        compile_definition(workflow)
    assert str(raised.value).startswith(
        "step 'pay', field 'retry.initialInterval': malformed duration '5x': use"
    )


def test_a_malformed_default_duration_names_the_defaults_field() -> None:
    workflow = spec(
        """
        defaults: {timeout: {startToClose: 1m}}
        steps: [{name: pay, http: {url: "http://x"}}]
        """
    )
    assert workflow.defaults is not None
    assert workflow.defaults.timeout is not None
    workflow.defaults.timeout.start_to_close = "soon"
    with pytest.raises(DefinitionError) as raised:
        compile_definition(workflow)
    assert str(raised.value).startswith(
        "step 'pay', field 'defaults.timeout.startToClose': malformed duration 'soon'"
    )


def test_duplicate_names_are_refused_even_when_nested() -> None:
    message = error_of(
        """
        steps:
          - {name: a, sleep: {duration: 1s}}
          - name: each
            forEach:
              items: "[1, 2]"
              step: {name: a, sleep: {duration: 1s}}
        """
    )
    assert message.startswith("step 'a', field 'name': duplicate step name")


def test_a_broken_expression_is_reported_with_its_position() -> None:
    message = error_of(
        """
        steps:
          - {name: a, when: "input.x >", sleep: {duration: 1s}}
        """
    )
    assert message.startswith("step 'a', field 'when', position")


def test_max_interval_shorter_than_initial_interval_is_refused() -> None:
    message = error_of(
        """
        steps:
          - name: a
            http: {url: "http://x"}
            retry: {initialInterval: 10s, maxInterval: 1s}
        """
    )
    assert message.startswith("step 'a', field 'retry.maxInterval': maxInterval (1s) is shorter")


def test_workflow_level_expressions_name_their_field() -> None:
    message = error_of(
        """
        steps: [{name: a, sleep: {duration: 1s}}]
        output: {x: "${{ steps.nope.output }}"}
        """
    )
    assert message == "field 'output': steps.nope names no step of this workflow"


def test_step_policies_merge_over_defaults_field_by_field() -> None:
    compiled = definition(
        """
        defaults:
          retry: {maxAttempts: 7, initialInterval: 2s, maxInterval: 1m}
          timeout: {startToClose: 5m, heartbeat: 30s}
        steps:
          - name: pay
            http: {url: "http://x"}
            retry: {initialInterval: 500ms, nonRetryableErrors: [CardDeclined]}
            timeout: {startToClose: 1m}
        """
    )
    pay = compiled.step("pay")
    assert pay.retry is not None
    assert (pay.retry.max_attempts, pay.retry.initial_interval, pay.retry.max_interval) == (
        7,
        0.5,
        60.0,
    )
    assert pay.retry.non_retryable_errors == frozenset({"CardDeclined"})
    assert (pay.timeouts.start_to_close, pay.timeouts.heartbeat) == (60.0, 30.0)


def test_without_any_policy_the_builtin_retry_defaults_apply() -> None:
    pay = definition("steps: [{name: pay, http: {url: 'http://x'}}]").step("pay")
    assert pay.retry is not None
    assert (
        pay.retry.max_attempts,
        pay.retry.initial_interval,
        pay.retry.backoff_coefficient,
        pay.retry.max_interval,
        pay.retry.jitter,
    ) == (3, 1.0, 2.0, 100.0, 0.0)


def test_nested_steps_are_indexed_with_their_for_each_depth() -> None:
    compiled = definition(
        """
        steps:
          - name: outer
            forEach:
              items: "input.xs"
              step:
                name: par
                parallel:
                  branches:
                    - {name: one, steps: [{name: leaf, sleep: {duration: 1s}}]}
        """
    )
    assert compiled.depth == {"outer": 0, "par": 1, "leaf": 1}
    assert compiled.step("leaf").kind is StepKind.SLEEP
    assert compiled.parent["leaf"] == ("par", "branch")


def test_a_catch_clause_with_both_output_and_steps_is_refused() -> None:
    message = error_of(
        """
        steps:
          - name: a
            http: {url: "http://x"}
            catch:
              - errors: ["*"]
                output: 1
                steps: [{name: b, sleep: {duration: 1s}}]
        """
    )
    assert message.startswith("step 'a', field 'catch[0]': a catch clause continues")


KINDS_WITHOUT_ATTEMPTS = {
    "sleep": "{duration: 1s}",
    "waitForSignal": "{name: go}",
    "set": "{x: 1}",
    "fail": "{error: Refused}",
    "parallel": "{branches: [{name: b, steps: [{name: inner, http: {url: 'http://x'}}]}]}",
    "forEach": "{items: '[1]', step: {name: inner, http: {url: 'http://x'}}}",
}
FIX = {
    "parallel": "remove it, or set it on the steps of its branches",
    "forEach": "remove it, or set it on forEach.step",
}


@pytest.mark.parametrize("kind", sorted(KINDS_WITHOUT_ATTEMPTS))
def test_retry_on_a_kind_that_is_never_retried_is_refused(kind: str) -> None:
    message = error_of(
        f"steps: [{{name: a, {kind}: {KINDS_WITHOUT_ATTEMPTS[kind]}, retry: {{maxAttempts: 5}}}}]"
    )
    assert message == (
        f"step 'a', field 'retry': retry has no effect on a {kind} step: only http, job, "
        f"worker and workflow steps accept it; {FIX.get(kind, 'remove it')}"
    )


@pytest.mark.parametrize("kind", sorted(KINDS_WITHOUT_ATTEMPTS))
def test_timeout_on_a_kind_without_attempts_is_refused(kind: str) -> None:
    message = error_of(
        f"steps: [{{name: a, {kind}: {KINDS_WITHOUT_ATTEMPTS[kind]}, "
        "timeout: {scheduleToClose: 1h}}]"
    )
    fix = FIX.get(kind, "remove it")
    if kind == "waitForSignal":
        fix = "remove it, and bound the wait with waitForSignal.timeout"
    assert message == (
        f"step 'a', field 'timeout': timeout has no effect on a {kind} step: only http, job, "
        f"worker and workflow steps accept it; {fix}"
    )


def test_policies_are_checked_on_nested_steps_too() -> None:
    message = error_of(
        """
        steps:
          - name: a
            http: {url: "http://x"}
            catch:
              - errors: ["*"]
                steps: [{name: pause, sleep: {duration: 1m}, retry: {maxAttempts: 2}}]
        """
    )
    assert message.startswith("step 'pause', field 'retry': retry has no effect on a sleep step")
    message = error_of(
        """
        steps:
          - name: each
            forEach:
              items: "[1]"
              step: {name: pause, sleep: {duration: 1m}, timeout: {startToClose: 1m}}
        """
    )
    assert message.startswith("step 'pause', field 'timeout': timeout has no effect on a sleep")


def test_a_heartbeat_timeout_on_a_child_workflow_step_is_refused() -> None:
    message = error_of(
        """
        steps:
          - name: child
            workflow: {workflowRef: other}
            timeout: {startToClose: 1h, heartbeat: 1m}
        """
    )
    assert message == (
        "step 'child', field 'timeout.heartbeat': heartbeat has no effect on a workflow step: "
        "only http, job and worker steps heartbeat; remove it, and bound the child run with "
        "timeout.startToClose or timeout.scheduleToClose"
    )


def test_retry_and_timeout_are_accepted_where_they_apply() -> None:
    compiled = definition(
        """
        steps:
          - {name: h, http: {url: "http://x"}, retry: {maxAttempts: 2},
             timeout: {startToClose: 1m, scheduleToClose: 5m, heartbeat: 10s}}
          - {name: j, job: {image: "i:1"}, retry: {maxAttempts: 2}, timeout: {heartbeat: 1m}}
          - {name: w, worker: {pool: p, activity: x}, retry: {maxAttempts: 2},
             timeout: {heartbeat: 1m}}
          - {name: c, workflow: {workflowRef: other}, retry: {maxAttempts: 2},
             timeout: {startToClose: 1h, scheduleToClose: 2h}}
        """
    )
    assert [s.retry.max_attempts if s.retry else None for s in compiled.steps] == [2, 2, 2, 2]
    assert compiled.step("c").timeouts.schedule_to_close == 7200.0


def test_defaults_apply_to_every_kind_without_being_refused() -> None:
    compiled = definition(
        """
        defaults:
          retry: {maxAttempts: 5}
          timeout: {startToClose: 1m, scheduleToClose: 1h, heartbeat: 30s}
        steps:
          - {name: pause, sleep: {duration: 1s}}
          - {name: approve, waitForSignal: {name: go, timeout: 1d}}
          - {name: child, workflow: {workflowRef: other}}
          - name: each
            forEach: {items: "[1]", step: {name: call, http: {url: "http://x"}}}
        """
    )
    assert compiled.step("call").retry is not None
    assert compiled.step("call").retry.max_attempts == 5
    assert compiled.step("child").timeouts.start_to_close == 60.0
    assert compiled.step("pause").retry is None
