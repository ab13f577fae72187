"""Values and shapes a run cannot store are refused where they arise, with a reason, instead of
reaching the status (which the API server would refuse on every write after)."""

from __future__ import annotations

import json
from typing import Any

from enginekit import Run, definition

from baton.api.run import RunPhase, StepPhase
from baton.engine import CancelActivity, RunAborted, status_of
from baton.engine.errors import error_json
from baton.engine.events import RedriveRequested
from baton.engine.limits import input_problem, value_problem
from baton.engine.retry import backoff_delay

# The documented limits (docs/language.md, "Limits"), written as numbers: a changed limit must
# fail these tests, not follow them.
JSON_DEPTH = 64
INPUT_BYTES = 256 * 1024
STEP_INSTANCES = 20_000
LONGEST_DURATION = 36_500 * 86_400


def storable(run: Run) -> str:
    """The run's status as the API server would get it: JSON without NaN or Infinity."""
    return json.dumps(status_of(run.definition, run.sim.state), allow_nan=False)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_value_problem_names_infinity_and_where_it_is() -> None:
    assert (
        value_problem({"a": [1, float("inf")]}) == "the value.a[1] is inf, which JSON cannot hold"
    )
    assert value_problem(float("nan"), "the result") == "the result is nan, which JSON cannot hold"
    assert value_problem({"a": [1.5, "x", None, True]}) is None


def test_value_problem_refuses_nesting_past_the_limit_without_recursing() -> None:
    assert value_problem(nested(JSON_DEPTH)) is None
    assert value_problem(nested(JSON_DEPTH + 1)) == (
        f"the value{'[0]' * JSON_DEPTH} nests lists and objects more than 64 levels deep"
    )
    problem = value_problem(nested(100_000))  # far past Python's recursion limit
    assert problem is not None
    assert "more than 64 levels deep" in problem


