"""The scaling rule: clamp(ceil((backlog + in flight) / tasksPerReplica), min, max), up at
once, down after the stabilisation window, to zero after the idle period."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from baton.api.pool import WorkerPoolSpec
from baton.pools.scaling import (
    ScaleDecision,
    ScalingPolicy,
    ScalingState,
    decide,
    idle_deadline,
    recommended,
    stabilization_deadline,
)

POLICY = ScalingPolicy(
    min_replicas=0,
    max_replicas=10,
    tasks_per_replica=4,
    scale_down_stabilization=60,
    idle_timeout=300,
)


class Pool:
    """Decisions over time, applied as the operator would (replicas follow the decision)."""

    def __init__(self, policy: ScalingPolicy = POLICY, replicas: int = 0) -> None:
        self.policy = policy
        self.state = ScalingState()
        self.replicas = replicas

    def observe(self, now: float, backlog: int, in_flight: int = 0) -> ScaleDecision:
        decision = decide(
            self.policy,
            self.state,
            backlog=backlog,
            in_flight=in_flight,
            current=self.replicas,
            now=now,
        )
        self.state = decision.state
        self.replicas = decision.replicas
        return decision


def test_the_rule_is_ceil_of_demand_over_tasks_per_replica_clamped() -> None:
    assert recommended(POLICY, 0, 0) == 0
    assert recommended(POLICY, 1, 0) == 1
    assert recommended(POLICY, 4, 0) == 1
    assert recommended(POLICY, 3, 2) == 2
    assert recommended(POLICY, 1000, 0) == 10
    bounded = ScalingPolicy(min_replicas=2, max_replicas=5, tasks_per_replica=1)
    assert recommended(bounded, 0, 0) == 2
    assert recommended(bounded, 3, 1) == 4


def test_a_growing_backlog_scales_up_at_once() -> None:
    pool = Pool()
    assert pool.observe(0, backlog=1).replicas == 1
    decision = pool.observe(1, backlog=30, in_flight=4)
    assert decision.replicas == 9
    assert decision.changed
    assert decision.reason == "backlog"
    assert pool.observe(2, backlog=100).replicas == 10


def test_scaling_down_waits_for_the_stabilisation_window() -> None:
    pool = Pool(replicas=0)
    pool.observe(0, backlog=40)  # 10 replicas
    assert pool.observe(10, backlog=4).replicas == 10  # a dip: kept
    assert pool.observe(30, backlog=8).replicas == 10
    assert pool.observe(59, backlog=8).replicas == 10
    # 60 s after the last recommendation of 10: the highest left in the window (8 at 30 s) is 2.
    decision = pool.observe(61, backlog=8)
    assert decision.replicas == 2
    assert decision.reason == "scale down"


def test_an_idle_pool_keeps_one_worker_until_the_idle_timeout_then_scales_to_zero() -> None:
    pool = Pool()
    pool.observe(0, backlog=8)  # 2
    pool.observe(1, backlog=0, in_flight=1)  # busy: still 2 (window)
    assert pool.observe(10, backlog=0).replicas == 2  # idle since 10
    assert pool.observe(100, backlog=0).replicas == 1  # window passed, idle 90 s < 300 s
    assert pool.state.idle_since == 10
    assert idle_deadline(POLICY, pool.state) == 310
    assert pool.observe(309, backlog=0).replicas == 1
    decision = pool.observe(310, backlog=0)
    assert decision.replicas == 0
    assert decision.reason == "idle"
    assert pool.observe(1000, backlog=0).replicas == 0  # stays at zero
    assert pool.observe(1001, backlog=1).replicas == 1  # a task wakes it


def test_work_resets_the_idle_period() -> None:
    pool = Pool()
    pool.observe(0, backlog=1)
    pool.observe(10, backlog=0)
    pool.observe(200, backlog=0, in_flight=1)
    assert pool.state.idle_since is None
    pool.observe(210, backlog=0)
    assert pool.observe(500, backlog=0).replicas == 1  # idle 290 s only
    assert pool.observe(510, backlog=0).replicas == 0


def test_min_replicas_is_kept_whatever_the_idle_time() -> None:
    policy = ScalingPolicy(min_replicas=2, max_replicas=4, tasks_per_replica=1)
    pool = Pool(policy, replicas=4)
    assert pool.observe(0, backlog=0).replicas == 4
    assert pool.observe(10_000, backlog=0).replicas == 2
    assert idle_deadline(policy, pool.state) is None


def test_the_next_scale_down_time_is_when_the_highest_recommendation_leaves_the_window() -> None:
    pool = Pool()
    pool.observe(0, backlog=40)
    pool.observe(5, backlog=40)
    pool.observe(20, backlog=4)
    assert stabilization_deadline(POLICY, pool.state) == 65
    pool.observe(65.5, backlog=4)
    assert stabilization_deadline(POLICY, pool.state) is None


def test_the_policy_of_a_spec() -> None:
    spec = WorkerPoolSpec.model_validate(
        {
            "image": "w:1",
            "minReplicas": 1,
            "maxReplicas": 3,
            "tasksPerReplica": 2,
            "scaleDownStabilization": "2m",
            "idleTimeout": "1h",
            "scaling": "external",
        }
    )
    assert ScalingPolicy.of(spec) == ScalingPolicy(1, 3, 2, 120.0, 3600.0, external=True)
    with pytest.raises(ValueError, match="bounds"):
        ScalingPolicy(min_replicas=3, max_replicas=2)


observations = st.lists(
    st.tuples(
        st.floats(0, 200), st.integers(0, 100), st.integers(0, 40)
    ),  # (time step, backlog, in flight)
    min_size=1,
    max_size=40,
)


policies = st.builds(
    lambda low, extra, per_replica, window, idle: ScalingPolicy(
        low, max(1, low + extra), per_replica, window, idle
    ),
    st.integers(0, 3),
    st.integers(0, 8),
    st.integers(1, 8),
    st.floats(0, 300),
    st.floats(0, 600),
)


@given(observations, policies)
def test_decisions_stay_in_bounds_scale_up_at_once_and_never_drop_below_demand(
    steps: list[tuple[float, int, int]], policy: ScalingPolicy
) -> None:
    low, per_replica = policy.min_replicas, policy.tasks_per_replica
    pool = Pool(policy, replicas=low)
    now = 0.0
    for step, backlog, in_flight in steps:
        now += step
        before = pool.replicas
        decision = pool.observe(now, backlog, in_flight)
        target = recommended(policy, backlog, in_flight)
        assert policy.min_replicas <= decision.replicas <= policy.max_replicas
        assert decision.replicas >= target  # never below what the demand needs
        if target > before:
            assert decision.replicas == target  # up at once, not beyond
        else:
            assert decision.replicas <= before  # no scale-up without demand
        if decision.replicas == 0 and before > 0:
            assert pool.state.idle_since is not None
            assert now - pool.state.idle_since >= policy.idle_timeout
        demand = backlog + in_flight
        assert decision.replicas <= max(before, math.ceil(demand / per_replica), low)


def test_a_pool_with_as_many_tasks_queued_as_in_flight_is_busy_not_idle() -> None:
    pool = Pool(replicas=1)
    pool.observe(0, backlog=2, in_flight=2)
    assert pool.state.idle_since is None


def test_a_recommendation_leaves_the_window_exactly_scale_down_stabilization_seconds_later() -> (
    None
):
    pool = Pool()
    pool.observe(0, backlog=40)  # 10
    assert pool.observe(59, backlog=8).replicas == 10
    assert pool.observe(60, backlog=8).replicas == 2  # the 10 of t=0 is out at t=60


def test_a_decision_reports_the_replicas_it_found_and_the_recommendation() -> None:
    pool = Pool(replicas=3)
    decision = pool.observe(0, backlog=9)
    assert (decision.current, decision.recommended, decision.replicas) == (3, 3, 3)
    assert not decision.changed
    assert decision.reason == "steady"


def test_a_pool_that_must_keep_one_worker_has_no_idle_deadline() -> None:
    policy = ScalingPolicy(min_replicas=1, max_replicas=4, tasks_per_replica=1)
    pool = Pool(policy, replicas=1)
    pool.observe(0, backlog=0)
    assert pool.state.idle_since == 0
    assert idle_deadline(policy, pool.state) is None
