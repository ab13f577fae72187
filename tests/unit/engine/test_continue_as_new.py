"""Continue-as-new in the engine: a `continueAsNew` step and `repeat.continueAsNewEvery` end the
run ContinuedAsNew once the shell created the successor the `ContinueAsNew` command names."""

from __future__ import annotations

from dataclasses import replace

import pytest
from enginekit import Run, definition

from baton.api.run import RunPhase, StepPhase
from baton.engine import (
    ActivityCompleted,
    CancelRequested,
    ContinueAsNew,
    DefinitionError,
    FinishRun,
    RunAborted,
    SuccessorCreated,
    pending_commands,
    state_from_status,
    status_of,
)
from baton.engine.kinds.continue_as_new import successor_name

LOOP = """
vars: {total: 0}
steps:
  - name: add
    set: {total: "${{ vars.total + input.n }}"}
  - name: next
    continueAsNew: {input: {n: "${{ input.n + 1 }}"}}
  - name: never
    set: {reached: true}
"""


def continue_command(run: Run) -> ContinueAsNew:
    (command,) = run.of_type(ContinueAsNew)
    return command


def test_a_continue_as_new_step_asks_for_the_successor_with_its_rendered_input() -> None:
    run = Run(LOOP, {"n": 1})
    command = continue_command(run)
    assert command.input == {"n": 2}
    assert (command.lineage, command.number) == ("run", 1)
    assert command.name == successor_name(run.sim.state)
    assert command.vars is None  # an explicit continue carries its input only, as Temporal's


def test_the_run_ends_continued_as_new_only_once_the_successor_exists() -> None:
    run = Run(LOOP, {"n": 1})
    command = continue_command(run)
    assert run.phase is RunPhase.RUNNING
    run.last = run.sim.deliver(SuccessorCreated(command.name))
    assert run.phase is RunPhase.CONTINUED_AS_NEW
    assert [c.phase for c in run.of_type(FinishRun)] == ["ContinuedAsNew"]
    status = status_of(run.definition, run.sim.state)
    assert status["continuedAs"] == command.name


def test_steps_after_the_continue_never_start() -> None:
    run = Run(LOOP, {"n": 1})
    run.sim.deliver(SuccessorCreated(continue_command(run).name))
    assert run.step_phase("never") is None
    assert run.step("next").output == {"run": continue_command(run).name, "input": {"n": 2}}


def test_the_creation_is_re_issued_after_a_crash_until_reported() -> None:
    run = Run(LOOP, {"n": 1})
    command = continue_command(run)
    # A restart from the committed status re-derives the creation, the same name and input.
    restored = state_from_status(status_of(run.definition, run.sim.state))
    assert pending_commands(run.definition, restored) == [command]
    run.sim.deliver(SuccessorCreated(command.name))
    assert all(
        not isinstance(c, ContinueAsNew) for c in pending_commands(run.definition, run.sim.state)
    )


def test_a_report_for_another_name_is_ignored() -> None:
    run = Run(LOOP, {"n": 1})
    run.sim.deliver(SuccessorCreated("someone-else"))
    assert run.phase is RunPhase.RUNNING


def test_a_name_held_by_another_run_fails_the_run_instead() -> None:
    run = Run(LOOP, {"n": 1})
    error = {"type": "ContinueAsNewConflict", "message": "taken"}
    run.sim.deliver(SuccessorCreated(continue_command(run).name, error))
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.error is not None
    assert run.sim.state.error.type == "ContinueAsNewConflict"


def test_nothing_is_compensated_and_in_flight_siblings_are_cancelled() -> None:
    run = Run(
        """
steps:
  - name: pay
    http: {url: "http://pay"}
    compensate: {http: {url: "http://refund"}}
  - name: both
    parallel:
      branches:
        - name: slow
          steps: [{name: poll, http: {url: "http://slow"}}]
        - name: roll
          steps: [{name: next, continueAsNew: {input: 1}}]
""",
        None,
    )
    run.complete("pay", {"id": 1})
    assert run.step_phase("poll") is StepPhase.CANCELLED
    run.sim.deliver(SuccessorCreated(successor_name(run.sim.state)))
    assert run.phase is RunPhase.CONTINUED_AS_NEW
    assert run.sim.state.compensations == []


def test_the_successor_carries_the_lineage_and_counts_on() -> None:
    run = Run(
        LOOP,
        {"n": 5},
        continuation={"from": "run-a-1", "lineage": "first", "number": 4, "vars": {"total": 10}},
    )
    state = run.sim.state
    assert (state.lineage, state.continuation, state.continued_from) == ("first", 4, "run-a-1")
    assert state.vars["total"] == 15  # the carried vars replace the definition's initial ones
    command = continue_command(run)
    assert (command.lineage, command.number) == ("first", 5)
    assert command.name.startswith("first-")
    assert command.name.endswith("-5")


def test_lineage_is_in_scope() -> None:
    run = Run(
        """
steps:
  - name: where
    set: {seen: "${{ [run.lineage, run.continuation, run.continuedFrom] }}"}
""",
        None,
        continuation={"from": "a", "lineage": "first", "number": 2},
    )
    assert run.sim.state.vars["seen"] == ["first", 2, "a"]


