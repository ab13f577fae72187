"""Nominal times of a schedule: cron expressions in a time zone and epoch-aligned intervals.

Cron is read by cronsim, which follows cron's (ISC/Debian) rules at daylight-saving changes: a
time inside the spring-forward gap fires once, at the end of the gap; in the repeated autumn
hour a fixed time (`30 2 * * *`) fires once (the first), a wildcard hour (`*/15 * * * *`) fires
in both. Every instant is kept in UTC here; several expressions giving the same instant give
one nominal time.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import cronsim

from baton.api.duration import format_duration, parse_duration
from baton.api.schedule import ScheduleSpec

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    """`moment` as RFC 3339 in UTC, to the second (`2026-12-02T11:30:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (`Z` or an offset) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def run_name(schedule: str, nominal: datetime) -> str:
    """The run of `schedule` for `nominal`: the same every time it is asked, so a create after
    a crash finds the run it already made (409) instead of making a second one."""
    return f"{schedule}-{nominal.astimezone(UTC):%Y%m%d%H%M%S}"


def fire_time(key: str, nominal: datetime, jitter: float) -> datetime:
    """When the run for `nominal` starts: `nominal` plus a delay below `jitter` seconds drawn
    from a hash of `key` (the schedule) and the nominal time, so every replica and every
    restart computes the same delay, and schedules due at the same time spread out."""
    if jitter <= 0:
        return nominal
    digest = hashlib.sha256(f"{key}@{rfc3339(nominal)}".encode()).digest()
    millis = int.from_bytes(digest[:8], "big") % max(1, int(jitter * 1000))
    return nominal + timedelta(milliseconds=millis)


@dataclass(frozen=True)
class Calendar:
    """The nominal times of a spec, between `start` and `end` (both inclusive)."""

    crons: tuple[str, ...]
    zone: ZoneInfo
    intervals: tuple[tuple[int, int], ...]
    """(every, offset) in whole seconds."""
    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def of(cls, spec: ScheduleSpec) -> Calendar:
        """The calendar `spec` describes (the spec was validated: its zone and crons parse)."""
        intervals = tuple(
            (max(1, int(parse_duration(i.every))), int(parse_duration(i.offset)))
            for i in spec.intervals or []
        )
        return cls(
            crons=tuple(spec.cron or []),
            zone=ZoneInfo(spec.time_zone),
            intervals=intervals,
            start=parse_time(spec.start_at) if spec.start_at else None,
            end=parse_time(spec.end_at) if spec.end_at else None,
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first nominal time strictly after `moment`; None when there is none before
        `end`."""
        lower = moment
        if self.start is not None and self.start > moment:
            lower = self.start - timedelta(microseconds=1)
        candidates: list[datetime] = []
        for expression in self.crons:
            local = lower.astimezone(self.zone)
            try:
                found = next(iter(cronsim.CronSim(expression, local)))
            except StopIteration:  # an expression that never matches again
                continue
            candidates.append(found.astimezone(UTC))
        seconds = (lower - EPOCH).total_seconds()
        for every, offset in self.intervals:
            index = math.floor((seconds - offset) / every) + 1
            candidates.append(EPOCH + timedelta(seconds=index * every + offset))
        if not candidates:
            return None
        first = min(candidates)
        if self.end is not None and first > self.end:
            return None
        return first

    def between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Nominal times in (after, until]."""
        moment = self.next_after(after)
        while moment is not None and moment <= until:
            yield moment
            moment = self.next_after(moment)

    def summary(self) -> str:
        """The times in one line, for `kubectl get`."""
        parts = list(self.crons)
        parts += [
            f"every {format_duration(every)}" + (f"+{format_duration(offset)}" if offset else "")
            for every, offset in self.intervals
        ]
        zone = str(self.zone)
        return "; ".join(parts) + ("" if zone == "UTC" or not self.crons else f" ({zone})")
