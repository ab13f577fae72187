"""Which queued worker task goes next: fair across runs, bounded by the pool's capacity.

Tasks queue per run (the caller decides what a "run" is: the operator passes the root of a
tree of child runs, so fanning out to children does not buy a bigger share); `take` hands the
next free slot to the waiting run with the fewest tasks in flight, ties taken round-robin (one
task per run per turn). So a run with 10,000 items
queued holds no more of the pool than any other busy run, and a run that arrives later gets
the next free slot rather than waiting for the big one's backlog. Tasks in
flight never exceed the capacity the caller passes (ready replicas * tasksPerReplica): when
the pool shrinks, nothing new starts until enough tasks finish.

Tasks are named by their idempotency key: a key queued or in flight is not queued again (the
run loop re-issues a StartActivity after a crash), and `discard` forgets one wherever it is
(the attempt was cancelled or timed out).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_ABSENT = object()


@dataclass(frozen=True)
class Dispatched(Generic[T]):
    """A task handed out to be sent to a worker."""

    run: Hashable
    key: str
    item: T


class FairQueue(Generic[T]):
    """One pool's queued and in-flight tasks."""

    def __init__(self) -> None:
        self._queues: OrderedDict[Hashable, deque[str]] = OrderedDict()
        self._queued: dict[str, tuple[Hashable, T]] = {}
        self._in_flight: dict[str, Hashable] = {}
        self._running: dict[Hashable, int] = {}

    @property
    def backlog(self) -> int:
        """Tasks waiting to be dispatched."""
        return len(self._queued)

    @property
    def in_flight(self) -> int:
        """Tasks dispatched and not yet done."""
        return len(self._in_flight)

    def backlog_of(self, run: Hashable) -> int:
        """Tasks of one run waiting."""
        queue = self._queues.get(run)
        return len(queue) if queue is not None else 0

    def __contains__(self, key: object) -> bool:
        return key in self._queued or key in self._in_flight

    def push(self, run: Hashable, key: str, item: T) -> bool:
        """Queue a task; False (and nothing changes) when its key is queued or in flight."""
        if key in self:
            return False
        self._queued[key] = (run, item)
        queue = self._queues.get(run)
        if queue is None:
            # A run new to the queue takes its turn after the runs already waiting.
            self._queues[run] = queue = deque()
        queue.append(key)
        return True

    def take(self, capacity: int) -> list[Dispatched[T]]:
        """Hand out queued tasks, round-robin across runs, until `capacity` tasks are in flight
        (or nothing is queued). Each is in flight until `done` or `discard`."""
        taken: list[Dispatched[T]] = []
        while self._queues and len(self._in_flight) < capacity:
            # The first waiting run (turn order) among those with the fewest tasks in flight.
            run = min(self._queues, key=lambda r: self._running.get(r, 0))
            queue = self._queues[run]
            key = queue.popleft()
            if queue:
                self._queues.move_to_end(run)
            else:
                del self._queues[run]
            _run, item = self._queued.pop(key)
            self._in_flight[key] = run
            self._running[run] = self._running.get(run, 0) + 1
            taken.append(Dispatched(run, key, item))
        return taken

    def in_flight_of(self, run: Hashable) -> int:
        """Tasks of one run in flight."""
        return self._running.get(run, 0)

    def done(self, key: str) -> None:
        """A task in flight finished (whatever its outcome)."""
        self._finish(key)

    def _finish(self, key: str) -> bool:
        run = self._in_flight.pop(key, _ABSENT)
        if run is _ABSENT:
            return False
        left = self._running[run] - 1
        if left:
            self._running[run] = left
        else:
            del self._running[run]
        return True

    def discard(self, key: str) -> T | None:
        """Forget a task, queued or in flight; the item if it was still queued."""
        if self._finish(key):
            return None
        entry = self._queued.pop(key, None)
        if entry is None:
            return None
        run, item = entry
        queue = self._queues[run]
        queue.remove(key)
        if not queue:
            del self._queues[run]
        return item

    def runs_waiting(self) -> list[Hashable]:
        """Runs with queued tasks, in the order their next task will be taken."""
        return list(self._queues)


def capacity(ready_replicas: int, tasks_per_replica: int) -> int:
    """How many tasks a pool may run at once: ready replicas * tasksPerReplica."""
    return max(0, ready_replicas) * max(1, tasks_per_replica)
