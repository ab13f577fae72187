"""Baton activities: Python functions served to a WorkerPool over Baton's worker protocol.

from baton_activities import ActivityError, Worker, activity, current

@activity
def charge(payment: Payment) -> Receipt:
    key = current().activity_key  # the same on every retry of the step
    ...

worker = Worker([charge])  # an ASGI app; run it with `baton-worker mymodule:worker`
"""

from baton_activities.activity import Activity, activity
from baton_activities.app import Worker
from baton_activities.auth import Tokens
from baton_activities.context import ActivityContext, RunInfo, current, heartbeat
from baton_activities.errors import ActivityError

__all__ = [
    "Activity",
    "ActivityContext",
    "ActivityError",
    "RunInfo",
    "Tokens",
    "Worker",
    "activity",
    "current",
    "heartbeat",
]
