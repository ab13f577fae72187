"""The status of a large run: a bounded summary instead of every step instance.

A WorkflowRun's status is one etcd object (1.5 MiB at most per request) that `kubectl get`,
every watch and every status write carry whole. A run of at most `FULL_STATUS_STEPS` instances
lists each of them, as it always has; a larger one lists:

- every instance outside forEach items (bounded by the definition);
- per forEach (`itemCounts` has the counts of every phase): the items in flight (at most
  `RUNNING_SHOWN`), the first `FAILED_SHOWN` failed or cancelled ones, and the `RECENT` that
  finished last, each with every instance it contains;
- `itemCounts.listed`, the items listed, and `status.summary: true`.

Every instance is in the run's history (`baton history`), which is also what the operator
resumes a summarized run from: the summary holds too little to rebuild the state.
"""

from __future__ import annotations

from typing import Any

from baton.engine.definition import Definition, StepDef
from baton.engine.index import RECENT, Index, in_seq
from baton.engine.scope import step_def
from baton.engine.state import SUMMARY, State

FULL_STATUS_STEPS = 500
"""Runs of up to this many step instances list every one in their status (about 300 bytes
each without outputs: 150 KB here; a 1,000-item run measured 274 KB before summaries)."""
RUNNING_SHOWN = 100
"""Items in flight a summary lists per forEach (and steps in `currentStep`)."""
FAILED_SHOWN = 50
"""Failed or cancelled items a summary lists per forEach (the first ones by index)."""

__all__ = ["FAILED_SHOWN", "FULL_STATUS_STEPS", "RECENT", "RUNNING_SHOWN", "listed", "mark"]


def listed(definition: Definition, state: State, lookups: Index) -> list[str] | None:
    """The step instances a summary lists, in the state's order; None when the run is small
    enough to list them all. Costs what is listed, not the run's size."""
    if len(state.steps) <= FULL_STATUS_STEPS:
        return None
    steps = state.steps
    keep = {name for name in _names(definition.steps + definition.on_exit) if name in steps}
    # Outer forEach instances first: a nested forEach's items are listed when its own item is.
    for path in sorted(lookups.fans, key=lambda p: p.count("[")):
        if path not in keep:
            continue
        each = step_def(definition, path).for_each
        assert each is not None
        inner = _names((each.step,))
        for i in _shown(lookups, path):
            prefix = f"{path}[{i}]."
            keep.update(p for name in inner if (p := prefix + name) in steps)
    return in_seq(state, keep)


def _shown(lookups: Index, path: str) -> list[int]:
    fan = lookups.fans[path]
    shown = set(sorted(fan.active)[:RUNNING_SHOWN])
    shown.update(sorted(fan.bad)[:FAILED_SHOWN])
    shown.update(i for _, i in fan.recent)
    return sorted(shown)


def _names(steps: tuple[StepDef, ...]) -> list[str]:
    """Names of the steps of a list and of every step nested in them in the same scope (not
    inside a forEach's items, which have their own)."""
    names: list[str] = []
    for sd in steps:
        names.append(sd.name)
        for branch in sd.branches:
            names.extend(_names(branch.steps))
        for clause in sd.catch:
            names.extend(_names(clause.steps or ()))
        names.extend(_names(sd.finally_steps))
    return names


def mark(status: dict[str, Any], lookups: Index) -> None:
    """Make a status written from `listed` a summary: the marker, and per forEach the items it
    lists, without the item values (they can be as large as the run's input)."""
    status[SUMMARY] = True
    for path, entry in (status.get("steps") or {}).items():
        if path in lookups.fans:
            entry.pop("items", None)
            counts = entry.get("itemCounts")
            if counts is not None:
                counts["listed"] = len(_shown(lookups, path))
