"""The dispatch queue: round-robin across runs, never more in flight than the capacity, each
idempotency key once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from baton.pools.dispatch import FairQueue, capacity


def test_one_runs_huge_foreach_does_not_starve_another_run() -> None:
    queue: FairQueue[int] = FairQueue()
    for n in range(10_000):
        queue.push("bulk", f"bulk/item[{n}]/1", n)
    first = queue.take(4)
    assert [t.run for t in first] == ["bulk"] * 4
    queue.push("buyer", "buyer/transfer/1", -1)
    queue.push("seller", "seller/notify/1", -2)
    for task in first[:2]:
        queue.done(task.key)
    # The two freed slots go to the runs that waited, not to the bulk run's next items.
    assert [t.run for t in queue.take(4)] == ["buyer", "seller"]
    for task in first[2:]:
        queue.done(task.key)
    assert [t.run for t in queue.take(6)] == ["bulk"] * 4
    assert queue.backlog == 9_992
    assert queue.in_flight == 6
    assert queue.in_flight_of("bulk") == 4


def test_a_free_slot_goes_to_the_waiting_run_with_fewest_tasks_in_flight() -> None:
    queue: FairQueue[str] = FairQueue()
    for n in range(3):
        queue.push("a", f"a{n}", f"a{n}")
    queue.take(2)
    queue.push("b", "b0", "b0")
    queue.push("b", "b1", "b1")
    assert [t.item for t in queue.take(4)] == ["b0", "b1"]
    assert queue.take(5)[0].item == "a2"


def test_runs_take_turns_one_task_each() -> None:
    queue: FairQueue[str] = FairQueue()
    for run, count in (("a", 3), ("b", 1), ("c", 2)):
        for n in range(count):
            queue.push(run, f"{run}{n}", f"{run}{n}")
    assert [t.item for t in queue.take(10)] == ["a0", "b0", "c0", "a1", "c1", "a2"]


def test_in_flight_never_exceeds_the_capacity_even_when_it_shrinks() -> None:
    queue: FairQueue[int] = FairQueue()
    for n in range(20):
        queue.push(n % 3, str(n), n)
    assert len(queue.take(capacity(2, 4))) == 8
    assert queue.take(capacity(1, 4)) == []  # the pool shrank: nothing new starts
    for key in ("0", "1", "2", "3", "4"):
        queue.done(key)
    assert queue.in_flight == 3
    assert len(queue.take(capacity(1, 4))) == 1
    assert queue.take(capacity(0, 4)) == []  # no ready replica: tasks stay queued
    assert queue.backlog == 11


def test_a_key_queued_or_in_flight_is_not_queued_twice() -> None:
    queue: FairQueue[int] = FairQueue()
    assert queue.push("r", "k/1", 1)
    assert not queue.push("r", "k/1", 1)
    [task] = queue.take(1)
    assert not queue.push("r", "k/1", 1)
    assert "k/1" in queue
    queue.done(task.key)
    assert "k/1" not in queue
    assert queue.push("r", "k/1", 1)  # done: a later re-issue is a new dispatch


def test_a_discarded_task_leaves_the_queue_or_frees_its_slot() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a1", "x")
    queue.push("b", "b1", "y")
    queue.push("b", "b2", "z")
    assert queue.discard("b1") == "y"
    assert queue.backlog_of("b") == 1
    [first] = queue.take(1)
    assert first.key == "a1"
    assert queue.discard("a1") is None
    assert queue.in_flight == 0
    assert queue.discard("nope") is None
    assert queue.discard("b2") == "z"
    assert queue.runs_waiting() == []
    assert queue.take(5) == []


actions = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 4), st.integers(0, 30)),
        st.tuples(st.just("take"), st.integers(0, 6), st.integers(0, 0)),
        st.tuples(st.just("done"), st.integers(0, 30), st.integers(0, 0)),
        st.tuples(st.just("discard"), st.integers(0, 30), st.integers(0, 0)),
    ),
    max_size=120,
)


@given(actions)
def test_every_task_is_dispatched_at_most_once_within_capacity_and_turns_are_fair(
    steps: list[tuple[str, int, int]],
) -> None:
    queue: FairQueue[int] = FairQueue()
    dispatched: list[str] = []
    flying: set[str] = set()  # the model: keys handed out and not yet done or discarded
    for action, a, b in steps:
        if action == "push":
            queue.push(a, f"{a}/{b}", b)
        elif action == "take":
            before = queue.in_flight
            taken = queue.take(a)
            assert queue.in_flight <= max(a, before)
            assert queue.in_flight == before + len(taken)
            keys = [t.key for t in taken]
            assert len(set(keys)) == len(keys)
            assert not flying & set(keys)
            # Fair share: a run served now has at most one task more in flight than any run
            # still left waiting.
            for served in {t.run for t in taken}:
                for waiting in queue.runs_waiting():
                    assert queue.in_flight_of(served) <= queue.in_flight_of(waiting) + 1
            dispatched.extend(keys)
            flying |= set(keys)
        elif action == "done":
            for key in [k for k in flying if k.endswith(f"/{a}")]:
                queue.done(key)
                flying.discard(key)
        else:
            queue.discard(f"{a % 5}/{a}")
            flying.discard(f"{a % 5}/{a}")
        assert queue.in_flight == len(flying)
        assert queue.backlog == sum(queue.backlog_of(r) for r in range(5))


def test_a_run_queued_later_with_nothing_in_flight_goes_before_one_with_a_task_in_flight() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("a", "a0", "a0")
    queue.push("a", "a1", "a1")
    queue.take(1)
    queue.push("b", "b0", "b0")
    assert queue.in_flight_of("a") == 1
    assert queue.in_flight_of("b") == 0
    assert [t.item for t in queue.take(2)] == ["b0"]


def test_capacity_is_ready_replicas_times_tasks_per_replica() -> None:
    assert capacity(0, 5) == 0
    assert capacity(3, 1) == 3
    assert capacity(2, 4) == 8
