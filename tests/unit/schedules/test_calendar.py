"""Nominal times of cron expressions, time zones, daylight-saving changes and intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from baton.api.resources import ResourceError, load_resource
from baton.api.schedule import ScheduleSpec
from baton.schedules import Calendar, fire_time, rfc3339, run_name


def spec(**fields: Any) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"workflowRef": {"name": "wf"}, **fields})


def times(calendar: Calendar, after: datetime, count: int) -> list[str]:
    out: list[str] = []
    moment: datetime | None = after
    for _ in range(count):
        assert moment is not None
        moment = calendar.next_after(moment)
        assert moment is not None
        out.append(rfc3339(moment))
    return out


def test_a_cron_time_in_the_spring_forward_gap_runs_once_at_the_end_of_the_gap() -> None:
    # Europe/Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    calendar = Calendar.of(spec(cron=["30 2 * * *"], timeZone="Europe/Berlin"))
    assert times(calendar, datetime(2027, 3, 27, 12, tzinfo=UTC), 2) == [
        "2027-03-28T01:00:00Z",  # 03:00 CEST, the end of the gap
        "2027-03-29T00:30:00Z",  # 02:30 CEST
    ]


def test_a_fixed_cron_time_in_the_repeated_autumn_hour_runs_once() -> None:
    # Europe/Berlin, 2027-10-31: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    calendar = Calendar.of(spec(cron=["30 2 * * *"], timeZone="Europe/Berlin"))
    assert times(calendar, datetime(2027, 10, 30, 12, tzinfo=UTC), 2) == [
        "2027-10-31T00:30:00Z",  # the first 02:30 (CEST)
        "2027-11-01T01:30:00Z",
    ]


def test_a_wildcard_hour_runs_in_both_copies_of_the_repeated_autumn_hour() -> None:
    calendar = Calendar.of(spec(cron=["0 * * * *"], timeZone="Europe/Berlin"))
    got = times(calendar, datetime(2027, 10, 30, 23, 30, tzinfo=UTC), 4)
    # 02:00 CEST, 02:00 CET, 03:00 CET, 04:00 CET: one hour apart in UTC, none lost.
    assert got == [
        "2027-10-31T00:00:00Z",
        "2027-10-31T01:00:00Z",
        "2027-10-31T02:00:00Z",
        "2027-10-31T03:00:00Z",
    ]


def test_several_expressions_merge_in_order_and_a_shared_instant_counts_once() -> None:
    calendar = Calendar.of(spec(cron=["0 * * * *", "30 * * * *", "0 */2 * * *"]))
    assert times(calendar, datetime(2027, 1, 1, tzinfo=UTC), 4) == [
        "2027-01-01T00:30:00Z",
        "2027-01-01T01:00:00Z",
        "2027-01-01T01:30:00Z",
        "2027-01-01T02:00:00Z",
    ]


def test_an_interval_is_aligned_to_the_epoch_plus_its_offset() -> None:
    calendar = Calendar.of(spec(intervals=[{"every": "1h", "offset": "15m"}]))
    assert times(calendar, datetime(2027, 1, 1, 0, 20, tzinfo=UTC), 2) == [
        "2027-01-01T01:15:00Z",
        "2027-01-01T02:15:00Z",
    ]


def test_start_at_and_end_at_bound_the_times_inclusively() -> None:
    calendar = Calendar.of(
        spec(cron=["0 * * * *"], startAt="2027-01-01T05:00:00Z", endAt="2027-01-01T06:00:00Z")
    )
    assert times(calendar, datetime(2027, 1, 1, tzinfo=UTC), 2) == [
        "2027-01-01T05:00:00Z",
        "2027-01-01T06:00:00Z",
    ]
    assert calendar.next_after(datetime(2027, 1, 1, 6, tzinfo=UTC)) is None


def test_jitter_is_the_same_for_the_same_schedule_and_time_and_stays_below_its_bound() -> None:
    nominal = datetime(2027, 1, 1, tzinfo=UTC)
    delays = {fire_time(f"ns/s{i}", nominal, 60.0) - nominal for i in range(50)}
    assert all(timedelta(0) <= d < timedelta(seconds=60) for d in delays)
    assert len(delays) > 40  # schedules due at the same time spread out
    assert fire_time("ns/a", nominal, 60.0) == fire_time("ns/a", nominal, 60.0)
    assert fire_time("ns/a", nominal, 0.0) == nominal


def test_run_names_are_the_schedule_and_the_nominal_time_in_utc() -> None:
    nominal = datetime(2027, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert run_name("nightly", nominal) == "nightly-20270304050607"


def test_a_bad_cron_expression_is_refused_naming_its_index_and_the_form() -> None:
    with pytest.raises(ResourceError) as caught:
        load_resource(
            {
                "apiVersion": "baton.dev/v1alpha1",
                "kind": "Schedule",
                "metadata": {"name": "s"},
                "spec": {"workflowRef": {"name": "wf"}, "cron": ["*/15 * * * *", "61 * * * *"]},
            }
        )
    assert "spec.cron: cron[1]: '61 * * * *' is not a cron expression" in str(caught.value)


def test_an_unknown_time_zone_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'; use an IANA name"):
        spec(cron=["* * * * *"], timeZone="Mars/Olympus")


def test_a_schedule_without_times_is_refused() -> None:
    with pytest.raises(ValueError, match="give cron expressions or intervals"):
        spec()


def test_the_summary_names_expressions_intervals_and_a_zone_other_than_utc() -> None:
    calendar = Calendar.of(
        spec(cron=["0 3 * * *"], intervals=[{"every": "90m"}], timeZone="Asia/Tokyo")
    )
    assert calendar.summary() == "0 3 * * *; every 1h30m (Asia/Tokyo)"


def test_an_interval_finer_than_whole_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="every '500ms' and offset '0s' must be whole seconds"):
        spec(intervals=[{"every": "500ms"}])
