"""A large forEach: the status is a bounded summary, the engine's index answers as a scan would,
and a decision touches only what the event changed."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from baton.api.run import RunPhase, StepPhase, WorkflowRunStatus
from baton.api.workflow import WorkflowSpec
from baton.cli.describe import build_tree
from baton.engine import (
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    Command,
    Event,
    RunStarted,
    Simulation,
    StartActivity,
    compile_definition,
    decide,
    replay,
    state_from_status,
    status_of,
)
from baton.engine.index import build
from baton.engine.state import SummaryStatusError
from baton.engine.summary import FAILED_SHOWN, FULL_STATUS_STEPS, RECENT
from baton.ui.model import run_graph

WORKFLOW = """
steps:
  - name: each
    forEach:
      items: "input.items"
      concurrency: 50
      toleratedFailurePercentage: 50
      step:
        name: call
        worker: {pool: p, activity: a, input: "${{ item }}"}
  - name: total
    set: {n: "${{ size(steps.each.output.items) }}"}
output: "${{ steps.each.output.items }}"
"""
DEFINITION = compile_definition(WorkflowSpec.model_validate(yaml.safe_load(WORKFLOW)))


def respond(command: Command, now: float) -> list[tuple[float, Event]]:
    """Items whose number ends in 7 fail for good; the others complete a second later."""
    if not isinstance(command, StartActivity):
        return []
    started = (0.0, ActivityStarted(command.key, command.attempt))
    if command.spec["input"] % 10 == 7:
        failed = {"type": "Refused", "message": "no", "nonRetryable": True}
        return [started, (1.0, ActivityFailed(command.key, command.attempt, failed))]
    result = {"n": command.spec["input"]}
    return [started, (1.0, ActivityCompleted(command.key, command.attempt, result))]


def run_of(size: int, *, until: int | None = None) -> Simulation:
    sim = Simulation(DEFINITION, respond=respond, now=1_000_000.0)
    sim.deliver(
        RunStarted(input={"items": list(range(size))}, run_name="r", namespace="n", uid="u")
    )
    if until is None:
        sim.run(max_events=10 * size + 100)
    else:
        for _ in range(until):
            sim.step()
    return sim


@pytest.fixture(scope="module")
def finished() -> Simulation:
    return run_of(3000)


def test_a_run_of_3000_items_finishes_with_every_output_in_order(finished: Simulation) -> None:
    state = finished.state
    assert state.phase is RunPhase.SUCCEEDED
    outputs = state.output
    assert len(outputs) == 3000
    assert outputs[:3] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert outputs[7] is None  # failed, tolerated
    assert state.steps["total"].output == {"n": 3000}


def test_the_status_of_a_large_run_is_a_summary_under_256_kib(finished: Simulation) -> None:
    status = status_of(DEFINITION, finished.state)
    size = len(json.dumps(status, separators=(",", ":")))
    # The output lists 3000 items; without it the summary is a few dozen instances.
    assert size - len(json.dumps(finished.state.output, separators=(",", ":"))) * 2 < 64 * 1024
    assert status["summary"] is True
    each = status["steps"]["each"]
    assert "items" not in each
    assert each["itemCounts"] == {
        "total": 3000,
        "succeeded": 2700,
        "failed": 300,
        "running": 0,
        "listed": len({*range(7, 7 + 10 * FAILED_SHOWN, 10), *range(3000 - RECENT, 3000)}),
    }
    items = [p for p in status["steps"] if p.startswith("each[")]
    assert "each[7].call" in items
    assert f"each[{7 + 10 * (FAILED_SHOWN - 1)}].call" in items
    assert f"each[{7 + 10 * FAILED_SHOWN}].call" not in items
    assert "each[2999].call" in items
    WorkflowRunStatus.model_validate(status)


def test_a_summary_lists_the_items_in_flight() -> None:
    sim = run_of(1000, until=1500)
    status = status_of(DEFINITION, sim.state)
    in_flight = {"Running", "Backoff", "Waiting"}
    listed = sorted(p for p, s in status["steps"].items() if s["phase"] in in_flight)
    assert status["summary"] is True
    assert listed == sorted(p for p, s in sim.state.steps.items() if s.phase.value in in_flight)
    assert status["steps"]["each"]["itemCounts"]["running"] == len(listed) - 1  # and `each`


def test_a_small_run_lists_every_instance_as_before() -> None:
    sim = run_of(FULL_STATUS_STEPS - 10)
    status = status_of(DEFINITION, sim.state)
    assert "summary" not in status
    assert len(status["steps"]) == len(sim.state.steps)
    assert "listed" not in status["steps"]["each"]["itemCounts"]
    assert status_of(DEFINITION, state_from_status(status)) == status


def test_a_summary_cannot_be_read_back_as_a_state(finished: Simulation) -> None:
    with pytest.raises(SummaryStatusError, match="rebuilt from its history"):
        state_from_status(status_of(DEFINITION, finished.state))


def test_replaying_the_history_of_a_large_run_gives_its_status(finished: Simulation) -> None:
    replayed = replay(DEFINITION, finished.history)
    assert status_of(DEFINITION, replayed) == status_of(DEFINITION, finished.state)


def test_the_index_kept_by_decisions_is_the_index_a_scan_builds() -> None:
    sim = run_of(400, until=300)
    kept = sim.state.index
    assert kept is not None
    scanned = build(DEFINITION, sim.state)
    assert kept.active == scanned.active
    assert kept.due == scanned.due
    assert kept.fans.keys() == scanned.fans.keys()
    for path, fan in scanned.fans.items():
        mine = kept.fans[path]
        assert (mine.phases, mine.active, mine.bad, mine.next) == (
            fan.phases,
            fan.active,
            fan.bad,
            fan.next,
        )
        assert {k: v for k, v in mine.counts.items() if v} == {
            k: v for k, v in fan.counts.items() if v
        }


def test_a_decision_copies_only_the_instances_its_event_changes() -> None:
    sim = run_of(2000, until=500)
    before = sim.state
    running = next(p for p, s in before.steps.items() if s.phase is StepPhase.RUNNING)
    after = decide(DEFINITION, before, ActivityCompleted(running, 1, {"n": 0}), sim.now).state
    touched: dict[str, Any] = after.steps.touched or {}
    assert running in touched
    assert len(touched) < 10  # the item, its successor, the forEach: not the 2,000 items
    shared = sum(1 for p, s in after.steps.items() if before.steps.peek(p) is s)
    assert shared >= len(before.steps) - len(touched)
    assert before.steps.peek(running).phase is StepPhase.RUNNING  # type: ignore[union-attr]


def test_describe_shows_a_summary_s_listed_items_and_counts_the_others(
    finished: Simulation,
) -> None:
    status = status_of(DEFINITION, finished.state)
    (each, _total) = build_tree(yaml.safe_load(WORKFLOW), status, [])
    labels = [node.label for node in each.children]
    listed = status["steps"]["each"]["itemCounts"]["listed"]
    assert len(labels) == listed + 1
    assert labels[0] == "[7] call"
    more = each.children[-1]
    assert more.label == f"... {3000 - listed} more items"
    phases = [s["phase"] for p, s in status["steps"].items() if p.startswith("each[")]
    succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
    assert more.detail == f"{2700 - succeeded} succeeded, {300 - failed} failed (baton history)"


def test_the_web_view_counts_every_item_of_a_summary_and_rows_the_listed_ones(
    finished: Simulation,
) -> None:
    status = status_of(DEFINITION, finished.state)
    graph = run_graph(yaml.safe_load(WORKFLOW), status, [])
    (node,) = [n for n in graph["nodes"] if n.get("forEach")]
    assert node["forEach"]["total"] == 3000
    assert node["forEach"]["phases"] == {"Succeeded": 2700, "Failed": 300}
    assert len(node["forEach"]["items"]) == status["steps"]["each"]["itemCounts"]["listed"]
