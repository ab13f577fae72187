"""Real-estate activities for Baton's example workflows, one Worker per WorkerPool.

    baton-worker realestate:payments       # pool `payments`: charge, refund
    baton-worker realestate:registry       # pool `registry`: validateProperty, transferOwnership
    baton-worker realestate:notifications  # pool `notifications`: sendEmail, pageOnCall
    baton-worker realestate:worker         # all of them (development)

The "external systems" (payment provider, land registry, mail) are in-memory stand-ins that
honour idempotency keys the way real ones do: every side effect is keyed by
`current().activity_key`, the same on every retry of a step, so a retried or re-issued task
charges, refunds or transfers once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal
from typing import Literal

from baton_activities import ActivityError, Worker, activity, current, heartbeat
from pydantic import BaseModel, Field

# --- stand-ins for the systems the activities talk to ------------------------------------------


class Ledger:
    """A payment provider: charges and refunds, deduplicated by idempotency key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.charges: dict[str, dict[str, object]] = {}
        self.by_key: dict[str, str] = {}
        self.refunded: set[str] = set()


LEDGER = Ledger()
OWNERS: dict[str, str] = {"parcel-17": "Ada Lovelace", "parcel-42": "Grace Hopper"}
TRANSFERS: dict[str, str] = {}
OUTBOX: list[dict[str, str]] = []

# --- property validation -----------------------------------------------------------------------


class Property(BaseModel):
    id: str = Field(min_length=1)
    address: str = Field(min_length=1)
    price: Decimal = Field(gt=0)
    seller: str


class Validation(BaseModel):
    property: str
    valid: bool
    owner: str


@activity(name="validateProperty")
def validate_property(prop: Property) -> Validation:
    """The seller must be the registered owner; a mismatch will not heal with retries."""
    owner = OWNERS.get(prop.id)
    if owner is None:
        raise ActivityError(f"parcel {prop.id} is not in the land registry", type="UnknownParcel")
    if owner != prop.seller:
        raise ActivityError(
            f"{prop.seller} does not own {prop.id}",
            type="NotTheOwner",
            non_retryable=True,
            details={"owner": owner},
        )
    return Validation(property=prop.id, valid=True, owner=owner)


# --- payments with refund ----------------------------------------------------------------------


class Charge(BaseModel):
    amount: Decimal = Field(gt=0)
    currency: Literal["EUR", "USD", "GBP"] = "EUR"
    card: str = Field(pattern=r"^tok_[a-z0-9]+$")


@activity
def charge(payment: Charge) -> dict[str, object]:
    """Charge a card once per step, however often the step is retried."""
    key = current().activity_key
    with LEDGER.lock:
        if key in LEDGER.by_key:
            return LEDGER.charges[LEDGER.by_key[key]]
        if payment.card == "tok_declined":
            raise ActivityError("the card was declined", type="CardDeclined", non_retryable=True)
        charge_id = f"ch_{len(LEDGER.charges) + 1}"
        receipt: dict[str, object] = {
            "id": charge_id,
            "amount": str(payment.amount),
            "currency": payment.currency,
        }
        LEDGER.charges[charge_id] = receipt
        LEDGER.by_key[key] = charge_id
        return receipt


@activity
def refund(payment: str) -> dict[str, object]:
    """Undo a charge (a saga's compensation): refunding twice is a no-op, not an error."""
    with LEDGER.lock:
        if payment not in LEDGER.charges:
            raise ActivityError(f"no charge {payment}", type="UnknownCharge", non_retryable=True)
        already = payment in LEDGER.refunded
        LEDGER.refunded.add(payment)
    return {"payment": payment, "refunded": True, "already": already}


# --- ownership transfer ------------------------------------------------------------------------


@activity(name="transferOwnership")
async def transfer_ownership(property: str, buyer: str = "the buyer") -> dict[str, str]:
    """Record the new owner at the land registry: slow, so it heartbeats while it waits."""
    key = current().activity_key
    if key in TRANSFERS:
        return {"id": TRANSFERS[key], "property": property}
    for stage in ("deed drafted", "notarised", "registered"):
        heartbeat({"stage": stage})
        await asyncio.sleep(0.2)
    OWNERS[property] = buyer
    TRANSFERS[key] = f"tr_{len(TRANSFERS) + 1}"
    return {"id": TRANSFERS[key], "property": property}


# --- notifications -----------------------------------------------------------------------------


@activity(name="sendEmail")
def send_email(to: str, template: str, data: dict[str, str] | None = None) -> dict[str, str]:
    """Queue an email once per step."""
    key = current().activity_key
    for sent in OUTBOX:
        if sent["key"] == key:
            return {"queued": sent["id"]}
    message = {"id": f"msg_{len(OUTBOX) + 1}", "key": key, "to": to, "template": template}
    OUTBOX.append(message)
    return {"queued": message["id"]}


@activity(name="pageOnCall")
def page_on_call(ticket: str) -> dict[str, str]:
    """Page whoever is on call; the pager answers slowly."""
    time.sleep(0.1)
    return {"paged": "on-call", "ticket": ticket}


payments = Worker([charge, refund])
registry = Worker([validate_property, transfer_ownership])
notifications = Worker([send_email, page_on_call])
worker = Worker([validate_property, charge, refund, transfer_ownership, send_email, page_on_call])