def test_the_successor_input_must_fit_the_input_schema() -> None:
    run = Run(
        """
inputSchema: {type: object, required: [n]}
steps:
  - name: next
    continueAsNew: {input: {m: 1}}
""",
        {"n": 1},
    )
    assert run.phase is RunPhase.FAILED
    assert run.step("next").error is not None
    assert run.step("next").error.type == "InvalidInput"


ROLLING = """
vars: {count: 0}
steps:
  - name: tick
    set: {count: "${{ vars.count + 1 }}"}
    repeat: {until: "false", maxIterations: 1000, continueAsNewEvery: 3}
"""


def test_repeat_continues_as_new_every_n_iterations_with_vars_and_count() -> None:
    run = Run(ROLLING, {"keep": True})
    command = continue_command(run)
    assert command.input == {"keep": True}
    assert command.vars == {"count": 3}
    assert command.iterations == {"tick": 3}
    assert run.step("tick").phase is StepPhase.SUCCEEDED


def test_a_rolled_over_repeat_goes_on_counting_from_the_carried_iterations() -> None:
    carried = {"from": "a", "lineage": "a", "number": 1, "vars": {"count": 3}}
    run = Run(ROLLING, None, continuation={**carried, "iterations": {"tick": 3}})
    command = continue_command(run)
    assert command.iterations == {"tick": 6}
    assert command.vars == {"count": 6}


def test_max_iterations_bounds_the_whole_lineage() -> None:
    text = ROLLING.replace("maxIterations: 1000", "maxIterations: 4")
    carried = {"from": "a", "lineage": "a", "number": 1, "iterations": {"tick": 3}}
    run = Run(text, None, continuation=carried)
    assert run.phase is RunPhase.FAILED
    assert run.step("tick").error is not None
    assert run.step("tick").error.type == "MaxIterations"


def test_on_exit_runs_before_the_successor_with_the_outcome_in_scope() -> None:
    run = Run(
        """
steps:
  - name: next
    continueAsNew: {input: 1}
onExit:
  - name: report
    http: {url: "http://report", body: "${{ run.outcome }}"}
""",
        None,
    )
    assert run.of_type(ContinueAsNew) == []
    assert run.start_of("report").spec["body"] == "ContinuedAsNew"
    run.last = run.sim.deliver(ActivityCompleted("report", 1, {}))
    assert len(run.of_type(ContinueAsNew)) == 1


def test_a_failed_on_exit_fails_the_run_and_it_does_not_continue() -> None:
    run = Run(
        """
steps:
  - name: next
    continueAsNew: {input: 1}
onExit:
  - name: report
    fail: {message: "no"}
""",
        None,
    )
    assert run.phase is RunPhase.FAILED
    assert run.sim.state.successor is None
    assert all(isinstance(c, FinishRun) for c in pending_commands(run.definition, run.sim.state))


def test_continue_every_is_refused_in_a_for_each() -> None:
    with pytest.raises(DefinitionError, match="continueAsNewEvery"):
        definition(
            """
steps:
  - name: each
    forEach:
      items: "[1]"
      step: {name: tick, set: {a: 1}, repeat: {until: "true", continueAsNewEvery: 2}}
"""
        )


def test_continue_as_new_is_refused_as_cleanup() -> None:
    with pytest.raises(DefinitionError, match="cannot continue the run as new"):
        definition(
            """
steps: [{name: a, set: {x: 1}}]
onExit: [{name: next, continueAsNew: {input: 1}}]
"""
        )


def test_a_cancel_while_continuing_goes_on_to_the_successor() -> None:
    run = Run(LOOP, {"n": 1})
    first = continue_command(run)
    run.last = run.sim.deliver(CancelRequested())
    (again,) = run.of_type(ContinueAsNew)  # issued again, now cancelling the successor
    assert again == replace(first, cancel=True)
    restored = state_from_status(status_of(run.definition, run.sim.state))
    assert pending_commands(run.definition, restored) == [again]
    run.sim.deliver(SuccessorCreated(first.name))
    assert run.phase is RunPhase.CONTINUED_AS_NEW  # not Cancelled: it had handed on


def test_a_run_aborted_while_continuing_creates_nothing() -> None:
    run = Run(LOOP, {"n": 1})
    run.sim.deliver(RunAborted("HistoryLost", "gone"))
    assert run.phase is RunPhase.FAILED
    assert not any(
        isinstance(c, ContinueAsNew) for c in pending_commands(run.definition, run.sim.state)
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("repeat", '{until: "true"}'), ("compensate", '{http: {url: "http://undo"}}')],
)
def test_repeat_or_compensate_on_a_continue_is_refused(field: str, value: str) -> None:
    with pytest.raises(DefinitionError, match=f"{field} has no effect on a continueAsNew step"):
        definition(f"steps: [{{name: next, continueAsNew: {{input: 1}}, {field}: {value}}}]")
