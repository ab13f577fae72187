"""Lookups derived from a run's step instances, kept current as decisions change them.

A forEach of 10,000 items must not cost 10,000 of anything on every event. The engine asks
which instances are in flight (due times, commands, the run's parallelism, signal waits), and a
forEach asks how many of its items are in each phase, which are in flight and which starts
next. `Index` answers from counts and sets that `sync` updates with the instances a decision
touched (`Steps.touched`), so an event costs what it changed. It is built by one scan when a
state comes from elsewhere (a status, a test) and is never written anywhere: it is a function of
`State.steps` and the definition, and `build` gives the same answer as any sequence of `sync`s.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from baton.api.run import StepPhase
from baton.engine.definition import Definition, StepDef
from baton.engine.kinds import KINDS, Deadline, TimerPurpose
from baton.engine.scope import ACTIVE, BAD, TIMED, item_paths, step_def
from baton.engine.state import Millis, State, Steps, StepState
from baton.engine.timing import timeouts_of

RECENT = 20
"""Latest finished items a forEach remembers (the status lists them for a large forEach)."""

STARTING = frozenset({TimerPurpose.RETRY, TimerPurpose.REPEAT})
"""Due times that would start something (the next attempt, the next repeat iteration): left
out while the run is suspended, resuming starts them."""

_FINISHED = frozenset(
    {StepPhase.SUCCEEDED, StepPhase.SKIPPED, StepPhase.FAILED, StepPhase.CANCELLED}
)


@dataclass
class Fan:
    """One forEach instance's items: the phase each is in (None: not created yet), how many
    are in each phase, which are in flight or ended badly, and where the next start is."""

    items: list[Any]
    """The forEach's `items` as the state holds them: a new list means a new execution."""
    inner: str
    """Name of the step each item runs."""
    phases: list[StepPhase | None]
    counts: dict[StepPhase | None, int]
    active: set[int] = field(default_factory=set)
    bad: set[int] = field(default_factory=set)
    """Items Failed or Cancelled."""
    next: int = 0
    """Every item before it has started: none is missing or Pending."""
    recent: list[tuple[Millis, int]] = field(default_factory=list)
    """The latest finished items, (finishedAt, index), oldest first, at most RECENT."""

    def copy(self) -> Fan:
        return Fan(
            items=self.items,
            inner=self.inner,
            phases=list(self.phases),
            counts=dict(self.counts),
            active=set(self.active),
            bad=set(self.bad),
            next=self.next,
            recent=list(self.recent),
        )

    def count(self, *phases: StepPhase) -> int:
        return sum(self.counts.get(p, 0) for p in phases)

    def move(self, i: int, step: StepState | None) -> None:
        """Item `i` is now as `step` is."""
        phase = step.phase if step is not None else None
        old = self.phases[i]
        if old is phase:
            return
        self.phases[i] = phase
        self.counts[old] -= 1
        self.counts[phase] = self.counts.get(phase, 0) + 1
        if phase in ACTIVE:
            self.active.add(i)
        else:
            self.active.discard(i)
        if phase in BAD:
            self.bad.add(i)
        else:
            self.bad.discard(i)
        if phase is None or phase is StepPhase.PENDING:
            self.next = min(self.next, i)
        self.recent = [r for r in self.recent if r[1] != i]
        if step is not None and phase in _FINISHED:
            bisect.insort(self.recent, (step.finished_at or 0, i))
            del self.recent[:-RECENT]


