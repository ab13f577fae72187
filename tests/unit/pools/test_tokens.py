"""The pool token's rotation: add the new token, switch the sender, drop the old one, each
stage `propagation` after the last, so workers accept every token the operator sends."""

from __future__ import annotations

import base64
from typing import Any

from baton.pools.tokens import ROTATED_FOR, SINCE, Key, Plan, Tokens, plan


def secret(values: dict[str, str], rotated_for: str = "", since: float = 0.0) -> dict[str, Any]:
    data = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    notes = {ROTATED_FOR: rotated_for, SINCE: repr(since)}
    return {"metadata": {"annotations": notes}, "data": data}


def applied(step: Plan) -> Tokens:
    return Tokens.of(
        secret(dict(step.data), step.annotations[ROTATED_FOR], float(step.annotations[SINCE]))
    )


def test_a_pool_without_a_secret_gets_a_fresh_token() -> None:
    step = plan(Tokens.of(None), requested="", now=10, propagation=60, fresh="t1")
    assert step is not None
    assert dict(step.data) == {"current": "t1"}


def test_nothing_is_written_while_no_rotation_is_asked() -> None:
    held = Tokens.of(secret({"current": "t1"}, since=10))
    assert plan(held, requested="", now=5000, propagation=60, fresh="x") is None


def test_a_rotation_adds_then_switches_then_drops_each_after_propagation() -> None:
    held = Tokens.of(secret({"current": "t1"}, since=10))
    accepted_by_workers: set[str] = {"t1"}
    sent = []
    now = 100.0
    held_step = plan(held, requested="r1", now=now, propagation=60, fresh="t2")
    assert held_step is not None
    held = applied(held_step)
    assert dict(held.values) == {Key.CURRENT: "t1", Key.NEXT: "t2"}
    for now in (130.0, 159.0):  # too early: workers may not hold t2 yet
        assert plan(held, requested="r1", now=now, propagation=60, fresh="x") is None
    accepted_by_workers |= {"t2"}  # the kubelet brought `next` within `propagation`
    switch = plan(held, requested="r1", now=160, propagation=60, fresh="x")
    assert switch is not None
    held = applied(switch)
    sent.append(held.current)
    assert dict(held.values) == {Key.CURRENT: "t2", Key.PREVIOUS: "t1"}
    assert plan(held, requested="r1", now=200, propagation=60, fresh="x") is None
    drop = plan(held, requested="r1", now=220, propagation=60, fresh="x")
    assert drop is not None
    held = applied(drop)
    assert dict(held.values) == {Key.CURRENT: "t2"}
    assert set(sent) <= accepted_by_workers
    # The same request does not rotate again; a new value does.
    assert plan(held, requested="r1", now=9999, propagation=60, fresh="x") is None
    assert plan(held, requested="r2", now=9999, propagation=60, fresh="t3") is not None
