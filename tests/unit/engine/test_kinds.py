"""The step kind table: every kind of the definition model has its behaviour."""

from __future__ import annotations

from baton.engine.definition import StepKind
from baton.engine.kinds import KINDS
from baton.engine.state import KeyRole, compensation_key, key_role


def test_every_step_kind_has_a_behaviour_in_the_table() -> None:
    assert set(KINDS) == set(StepKind)


def test_compensation_keys_are_told_from_step_keys() -> None:
    assert key_role("charges[3].charge") is KeyRole.STEP
    assert key_role(compensation_key("pay", 0)) is KeyRole.COMPENSATION
    assert compensation_key("pay", 0) == "pay/compensate"
    assert compensation_key("pay", 2) == "pay/compensate-2"
