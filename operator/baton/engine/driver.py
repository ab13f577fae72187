"""A pure driver: the shell's loop on a virtual clock, for tests and `baton test`.

`Simulation` delivers events to `decide` in time order, answers commands through a `respond`
callback (which returns the events the command causes and how many seconds later they arrive),
and skips time straight to the next due time when nothing else is pending. It never reads the
clock and never sleeps, so a workflow that waits seven days is simulated in milliseconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from baton.engine.commands import Command
from baton.engine.decide import Decision, decide, initial_state, next_wakeup
from baton.engine.definition import Definition
from baton.engine.events import Event, HistoryEntry, TimerFired, UpdateRequested
from baton.engine.state import State
from baton.engine.updates import refusal

Respond = Callable[[Command, float], Iterable[tuple[float, Event]]]
"""Given a command and the current virtual time, the events it causes as (delay, event)."""


@dataclass
class Simulation:
    """One run driven on a virtual clock. `respond` answers every command the engine issues;
    `history` is what the shell would have logged and `issued` every command, in order.
    An `UpdateRequested` is answered as the shell answers it: validated, then folded as
    `UpdateAccepted`, or refused (`refused`, by id) without touching the run."""

    definition: Definition
    respond: Respond | None = None
    now: float = 0.0
    state: State = field(default_factory=initial_state)
    history: list[HistoryEntry] = field(default_factory=list)
    issued: list[Command] = field(default_factory=list)
    refused: dict[str, dict[str, str]] = field(default_factory=dict)
    """The update requests refused, by id: `{name, reason}`."""
    _queue: list[tuple[float, int, Event]] = field(default_factory=list, repr=False)
    _sequence: int = field(default=0, repr=False)

    def deliver(self, event: Event, at: float | None = None) -> Decision:
        """Deliver `event` now (or at the later time `at`), record it, and queue what
        `respond` says the commands cause."""
        if at is not None:
            self.now = max(self.now, at)
        if isinstance(event, UpdateRequested):
            if event.id in self.state.updates or event.id in self.refused:
                return Decision(self.state, ())
            reason = refusal(self.definition, self.state, event, self.now)
            if reason is not None:
                self.refused[event.id] = {"name": event.name, "reason": reason}
                return Decision(self.state, ())
            event = event.accepted()
        decision = decide(self.definition, self.state, event, self.now)
        self.state = decision.state
        self.history.append(HistoryEntry(at=self.now, event=event))
        self.issued.extend(decision.commands)
        if self.respond is not None:
            for command in decision.commands:
                for delay, caused in self.respond(command, self.now):
                    self.schedule(caused, self.now + max(0.0, delay))
        return decision

    def schedule(self, event: Event, at: float) -> None:
        """Queue `event` to arrive at virtual time `at` (events at one time keep their order)."""
        heapq.heappush(self._queue, (at, self._sequence, event))
        self._sequence += 1

    def wakeup(self) -> float | None:
        """When the run next has something due."""
        return next_wakeup(self.definition, self.state)

    def next_at(self) -> float | None:
        """Virtual time of the next thing `step` would deliver, or None when nothing is left."""
        wake = None if self.state.phase.finished else self.wakeup()
        queued = self._queue[0][0] if self._queue else None
        if wake is None or queued is None:
            return queued if wake is None else wake
        return min(wake, queued)

    def step(self) -> bool:
        """Deliver the next thing to happen: the earliest queued event, or the timer when it is
        due first (a queued event at the same instant goes first). False when neither exists:
        the run is finished or waits for something only the outside world can send."""
        if self.state.phase.finished and not self._queue:
            return False
        wake = None if self.state.phase.finished else self.wakeup()
        if self._queue and (wake is None or self._queue[0][0] <= wake):
            at, _, event = heapq.heappop(self._queue)
            self.deliver(event, at)
        elif wake is not None:
            self.deliver(TimerFired(timer_id="wakeup"), wake)
        else:
            return False
        return True

    def run(self, *, max_events: int = 100_000) -> State:
        """Step until nothing is left to happen; raises RuntimeError after `max_events` (a
        workflow that never ends, such as an endless repeat without a cap)."""
        for _ in range(max_events):
            if not self.step():
                return self.state
        raise RuntimeError(f"the run did not settle within {max_events} events")
