"""`baton schedule`: the requests it records and the errors it reports before any request."""

from __future__ import annotations

import pytest

from baton.cli.main import main
from baton.cli.schedule import append_patch, parse_time


def test_times_are_written_in_utc_and_a_bare_date_time_is_read_as_utc() -> None:
    assert parse_time("2026-12-01T02:00:00+02:00", "--from") == "2026-12-01T00:00:00Z"
    assert parse_time("2026-12-01T00:00:00", "--from") == "2026-12-01T00:00:00Z"


def test_a_backfill_with_a_bad_time_fails_naming_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["schedule", "backfill", "nightly", "--from", "yesterday", "--to", "2027-01-01"])
    assert code == 2
    assert "--from: 'yesterday' is not a time; write RFC 3339" in capsys.readouterr().err


def test_a_backfill_whose_range_ends_before_it_starts_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["schedule", "backfill", "s", "--from", "2027-01-02", "--to", "2027-01-01"])
    assert code == 2
    assert "--from (2027-01-02T00:00:00Z) is after --to (2027-01-01T00:00:00Z)" in (
        capsys.readouterr().err
    )


def test_a_request_is_appended_and_never_replaces_a_list_another_client_created() -> None:
    entry = {"at": "2027-01-01T00:00:00Z"}
    assert append_patch("triggers", entry, exists=True) == [
        {"op": "add", "path": "/spec/triggers/-", "value": entry}
    ]
    assert append_patch("triggers", entry, exists=False) == [
        {"op": "test", "path": "/spec/triggers", "value": None},
        {"op": "add", "path": "/spec/triggers", "value": [entry]},
    ]
