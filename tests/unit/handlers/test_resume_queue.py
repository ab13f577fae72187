"""The order a starting operator resumes its runs in (baton.handlers.resumes): what the user
sent and what is due first, then timers by due time, then runs that only wait for the user."""

from __future__ import annotations

from typing import Any

from baton.engine.state import rfc3339
from baton.handlers.resumes import ResumeQueue, Urgency, urgency

NOW = 1_800_000_000_000.0


def body(
    *,
    wake: float | None = None,
    generation: int = 1,
    observed: int = 1,
    steps: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"definition": {"configMap": "x"}, "observedGeneration": observed}
    if wake is not None:
        status["nextWakeupAt"] = rfc3339(int(wake))
    if steps is not None:
        status["steps"] = steps
    return {"metadata": {"uid": "u", "generation": generation}, "status": status}


def drain(queue: ResumeQueue) -> list[str]:
    order = []
    while (uid := queue.pop()) is not None:
        order.append(uid)
    return order


def test_an_unobserved_spec_change_is_resumed_at_once() -> None:
    assert urgency(body(wake=NOW + 3_600_000, generation=3, observed=2), NOW) == (Urgency.NOW, 0)


def test_a_due_time_passed_is_resumed_at_once() -> None:
    assert urgency(body(wake=NOW - 1000), NOW) == (Urgency.NOW, 0)


def test_a_step_in_flight_is_resumed_at_once() -> None:
    steps = {"call": {"phase": "Running"}, "nap": {"phase": "Succeeded"}}
    assert urgency(body(steps=steps), NOW) == (Urgency.NOW, 0)


def test_a_future_timer_is_ordered_by_its_due_time() -> None:
    assert urgency(body(wake=NOW + 5000), NOW) == (Urgency.TIMER, NOW + 5000)


def test_a_run_waiting_only_for_the_user_comes_last() -> None:
    assert urgency(body(steps={"hold": {"phase": "Waiting"}}), NOW) == (Urgency.IDLE, 0)


def test_an_unreadable_due_time_is_not_urgent() -> None:
    hand_edited = body()
    hand_edited["status"]["nextWakeupAt"] = "soon"
    assert urgency(hand_edited, NOW) == (Urgency.IDLE, 0)


def test_the_queue_pops_urgent_then_soonest_then_idle_whatever_the_arrival_order() -> None:
    queue = ResumeQueue(in_flight=100)
    queue.push("idle-1", body(), NOW)
    queue.push("far", body(wake=NOW + 86_400_000), NOW)
    queue.push("soon", body(wake=NOW + 20_000), NOW)
    queue.push("idle-2", body(), NOW)
    queue.push("signalled", body(generation=2), NOW)
    queue.push("due", body(wake=NOW - 5), NOW)
    assert drain(queue) == ["signalled", "due", "soon", "far", "idle-1", "idle-2"]


def test_a_newer_body_moves_a_queued_run_to_its_new_place() -> None:
    queue = ResumeQueue(in_flight=100)
    queue.push("a", body(), NOW)
    queue.push("b", body(wake=NOW + 20_000), NOW)
    queue.push("a", body(generation=2), NOW)  # a signal arrived while it waited
    assert drain(queue) == ["a", "b"]
    assert len(queue) == 0


def test_the_same_place_again_keeps_the_run_s_turn() -> None:
    queue = ResumeQueue(in_flight=100)
    queue.push("first", body(), NOW)
    queue.push("second", body(), NOW)
    queue.push("first", body(), NOW)
    assert drain(queue) == ["first", "second"]


def test_no_more_than_in_flight_resume_at_once() -> None:
    queue = ResumeQueue(in_flight=2)
    for name in "abc":
        queue.push(name, body(), NOW)
    assert queue.pop() == "a"
    assert queue.pop() == "b"
    assert not queue.has_room()
    queue.done()
    assert queue.has_room()
    assert queue.pop() == "c"


def test_a_discarded_run_is_not_popped() -> None:
    queue = ResumeQueue(in_flight=10)
    queue.push("gone", body(), NOW)
    queue.push("kept", body(), NOW)
    queue.discard("gone")
    assert "gone" not in queue
    assert drain(queue) == ["kept"]
