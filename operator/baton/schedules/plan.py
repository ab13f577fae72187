"""What a schedule does now: `decide(policy, memory, runs, now)`.

One pass handles, in order: the buffered start (when no run is going any more), new
`spec.triggers`, backfills under way, then every scheduled time that fell due since the
cursor, each through the overlap policy; last, finished runs beyond the history limits are
deleted. The memory (the status) only ever moves forward, and the shell writes it after the
commands were carried out: a crash in between repeats the pass, and the repeated starts find
their runs already made (run names are deterministic), so each nominal time starts one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from baton.api.duration import parse_duration
from baton.api.schedule import (
    ActionKind,
    ActionOrigin,
    OverlapPolicy,
    ScheduleSpec,
)
from baton.schedules.calendar import Calendar, fire_time, parse_time, rfc3339, run_name

RECENT_ACTIONS = 20
"""Actions kept in `status.recent`."""
MAX_BUFFER = 100
"""Most starts `bufferAll` keeps waiting; later ones are skipped (and say so)."""
STARTS_PER_PASS = 100
"""Most runs one pass starts (a large backfill goes on in the next pass, at once)."""
BACKFILL_TIMES_PER_PASS = 1_000
"""Most backfill times one pass handles, started or not (a skipped time costs a pass time
too: a decade of minutes under `skip` must not hold up the operator)."""
MISSED_COUNTED = 1_000
"""Most missed times a pass counts one by one. After a long outage of a frequent schedule (a
year of `* * * * *` is 525,600 times) the rest are skipped in one step, and the Missed action
says "at least": walking them all would hold up every other loop of the operator."""


@dataclass(frozen=True)
class RunView:
    """A run of the schedule as observed."""

    name: str
    nominal: datetime | None
    finished: bool = False
    succeeded: bool = False
    finished_at: datetime | None = None
    cancel_requested: bool = False


@dataclass(frozen=True)
class Request:
    """A trigger or one backfill range."""

    start: datetime
    end: datetime
    overlap: OverlapPolicy


@dataclass(frozen=True)
class Policy:
    """The spec of a schedule, parsed."""

    name: str
    key: str
    """What jitter hashes: `<namespace>/<name>`."""
    calendar: Calendar
    overlap: OverlapPolicy
    catchup: float
    jitter: float
    suspend: bool
    note: str | None
    max_actions: int | None
    keep_succeeded: int
    keep_failed: int
    triggers: tuple[Request, ...]
    backfills: tuple[Request, ...]

    @classmethod
    def of(cls, spec: ScheduleSpec, namespace: str, name: str) -> Policy:
        """The policy of a validated spec."""
        return cls(
            name=name,
            key=f"{namespace}/{name}",
            calendar=Calendar.of(spec),
            overlap=spec.overlap,
            catchup=parse_duration(spec.catchup_window),
            jitter=parse_duration(spec.jitter) if spec.jitter else 0.0,
            suspend=spec.suspend,
            note=spec.note,
            max_actions=spec.max_actions,
            keep_succeeded=spec.successful_runs_history_limit,
            keep_failed=spec.failed_runs_history_limit,
            triggers=tuple(
                Request(parse_time(t.at), parse_time(t.at), t.overlap or spec.overlap)
                for t in spec.triggers or []
            ),
            backfills=tuple(
                Request(parse_time(b.from_), parse_time(b.to), b.overlap or OverlapPolicy.ALLOW_ALL)
                for b in spec.backfills or []
            ),
        )


@dataclass(frozen=True)
class Action:
    """One entry of `status.recent`."""

    action: ActionKind
    nominal: datetime
    origin: ActionOrigin
    run: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action.value,
            "nominalTime": rfc3339(self.nominal),
            "origin": self.origin.value,
        }
        if self.run is not None:
            out["run"] = self.run
        if self.message is not None:
            out["message"] = self.message
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Action:
        return cls(
            ActionKind(data["action"]),
            parse_time(data["nominalTime"]),
            ActionOrigin(data["origin"]),
            data.get("run"),
            data.get("message"),
        )


@dataclass(frozen=True)
class Buffered:
    """A start waiting for the runs before it to end."""

    nominal: datetime
    origin: ActionOrigin


@dataclass
class Memory:
    """The durable part of the status."""

    cursor: datetime
    actions: int = 0
    missed: int = 0
    buffer: list[Buffered] = field(default_factory=list)
    triggers_done: int = 0
    backfills_done: int = 0
    backfill_cursor: datetime | None = None
    recent: list[Action] = field(default_factory=list)
    last_run_time: datetime | None = None
    last_run: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any], created: datetime) -> Memory:
        """The memory a status holds; a schedule without one starts from its creation."""
        cursor = status.get("cursor")
        backfill = status.get("backfillCursor")
        last = status.get("lastRunTime")
        return cls(
            cursor=parse_time(cursor) if cursor else created,
            actions=int(status.get("actions") or 0),
            missed=int(status.get("missed") or 0),
            buffer=[
                Buffered(parse_time(b["nominalTime"]), ActionOrigin(b["origin"]))
                for b in status.get("buffer") or []
            ],
            triggers_done=int(status.get("triggersDone") or 0),
            backfills_done=int(status.get("backfillsDone") or 0),
            backfill_cursor=parse_time(backfill) if backfill else None,
            recent=[Action.from_json(a) for a in status.get("recent") or []],
            last_run_time=parse_time(last) if last else None,
            last_run=status.get("lastRun"),
        )

    def to_status(self) -> dict[str, Any]:
        """The status fields this memory writes (None removes a field in a merge patch)."""
        return {
            "cursor": rfc3339(self.cursor),
            "actions": self.actions,
            "missed": self.missed,
            "buffer": [
                {"nominalTime": rfc3339(b.nominal), "origin": b.origin.value} for b in self.buffer
            ],
            "triggersDone": self.triggers_done,
            "backfillsDone": self.backfills_done,
            "backfillCursor": rfc3339(self.backfill_cursor) if self.backfill_cursor else None,
            "recent": [a.to_json() for a in self.recent],
            "lastRunTime": rfc3339(self.last_run_time) if self.last_run_time else None,
            "lastRun": self.last_run,
        }


@dataclass(frozen=True)
class StartRun:
    """Create the run `name` for `nominal` (409: it exists, which is as good)."""

    name: str
    nominal: datetime
    origin: ActionOrigin
    abandon_on_cancel: bool
    """Started under `terminateOther`: a cancel of it compensates nothing (a terminate)."""


@dataclass(frozen=True)
class CancelRun:
    """Set `spec.cancel` on the run `name`."""

    name: str


@dataclass(frozen=True)
class DeleteRun:
    """Delete the finished run `name` (history limits)."""

    name: str


Command = StartRun | CancelRun | DeleteRun


@dataclass
class Decision:
    """The outcome of one pass."""

    memory: Memory
    commands: list[Command]
    active: list[str]
    next_nominal: datetime | None
    next_fire: datetime | None
    wake_at: datetime | None
    """When to run the next pass at the latest (None: only when something changes)."""
    waiting_for: str
    actions: list[Action]
    """What this pass did (status.recent keeps the latest RECENT_ACTIONS of all passes)."""


class _Pass:
    def __init__(
        self, policy: Policy, memory: Memory, runs: Sequence[RunView], now: datetime
    ) -> None:
        self.p = policy
        self.m = replace(memory, buffer=list(memory.buffer), recent=list(memory.recent))
        self.now = now
        self.runs = {r.name: r for r in runs}
        self.active = [r.name for r in runs if not r.finished]
        self.cancelling = {r.name for r in runs if not r.finished and r.cancel_requested}
        # Under terminateOther a run asked to stop is as good as gone: it ends without
        # compensating, and nothing waits for it.
        terminating = policy.overlap is OverlapPolicy.TERMINATE_OTHER
        self.terminated: set[str] = set(self.cancelling) if terminating else set()
        self.commands: list[Command] = []
        self.added: list[Action] = []
        self.starts = 0
        self.more = False

    # -- one nominal time -------------------------------------------------------------------

    def note(self, action: Action) -> None:
        self.added.append(action)
        self.m.recent.append(action)
        del self.m.recent[:-RECENT_ACTIONS]

    def going(self) -> list[str]:
        return [name for name in self.active if name not in self.terminated]

    def start(self, nominal: datetime, origin: ActionOrigin, message: str | None = None) -> None:
        name = run_name(self.p.name, nominal)
        if name not in self.runs:
            self.commands.append(
                StartRun(name, nominal, origin, self.p.overlap is OverlapPolicy.TERMINATE_OTHER)
            )
            self.runs[name] = RunView(name, nominal)
            self.active.append(name)
            self.starts += 1
        if origin is ActionOrigin.SCHEDULE:
            self.m.actions += 1
        if self.m.last_run_time is None or nominal >= self.m.last_run_time:
            self.m.last_run_time, self.m.last_run = nominal, name
        self.note(Action(ActionKind.STARTED, nominal, origin, name, message))

    def arrive(self, nominal: datetime, origin: ActionOrigin, overlap: OverlapPolicy) -> None:
        """A nominal time is due: start it, or what the overlap policy says."""
        name = run_name(self.p.name, nominal)
        if name in self.runs:
            # Made before a crash cut the pass short, or by an earlier request for the same
            # time: one nominal time, one run.
            self.start(nominal, origin, "the run existed already")
            return
        going = self.going()
        if not going or overlap is OverlapPolicy.ALLOW_ALL:
            self.start(nominal, origin)
            return
        others = ", ".join(going)
        if overlap is OverlapPolicy.SKIP:
            self.note(Action(ActionKind.SKIPPED, nominal, origin, None, f"{others} still going"))
        elif overlap is OverlapPolicy.BUFFER_ONE:
            self.buffer(nominal, origin, limit=1, others=others)
        elif overlap is OverlapPolicy.BUFFER_ALL:
            self.buffer(nominal, origin, limit=MAX_BUFFER, others=others)
        elif overlap is OverlapPolicy.CANCEL_OTHER:
            for other in going:
                if other not in self.cancelling:
                    self.cancelling.add(other)
                    self.commands.append(CancelRun(other))
                    self.note(Action(ActionKind.CANCELLED_OTHER, nominal, origin, other))
            self.buffer(nominal, origin, limit=1, others=others)
        else:  # terminateOther: the others were started to end without compensation
            for other in going:
                self.terminated.add(other)
                if other not in self.cancelling:
                    self.cancelling.add(other)
                    self.commands.append(CancelRun(other))
                self.note(Action(ActionKind.TERMINATED_OTHER, nominal, origin, other))
            self.start(nominal, origin)

    def buffer(self, nominal: datetime, origin: ActionOrigin, *, limit: int, others: str) -> None:
        if len(self.m.buffer) >= limit:
            self.note(
                Action(
                    ActionKind.SKIPPED,
                    nominal,
                    origin,
                    None,
                    f"{others} still going and {len(self.m.buffer)} start(s) already wait",
                )
            )
            return
        self.m.buffer.append(Buffered(nominal, origin))
        self.note(Action(ActionKind.BUFFERED, nominal, origin, None, f"waits for {others}"))

    # -- the pass ---------------------------------------------------------------------------

    def budget(self) -> bool:
        if self.starts >= STARTS_PER_PASS:
            self.more = True
            return False
        return True

    def drain_buffer(self) -> None:
        while self.m.buffer and not self.going() and self.budget():
            head = self.m.buffer.pop(0)
            self.start(head.nominal, head.origin, "buffered")

    def triggers(self) -> None:
        while self.m.triggers_done < len(self.p.triggers) and self.budget():
            request = self.p.triggers[self.m.triggers_done]
            self.arrive(request.start, ActionOrigin.TRIGGER, request.overlap)
            self.m.triggers_done += 1

    def backfills(self) -> None:
        while self.m.backfills_done < len(self.p.backfills) and self.budget():
            request = self.p.backfills[self.m.backfills_done]
            after = self.m.backfill_cursor or request.start - timedelta(microseconds=1)
            # The range is the spec's times between its ends, whatever startAt/endAt say.
            calendar = replace(self.p.calendar, start=None, end=None)
            moment = calendar.next_after(after)
            handled = 0
            while moment is not None and moment <= request.end and self.budget():
                if handled >= BACKFILL_TIMES_PER_PASS:
                    self.more = True
                    return
                self.arrive(moment, ActionOrigin.BACKFILL, request.overlap)
                self.m.backfill_cursor = moment
                handled += 1
                moment = calendar.next_after(moment)
            if moment is None or moment > request.end:
                self.m.backfills_done += 1
                self.m.backfill_cursor = None

    def scheduled(self) -> tuple[datetime | None, datetime | None, str | None]:
        """Due scheduled times; (next nominal, its start, why nothing comes next)."""
        if self.p.suspend:
            # Times that pass while suspended are not run, now or after the unpause.
            self.m.cursor = max(self.m.cursor, self.now)
            note = f": {self.p.note}" if self.p.note else ""
            return None, None, f"nothing: suspended{note}"
        self.skip_old()
        missed_from: datetime | None = None
        missed = 0
        while True:
            nominal = self.p.calendar.next_after(self.m.cursor)
            if nominal is None:
                ending = "nothing: no scheduled time after endAt"
                break
            if self.p.max_actions is not None and self.m.actions >= self.p.max_actions:
                ending = f"nothing: maxActions ({self.p.max_actions}) reached"
                break
            fire = fire_time(self.p.key, nominal, self.p.jitter)
            if fire > self.now:
                self.flush_missed(missed_from, missed)
                return nominal, fire, None
            if (self.now - fire).total_seconds() > self.p.catchup:
                missed_from = missed_from or nominal
                missed += 1
                self.m.missed += 1
                self.m.cursor = nominal
                continue
            if not self.budget():
                break
            self.flush_missed(missed_from, missed)
            missed_from, missed = None, 0
            self.arrive(nominal, ActionOrigin.SCHEDULE, self.p.overlap)
            self.m.cursor = nominal
        self.flush_missed(missed_from, missed)
        return None, None, None if self.more else ending

    def skip_old(self) -> None:
        """Move the cursor past every time that is missed whatever its jitter (its nominal
        time is older than catchupWindow plus jitter), counting at most MISSED_COUNTED."""
        boundary = self.now - timedelta(seconds=self.p.catchup + self.p.jitter + 0.001)
        if self.m.cursor >= boundary:
            return
        first: datetime | None = None
        count = 0
        for moment in self.p.calendar.between(self.m.cursor, boundary):
            first = first or moment
            count += 1
            self.m.cursor = moment
            if count >= MISSED_COUNTED:
                self.m.cursor = boundary
                break
        if first is None:
            return
        self.m.missed += count
        capped = count >= MISSED_COUNTED
        span = rfc3339(first) if count == 1 else f"{rfc3339(first)} to {rfc3339(self.m.cursor)}"
        amount = f"at least {count}" if capped else str(count)
        message = f"{amount} time(s), {span}, older than catchupWindow"
        self.note(Action(ActionKind.MISSED, self.m.cursor, ActionOrigin.SCHEDULE, None, message))

    def flush_missed(self, first: datetime | None, count: int) -> None:
        if first is None or not count:
            return
        last = self.m.cursor
        when = rfc3339(first) if count == 1 else f"{rfc3339(first)} to {rfc3339(last)}"
        message = f"{count} time(s), {when}, older than catchupWindow"
        self.note(Action(ActionKind.MISSED, last, ActionOrigin.SCHEDULE, None, message))

    def retention(self) -> None:
        finished = [r for r in self.runs.values() if r.finished]

        def age(run: RunView) -> datetime:
            return run.finished_at or run.nominal or datetime.min.replace(tzinfo=self.now.tzinfo)

        succeeded = sorted((r for r in finished if r.succeeded), key=age, reverse=True)
        failed = sorted((r for r in finished if not r.succeeded), key=age, reverse=True)
        for run in [*succeeded[self.p.keep_succeeded :], *failed[self.p.keep_failed :]]:
            self.commands.append(DeleteRun(run.name))


def decide(policy: Policy, memory: Memory, runs: Sequence[RunView], now: datetime) -> Decision:
    """One pass of a schedule at `now`, given its runs as observed."""
    work = _Pass(policy, memory, runs, now)
    work.drain_buffer()
    work.triggers()
    work.backfills()
    work.drain_buffer()
    nominal, fire, ending = work.scheduled()
    work.retention()
    going = work.going()
    if work.more:
        wake: datetime | None = now
        waiting = "more work: the next pass runs at once"
    elif work.m.buffer:
        wake = fire
        waiting = f"{', '.join(going)} to end ({len(work.m.buffer)} start(s) buffered)"
    elif fire is not None:
        wake = fire
        waiting = f"next run at {rfc3339(fire)} (nominal {rfc3339(nominal or fire)})"
    else:
        wake = None
        waiting = ending or "nothing"
    return Decision(work.m, work.commands, going, nominal, fire, wake, waiting, work.added)
