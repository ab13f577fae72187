"""One pass of a schedule: catch-up, overlap policies, triggers, backfills, limits, retention,
and a crash between starting runs and writing the status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from baton.api.schedule import ActionKind, ActionOrigin, ScheduleSpec
from baton.schedules import (
    CancelRun,
    DeleteRun,
    Memory,
    Policy,
    RunView,
    StartRun,
    decide,
    rfc3339,
)

T0 = datetime(2027, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def policy(**fields: Any) -> Policy:
    data = {"workflowRef": {"name": "wf"}, "cron": ["0 * * * *"], **fields}
    return Policy.of(ScheduleSpec.model_validate(data), "ns", "hourly")


def starts(commands: list[Any]) -> list[str]:
    return [c.name for c in commands if isinstance(c, StartRun)]


def test_a_due_time_starts_its_run_and_the_next_one_is_what_the_pass_waits_for() -> None:
    decision = decide(policy(), Memory(cursor=T0), [], T0 + HOUR)
    assert starts(decision.commands) == ["hourly-20270101010000"]
    assert decision.memory.cursor == T0 + HOUR
    assert decision.next_fire == T0 + 2 * HOUR
    assert decision.wake_at == T0 + 2 * HOUR
    assert decision.waiting_for == "next run at 2027-01-01T02:00:00Z (nominal 2027-01-01T02:00:00Z)"


def test_times_older_than_the_catchup_window_are_missed_and_newer_ones_start() -> None:
    decision = decide(
        policy(catchupWindow="90m", overlap="allowAll"), Memory(cursor=T0), [], T0 + 5 * HOUR
    )
    # 01:00, 02:00 and 03:00 are more than 90 minutes late; 04:00 and 05:00 are not.
    assert starts(decision.commands) == ["hourly-20270101040000", "hourly-20270101050000"]
    assert decision.memory.missed == 3
    missed = [a for a in decision.actions if a.action is ActionKind.MISSED]
    assert len(missed) == 1
    assert missed[0].message == (
        "3 time(s), 2027-01-01T01:00:00Z to 2027-01-01T03:00:00Z, older than catchupWindow"
    )


def test_after_a_year_down_a_minutely_schedule_skips_the_old_times_in_one_pass() -> None:
    p = policy(cron=["* * * * *"], catchupWindow="2m", overlap="allowAll")
    now = T0 + timedelta(days=365)
    decision = decide(p, Memory(cursor=T0), [], now)
    (missed,) = [a for a in decision.actions if a.action is ActionKind.MISSED]
    assert missed.message is not None
    assert missed.message.startswith("at least 1000 time(s), 2027-01-01T00:01:00Z to ")
    assert decision.memory.missed == 1000
    # The times inside the window still start: the last two minutes and now.
    assert len(starts(decision.commands)) == 3
    assert decision.memory.cursor == now


def test_a_crash_before_the_status_write_starts_nothing_twice() -> None:
    first = decide(policy(overlap="skip"), Memory(cursor=T0), [], T0 + HOUR)
    (started,) = starts(first.commands)
    # The status write was lost: the same memory again, with the run now observed.
    again = decide(
        policy(overlap="skip"),
        Memory(cursor=T0),
        [RunView(started, T0 + HOUR)],
        T0 + HOUR + timedelta(seconds=5),
    )
    assert starts(again.commands) == []
    assert again.memory.cursor == T0 + HOUR
    assert again.actions[-1].action is ActionKind.STARTED
    assert again.actions[-1].run == started


def running(hour: int) -> RunView:
    return RunView(f"hourly-202701010{hour}0000", T0 + hour * HOUR)


def test_skip_records_the_time_and_starts_nothing_while_a_run_is_going() -> None:
    decision = decide(policy(overlap="skip"), Memory(cursor=T0 + HOUR), [running(1)], T0 + 2 * HOUR)
    assert starts(decision.commands) == []
    assert decision.actions[0].action is ActionKind.SKIPPED
    assert decision.actions[0].message == "hourly-20270101010000 still going"


def test_buffer_one_keeps_one_start_and_skips_the_next_until_the_run_ends() -> None:
    p = policy(overlap="bufferOne")
    d1 = decide(p, Memory(cursor=T0 + HOUR), [running(1)], T0 + 3 * HOUR)
    assert [a.action for a in d1.actions] == [ActionKind.BUFFERED, ActionKind.SKIPPED]
    assert starts(d1.commands) == []
    ended = RunView(running(1).name, T0 + HOUR, finished=True, succeeded=True)
    d2 = decide(p, d1.memory, [ended], T0 + 3 * HOUR + timedelta(minutes=1))
    assert starts(d2.commands) == ["hourly-20270101020000"]
    assert d2.memory.buffer == []


def test_buffer_all_starts_every_buffered_time_one_after_another() -> None:
    p = policy(overlap="bufferAll")
    d1 = decide(p, Memory(cursor=T0 + HOUR), [running(1)], T0 + 3 * HOUR)
    assert [b.nominal for b in d1.memory.buffer] == [T0 + 2 * HOUR, T0 + 3 * HOUR]
    ended = RunView(running(1).name, T0 + HOUR, finished=True, succeeded=True)
    d2 = decide(p, d1.memory, [ended], T0 + 3 * HOUR)
    assert starts(d2.commands) == ["hourly-20270101020000"]
    assert [b.nominal for b in d2.memory.buffer] == [T0 + 3 * HOUR]


def test_cancel_other_cancels_the_running_one_and_starts_when_it_has_ended() -> None:
    p = policy(overlap="cancelOther")
    d1 = decide(p, Memory(cursor=T0 + HOUR), [running(1)], T0 + 2 * HOUR)
    assert d1.commands == [CancelRun("hourly-20270101010000")]
    assert [b.nominal for b in d1.memory.buffer] == [T0 + 2 * HOUR]
    cancelling = RunView(running(1).name, T0 + HOUR, cancel_requested=True)
    d2 = decide(p, d1.memory, [cancelling], T0 + 2 * HOUR + timedelta(seconds=1))
    assert d2.commands == []  # asked once; still ending
    ended = RunView(running(1).name, T0 + HOUR, finished=True)
    d3 = decide(p, d1.memory, [ended], T0 + 2 * HOUR + timedelta(seconds=2))
    assert starts(d3.commands) == ["hourly-20270101020000"]


def test_terminate_other_cancels_without_compensation_and_starts_at_once() -> None:
    p = policy(overlap="terminateOther")
    decision = decide(p, Memory(cursor=T0 + HOUR), [running(1)], T0 + 2 * HOUR)
    cancel, start = decision.commands
    assert cancel == CancelRun("hourly-20270101010000")
    assert isinstance(start, StartRun)
    assert start.name == "hourly-20270101020000"
    assert start.abandon_on_cancel  # so a later terminate of it compensates nothing


def test_allow_all_starts_alongside_a_running_one() -> None:
    decision = decide(
        policy(overlap="allowAll"), Memory(cursor=T0 + HOUR), [running(1)], T0 + 2 * HOUR
    )
    assert starts(decision.commands) == ["hourly-20270101020000"]
    assert decision.active == ["hourly-20270101010000", "hourly-20270101020000"]


def test_while_suspended_times_pass_unrun_and_are_not_caught_up_after() -> None:
    paused = decide(policy(suspend=True, note="db migration"), Memory(cursor=T0), [], T0 + 3 * HOUR)
    assert paused.commands == []
    assert paused.waiting_for == "nothing: suspended: db migration"
    resumed = decide(policy(), paused.memory, [], T0 + 3 * HOUR + timedelta(minutes=1))
    assert resumed.commands == []
    assert resumed.next_nominal == T0 + 4 * HOUR


def test_max_actions_stops_the_schedule_after_that_many_scheduled_runs() -> None:
    decision = decide(
        policy(maxActions=2, catchupWindow="1d", overlap="allowAll"),
        Memory(cursor=T0),
        [],
        T0 + 5 * HOUR,
    )
    assert len(starts(decision.commands)) == 2
    assert decision.wake_at is None
    assert decision.waiting_for == "nothing: maxActions (2) reached"


def test_nothing_is_scheduled_after_end_at() -> None:
    p = policy(endAt=rfc3339(T0 + HOUR), catchupWindow="1d")
    decision = decide(p, Memory(cursor=T0), [], T0 + 5 * HOUR)
    assert starts(decision.commands) == ["hourly-20270101010000"]
    assert decision.waiting_for == "nothing: no scheduled time after endAt"


def test_a_trigger_starts_a_run_at_its_time_once() -> None:
    at = T0 + timedelta(minutes=17, seconds=3)
    p = policy(triggers=[{"at": rfc3339(at)}])
    d1 = decide(p, Memory(cursor=T0), [], at + timedelta(seconds=1))
    assert starts(d1.commands) == ["hourly-20270101001703"]
    assert d1.actions[0].origin is ActionOrigin.TRIGGER
    assert d1.memory.actions == 0  # not counted against maxActions
    d2 = decide(p, d1.memory, [], at + timedelta(seconds=2))
    assert starts(d2.commands) == []


def test_a_backfill_starts_each_time_of_its_range_and_none_that_already_ran() -> None:
    p = policy(backfills=[{"from": "2026-12-31T20:00:00Z", "to": "2026-12-31T23:00:00Z"}])
    existing = RunView("hourly-20261231210000", T0 - 3 * HOUR, finished=True, succeeded=True)
    decision = decide(p, Memory(cursor=T0), [existing], T0 + timedelta(minutes=1))
    assert starts(decision.commands) == [
        "hourly-20261231200000",
        "hourly-20261231220000",
        "hourly-20261231230000",
    ]
    assert decision.memory.backfills_done == 1
    assert decision.memory.backfill_cursor is None


def test_a_large_backfill_goes_on_in_the_next_pass() -> None:
    p = policy(cron=["* * * * *"], backfills=[{"from": "2026-12-31T00:00:00Z", "to": rfc3339(T0)}])
    d1 = decide(p, Memory(cursor=T0), [], T0)
    assert len(starts(d1.commands)) == 100
    assert d1.wake_at == T0
    assert d1.memory.backfills_done == 0
    d2 = decide(p, d1.memory, [], T0)
    assert starts(d2.commands)[0] == "hourly-20261231014000"


def test_a_backfill_that_skips_most_times_still_hands_back_the_pass_after_a_thousand() -> None:
    p = policy(
        cron=["* * * * *"],
        overlap="skip",
        backfills=[
            {"from": "2020-01-01T00:00:00Z", "to": "2026-12-31T00:00:00Z", "overlap": "skip"}
        ],
    )
    decision = decide(p, Memory(cursor=T0), [], T0)
    assert len(starts(decision.commands)) == 1  # the first; the rest skip while it runs
    assert len(decision.actions) == 1000
    assert decision.wake_at == T0
    assert decision.memory.backfill_cursor == datetime(2020, 1, 1, 16, 39, tzinfo=UTC)


def test_finished_runs_beyond_the_history_limits_are_deleted_oldest_first() -> None:
    runs = [RunView(f"r{i}", T0 + i * HOUR, finished=True, succeeded=i % 2 == 0) for i in range(6)]
    p = policy(successfulRunsHistoryLimit=1, failedRunsHistoryLimit=2)
    decision = decide(p, Memory(cursor=T0 + 10 * HOUR), runs, T0 + 10 * HOUR)
    deleted = [c.name for c in decision.commands if isinstance(c, DeleteRun)]
    assert deleted == ["r2", "r0", "r1"]