@dataclass
class Index:
    """The derived lookups of one state: instances in flight, and every forEach's `Fan`."""

    active: set[str]
    """Paths of the instances Running, BackingOff or Waiting (unordered: sort by `seq`)."""
    fans: dict[str, Fan]
    due: dict[str, tuple[Deadline, ...]] = field(default_factory=dict)
    """Due times of each instance that has some, as if the run were not suspended."""
    owned: set[str] = field(default_factory=set)
    """Fans this index copied (the others are shared with the index it was copied from)."""

    def copy(self) -> Index:
        """A copy for the next decision; fans are copied when first changed."""
        return Index(active=set(self.active), fans=dict(self.fans), due=dict(self.due))

    def own(self, path: str) -> Fan:
        """The fan at `path`, copied first when shared with the index this one was copied
        from (so that one is not changed)."""
        fan = self.fans[path]
        if path not in self.owned:
            fan = self.fans[path] = fan.copy()
            self.owned.add(path)
        return fan

    def account(self, definition: Definition, steps: Steps, path: str) -> None:
        """Bring the index up to date with the instance at `path`."""
        step = steps.peek(path)
        if step is None:
            # Removed (an update's steps go with its answer).
            self.active.discard(path)
            self.due.pop(path, None)
            self.fans.pop(path, None)
            self._item(path, None)
            return
        if step.phase in ACTIVE:
            self.active.add(path)
        else:
            self.active.discard(path)
        self._due(definition, path, step)
        fan = self.fans.get(path)
        if step.items is not None:
            if fan is None or fan.items is not step.items:
                self.fans[path] = _fan(definition, steps, path, step.items)
                self.owned.add(path)
        elif fan is not None:
            del self.fans[path]
        self._item(path, step)

    def _item(self, path: str, step: StepState | None) -> None:
        """If `path` is a forEach item, its fan takes its phase (None: removed)."""
        head, _, name = path.rpartition(".")
        if not head.endswith("]"):
            return
        holder, _, number = head[:-1].rpartition("[")
        fan = self.fans.get(holder)
        if fan is None or fan.inner != name:
            return
        i = int(number)
        if i < len(fan.phases) and fan.phases[i] is not (step.phase if step else None):
            self.own(holder).move(i, step)

    def _due(self, definition: Definition, path: str, step: StepState) -> None:
        due: tuple[Deadline, ...] = ()
        if step.phase in TIMED and step.outcome is None:
            # A step running its `finally` ended: its own timers are gone.
            due = tuple(_step_deadlines(path, step, step_def(definition, path)))
        if due:
            self.due[path] = due
        else:
            self.due.pop(path, None)


def _step_deadlines(key: str, step: StepState, sd: StepDef) -> Iterator[Deadline]:
    kind = KINDS[sd.kind]
    tag = f"{key}#{step.attempt}"
    if step.awaits_attempt:
        timeouts = sd.timeouts if step.times is None else timeouts_of(sd.timeouts, step.times)
        yield from kind.running_deadlines(key, tag, step, timeouts, sd.kind)
    elif step.phase is StepPhase.BACKOFF:
        assert step.next_attempt_at is not None
        yield Deadline(step.next_attempt_at, f"{tag}/retry", key, TimerPurpose.RETRY)
    elif step.phase is StepPhase.WAITING:
        if step.wake_at is not None:
            purpose = kind.wake_purpose
            assert purpose is not None
            yield Deadline(step.wake_at, f"{tag}/{purpose.value}", key, purpose)
        if step.next_attempt_at is not None:
            yield Deadline(step.next_attempt_at, f"{tag}/repeat", key, TimerPurpose.REPEAT)


def _fan(definition: Definition, steps: Steps, path: str, items: list[Any]) -> Fan:
    each = step_def(definition, path).for_each
    assert each is not None
    inner = each.step.name
    fan = Fan(items=items, inner=inner, phases=[None] * len(items), counts={None: len(items)})
    fan.next = len(items)
    for i, item_path in enumerate(item_paths(path, inner, len(items))):
        item = steps.peek(item_path)
        if item is not None:
            fan.move(i, item)
        if item is None or item.phase is StepPhase.PENDING:
            fan.next = min(fan.next, i)
    return fan


def build(definition: Definition, state: State) -> Index:
    """The index of `state`, by scanning every instance once."""
    index = Index(active=set(), fans={})
    steps = state.steps
    # forEach steps first: their items are accounted to their fan as they are built.
    for path, step in steps.items():
        if step.items is not None:
            index.fans[path] = _fan(definition, steps, path, step.items)
    for path, step in steps.items():
        if step.phase in ACTIVE:
            index.active.add(path)
            index._due(definition, path, step)
    index.owned = set(index.fans)
    return index


def index_of(definition: Definition, state: State) -> Index:
    """`state`'s index, built now if it has none yet."""
    if state.index is None:
        state.index = build(definition, state)
    return state.index


def sync(definition: Definition, state: State) -> Index:
    """Bring `state`'s index up to date with every instance changed since it last was."""
    index = index_of(definition, state)
    dirty = state.steps.dirty
    if dirty:
        for path in dirty:
            index.account(definition, state.steps, path)
        dirty.clear()
    return index


def in_seq(state: State, paths: set[str]) -> list[str]:
    """Those of `paths` that `state` holds, in the order of `state.steps`."""
    steps = state.steps
    held = [(step.seq, p) for p in paths if (step := steps.peek(p)) is not None]
    return [p for _, p in sorted(held)]
