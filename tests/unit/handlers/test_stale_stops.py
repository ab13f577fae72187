"""baton.handlers.stale: which Jobs and child runs a resumed run stops."""

from __future__ import annotations

from typing import Any

from baton.api.labels import ACTIVITY_KEY, ATTEMPT
from baton.api.run import StepPhase
from baton.engine import CancelActivity, TerminateChild
from baton.engine.state import State, StepState
from baton.handlers.stale import committed_jobs, stale_stops

UID = "run-uid"


def state(**steps: tuple[StepPhase, int]) -> State:
    return State(uid=UID, steps={k: StepState(phase=p, attempt=a) for k, (p, a) in steps.items()})


def job(key: str, attempt: int, *, finished: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Complete", "status": "True"}] if finished else []
    return {
        "metadata": {"name": f"r-{key}-{attempt}",
                     "annotations": {ACTIVITY_KEY: key, ATTEMPT: str(attempt)}},
        "status": {"conditions": conditions},
    }  # fmt: skip


def child(key: str, attempt: int, *, owned: bool = True, **rest: Any) -> dict[str, Any]:
    owners = [{"uid": UID}] if owned else []
    return {
        "metadata": {"name": f"r-{key}-{attempt}", "ownerReferences": owners,
                     "annotations": {ACTIVITY_KEY: key, ATTEMPT: str(attempt)}},
        **rest,
    }  # fmt: skip


def test_a_running_job_of_a_cancelled_or_retried_step_is_deleted() -> None:
    now = state(a=(StepPhase.CANCELLED, 1), b=(StepPhase.BACKOFF, 1), c=(StepPhase.RUNNING, 2))
    stops = stale_stops(now, UID, [job("a", 1), job("b", 1), job("c", 1)], [])
    assert stops == [
        CancelActivity(key=k, kind="job", attempt=1, idempotency_key=f"{UID}/{k}/1")
        for k in ("a", "b", "c")
    ]


def test_jobs_in_flight_finished_or_unknown_to_the_state_are_left_alone() -> None:
    now = state(a=(StepPhase.RUNNING, 1), b=(StepPhase.CANCELLED, 1), c=(StepPhase.PENDING, 0))
    assert stale_stops(now, UID, [job("a", 1), job("b", 1, finished=True), job("c", 1)], []) == []
    assert stale_stops(now, UID, [job("elsewhere", 1)], []) == []


def test_an_owned_child_still_going_is_terminated_an_abandoned_or_ended_one_not() -> None:
    now = state(k=(StepPhase.CANCELLED, 1), m=(StepPhase.RUNNING, 1))
    kids = [
        child("k", 1),
        child("k", 1, owned=False),  # parentClosePolicy abandon
        child("k", 1, spec={"cancel": True}),
        child("k", 1, status={"phase": "Succeeded"}),
        child("m", 1),  # in flight
    ]
    assert stale_stops(now, UID, [], kids) == [TerminateChild(key="k", attempt=1, name="r-k-1")]


def test_a_finished_job_whose_outcome_is_committed_gets_the_short_ttl_on_resume() -> None:
    now = state(a=(StepPhase.SUCCEEDED, 1), b=(StepPhase.RUNNING, 1), c=(StepPhase.FAILED, 2))
    long_lived = [job(k, n, finished=True) for k, n in (("a", 1), ("b", 1), ("c", 2))]
    # b's Job finished but the state has not folded its outcome: it must keep its pod.
    assert committed_jobs(now, long_lived, ttl=600) == ["r-a-1", "r-c-2"]
    done = job("a", 1, finished=True) | {"spec": {"ttlSecondsAfterFinished": 600}}
    assert committed_jobs(now, [done, job("a", 2)], ttl=600) == []
