"""Where step instances live: paths, forEach scopes and the phase groups the engine reasons in.

A step instance's path is its name prefixed by `forEachStep[index].` for each forEach around it
(`charges[3].charge`); a `Scope` is the chain of those prefixes plus the innermost item. Nothing
here changes state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from baton.api.run import StepPhase
from baton.engine.definition import Definition, StepDef
from baton.engine.state import StepState

ACTIVE = frozenset({StepPhase.RUNNING, StepPhase.BACKOFF, StepPhase.WAITING})
DONE = frozenset({StepPhase.SUCCEEDED, StepPhase.SKIPPED})
BAD = frozenset({StepPhase.FAILED, StepPhase.CANCELLED})
MAX_STEP_INSTANCES = 20_000
"""Step instances one run may hold (a forEach item is one per step it contains). The status
lists a large run's instances in summary (`baton.engine.summary`), so this bounds what the
run costs elsewhere: its history (two to three events per item, about 125 bytes each, so
some 5 MB at the limit, in ConfigMaps of 256 KiB), the operator's memory (about 1 KB per
instance) and the time to resume a summarized run by replaying its history (see
docs/performance.md, "The engine as a forEach grows")."""
TIMED = frozenset({StepPhase.RUNNING, StepPhase.BACKOFF, StepPhase.WAITING})
"""The phases in which a step can have a due time."""


class BlockResult(StrEnum):
    """Where a list of steps (the run's, a branch's, a catch clause's) stands."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    HALTED = "halted"
    """Nothing runs any more and not every step succeeded, but none failed: it was stopped
    (a sibling failed, the run is ending) before all its steps could start."""


@dataclass(frozen=True)
class Scope:
    """Where a step instance lives: the path prefixes of its forEach frames, root first, and
    the innermost frame's item and index."""

    prefixes: tuple[str, ...] = ("",)
    item: Any = None
    index: int | None = None

    @property
    def prefix(self) -> str:
        return self.prefixes[-1]

    def enter(self, for_each_path: str, index: int, item: Any) -> Scope:
        return Scope((*self.prefixes, f"{for_each_path}[{index}]."), item, index)


ROOT = Scope()


def step_def(definition: Definition, path: str) -> StepDef:
    """The definition of the step instance at `path`."""
    return definition.index[path.rsplit(".", 1)[-1]]


@functools.lru_cache(maxsize=64)
def item_paths(path: str, name: str, count: int) -> tuple[str, ...]:
    """The paths of a forEach's item steps (`charges[3].charge`), the same on every pass."""
    return tuple(f"{path}[{i}].{name}" for i in range(count))


def subtree_size(sd: StepDef) -> int:
    """Step instances one execution of `sd` creates, counting a forEach in it as one instance:
    its items are counted when it expands (`Machine.instances_with`)."""
    size = 1
    for branch in sd.branches:
        size += sum(subtree_size(inner) for inner in branch.steps)
    for clause in sd.catch:
        size += sum(subtree_size(inner) for inner in clause.steps or ())
    size += sum(subtree_size(inner) for inner in sd.finally_steps)
    return size


def bad(step: StepState) -> bool:
    """Failed or Cancelled, or ended so and running its `finally` (`StepState.outcome`): the
    list it belongs to halts at once. A step whose finally ran has its outcome as its phase,
    or Failed."""
    return step.phase in BAD or step.outcome in BAD


def first_failure(failed: list[StepState]) -> StepState:
    """The failure a composite reports: a FAILED one before a CANCELLED one, earliest first."""
    return min(failed, key=lambda i: (i.phase is not StepPhase.FAILED, i.finished_at or 0))
