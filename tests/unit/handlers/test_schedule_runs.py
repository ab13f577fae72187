"""How the schedule loop reads its runs (baton.handlers.schedules.run_view)."""

from __future__ import annotations

from datetime import UTC, datetime

from baton.handlers.schedules import run_view


def test_a_finished_run_reads_with_its_nominal_time_outcome_and_end() -> None:
    view = run_view(
        {
            "metadata": {
                "name": "tick-20270101000000",
                "annotations": {"baton.dev/scheduled-time": "2027-01-01T00:00:00Z"},
            },
            "spec": {"cancel": True},
            "status": {"phase": "Cancelled", "finishedAt": "2027-01-01T00:05:00Z"},
        }
    )
    assert view.nominal == datetime(2027, 1, 1, tzinfo=UTC)
    assert (view.finished, view.succeeded, view.cancel_requested) == (True, False, True)
    assert view.finished_at == datetime(2027, 1, 1, 0, 5, tzinfo=UTC)


def test_a_run_without_status_is_going_and_a_bad_annotation_gives_no_nominal_time() -> None:
    view = run_view(
        {"metadata": {"name": "r", "annotations": {"baton.dev/scheduled-time": "soon"}}}
    )
    assert (view.finished, view.nominal) == (False, None)
