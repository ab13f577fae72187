"""A week of a `*/15 * * * *` schedule on the virtual clock, per overlap policy."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from baton.api.resources import Schedule, Workflow, load_yaml_documents
from baton.api.schedule import ActionKind, ScheduleSpec
from baton.engine import RunStarted, Simulation, compile_definition
from baton.schedules import Calendar, rfc3339
from baton.testing.schedules import simulate_schedule

START = datetime(2027, 3, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
TIMES = 7 * 24 * 4
"""Quarter hours in a week, the first one (at START itself) excluded and the last included."""


def spec(overlap: str) -> ScheduleSpec:
    return ScheduleSpec.model_validate(
        {
            "workflowRef": {"name": "wf"},
            "cron": ["*/15 * * * *"],
            "overlap": overlap,
            "successfulRunsHistoryLimit": 5,
            "failedRunsHistoryLimit": 5,
        }
    )


def test_runs_shorter_than_the_period_start_every_quarter_hour_of_the_week() -> None:
    sim = simulate_schedule(spec("skip"), START, START + WEEK, duration=timedelta(minutes=10))
    assert len(sim.runs) == TIMES
    assert sim.most_at_once == 1
    assert [r.started_at for r in sim.runs[:2]] == [
        START + timedelta(minutes=15),
        START + timedelta(minutes=30),
    ]


def test_skip_with_runs_of_twenty_minutes_starts_every_other_time() -> None:
    sim = simulate_schedule(spec("skip"), START, START + WEEK, duration=timedelta(minutes=20))
    assert len(sim.runs) == TIMES // 2
    assert sim.count(ActionKind.SKIPPED) == TIMES // 2
    assert sim.most_at_once == 1


def test_buffer_one_starts_each_run_as_the_last_ends_and_drops_what_piles_up() -> None:
    sim = simulate_schedule(spec("bufferOne"), START, START + WEEK, duration=timedelta(minutes=20))
    assert sim.most_at_once == 1
    # Back to back: every run starts the moment the one before it ends.
    for before, after in zip(sim.runs, sim.runs[1:], strict=False):
        assert after.started_at == before.ends_at
    # 20-minute runs fit 504 times in a week; the rest of the 672 times were skipped.
    assert len(sim.runs) == 504
    assert sim.count(ActionKind.SKIPPED) == TIMES - 504 - len(sim.memory.buffer)  # type: ignore[union-attr]


def test_buffer_all_starts_the_buffered_times_in_order_one_at_a_time() -> None:
    sim = simulate_schedule(spec("bufferAll"), START, START + WEEK, duration=timedelta(minutes=20))
    assert sim.most_at_once == 1
    nominals = [r.nominal for r in sim.runs]
    assert nominals == sorted(nominals)
    assert len(sim.runs) == 504


def test_cancel_other_cancels_each_run_at_the_next_time_and_starts_every_time() -> None:
    # A cancelled run takes a virtual second to end: a minute more lets the last time start.
    until = START + WEEK + timedelta(minutes=1)
    sim = simulate_schedule(spec("cancelOther"), START, until, duration=timedelta(minutes=20))
    assert len(sim.runs) == TIMES
    assert sim.most_at_once == 1
    assert sum(r.cancelled for r in sim.runs) == TIMES - 1
    assert sim.count(ActionKind.CANCELLED_OTHER) == TIMES - 1


def test_terminate_other_starts_every_time_with_runs_that_end_without_compensation() -> None:
    sim = simulate_schedule(
        spec("terminateOther"), START, START + WEEK, duration=timedelta(minutes=20)
    )
    assert len(sim.runs) == TIMES
    # The new run starts at once, beside the terminated one for the second it takes to end.
    assert sim.most_at_once == 2
    assert sum(r.cancelled for r in sim.runs) == TIMES - 1
    assert all(r.abandon_on_cancel for r in sim.runs)


def test_allow_all_overlaps_runs_longer_than_the_period() -> None:
    sim = simulate_schedule(spec("allowAll"), START, START + WEEK, duration=timedelta(minutes=40))
    assert len(sim.runs) == TIMES
    assert sim.most_at_once == 3


def test_a_virtual_week_takes_no_wall_clock_time_to_speak_of() -> None:
    began = time.perf_counter()
    sim = simulate_schedule(spec("skip"), START, START + WEEK, duration=timedelta(minutes=10))
    took = time.perf_counter() - began
    assert len(sim.runs) == TIMES
    # Not a timing assertion: the simulated week spans 7 days of its own clock.
    assert sim.runs[-1].started_at - sim.runs[0].started_at == WEEK - timedelta(minutes=15)
    print(f"a virtual week: {sim.passes} passes in {took * 1000:.0f} ms")


EXAMPLE = Path(__file__).parents[3] / "examples" / "nightly-report" / "schedule.yaml"


def test_the_nightly_report_example_runs_weekdays_in_berlin_and_every_six_hours() -> None:
    (found,) = [r for r in load_yaml_documents(EXAMPLE.read_text()) if isinstance(r, Schedule)]
    calendar = Calendar.of(found.spec)
    monday = datetime(2027, 1, 4, tzinfo=UTC)  # Berlin is UTC+1 in January
    assert [rfc3339(t) for t in calendar.between(monday, monday + timedelta(days=1))] == [
        "2027-01-04T00:15:00Z",
        "2027-01-04T01:30:00Z",
        "2027-01-04T06:15:00Z",
        "2027-01-04T12:15:00Z",
        "2027-01-04T18:15:00Z",
    ]


def test_the_nightly_report_workflow_reads_the_hour_of_its_nominal_time() -> None:
    (found,) = [r for r in load_yaml_documents(EXAMPLE.read_text()) if isinstance(r, Workflow)]
    sim = Simulation(compile_definition(found.spec), now=0.0)
    sim.deliver(
        RunStarted(
            input={"format": "pdf"},
            run_name="nightly-report-20270104061500",
            namespace="default",
            uid="u",
            scheduled_time="2027-01-04T06:15:00Z",
        )
    )
    assert sim.state.vars == {"hour": 6}
