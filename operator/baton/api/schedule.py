"""Schedule: starts WorkflowRuns of a Workflow on cron expressions or fixed intervals.

The spec says when (cron expressions in a time zone, intervals with an offset), what to do when
the previous run is still going (the overlap policy), how far back to catch up after the
operator was down, and carries the append-only requests of `baton schedule trigger` and
`baton schedule backfill`. The status is the operator's durable memory of the schedule: the
last nominal time it handled (`cursor`), the buffered starts, the recent actions. The pure
logic that reads both lives in `baton.schedules`.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from enum import StrEnum

import cronsim
from pydantic import Field, field_validator, model_validator

from baton.api.conditions import CONDITIONS_LIST_MAP, Condition
from baton.api.duration import Duration, parse_duration
from baton.api.names import ObjectName
from baton.api.workflow import JSON, Model

MAX_SCHEDULE_NAME_LENGTH = 180
"""Longest Schedule name: its runs are named `<schedule>-<YYYYMMDDhhmmss>` (15 more
characters) and a run's name ends at 200."""

MAX_REQUESTS = 100
"""Most entries in `spec.triggers` and in `spec.backfills` (append-only lists)."""

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)

Timestamp = str


class OverlapPolicy(StrEnum):
    """What a due time does while an earlier run of the schedule is still going (Temporal's
    set)."""

    SKIP = "skip"
    BUFFER_ONE = "bufferOne"
    BUFFER_ALL = "bufferAll"
    CANCEL_OTHER = "cancelOther"
    TERMINATE_OTHER = "terminateOther"
    ALLOW_ALL = "allowAll"


class WorkflowRef(Model):
    """The Workflow a schedule starts, in the schedule's own namespace."""

    name: ObjectName = Field(description="Workflow name (in the schedule's namespace).")


class Interval(Model):
    """Every `every`, at the epoch-aligned times shifted by `offset`: `every: 1h, offset: 15m`
    is 00:15, 01:15, ... UTC."""

    every: Duration = Field(
        description="Time between two nominal times, in whole seconds, at least 1s."
    )
    offset: Duration = Field("0s", description="Shift from the epoch-aligned times.")

    @model_validator(mode="after")
    def _whole_seconds(self) -> Interval:
        # Run names carry the nominal time to the second: finer times would share a name.
        every, offset = parse_duration(self.every), parse_duration(self.offset)
        if every < 1 or every != int(every) or offset != int(offset):
            raise ValueError(
                f"intervals: every {self.every!r} and offset {self.offset!r} must be whole "
                "seconds, every at least 1s"
            )
        return self


class Trigger(Model):
    """A request to start a run now (`baton schedule trigger`), handled once."""

    at: Timestamp = Field(
        pattern=RFC3339_PATTERN,
        description="RFC 3339 time of the request: the run's nominal time (`run.scheduledTime`).",
    )
    overlap: OverlapPolicy | None = Field(
        None, description="Overlap policy for this start (default: the schedule's)."
    )


class Backfill(Model):
    """A request to start the runs of a past time range (`baton schedule backfill`), handled
    once. Times whose run already exists are not started again."""

    from_: Timestamp = Field(
        alias="from", pattern=RFC3339_PATTERN, description="RFC 3339 start (inclusive)."
    )
    to: Timestamp = Field(pattern=RFC3339_PATTERN, description="RFC 3339 end (inclusive).")
    overlap: OverlapPolicy | None = Field(
        None, description="Overlap policy for these starts (default: allowAll)."
    )


