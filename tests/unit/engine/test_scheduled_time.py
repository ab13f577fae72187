"""`run.scheduledTime`: the nominal time of a run a Schedule started, in scope and in status."""

from __future__ import annotations

from enginekit import Run

from baton.api.labels import scheduled_time
from baton.api.run import RunPhase
from baton.engine import RunStarted, event_from_json
from baton.engine.state import state_from_status, state_to_status

WORKFLOW = """
steps:
  - name: stamp
    set: {when: "${{ run.scheduledTime }}", scheduled: "${{ run.scheduledTime != null }}"}
"""


def test_a_scheduled_run_reads_its_nominal_time_as_run_scheduled_time() -> None:
    run = Run(WORKFLOW, scheduled_time="2027-01-01T01:00:00Z")
    assert run.phase is RunPhase.SUCCEEDED
    assert run.sim.state.vars == {"when": "2027-01-01T01:00:00Z", "scheduled": True}


def test_a_run_no_schedule_started_reads_null() -> None:
    run = Run(WORKFLOW)
    assert run.sim.state.vars == {"when": None, "scheduled": False}


def test_the_nominal_time_survives_the_status_and_the_history() -> None:
    run = Run(WORKFLOW, scheduled_time="2027-01-01T01:00:00Z")
    status = state_to_status(run.sim.state)
    assert status["run"]["scheduledTime"] == "2027-01-01T01:00:00Z"
    assert state_from_status(status).scheduled_time == "2027-01-01T01:00:00Z"
    started = RunStarted(input=None, run_name="r", namespace="n", uid="u", scheduled_time="x")
    assert event_from_json(started.to_json()) == started
    plain = RunStarted(input=None, run_name="r", namespace="n", uid="u")
    assert "scheduledTime" not in plain.to_json()


def test_only_a_time_in_the_annotation_becomes_the_scheduled_time() -> None:
    def body(value: str) -> dict[str, object]:
        return {"metadata": {"annotations": {"baton.dev/scheduled-time": value}}}

    assert scheduled_time(body("2027-01-01T01:00:00Z")) == "2027-01-01T01:00:00Z"
    assert scheduled_time(body("${{ steps }}")) is None
    assert scheduled_time({"metadata": {}}) is None
