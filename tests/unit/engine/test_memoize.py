"""Memoization in the engine: a memoized step looks up its key before running, a hit takes the
stored output without an attempt, a miss runs and stores a success, and the answer is history."""

from __future__ import annotations

from typing import Any

import pytest
from enginekit import Run, definition, spec
from pydantic import ValidationError

from baton.api.resources import first_problem
from baton.api.run import RunPhase, StepPhase
from baton.api.workflow import WorkflowSpec
from baton.engine import (
    ChildFinished,
    LookupMemo,
    MemoResolved,
    StartActivity,
    StartChildRun,
    StoreMemo,
    decide,
    event_from_json,
    pending_commands,
    replay,
    state_from_status,
    state_to_status,
)

REPORT = """
steps:
  - name: report
    http: {url: "http://reports/${{ input.day }}"}
    memoize: {key: "report-${{ input.day }}", maxAge: 1h}
    retry: {maxAttempts: 3, initialInterval: 1s}
  - name: after
    set: {got: "${{ steps.report.output }}"}
"""


def lookup(run: Run) -> LookupMemo:
    found = run.of_type(LookupMemo)
    assert len(found) == 1, run.commands
    command: LookupMemo = found[0]
    return command


def answer(run: Run, command: LookupMemo, *, hit: bool, output: Any = None) -> None:
    run.deliver(
        MemoResolved(
            key=command.key,
            attempt=command.attempt,
            iteration=command.iteration,
            cache_key=command.cache_key,
            hit=hit,
            output=output,
            stored_at="2026-01-01T00:00:00Z" if hit else None,
            stored_by="earlier" if hit else None,
            reason=None if hit else "absent",
        )
    )


def test_a_memoized_step_looks_up_its_rendered_key_before_any_attempt() -> None:
    run = Run(REPORT, {"day": "mon"})
    command = lookup(run)
    assert (command.key, command.step, command.cache_key) == ("report", "report", "report-mon")
    assert command.max_age == 3600
    assert run.started() == []
    assert run.step("report").phase is StepPhase.RUNNING
    assert run.step("report").attempt == 0


def test_a_hit_takes_the_stored_output_without_running_the_step() -> None:
    run = Run(REPORT, {"day": "mon"})
    answer(run, lookup(run), hit=True, output={"rows": 3})
    report = run.step("report")
    assert (report.phase, report.output, report.cached, report.attempt) == (
        StepPhase.SUCCEEDED,
        {"rows": 3},
        True,
        0,
    )
    assert not [c for c in run.sim.issued if isinstance(c, StartActivity | StoreMemo)]
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.vars["got"] == {"rows": 3}


def test_a_miss_runs_the_step_and_stores_its_output_once_it_succeeds() -> None:
    run = Run(REPORT, {"day": "mon"})
    answer(run, lookup(run), hit=False)
    assert run.started() == ["report"]
    assert run.step("report").cached is False
    run.complete("report", {"rows": 5})
    assert run.of_type(StoreMemo) == [
        StoreMemo(key="report", step="report", cache_key="report-mon", output={"rows": 5})
    ]
    assert run.phase is RunPhase.SUCCEEDED


def test_retries_after_a_miss_do_not_look_up_again_and_only_the_success_is_stored() -> None:
    run = Run(REPORT, {"day": "mon"})
    answer(run, lookup(run), hit=False)
    run.fail("report", "HttpError", details={"status": 503})
    assert run.of_type(StoreMemo) == []
    run.fire()
    assert run.started() == ["report"]
    assert run.of_type(LookupMemo) == []
    run.complete("report", "ok")
    assert len(run.of_type(StoreMemo)) == 1


def test_a_failed_step_stores_nothing() -> None:
    run = Run(REPORT, {"day": "mon"})
    answer(run, lookup(run), hit=False)
    for _ in range(3):
        run.fail("report", "HttpError", details={"status": 503})
        if run.phase is not RunPhase.FAILED:
            run.fire()
    assert run.phase is RunPhase.FAILED
    assert not [c for c in run.sim.issued if isinstance(c, StoreMemo)]


def test_an_answer_for_another_key_or_a_duplicate_is_ignored() -> None:
    run = Run(REPORT, {"day": "mon"})
    command = lookup(run)
    other = LookupMemo(**{**command.__dict__, "cache_key": "report-tue"})
    answer(run, other, hit=True, output="wrong")
    assert run.step("report").looking_up
    answer(run, command, hit=False)
    answer(run, command, hit=True, output="late")  # the first answer counts
    assert run.step("report").cached is False
    assert run.step("report").phase is StepPhase.RUNNING


def test_a_late_result_of_an_earlier_execution_does_not_end_a_lookup() -> None:
    run = Run(
        """
steps:
  - name: poll
    http: {url: "http://x"}
    memoize: {key: "k"}
    repeat: {until: "steps.poll.output == 'done'", interval: 1s}
""",
    )
    answer(run, lookup(run), hit=False)
    run.complete("poll", "first")
    run.fire()
    assert lookup(run).iteration == 1
    run.complete("poll", "stale")  # the first attempt's result, delivered again
    assert run.step("poll").looking_up