class ScheduleSpec(Model):
    """When to start runs of a Workflow, and with what."""

    workflow_ref: WorkflowRef = Field(alias="workflowRef", description="The Workflow to start.")
    input: JSON = Field(None, description="The input of every run.")
    cron: list[str] | None = Field(
        None,
        max_length=20,
        description="Cron expressions (5 fields: minute hour day-of-month month day-of-week; "
        "`@hourly`, `@daily`, ... too), read in `timeZone`. Times in a daylight-saving gap run "
        "at the end of the gap; in a repeated hour a fixed time runs once, a wildcard hour "
        "twice (cron's rules).",
    )
    intervals: list[Interval] | None = Field(
        None, max_length=20, description="Fixed intervals, aligned to the epoch plus an offset."
    )
    time_zone: str = Field(
        "UTC",
        alias="timeZone",
        min_length=1,
        max_length=64,
        description="IANA time zone of the cron expressions, for example `Europe/Berlin`.",
    )
    overlap: OverlapPolicy = Field(
        OverlapPolicy.SKIP,
        description="When a time falls due while an earlier run is still going: `skip` it, "
        "`bufferOne` (start it when the other ends; at most one waits), `bufferAll` (every one "
        "waits its turn), `cancelOther` (cancel the other, compensating as its Workflow says, "
        "and start when it ended), `terminateOther` (runs are started with `onCancel: abandon`; "
        "cancel the other without compensation and start at once), `allowAll`.",
    )
    catchup_window: Duration = Field(
        "1h",
        alias="catchupWindow",
        description="How late a due time may still start (after the operator was down); older "
        "ones are recorded as missed.",
    )
    jitter: Duration | None = Field(
        None,
        description="Delay each start by up to this much, the same delay for the same "
        "schedule and nominal time (keep it below the time between runs).",
    )
    suspend: bool = Field(False, description="While true no scheduled time starts a run.")
    note: str | None = Field(
        None, max_length=1024, description="Why the schedule is suspended (or anything else)."
    )
    max_actions: int | None = Field(
        None,
        alias="maxActions",
        ge=1,
        description="Start at most this many scheduled runs (triggers and backfills not "
        "counted), then stop.",
    )
    start_at: Timestamp | None = Field(
        None, alias="startAt", pattern=RFC3339_PATTERN, description="No scheduled time before."
    )
    end_at: Timestamp | None = Field(
        None, alias="endAt", pattern=RFC3339_PATTERN, description="No scheduled time after."
    )
    successful_runs_history_limit: int = Field(
        3,
        alias="successfulRunsHistoryLimit",
        ge=0,
        description="Succeeded runs kept; older ones are deleted.",
    )
    failed_runs_history_limit: int = Field(
        1,
        alias="failedRunsHistoryLimit",
        ge=0,
        description="Runs that ended otherwise (failed, cancelled, timed out) kept.",
    )
    triggers: list[Trigger] | None = Field(
        None,
        max_length=MAX_REQUESTS,
        json_schema_extra={"default": []},
        description="Append-only: each entry starts one run at its time (`baton schedule "
        "trigger`).",
    )
    backfills: list[Backfill] | None = Field(
        None,
        max_length=MAX_REQUESTS,
        json_schema_extra={"default": []},
        description="Append-only: each entry starts the runs of a past range (`baton schedule "
        "backfill`).",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timeZone: unknown time zone {zone!r}; use an IANA name like UTC or Europe/Berlin"
            ) from None
        return zone

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, expressions: list[str] | None) -> list[str] | None:
        for index, expression in enumerate(expressions or []):
            try:
                cronsim.CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
            except cronsim.CronSimError as exc:
                raise ValueError(
                    f"cron[{index}]: {expression!r} is not a cron expression ({exc}); write "
                    "five fields, minute hour day-of-month month day-of-week, like */15 * * * *"
                ) from None
        return expressions

    @model_validator(mode="after")
    def _has_times(self) -> ScheduleSpec:
        if not self.cron and not self.intervals:
            raise ValueError("give cron expressions or intervals (or both)")
        return self


class ActionKind(StrEnum):
    """What a schedule did about one nominal time."""

    STARTED = "Started"
    SKIPPED = "Skipped"
    BUFFERED = "Buffered"
    MISSED = "Missed"
    CANCELLED_OTHER = "CancelledOther"
    TERMINATED_OTHER = "TerminatedOther"


class ActionOrigin(StrEnum):
    """Who asked for a nominal time."""

    SCHEDULE = "schedule"
    TRIGGER = "trigger"
    BACKFILL = "backfill"


class RecentAction(Model):
    """One thing the schedule did."""

    action: ActionKind = Field(description="What was done.")
    nominal_time: Timestamp = Field(alias="nominalTime", description="The nominal time.")
    origin: ActionOrigin = Field(description="schedule, trigger or backfill.")
    run: str | None = Field(None, description="The run started, cancelled or terminated.")
    message: str | None = Field(None, description="Why, when it was not started.")


class BufferedStart(Model):
    """A start waiting for the runs before it to end."""

    nominal_time: Timestamp = Field(alias="nominalTime", description="Its nominal time.")
    origin: ActionOrigin = Field(description="schedule, trigger or backfill.")


class ScheduleStatus(Model):
    """What the operator did and waits for."""

    summary: str | None = Field(None, description="The times, in one line.")
    cursor: Timestamp | None = Field(
        None, description="Every scheduled time up to this one has been handled."
    )
    next_run_time: Timestamp | None = Field(
        None, alias="nextRunTime", description="When the next scheduled run starts (jitter in)."
    )
    next_nominal_time: Timestamp | None = Field(
        None, alias="nextNominalTime", description="Its nominal time."
    )
    last_run_time: Timestamp | None = Field(
        None, alias="lastRunTime", description="Nominal time of the last run started."
    )
    last_run: str | None = Field(None, alias="lastRun", description="The last run started.")
    active: list[str] | None = Field(None, description="Runs of the schedule still going.")
    active_runs: int = Field(0, alias="activeRuns", description="How many.")
    actions: int = Field(0, description="Scheduled runs started so far (for maxActions).")
    missed: int = Field(0, description="Scheduled times missed (older than catchupWindow).")
    buffer: list[BufferedStart] | None = Field(None, description="Starts waiting their turn.")
    triggers_done: int = Field(0, alias="triggersDone", description="spec.triggers handled.")
    backfills_done: int = Field(
        0, alias="backfillsDone", description="spec.backfills handled completely."
    )
    backfill_cursor: Timestamp | None = Field(
        None, alias="backfillCursor", description="Progress in the backfill under way."
    )
    recent: list[RecentAction] | None = Field(None, description="The latest actions, newest last.")
    waiting_for: str | None = Field(
        None, alias="waitingFor", description="What the operator waits for, in words."
    )
    conditions: list[Condition] | None = Field(
        None,
        json_schema_extra=CONDITIONS_LIST_MAP,
        description="Invalid (the spec was refused; the message says why).",
    )
    observed_generation: int | None = Field(
        None, alias="observedGeneration", description="The spec generation this status follows."
    )


__all__ = [
    "MAX_SCHEDULE_NAME_LENGTH",
    "ActionKind",
    "ActionOrigin",
    "Backfill",
    "Interval",
    "OverlapPolicy",
    "ScheduleSpec",
    "ScheduleStatus",
    "Trigger",
]
