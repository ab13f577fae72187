"""The timeline lines `baton test` and `baton history` share."""

from __future__ import annotations

from baton.cli.timeline import error_line, history_lines, timeline_line
from baton.engine.events import (
    ActivityCompleted,
    ActivityFailed,
    ActivityStarted,
    CancelRequested,
    ChildFinished,
    HistoryEntry,
    RedriveRequested,
    RunStarted,
    SignalReceived,
    TimerFired,
    event_detail,
)


def test_a_line_aligns_time_type_step_and_detail() -> None:
    line = timeline_line(125, "ActivityCompleted", "pay", "attempt 2")
    assert line == f"  {'2m5s':>10}  {'ActivityCompleted':<18} {'pay':<28} attempt 2"


def test_a_line_without_step_or_detail_has_no_trailing_space() -> None:
    assert timeline_line(0, "CancelRequested", None, "") == f"  {'0s':>10}  CancelRequested"


def test_details_name_attempt_error_signal_phase_and_redrive() -> None:
    assert event_detail(ActivityStarted(key="pay", attempt=3)) == "attempt 3"
    assert event_detail(ActivityCompleted(key="pay", attempt=1, output={})) == "attempt 1"
    failed = ActivityFailed(key="pay", attempt=1, error={"type": "HttpError", "message": "503"})
    assert event_detail(failed) == "HttpError: 503"
    no_message = ActivityFailed(key="pay", attempt=1, error={"type": "Timeout"})
    assert event_detail(no_message) == "Timeout"
    assert event_detail(SignalReceived(index=0, name="approve", payload=None)) == "approve"
    assert event_detail(ChildFinished(key="c", attempt=1, phase="Failed")) == "Failed"
    assert event_detail(RedriveRequested(n=2)) == "redrive 2"
    assert event_detail(TimerFired(timer_id="wake:nap")) == "wake:nap"
    assert event_detail(CancelRequested()) == ""


def test_history_times_are_relative_to_the_first_event() -> None:
    start = 1_780_000_000.25
    entries = [
        HistoryEntry(start, RunStarted(input={}, run_name="r", namespace="n", uid="u")),
        HistoryEntry(start + 0.4, ActivityStarted(key="pay", attempt=1)),
        HistoryEntry(start + 3661, ActivityCompleted(key="pay", attempt=1, output=1)),
    ]
    lines = history_lines(entries)
    assert [line.split()[0] for line in lines] == ["0s", "400ms", "1h1m1s"]
    assert lines[1].split()[1:] == ["ActivityStarted", "pay", "attempt", "1"]
    assert history_lines([]) == []


def test_error_line_names_the_step_when_known() -> None:
    assert error_line({"type": "JobFailed", "message": "exit 3", "step": "pay"}) == (
        "error: JobFailed: exit 3 (step pay)"
    )
    assert error_line({"type": "Cancelled"}) == "error: Cancelled: "


def test_wide_history_lines_start_with_the_events_time() -> None:
    entries = [
        HistoryEntry(1_782_900_000.0, CancelRequested()),
        HistoryEntry(1_782_900_001.25, CancelRequested()),
    ]
    lines = history_lines(entries, absolute=True)
    assert lines[0].split() == ["2026-07-01T10:00:00.000Z", "0s", "CancelRequested"]
    assert lines[1].split() == ["2026-07-01T10:00:01.250Z", "1s", "CancelRequested"]
