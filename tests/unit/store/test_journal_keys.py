"""Journal keys name the run, its uid and the batch number, and parse back even when the run's
name has dots; keys Baton does not write parse to None."""

from __future__ import annotations

from baton.store.journal import entry_key, parse_key
from baton.store.ref import RunRef

UID = "0f8c3a52-5f1e-4c55-9a43-2a1f3e4d5c6b"


def test_a_journal_key_parses_back_to_its_run_and_batch_even_with_dots_in_the_name() -> None:
    run = RunRef(name="nightly.etl-1", namespace="ns", uid=UID)
    key = entry_key(run, 42)
    assert key == f"nightly.etl-1.{UID}.000000000042"
    assert parse_key(key) == ("nightly.etl-1", UID, 42)


def test_keys_baton_does_not_write_are_not_journal_entries() -> None:
    assert parse_key("mine") is None
    assert parse_key(f"run.{UID}.42") is None
    assert parse_key(f"{UID}.000000000042") is None
    assert parse_key("run.not-a-uid.000000000042") is None
