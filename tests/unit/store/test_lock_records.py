"""The record of a lock (baton.store.locks): FIFO grants, idempotent asks, and its object name."""

from __future__ import annotations

from baton.api.attempts import lock_object_name
from baton.api.names import check_subdomain
from baton.store.locks import MAX_WAITERS, Holder, LockRecord


def holder(n: int) -> Holder:
    return Holder(id=f"uid-{n}/step", run=f"run-{n}", uid=f"uid-{n}", key="step", since="")


def test_waiters_are_granted_first_come_first_served_up_to_the_limit() -> None:
    record = LockRecord(kind="semaphore", name="s")
    for n in range(5):
        record.enqueue(holder(n))
    assert record.promote(2) == [holder(0), holder(1)]
    record.drop(lambda h: h.id == holder(0).id)
    assert record.promote(2) == [holder(2)]
    assert [h.run for h in record.queue] == ["run-3", "run-4"]


def test_asking_again_keeps_the_place_and_never_grants_twice() -> None:
    record = LockRecord(kind="mutex", name="m")
    record.enqueue(holder(1))
    record.enqueue(holder(2))
    record.enqueue(holder(1))
    assert record.promote(1) == [holder(1)]
    record.enqueue(holder(1))
    assert record.holders == [holder(1)]
    assert record.queue == [holder(2)]


def test_a_lowered_limit_keeps_the_holders_and_grants_no_one() -> None:
    record = LockRecord(kind="semaphore", name="s")
    for n in range(4):
        record.enqueue(holder(n))
    record.promote(3)
    assert record.promote(1) == []
    assert len(record.holders) == 3


def test_an_unreadable_limit_grants_no_one() -> None:
    record = LockRecord(kind="semaphore", name="s")
    record.enqueue(holder(1))
    assert record.promote(None) == []


def test_the_record_survives_its_json_form() -> None:
    record = LockRecord(kind="semaphore", name="s", config_map=("limits", "k"))
    record.enqueue(holder(1))
    record.enqueue(holder(2))
    record.promote(1)
    assert LockRecord.from_json(record.to_json()) == record


def test_any_lock_name_gives_a_valid_distinct_object_name() -> None:
    names = ["account-7", "Account 7", "ä/../../kube-system", "x" * 253, "account-7 "]
    objects = [lock_object_name("mutex", name) for name in names]
    for name in objects:
        check_subdomain(name, "lock object")
        assert len(name) <= 63
    assert len(set(objects)) == len(names)
    assert lock_object_name("semaphore", "account-7") != lock_object_name("mutex", "account-7")
    assert lock_object_name("mutex", "account-7") == lock_object_name("mutex", "account-7")


def test_a_full_queue_gives_no_place_but_keeps_those_waiting() -> None:
    record = LockRecord(kind="mutex", name="m")
    record.queue = [holder(n) for n in range(MAX_WAITERS)]
    assert not record.enqueue(holder(MAX_WAITERS))
    assert record.enqueue(holder(3))  # already waiting: keeps its place
    assert len(record.queue) == MAX_WAITERS
