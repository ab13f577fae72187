"""The order in which an operator that starts (or becomes the active replica) resumes its runs.

A restarted operator finds every live run at once, and resuming one costs about 1.5 ms of CPU
(its status parsed, its definition shared or compiled, the history after the status folded):
10,000 runs are 15 CPU-seconds, more on a busy machine. In the order kopf lists them (by name),
a timer due a minute after the restart fires when its run's turn comes, however late that is,
and a run that slept far into the future is resumed before one whose signal is waiting.

So runs that existed before this process are resumed from a queue, most urgent first, with at
most `in_flight` of them rebuilding their state at once (a loop leaves the queue's count once
its state is rebuilt: the writes that follow, a signal's commit, wait on the API server, not on
this process's CPU):

1. **something to do now**: a spec change the status has not observed (signal, update,
   cancel, suspend, redrive: `metadata.generation` ahead of `status.observedGeneration`), a
   due time that has passed, or a step the status shows `Running` or `Pending` (work in
   flight, performed again on resume). In the order they arrived.
2. **a due time ahead** (`status.nextWakeupAt`): soonest first.
3. **nothing to wait for but the user** (a signal wait, an approval): last, as they arrived.
   A change of the run while it waits moves it up (the queue keeps the newest body).

The Registry fills the queue from a listing of its own (`Registry.gather`: the runs of each
namespace watched by name, in pages, when the operator starts or becomes the active replica),
not from kopf's hand-over alone: kopf hands its listing over one run at a time, in name order,
at a few milliseconds of CPU each, so at 10,000 runs a run named late arrives most of a minute
after the first. A listed run kopf has not handed over once it has been quiet for a few
seconds is looked up, and forgotten when it was deleted between the two listings. Runs that
are new (no status yet) are started at once, not queued: their start is what the user is
waiting for. While the start-up listing of the runs' ConfigMaps (baton.store.startup) is
being read no resume begins: each would wait for it anyway.

The status a run is ordered by may lag its history (`status_interval`): a run whose history
moved on since (a timer that fired, a step that began) is ordered by its older status. That
only changes when it is resumed, never what it decides: its resume folds the history after
the status before deciding anything, as any resume does.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from baton.api.run import StepPhase
from baton.engine.state import parse_rfc3339

_IN_FLIGHT_PHASES = frozenset({StepPhase.RUNNING.value, StepPhase.PENDING.value})


class Urgency(IntEnum):
    """A waiting run's place in the queue (lowest first)."""

    NOW = 0
    """Something to do at once: an unobserved spec change, a due time passed, work in flight."""
    TIMER = 1
    """A due time ahead: ordered by it."""
    IDLE = 2
    """Waiting for the user only: nothing is late until they act."""


def urgency(body: Mapping[str, Any], now_ms: float) -> tuple[Urgency, float]:
    """Where `body`'s run goes in the queue at `now_ms`: its urgency and, for a timer, its due
    time in milliseconds (0 otherwise)."""
    status = body.get("status") or {}
    if body["metadata"].get("generation") != status.get("observedGeneration"):
        return Urgency.NOW, 0.0
    steps = status.get("steps")
    if isinstance(steps, Mapping) and any(
        isinstance(step, Mapping) and step.get("phase") in _IN_FLIGHT_PHASES
        for step in steps.values()
    ):
        return Urgency.NOW, 0.0
    wake = status.get("nextWakeupAt")
    if not wake:
        return Urgency.IDLE, 0.0
    try:
        due = float(parse_rfc3339(str(wake)))
    except ValueError:  # written by this operator; a hand-edited one is just not urgent
        return Urgency.IDLE, 0.0
    if due <= now_ms:
        return Urgency.NOW, 0.0
    return Urgency.TIMER, due


class ResumeQueue:
    """Runs waiting to resume, most urgent first, and how many are resuming now.

    Pure bookkeeping: the Registry pushes runs, pops the next one while `has_room`, and says
    when one is back (`done`). Each run is in it once, by uid; pushing it again (a newer body)
    moves it to its new place."""

    def __init__(self, in_flight: int) -> None:
        self.in_flight = max(1, in_flight)
        self.resuming = 0
        self._heap: list[tuple[Urgency, float, int, str]] = []
        self._place: dict[str, tuple[Urgency, float, int]] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._place)

    def __contains__(self, uid: object) -> bool:
        return uid in self._place

    def push(self, uid: str, body: Mapping[str, Any], now_ms: float) -> None:
        """Queue `uid` (or move it) by what `body` shows."""
        level, due = urgency(body, now_ms)
        held = self._place.get(uid)
        if held is not None and (held[0], held[1]) == (level, due):
            return  # same place: keep its turn among equals
        place = (level, due, next(self._order))
        self._place[uid] = place
        heapq.heappush(self._heap, (*place, uid))

    def discard(self, uid: str) -> None:
        """Forget `uid` (deleted, or started another way); its heap entry is skipped later."""
        self._place.pop(uid, None)

    def has_room(self) -> bool:
        return self.resuming < self.in_flight and bool(self._place)

    def pop(self) -> str | None:
        """The most urgent run's uid, counted as resuming; None when none is queued."""
        while self._heap:
            level, due, order, uid = heapq.heappop(self._heap)
            if self._place.get(uid) == (level, due, order):
                del self._place[uid]
                self.resuming += 1
                return uid
        return None

    def done(self) -> None:
        """A run popped earlier is back to waiting (or ended): room for the next."""
        self.resuming = max(0, self.resuming - 1)

    def clear(self) -> None:
        self._heap.clear()
        self._place.clear()
        self.resuming = 0