def test_each_repeat_iteration_looks_up_again() -> None:
    run = Run(
        """
steps:
  - name: poll
    http: {url: "http://x"}
    memoize: {key: "same"}
    repeat: {until: "steps.poll.output == 'done'"}
""",
    )
    for output in ("again", "again", "done"):
        answer(run, lookup(run), hit=True, output=output)
    assert run.phase is RunPhase.SUCCEEDED
    assert run.step("poll").iterations == 3


def test_the_lookup_is_in_flight_until_answered_so_a_restart_issues_it_again() -> None:
    run = Run(REPORT, {"day": "mon"})
    command = lookup(run)
    restored = state_from_status(state_to_status(run.sim.state))
    assert pending_commands(run.definition, restored) == [command]
    answer(run, command, hit=False)
    assert not [c for c in pending_commands(run.definition, run.sim.state) if c == command]


def test_a_replay_takes_the_recorded_answer() -> None:
    run = Run(REPORT, {"day": "mon"})
    answer(run, lookup(run), hit=True, output={"rows": 3})
    history = [(e.at, event_from_json(e.event.to_json())) for e in run.sim.history]
    assert replay(run.definition, history) == run.sim.state


def test_the_status_says_the_output_came_from_the_cache() -> None:
    run = Run(REPORT, {"day": "mon"})
    assert state_to_status(run.sim.state)["steps"]["report"]["memoKey"] == "report-mon"
    assert "cached" not in state_to_status(run.sim.state)["steps"]["report"]
    answer(run, lookup(run), hit=True, output=1)
    assert state_to_status(run.sim.state)["steps"]["report"]["cached"] is True


def test_a_non_string_key_is_its_canonical_json() -> None:
    run = Run(
        """
steps:
  - name: s
    worker: {pool: p, activity: a}
    memoize: {key: "${{ input }}"}
""",
        {"b": 1, "a": [1, 2]},
    )
    assert lookup(run).cache_key == '{"a":[1,2],"b":1}'


def test_a_key_that_fails_to_render_fails_the_step_naming_the_field() -> None:
    run = Run(REPORT, {})
    error = run.step("report").error
    assert run.phase is RunPhase.FAILED
    assert error is not None
    assert error.type == "ExpressionError"
    assert error.details is not None
    assert error.details["field"] == "memoize.key"


def test_a_key_over_the_limit_fails_the_step() -> None:
    run = Run(REPORT, {"day": "x" * 2000})
    error = run.step("report").error
    assert error is not None
    assert "1024" in error.message


def test_a_redrive_looks_up_again() -> None:
    from baton.engine import RedriveRequested

    run = Run(REPORT, {"day": "mon"})
    answer(run, lookup(run), hit=False)
    for _ in range(3):
        run.fail("report", "Boom")
        if run.phase is not RunPhase.FAILED:
            run.fire()
    run.deliver(RedriveRequested(1))
    assert lookup(run).cache_key == "report-mon"


def test_a_child_workflow_step_is_memoized_too() -> None:
    run = Run(
        """
steps:
  - name: child
    workflow: {workflowRef: other}
    memoize: {key: "c"}
""",
    )
    answer(run, lookup(run), hit=False)
    start = run.of_type(StartChildRun)[0]
    run.deliver(ChildFinished(key="child", attempt=start.attempt, phase="Succeeded", output=7))
    assert run.of_type(StoreMemo)[0].output == 7


SAGA = """
steps:
  - name: reserve
    http: {url: "http://x/reserve"}
    memoize: {key: "r"}
    compensate: {http: {url: "http://x/release"}}
  - name: pay
    http: {url: "http://x/pay"}
    retry: {maxAttempts: 1}
"""


def test_a_step_taken_from_the_cache_is_not_compensated_by_this_run() -> None:
    run = Run(SAGA)
    answer(run, lookup(run), hit=True, output="held")
    run.fail("pay", "Declined")
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.compensations == []
    assert not [c for c in run.sim.issued if isinstance(c, StartActivity)][1:]


def test_a_step_that_ran_after_a_miss_is_compensated() -> None:
    run = Run(SAGA)
    answer(run, lookup(run), hit=False)
    run.complete("reserve", "held")
    run.fail("pay", "Declined")
    assert [c.key for c in run.sim.state.compensations] == ["reserve/compensate"]


def test_memoize_is_refused_on_a_step_without_an_output_to_reuse() -> None:
    with pytest.raises(ValidationError) as info:
        spec("steps: [{name: s, sleep: {duration: 1s}, memoize: {key: k}}]")
    assert "memoize" in first_problem(info.value, WorkflowSpec)


def test_a_bad_max_age_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        spec("steps: [{name: s, http: {url: 'http://x'}, memoize: {key: k, maxAge: soon}}]")
    assert "maxAge" in first_problem(info.value, WorkflowSpec)


def test_no_memoize_no_lookup() -> None:
    d = definition("steps: [{name: s, http: {url: 'http://x'}}]")
    assert d.index["s"].memoize is None
    run = Run("steps: [{name: s, http: {url: 'http://x'}}]")
    assert run.started() == ["s"]
    assert decide is not None
