"""How many workers a pool needs, decided from what the shell observed at `now`.

The rule: `desired = clamp(ceil((backlog + in flight) / tasksPerReplica), min, max)`, and

- **up at once**: a recommendation above the current replicas is applied on the spot;
- **down slowly**: below the current replicas, the pool keeps the highest recommendation of
  the last `scaleDownStabilization` seconds (the HorizontalPodAutoscaler's rule), so a
  backlog that dips between two bursts does not remove workers the next burst needs;
- **no history, no cut**: a first decision (a new pool, a restarted operator) counts the
  current replicas as a recommendation of now;
- **to zero last**: with `minReplicas: 0`, a pool that has workers keeps one until it has been
  idle (no backlog, nothing in flight) for `idleTimeout` seconds; then it scales to zero. A
  pool at zero stays there until a task arrives.

`decide` is pure: the state it needs between calls (recent recommendations, when the pool
became idle) is returned in `ScalingState` for the caller to keep and pass back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from baton.api.duration import parse_duration
from baton.api.pool import ScalingMode, WorkerPoolSpec


@dataclass(frozen=True)
class ScalingPolicy:
    """A pool's scaling settings; durations in seconds."""

    min_replicas: int = 0
    max_replicas: int = 10
    tasks_per_replica: int = 4
    scale_down_stabilization: float = 300.0
    idle_timeout: float = 600.0
    external: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas or self.max_replicas < 1:
            raise ValueError(f"bad replica bounds {self.min_replicas}..{self.max_replicas}")
        if self.tasks_per_replica < 1:
            raise ValueError("tasksPerReplica must be at least 1")

    @classmethod
    def of(cls, spec: WorkerPoolSpec) -> ScalingPolicy:
        """The policy a WorkerPool's spec states."""
        return cls(
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            tasks_per_replica=spec.tasks_per_replica,
            scale_down_stabilization=_seconds(spec.scale_down_stabilization),
            idle_timeout=_seconds(spec.idle_timeout),
            external=spec.scaling is ScalingMode.EXTERNAL,
        )


def _seconds(value: str | float) -> float:
    return float(value) if isinstance(value, int | float) else parse_duration(value)


@dataclass(frozen=True)
class ScalingState:
    """What a decision remembers for the next one."""

    recommendations: tuple[tuple[float, int], ...] = ()
    """(time, clamped recommendation) of the last scaleDownStabilization seconds, oldest
    first."""
    idle_since: float | None = None
    """When the pool last became idle (no backlog, nothing in flight); None while busy."""


@dataclass(frozen=True)
class ScaleDecision:
    """The replicas a pool should have now, and why."""

    replicas: int
    current: int
    recommended: int
    reason: str
    state: ScalingState = field(repr=False)

    @property
    def changed(self) -> bool:
        """Whether the Deployment's replicas must be written."""
        return self.replicas != self.current


def recommended(policy: ScalingPolicy, backlog: int, in_flight: int) -> int:
    """`clamp(ceil((backlog + in flight) / tasksPerReplica), min, max)`."""
    demand = max(0, backlog) + max(0, in_flight)
    wanted = math.ceil(demand / policy.tasks_per_replica)
    return max(policy.min_replicas, min(policy.max_replicas, wanted))


def decide(
    policy: ScalingPolicy,
    state: ScalingState,
    *,
    backlog: int,
    in_flight: int,
    current: int,
    now: float,
) -> ScaleDecision:
    """The replicas for a pool that has `current` now, from its demand and its history."""
    demand = max(0, backlog) + max(0, in_flight)
    idle_since = (state.idle_since if state.idle_since is not None else now) if not demand else None
    target = recommended(policy, backlog, in_flight)
    window_start = now - policy.scale_down_stabilization
    recent = tuple((t, r) for t, r in state.recommendations if t > window_start)
    if not state.recommendations:
        # No history (a new pool, or an operator that restarted): the replicas it has count as
        # a recommendation of now, so a restart does not cut a busy pool at once.
        recent = ((now, min(current, policy.max_replicas)),)
    recent = (*recent, (now, target))
    new_state = ScalingState(recent, idle_since)

    if target >= current:
        replicas, reason = target, "backlog" if target > current else "steady"
    else:
        stabilized = max(r for _t, r in recent)
        replicas = min(current, stabilized)
        reason = "stabilizing" if replicas > target else "scale down"
        if replicas == 0 < current:
            reason = "idle"
    if replicas == 0 < current:
        idle_for = now - idle_since if idle_since is not None else 0.0
        if idle_for < policy.idle_timeout:
            # Scale to zero only after the idle period: keep one worker until then.
            replicas, reason = 1, "idle, waiting for idleTimeout"
    replicas = max(policy.min_replicas, min(policy.max_replicas, replicas))
    return ScaleDecision(replicas, current, target, reason, new_state)


def idle_deadline(policy: ScalingPolicy, state: ScalingState) -> float | None:
    """When an idle pool may scale to zero (to schedule the next decision), if it may."""
    if policy.min_replicas > 0 or state.idle_since is None:
        return None
    return state.idle_since + policy.idle_timeout


def stabilization_deadline(policy: ScalingPolicy, state: ScalingState) -> float | None:
    """When the oldest recommendation above the newest leaves the window (the next moment a
    scale-down can happen without a new observation)."""
    if not state.recommendations:
        return None
    latest = state.recommendations[-1][1]
    highest = max(r for _t, r in state.recommendations)
    if highest <= latest:
        return None
    last_seen = max(t for t, r in state.recommendations if r == highest)
    return last_seen + policy.scale_down_stabilization
