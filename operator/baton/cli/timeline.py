"""Timelines as `baton test` and `baton history` print them: one aligned line per event.

Both commands show a run the same way, so a user reading the offline result of `baton test` and
the history of a real run on a cluster compares like with like: the time since the run's first
event, the event type, the step key, a short detail. The outcome lines (`output: ...`,
`error: ...`) are shared too. Pure: no clock, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from baton.api.duration import format_duration
from baton.engine.events import HistoryEntry, event_detail, event_step

TYPE_WIDTH = 18
STEP_WIDTH = 28


def timeline_line(at: float, event_type: str, step: str | None, detail: str) -> str:
    """One event: `at` seconds since the run's first event, its type, step key and detail."""
    when = format_duration(at) if at else "0s"
    return f"  {when:>10}  {event_type:<{TYPE_WIDTH}} {step or '':<{STEP_WIDTH}} {detail}".rstrip()


def history_lines(entries: Iterable[HistoryEntry], *, absolute: bool = False) -> list[str]:
    """A run's recorded history as timeline lines, times relative to its first event; with
    `absolute` each line starts with the event's own time (UTC, RFC 3339) too."""
    lines = []
    first: float | None = None
    for entry in entries:
        first = entry.at if first is None else first
        event = entry.event
        line = timeline_line(entry.at - first, event.type, event_step(event), event_detail(event))
        lines.append(f"  {rfc3339(entry.at)}{line}" if absolute else line)
    return lines


def rfc3339(at: float) -> str:
    """`at` (seconds since the epoch) as `2026-07-01T10:00:00.250Z`, milliseconds kept."""
    text = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def error_line(error: Mapping[str, Any]) -> str:
    """`error: Type: message (step s)`, for a run's or a step's error."""
    step = f" (step {error['step']})" if error.get("step") else ""
    return f"error: {error.get('type')}: {error.get('message', '')}{step}"


def output_line(output: Any) -> str:
    """`output: <json>`."""
    return f"output: {json.dumps(output)}"
