"""The pure logic of Schedules: which nominal times a spec gives, and what to do about each.

No clock, no Kubernetes: `decide` takes the spec, the status, the schedule's runs as observed
and `now`, and returns the new status and the commands (start, cancel, delete a run). The shell
(baton.handlers.schedules) performs the commands and writes the status; `baton.testing`
drives the same function on a virtual clock.
"""

from baton.schedules.calendar import Calendar, fire_time, parse_time, rfc3339, run_name
from baton.schedules.plan import (
    CancelRun,
    Command,
    Decision,
    DeleteRun,
    Memory,
    Policy,
    RunView,
    StartRun,
    decide,
)

__all__ = [
    "Calendar",
    "CancelRun",
    "Command",
    "Decision",
    "DeleteRun",
    "Memory",
    "Policy",
    "RunView",
    "StartRun",
    "decide",
    "fire_time",
    "parse_time",
    "rfc3339",
    "run_name",
]
