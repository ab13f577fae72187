"""The seal of history batches and the classification of run loop errors (pure parts)."""

from __future__ import annotations

import json

from baton.engine.events import HistoryEntry, SignalReceived, TimerFired
from baton.handlers.runs import _transient
from baton.store.history import (
    HistoryConflictError,
    HistoryLostError,
    HistoryTooLargeError,
    batch_mac,
    decode_chunk,
    encode_batch,
    split_batch,
)
from baton.store.kube import ApiError

ENTRIES = [
    HistoryEntry(at=1.0, event=TimerFired("wakeup")),
    HistoryEntry(at=2.0, event=SignalReceived(0, "approve", {"ok": "é"})),
]


def test_a_batch_mac_binds_the_key_the_run_the_number_and_the_text() -> None:
    text = encode_batch(ENTRIES)
    mac = batch_mac(b"key", "uid", 3, text)
    assert mac == batch_mac(b"key", "uid", 3, text)
    assert mac != batch_mac(b"other", "uid", 3, text)
    assert mac != batch_mac(b"key", "uid-2", 3, text)
    assert mac != batch_mac(b"key", "uid", 4, text)
    assert mac != batch_mac(b"key", "uid", 3, text.replace("approve", "approvf"))


def test_batches_are_utf8_not_escaped() -> None:
    assert '"é"' in encode_batch(ENTRIES)


def test_split_batch_separates_the_mac_line_and_decode_ignores_it() -> None:
    text = encode_batch(ENTRIES)
    stored = text + "\n" + json.dumps({"mac": "ab"})
    assert split_batch(stored) == (text.split("\n"), "ab")
    assert split_batch(text) == (text.split("\n"), None)
    assert decode_chunk({"000000000000": stored}) == [(0, ENTRIES)]


def test_unavailability_and_conflicts_are_transient_refusals_are_not() -> None:
    assert _transient(ApiError(503, "Service Unavailable", "etcd leader changed"))
    assert _transient(ApiError(429, "Too Many Requests", "throttled"))
    assert _transient(ApiError(403, "Forbidden", "RBAC not there yet"))
    assert _transient(ConnectionRefusedError())
    assert _transient(HistoryConflictError("another writer"))
    assert not _transient(ApiError(422, "Unprocessable Entity", "status.vars: invalid"))
    assert not _transient(ApiError(413, "Request Entity Too Large", "too large"))
    assert not _transient(RecursionError())
    too_large = "rpc error: code = ResourceExhausted desc = trying to send message larger than max"
    assert not _transient(ApiError(500, "Internal Server Error", too_large))
    assert not _transient(
        ApiError(500, "Internal Server Error", "etcdserver: request is too large")
    )
    assert not _transient(HistoryLostError("gone"))
    assert not _transient(HistoryTooLargeError("too large"))
