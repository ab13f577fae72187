"""The real-estate example activities (activities/examples/realestate.py) on a real server:
validation, a charge made once across retries, refunds, a heartbeating transfer, emails."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


def call(url: str, name: str, data: Any, key: str, attempt: int = 1) -> Any:
    body = {"input": data, "idempotencyKey": f"{key}/{attempt}", "attempt": attempt}
    with httpx.stream("POST", f"{url}/activities/{name}", json=body, timeout=30) as response:
        assert response.status_code == 200
        return [json.loads(line) for line in response.iter_lines() if line]


def test_a_seller_who_is_not_the_owner_fails_for_good(examples_url: str) -> None:
    prop = {"id": "parcel-17", "address": "1 Elm St", "price": "250000", "seller": "Ada Lovelace"}
    [answer] = call(examples_url, "validateProperty", prop, "r1/validate")
    assert answer["output"] == {"property": "parcel-17", "valid": True, "owner": "Ada Lovelace"}
    [answer] = call(examples_url, "validateProperty", {**prop, "seller": "Eve"}, "r2/validate")
    assert answer["error"]["type"] == "NotTheOwner"
    assert answer["error"]["nonRetryable"] is True
    [answer] = call(examples_url, "validateProperty", {**prop, "price": -1}, "r3/validate")
    assert answer["error"]["type"] == "InvalidInput"


def test_a_retried_charge_charges_once_and_a_refund_is_idempotent(examples_url: str) -> None:
    payment = {"amount": "1200.50", "card": "tok_visa"}
    [first] = call(examples_url, "charge", payment, "r4/pay", attempt=1)
    [retry] = call(examples_url, "charge", payment, "r4/pay", attempt=2)
    assert first == retry
    charge_id = first["output"]["id"]
    [refund] = call(examples_url, "refund", {"payment": charge_id}, "r4/pay-undo")
    assert refund["output"] == {"payment": charge_id, "refunded": True, "already": False}
    [again] = call(examples_url, "refund", {"payment": charge_id}, "r5/pay-undo")
    assert again["output"]["already"] is True
    [declined] = call(examples_url, "charge", {**payment, "card": "tok_declined"}, "r6/pay")
    assert declined["error"]["type"] == "CardDeclined"


def test_the_transfer_heartbeats_its_stages(examples_url: str) -> None:
    *beats, result = call(examples_url, "transferOwnership", {"property": "parcel-42"}, "r7/t")
    # At most one heartbeat a second reaches the operator: the first stage, maybe no other.
    assert beats[0] == {"heartbeat": {"stage": "deed drafted"}}
    assert result["output"]["property"] == "parcel-42"


def test_an_email_is_queued_once_per_step(examples_url: str) -> None:
    email = {"to": "ada@example.com", "template": "welcome"}
    [first] = call(examples_url, "sendEmail", email, "r8/mail", attempt=1)
    [second] = call(examples_url, "sendEmail", email, "r8/mail", attempt=2)
    assert first == second
