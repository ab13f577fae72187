"""A schedule on a virtual clock: `baton.schedules.decide` driven through days in milliseconds.

The same pass the operator runs, with runs that take the time `duration` says and end when it
passes (or at once when cancelled): what the schedule would start, skip, buffer and cancel,
without a cluster and without waiting.

    sim = simulate_schedule(spec, start, start + timedelta(days=7), duration=timedelta(minutes=20))
    assert sim.most_at_once == 1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from baton.api.schedule import ActionKind, ScheduleSpec
from baton.schedules import CancelRun, DeleteRun, Memory, Policy, RunView, StartRun, decide
from baton.schedules.plan import Action

CANCEL_TAKES = timedelta(seconds=1)
"""Virtual time a cancelled run takes to end."""


@dataclass
class SimulatedRun:
    """A run the simulated schedule started."""

    name: str
    nominal: datetime
    started_at: datetime
    ends_at: datetime
    cancelled: bool = False
    abandon_on_cancel: bool = False


@dataclass
class Simulation:
    """What a schedule did between two virtual times."""

    runs: list[SimulatedRun] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    most_at_once: int = 0
    passes: int = 0
    memory: Memory | None = None

    def count(self, kind: ActionKind) -> int:
        """Actions of one kind."""
        return sum(1 for a in self.actions if a.action is kind)


def simulate_schedule(
    spec: ScheduleSpec,
    start: datetime,
    until: datetime,
    *,
    duration: timedelta | Callable[[datetime], timedelta],
    name: str = "sim",
    namespace: str = "default",
) -> Simulation:
    """Run the schedule `spec` (created at `start`) until `until`; each run takes `duration`
    (or `duration(nominal)`)."""
    policy = Policy.of(spec, namespace, name)
    memory = Memory(cursor=start)
    sim = Simulation()
    live: dict[str, SimulatedRun] = {}
    now = start
    while now <= until:
        views = [
            RunView(r.name, r.nominal, r.ends_at <= now, not r.cancelled, r.ends_at, r.cancelled)
            for r in live.values()
        ]
        decision = decide(policy, memory, views, now)
        sim.passes += 1
        for command in decision.commands:
            if isinstance(command, StartRun):
                took = duration if isinstance(duration, timedelta) else duration(command.nominal)
                run = SimulatedRun(
                    command.name, command.nominal, now, now + took,
                    abandon_on_cancel=command.abandon_on_cancel,
                )  # fmt: skip
                if any(r.name == run.name for r in sim.runs):
                    raise AssertionError(f"{run.name} started twice")
                live[run.name] = run
                sim.runs.append(run)
            elif isinstance(command, CancelRun):
                run = live[command.name]
                if run.ends_at > now:
                    # Cancelling takes a moment: the run's loop stops what it has in flight.
                    run.ends_at, run.cancelled = now + CANCEL_TAKES, True
            else:
                assert isinstance(command, DeleteRun)
                live.pop(command.name, None)
        memory = decision.memory
        sim.actions.extend(decision.actions)
        sim.most_at_once = max(sim.most_at_once, sum(1 for r in live.values() if r.ends_at > now))
        ends = [r.ends_at for r in live.values() if r.ends_at > now]
        wakes = [w for w in (decision.wake_at, min(ends, default=None)) if w is not None]
        if not wakes:
            break
        following = min(wakes)
        now = following if following > now else now + timedelta(microseconds=1)
    sim.memory = memory
    return sim