def test_input_problem_refuses_an_input_over_the_size_limit_naming_it() -> None:
    wrapper = len('{"blob":""}')
    assert input_problem({"blob": "x" * (INPUT_BYTES - wrapper)}) is None
    problem = input_problem({"blob": "x" * (INPUT_BYTES - wrapper + 1)})
    assert problem is not None
    assert problem.startswith("input: 262145 bytes of JSON, over the 262144 a run accepts")
    # Bytes, not characters: "é" is two bytes of UTF-8.
    problem = input_problem({"blob": "é" * (INPUT_BYTES // 2)})
    assert problem is not None
    assert problem.startswith("input: 262155 bytes of JSON")
    assert input_problem(nested(500)) == (
        f"input{'[0]' * JSON_DEPTH} nests lists and objects more than 64 levels deep"
    )


def test_a_set_step_producing_infinity_fails_with_an_expression_error_and_vars_unchanged() -> None:
    run = Run("steps: [{name: s, set: {x: '${{ 1.0 / 0.0 }}'}}]")
    assert run.phase is RunPhase.FAILED
    assert run.step("s").error is not None
    assert run.step("s").error.type == "ExpressionError"
    assert "is inf, which JSON cannot hold" in run.step("s").error.message
    assert run.sim.state.vars == {}
    storable(run)


def test_a_run_output_producing_infinity_fails_the_run() -> None:
    run = Run("steps: [{name: s, set: {x: 1}}]\noutput: {o: '${{ -1.0 / 0.0 }}'}")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "ExpressionError"
    assert run.sim.state.error.details == {"field": "output"}
    storable(run)


def test_a_request_rendering_infinity_fails_the_step_before_any_attempt() -> None:
    run = Run("steps: [{name: call, http: {url: 'http://x', body: {n: '${{ 1.0 / 0.0 }}'}}}]")
    assert run.started() == []
    assert run.step("call").phase is StepPhase.FAILED
    storable(run)


def test_an_activity_output_holding_infinity_fails_its_step_as_invalid_output() -> None:
    run = Run("steps: [{name: call, http: {url: 'http://x'}}]")
    run.complete("call", {"n": float("inf")})
    assert run.step("call").phase is StepPhase.FAILED
    assert run.step("call").error is not None
    assert run.step("call").error.type == "InvalidOutput"
    storable(run)


def test_a_query_producing_infinity_shows_an_error_instead() -> None:
    run = Run("steps: [{name: w, sleep: {duration: 1s}}]\nqueries: {q: '1.0 / 0.0'}")
    assert str(run.sim.state.queries["q"]).startswith("error: the result is inf")
    storable(run)


def test_a_repeat_without_interval_of_a_set_step_runs_thousands_of_iterations() -> None:
    run = Run("steps: [{name: s, set: {x: 1}, repeat: {until: 'false', maxIterations: 5000}}]")
    # One decision handles a bounded number of iterations; the rest stays due at once.
    assert run.step("s").iterations == 251
    assert run.sim.wakeup() == run.now
    run.sim.run()
    assert run.phase is RunPhase.FAILED
    assert run.step("s").iterations == 5000
    assert run.step("s").error is not None
    assert run.step("s").error.type == "MaxIterations"


def test_nested_for_each_items_count_toward_the_instance_limit_across_levels() -> None:
    text = """
    steps:
      - name: outer
        forEach:
          items: input
          concurrency: 200
          step:
            name: inner
            forEach:
              items: input
              concurrency: 200
              step: {name: w, sleep: {duration: 1s}}
    """
    run = Run(text, list(range(150)))  # 150 x 150 = 22,500 sleeps, over the limit
    assert run.phase is RunPhase.FAILED
    assert len(run.sim.state.steps) <= STEP_INSTANCES
    error = run.sim.state.error
    assert error is not None
    assert error.type == "TooManyItems"
    small = Run(text, list(range(140)))  # 140 + 140 x 140 = 19,741 instances fit
    assert small.phase is RunPhase.RUNNING
    assert len(small.sim.state.steps) == 1 + 140 + 140 * 140


def test_a_huge_retry_after_is_capped_at_the_longest_duration() -> None:
    (policy,) = definition("steps: [{name: c, http: {url: 'http://x'}}]").index["c"].retry
    assert backoff_delay(policy, 1, seed="s", retry_after=1e300) == LONGEST_DURATION
    assert backoff_delay(policy, 1, seed="s", retry_after=float("inf")) == LONGEST_DURATION
    assert backoff_delay(policy, 1, seed="s", retry_after=float("nan")) == 0.0


def test_run_aborted_fails_the_run_at_once_cancelling_what_is_in_flight() -> None:
    run = Run(
        """
        steps:
          - name: pay
            http: {url: 'http://x'}
            compensate: {http: {url: 'http://undo'}}
          - name: ship
            http: {url: 'http://y'}
        """
    )
    run.complete("pay", {"id": 1})
    assert run.started() == ["ship"]
    run.deliver(RunAborted(reason="HistoryLost", message="history ConfigMap gone"))
    assert run.phase is RunPhase.FAILED
    assert error_json(run.sim.state.error) == {
        "type": "HistoryLost",
        "message": "history ConfigMap gone",
    }
    assert run.step("ship").phase is StepPhase.CANCELLED
    assert [c.key for c in run.of_type(CancelActivity)] == ["ship"]
    assert run.sim.state.compensations == []  # nothing compensated
    condition = run.sim.state.conditions[0]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Aborted",
        "True",
        "HistoryLost",
    )


def test_an_aborted_run_cannot_be_redriven() -> None:
    run = Run("steps: [{name: c, http: {url: 'http://x'}}]")
    run.deliver(RunAborted(reason="HistoryTampered", message="batch 3 does not verify"))
    run.deliver(RedriveRequested(1))
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.redrive == 1


def test_run_aborted_is_ignored_by_a_finished_run() -> None:
    run = Run("steps: [{name: s, set: {x: 1}}]")
    assert run.phase is RunPhase.SUCCEEDED
    run.deliver(RunAborted(reason="X", message="y"))
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.conditions == []
