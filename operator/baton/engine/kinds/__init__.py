"""Step kinds: one module per kind, each a `Kind` (see `base.py`) saying how the kind starts,
advances, is redriven and which due times it has. `KINDS` is the table the core machine
dispatches through; adding a kind is a module here, its line in the table, and its fields in
the definition model (`baton.engine.definition`)."""

from __future__ import annotations

from collections.abc import Mapping

from baton.engine.definition import StepKind
from baton.engine.kinds.activity import Activity
from baton.engine.kinds.base import Deadline, Kind, TimerPurpose
from baton.engine.kinds.child import Child, child_run_name
from baton.engine.kinds.continue_as_new import ContinueAsNew
from baton.engine.kinds.fail import Fail
from baton.engine.kinds.for_each import ForEach
from baton.engine.kinds.parallel import Parallel
from baton.engine.kinds.set import Set
from baton.engine.kinds.signal import WaitForSignal
from baton.engine.kinds.sleep import Sleep

_ACTIVITY = Activity()

KINDS: Mapping[StepKind, Kind] = {
    StepKind.HTTP: _ACTIVITY,
    StepKind.JOB: _ACTIVITY,
    StepKind.WORKER: _ACTIVITY,
    StepKind.WORKFLOW: Child(),
    StepKind.SLEEP: Sleep(),
    StepKind.WAIT_FOR_SIGNAL: WaitForSignal(),
    StepKind.PARALLEL: Parallel(),
    StepKind.FOR_EACH: ForEach(),
    StepKind.SET: Set(),
    StepKind.FAIL: Fail(),
    StepKind.CONTINUE_AS_NEW: ContinueAsNew(),
}
"""Every step kind's behaviour; a test checks that no StepKind is missing."""

__all__ = ["KINDS", "Deadline", "Kind", "TimerPurpose", "child_run_name"]
