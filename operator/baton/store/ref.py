"""The reference to one WorkflowRun that everything acting for it carries.

It lives in the store, below the executors and the handlers, because the store names what a run
owns after it (history and output ConfigMaps, the definition snapshot) and checks ownership by
its uid; the executors and the run loop pass it along.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunRef:
    """The WorkflowRun an object, an activity or a child belongs to."""

    name: str
    namespace: str
    uid: str
    root_uid: str = ""
    """The uid of the run at the top of its tree of child runs ("" or `uid` for a top run)."""

    @property
    def root(self) -> str:
        """Whose share of a worker pool this run's tasks count against: its tree's root."""
        return self.root_uid or self.uid
