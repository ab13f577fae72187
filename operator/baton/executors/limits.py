"""How many outgoing calls may be in flight at once: in all, per namespace, per run.

Each of the operator's connection pools (HTTP activities, worker dispatch) has a `CallLimits`
in front of it. A call takes a slot before it is sent and gives it back when its answer is in
(or it failed, or was cancelled); while it waits it holds nothing: no connection, no slot of
the pool. The pool's own queue is never used — a call only reaches the pool with a slot, and
`total` is the pool's size — so which call goes next is decided here, not in httpcore:

- a call is sent at once when its run, its namespace and the pool all have room;
- otherwise it waits, queued behind the earlier calls of its run; when a slot frees, runs take
  turns (round-robin, one call per run per turn) among the waiting runs whose namespace and
  run are below their limits. A run or namespace at its own limit never blocks another's call.

So a namespace whose calls all hang holds at most `per_namespace` connections, and the other
`total - per_namespace` stay for the other namespaces. The per-run limit does the same between
the runs of one namespace. A "run" is whatever key the caller passes (the HTTP executor passes
the root of a tree of child runs, so fanning out to children does not buy more calls).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass


@dataclass
class _Waiter:
    namespace: str
    run: Hashable
    granted: asyncio.Future[None]


class CallLimits:
    """Slots of one connection pool: `total` in all, at most `per_namespace` for one namespace
    and `per_run` for one run (None: no limit of that kind)."""

    def __init__(
        self, total: int, *, per_namespace: int | None = None, per_run: int | None = None
    ) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, not {total}")
        self.total = total
        self.per_namespace = per_namespace
        self.per_run = per_run
        self._in_flight = 0
        self._by_namespace: Counter[str] = Counter()
        self._by_run: Counter[Hashable] = Counter()
        # Waiting calls per run, runs in turn order. Invariant between two operations: no
        # waiting call could take a slot (every operation that frees one hands it on at once).
        self._waiting: OrderedDict[Hashable, deque[_Waiter]] = OrderedDict()

    @property
    def in_flight(self) -> int:
        """Calls holding a slot."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot."""
        return sum(len(queue) for queue in self._waiting.values())

    def in_flight_of(self, namespace: str) -> int:
        """Calls of one namespace holding a slot."""
        return self._by_namespace[namespace]

    @contextlib.asynccontextmanager
    async def slot(self, namespace: str, run: Hashable) -> AsyncIterator[None]:
        """Hold a slot for one call of `run` in `namespace`, waiting (holding nothing) until
        there is one; given back on exit, cancellation included."""
        if run not in self._waiting and self._has_room(namespace, run):
            self._take(namespace, run)
        else:
            await self._wait(namespace, run)
        try:
            yield
        finally:
            self._give_back(namespace, run)

    async def _wait(self, namespace: str, run: Hashable) -> None:
        waiter = _Waiter(namespace, run, asyncio.get_running_loop().create_future())
        queue = self._waiting.get(run)
        if queue is None:
            self._waiting[run] = queue = deque()
        queue.append(waiter)
        try:
            await waiter.granted
        except BaseException:
            if waiter.granted.done() and not waiter.granted.cancelled():
                # Granted, but the waiting task was cancelled before it could run: give the
                # slot back (to the next waiter) rather than leaking it.
                self._give_back(namespace, run)
            else:
                self._forget(waiter)
            raise

    def _has_room(self, namespace: str, run: Hashable) -> bool:
        if self._in_flight >= self.total:
            return False
        if self.per_namespace is not None and self._by_namespace[namespace] >= self.per_namespace:
            return False
        return self.per_run is None or self._by_run[run] < self.per_run

    def _take(self, namespace: str, run: Hashable) -> None:
        self._in_flight += 1
        self._by_namespace[namespace] += 1
        self._by_run[run] += 1

    def _give_back(self, namespace: str, run: Hashable) -> None:
        self._in_flight -= 1
        self._by_namespace[namespace] -= 1
        if not self._by_namespace[namespace]:
            del self._by_namespace[namespace]
        self._by_run[run] -= 1
        if not self._by_run[run]:
            del self._by_run[run]
        self._hand_on()

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._waiting.get(waiter.run)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(waiter)
        if not queue:
            del self._waiting[waiter.run]

    def _hand_on(self) -> None:
        """Give free slots to waiting calls: runs in turn, the first call of each."""
        progress = True
        while progress and self._waiting and self._in_flight < self.total:
            progress = False
            for run in list(self._waiting):
                if self._in_flight >= self.total:
                    break
                queue = self._waiting[run]
                while queue and queue[0].granted.done():
                    # Cancelled; its task has not run its cleanup yet.
                    queue.popleft()
                if not queue:
                    del self._waiting[run]
                    continue
                head = queue[0]
                if not self._has_room(head.namespace, run):
                    continue
                queue.popleft()
                if queue:
                    self._waiting.move_to_end(run)
                else:
                    del self._waiting[run]
                self._take(head.namespace, run)
                head.granted.set_result(None)
                progress = True
